"""``DiffusionPipeline``: what every sdrt pipeline shares.

Loading a bundle (manifest, one engine per component for the chosen provider, the scheduler from
``scheduler/scheduler_config.json``, the tokenizers), diffusers' constructor and ``components`` (so that
``StableDiffusionImg2ImgPipeline(**pipe.components)`` and ``from_pipe`` share the engines), the progress bar,
size checks against the engines' shape ranges, the denoising loop's bookkeeping (``callback_on_step_end``,
``interrupt``, progress updates as diffusers counts them), VAE decoding and the output types.

``DiffusionPipeline.from_pretrained(bundle)`` picks the pipeline class from the manifest's model type;
``StableDiffusionPipeline.from_pretrained(bundle)`` etc. load that class (when the bundle fits it).

Threads: one pipeline object may be called from several threads at once, and each call gives the images it
gives alone. Every call (``@pipeline_call``) runs on a :class:`~.call_state.CallState` of its own: its own
copy of the scheduler (``type(s).from_config(s.config)`` of ``pipe.scheduler``: the step index and previous
model outputs of one call never meet another's) and its own loop state (``interrupt``, ``num_timesteps``,
the guidance settings), kept per thread, so that inside a call ``pipe.scheduler`` and ``pipe.interrupt``
are that call's. The engines are shared: ONNX Runtime's CPU session runs concurrently; the engines whose
runs share buffers (ONNX Runtime on CUDA with IO binding, its output cache and CUDA graphs; TensorRT's
execution context) take a lock around a run, and the component wrappers copy the outputs under it. A
generator object passed to two calls at once is shared by them, as in any library: pass one per call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle, open_bundle
from sdrt.runtime.components import Component, Vae, open_component
from sdrt.runtime.engines.open import array_module, resolve_provider
from sdrt.runtime.errors import BundleError, EngineError, InputError, InputTypeError
from sdrt.runtime.families import model_types_running
from sdrt.runtime.images import denormalize, postprocess

from .arrays import to_xp
from .call_state import CallProperties, CallState, copy_scheduler
from .loading import bundle_scheduler, shared_vae_encoder
from .surface import DiffusersSurface, check_scheduler
from .timesteps import step_kwargs
from .torch_interop import to_torch

logger = logging.getLogger(__name__)

# a pipeline part that is one engine -> the engine's name
_ENGINE_PARTS = {
    "unet": "unet",
    "text_encoder": "text_encoder",
    "text_encoder_2": "text_encoder_2",
    "depth_estimator": "depth_estimator",
}
# diffusers' loading options that mean nothing for a bundle: accepted, with a warning that says why
_LOAD_OPTIONS_WITHOUT_EFFECT = {
    "torch_dtype": "the precision is fixed when the bundle is built (build-engine --precision)",
    "variant": "a bundle holds one set of engines",
    "use_safetensors": "a bundle holds ONNX graphs or TensorRT plans",
    "low_cpu_mem_usage": "engines load as built",
    "device_map": "the provider chooses the device (provider=...)",
    "local_files_only": "a bundle is a local folder",
}
_NOT_RUN = {
    "safety_checker": "sdrt runs no safety checker (nsfw_content_detected is always None)",
    "feature_extractor": "sdrt runs no safety checker or IP-Adapter, which the feature extractor feeds",
    "image_encoder": "sdrt exports no IP-Adapter image encoder",
}


class DiffusionPipeline(CallProperties, DiffusersSurface):
    """Base class of the pipelines; ``DiffusionPipeline.from_pretrained`` dispatches on the model type."""

    #: components (engines) a pipeline needs, and those it uses when the bundle has them
    required_components: tuple[str, ...] = ()
    optional_components: tuple[str, ...] = ()
    #: diffusers' names of the pipeline's parts: its constructor's arguments, ``pipe.components``' keys
    parts: tuple[str, ...] = ("unet", "scheduler")
    output_types: tuple[str, ...] = ("pil", "np", "pt", "latent")
    _callback_tensor_inputs: tuple[str, ...] = ("latents",)

    def __init__(self, **parts: Any) -> None:
        """The pipeline over ``parts`` (diffusers' names: ``unet``, ``vae``, ``text_encoder``, ``tokenizer``,
        ``scheduler``...), as ``from_pretrained`` loads them or ``pipe.components`` hands them over."""
        self._local = threading.local()
        self._progress_bar_config: dict[str, Any] = {}
        for name, value in parts.items():
            _check_part(type(self).__name__, name, value)
        unet = parts.get("unet")
        if getattr(unet, "manifest", None) is None:
            raise BundleError(
                f"{type(self).__name__} needs `unet`: the UNet engine of an sdrt bundle; load the pipeline with "
                f"{type(self).__name__}.from_pretrained(bundle) or pass pipe.components of a loaded one"
            )
        self.bundle: Bundle = unet.bundle
        self.manifest = unet.manifest
        self.provider: str = unet.provider
        self.xp = array_module(self.provider)
        self._check_model_type(self.bundle)
        for name in ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
            setattr(self, name, parts.get(name))
        self.unet = unet
        self.vae_scale_factor = self.manifest.vae_scale_factor
        self._check_engines()
        if parts.get("scheduler") is None:
            raise BundleError(
                f"{type(self).__name__} needs `scheduler`, e.g. sdrt.schedulers.scheduler_from_config("
                f"{str(self.bundle.path / 'scheduler')!r})"
            )
        self.scheduler = parts["scheduler"]

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, bundle_dir: str | os.PathLike[str], provider: str = "auto", scheduler: Any = None, **parts: Any
    ) -> DiffusionPipeline:
        """Load the engines of ``bundle_dir`` (built by build-engine) for ``provider``.

        ``provider``: ``"cpu"``, ``"openvino"``, ``"cuda"``, ``"tensorrt"`` or ``"auto"`` (the best one
        installed that the bundle has engines for).
        ``scheduler`` and other ``parts`` (diffusers' names) replace the bundle's.
        """
        bundle = open_bundle(bundle_dir)
        if cls is DiffusionPipeline:
            from .auto import pipeline_class_for

            cls = pipeline_class_for(bundle)
        for option in set(parts) & set(_LOAD_OPTIONS_WITHOUT_EFFECT):
            logger.warning(
                "from_pretrained(%s=...) is ignored: %s", option, _LOAD_OPTIONS_WITHOUT_EFFECT[option]
            )
            parts.pop(option)
        unknown = sorted(set(parts) - set(cls.parts))
        if unknown:
            raise InputTypeError(
                f"{cls.__name__}.from_pretrained() got unexpected keyword arguments {unknown}; its parts are "
                f"{list(cls.parts)}, and the precision is fixed when the bundle is built (build-engine --precision)"
            )
        cls._check_model_type(bundle)
        names = cls.components_to_load(bundle)
        bundle.require(cls.required_components, cls.__name__)
        provider = resolve_provider(provider, bundle, names)
        names += shared_vae_encoder(cls, bundle, provider, names)
        engines = {name: open_component(bundle, name, provider) for name in names}
        if scheduler is None:
            scheduler = bundle_scheduler(bundle)
        loaded: dict[str, Any] = {name: engines.get(engine) for name, engine in _ENGINE_PARTS.items()}
        if "vae_decoder" in engines or "vae_encoder" in engines:
            loaded["vae"] = Vae(engines.get("vae_decoder"), engines.get("vae_encoder"), bundle.manifest.vae)
        for name, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
            if encoder in engines:
                from sdrt.runtime.text.tokenizer import CLIPTokenizer

                loaded[name] = CLIPTokenizer.from_pretrained(bundle.path / name)
        loaded |= cls.parts_from_engines(engines)
        loaded = {k: v for k, v in {**loaded, "scheduler": scheduler, **parts}.items() if k in cls.parts}
        logger.info("loaded %s (%s) from %s on %s", cls.__name__, bundle.model_type, bundle.path, provider)
        return cls(**loaded)

    @classmethod
    def components_to_load(cls, bundle: Bundle) -> tuple[str, ...]:
        """The bundle components ``from_pretrained`` opens: the required ones, and the optional ones it has."""
        return cls.required_components + tuple(n for n in cls.optional_components if n in bundle.components)

    @classmethod
    def parts_from_engines(cls, engines: dict[str, Component]) -> dict[str, Any]:
        """Parts a subclass makes of its opened engines besides the shared ones (the ControlNets)."""
        return {}

    @classmethod
    def from_pipe(cls, pipe: DiffusionPipeline, **parts: Any) -> DiffusionPipeline:
        """This pipeline class over another pipeline's engines, scheduler and tokenizers (nothing reloaded);
        ``parts`` (diffusers' names) replace some of them."""
        cls._check_model_type(pipe.bundle)
        missing = [n for n in cls.required_components if n not in pipe.engines]
        if missing:
            raise BundleError(
                f"{cls.__name__} needs {', '.join(missing)}, which the {type(pipe).__name__} did not load; "
                f"use {cls.__name__}.from_pretrained({str(pipe.bundle.path)!r})"
            )
        shared = {k: v for k, v in pipe.components.items() if k in cls.parts}
        return cls(**{**shared, **parts})

    @classmethod
    def _check_model_type(cls, bundle: Bundle) -> None:
        """A pipeline runs the bundles whose family lists it (or a class it derives from) for a task."""
        runs = model_types_running(cls)
        if runs and bundle.model_type not in runs:
            raise BundleError(
                f"{bundle.path} holds a {bundle.model_type!r} model, which {cls.__name__} does not run (it runs "
                f"{', '.join(runs)}); load it with DiffusionPipeline.from_pretrained"
            )

    def _check_engines(self) -> None:
        """Every engine the class needs, and a tokenizer beside each text encoder (a clear BundleError)."""
        missing = [n for n in self.required_components if n not in self.engines]
        if missing:
            raise BundleError(
                f"{type(self).__name__} needs the {', '.join(missing)} engine(s), which the parts given lack "
                f"(`vae` holds vae_decoder and vae_encoder); load it with {type(self).__name__}.from_pretrained("
                f"{str(self.bundle.path)!r}) from a bundle that has them"
            )
        for tokenizer, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
            if getattr(self, encoder) is not None and getattr(self, tokenizer) is None:
                raise BundleError(
                    f"{type(self).__name__} has `{encoder}` but no `{tokenizer}`; pass sdrt.runtime.CLIPTokenizer"
                    f".from_pretrained({str(self.bundle.path / tokenizer)!r})"
                )

    @property
    def components(self) -> dict[str, Any]:
        """diffusers' ``pipe.components``: every part by its name, so ``OtherPipeline(**pipe.components)``
        shares the engines (the parts sdrt does not run are None)."""
        return {name: getattr(self, name, None) for name in self.parts}

    @property
    def engines(self) -> dict[str, Component]:
        """The component wrappers by their bundle names (``unet``, ``vae_decoder``, ``vae_encoder``...)."""
        vae = self.vae if "vae" in self.parts else None
        found = {
            "unet": self.unet,
            "text_encoder": getattr(self, "text_encoder", None),
            "text_encoder_2": getattr(self, "text_encoder_2", None),
            "vae_decoder": getattr(vae, "decoder", None),
            "vae_encoder": getattr(vae, "encoder", None),
            "depth_estimator": getattr(self, "depth_estimator", None),
        }
        return {name: part for name, part in found.items() if part is not None}

    # ---- per-call state (one per call and thread: see the module docstring) ------------------------
    @property
    def scheduler(self) -> Any:
        """Inside a call (in its thread): the call's own scheduler; elsewhere the one calls copy."""
        state = self._state
        return self._scheduler if state is None else state.scheduler

    @scheduler.setter
    def scheduler(self, value: Any) -> None:
        check_scheduler(value)
        self._scheduler = value

    @property
    def _state(self) -> CallState | None:
        return getattr(self._local, "state", None)

    @contextlib.contextmanager
    def call_state(self) -> Iterator[CallState]:
        """A fresh :class:`CallState` for the current thread while a call runs (nested calls restore)."""
        previous = self._state
        self._local.state = CallState(copy_scheduler(self._scheduler))
        try:
            yield self._local.state
        finally:
            self._local.state = previous

    # ---- progress and loop bookkeeping ----------------------------------------------------------
    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options for tqdm, e.g. ``disable=True``."""
        self._progress_bar_config = kwargs

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> Any:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, **self._progress_bar_config)

    def check_callback_inputs(self, names: Sequence[str]) -> None:
        bad = [k for k in names if k not in self._callback_tensor_inputs]
        if bad:
            raise InputError(
                f"`callback_on_step_end_tensor_inputs` has {bad}; {type(self).__name__} offers "
                f"{list(self._callback_tensor_inputs)}"
            )

    def denoise(
        self,
        state: dict[str, Any],
        timesteps: Sequence[Any],
        num_inference_steps: int,
        predict: Callable[[dict[str, Any], Any], Any],
        *,
        noise: Any,
        eta: float = 0.0,
        after_step: Callable[[int, Any, dict[str, Any]], None] | None = None,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> Any:
        """diffusers' denoising loop: predict, ``scheduler.step``, ``after_step``, callbacks, progress.

        ``state`` holds ``latents`` and whatever the callback may read or replace; the call's own scheduler
        and loop state (``interrupt``, the deprecated ``callback``) come from its :class:`CallState`.
        """
        call = self._state or CallState(self.scheduler)
        scheduler = call.scheduler
        kwargs = step_kwargs(scheduler, noise, eta)
        order = scheduler.order
        num_warmup_steps = len(timesteps) - num_inference_steps * order
        call.num_timesteps = len(timesteps)
        with self.progress_bar(total=num_inference_steps) as bar:
            for i, t in enumerate(timesteps):
                if call.interrupt:
                    continue
                model_output = predict(state, t)
                state["latents"] = scheduler.step(model_output, t, state["latents"], **kwargs).prev_sample
                if after_step is not None:
                    after_step(i, t, state)
                if callback_on_step_end is not None:
                    outputs = callback_on_step_end(
                        self, i, t, {k: state[k] for k in callback_on_step_end_tensor_inputs}
                    )
                    for key, value in (outputs or {}).items():
                        if key in state:
                            state[key] = value
                if i == len(timesteps) - 1 or ((i + 1) > num_warmup_steps and (i + 1) % order == 0):
                    bar.update()
                    if call.callback is not None and i % call.callback_steps == 0:
                        call.callback(i // order, t, state["latents"])
        return state["latents"]

    # ---- sizes and outputs ----------------------------------------------------------------------
    def default_size(self) -> tuple[int, int]:
        return self.manifest.default_size

    def check_size(self, height: int, width: int) -> None:
        """Multiples of 8, inside the shape range the engines were built for (named in the error)."""
        if height % 8 != 0 or width % 8 != 0:
            raise InputError(f"`height` and `width` have to be divisible by 8 but are {height} and {width}.")
        shapes = self.manifest.shapes
        multiple = shapes.size_multiple
        if height % multiple != 0 or width % multiple != 0:
            raise InputError(
                f"`height` and `width` have to be multiples of {multiple} for this model (its UNet downsamples "
                f"by that factor) but are {height} and {width}."
            )
        for name, value in (("height", height), ("width", width)):
            low, high = getattr(shapes, name)
            if not low <= value <= high:
                h, w = shapes.height, shapes.width
                raise InputError(
                    f"{name}={value} is outside the sizes the engines in {self.bundle.path} were built for: "
                    f"height {h[0]}..{h[1]}, width {w[0]}..{w[1]}; pick a size in that range or rebuild with "
                    "build-engine --min-size/--max-size"
                )

    def decode_latents(self, latents: Any, output_type: str = "pil") -> Any:
        """``vae.decode(latents / scaling_factor (+ shift_factor))`` -> images of ``output_type``; NaN or Inf
        latents or pixels are an :class:`EngineError` (an overflowing fp16 engine), never a black picture."""
        if output_type == "latent":
            return latents
        if output_type not in ("pil", "np", "pt"):
            raise InputError(f"output_type must be 'pil', 'np', 'pt' or 'latent', got {output_type!r}")
        if not bool(self.xp.isfinite(latents).all()):
            raise EngineError(
                "the denoising loop produced NaN/Inf latents (the UNet engine or the scheduler); an fp16 UNet "
                "overflowing? rebuild with build-engine --precision fp32, or check the latents a callback returns"
            )
        latents = latents / self.vae.config.scaling_factor
        if self.vae.config.shift_factor is not None:
            latents = latents + self.vae.config.shift_factor
        images = self.vae.decode(latents)
        if not bool(self.xp.isfinite(images).all()):
            raise EngineError(
                "the VAE decoder produced NaN/Inf pixels from finite latents; an fp16 VAE overflowing? rebuild "
                "with build-engine --vae-fp32 (or --precision fp32)"
            )
        if output_type == "pt":
            return to_torch(denormalize(images))
        return postprocess(images, output_type)

    def to_xp(self, array: Any, dtype: Any = np.float32) -> Any:
        """An array of this pipeline's array module (host data is copied to the device once)."""
        return to_xp(self.xp, array, dtype)


def _check_part(pipeline: str, name: str, value: Any) -> None:
    """Refuse a torch-side module, or a part sdrt does not run, in a pipeline's constructor (a transformers
    tokenizer is fine: it gives the ids sdrt's does; a diffusers scheduler gets the scheduler slot's error)."""
    if name in _NOT_RUN and value is not None:
        raise InputError(f"{pipeline}(..., {name}=...): {_NOT_RUN[name]}; pass {name}=None")
    library = type(value).__module__.split(".")[0]
    if library in ("diffusers", "transformers", "torch") and name not in (
        "scheduler",
        "tokenizer",
        "tokenizer_2",
    ):
        raise InputTypeError(
            f"{pipeline}(..., {name}={type(value).__name__}(...)): a {library} module cannot run in sdrt, which runs "
            f"engines exported by build-engine; load the pipeline with {pipeline}.from_pretrained(bundle)"
        )
