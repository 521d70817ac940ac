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
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle, open_bundle
from sdrt.runtime.bundle.weights_check import check_weights
from sdrt.runtime.components import Component, Vae, open_component
from sdrt.runtime.components.base import ENGINE_SWAPS, current_engines, engines_fixed
from sdrt.runtime.engines.open import array_module, resolve_provider
from sdrt.runtime.errors import BundleError, InputError, InputTypeError
from sdrt.runtime.families import model_types_running
from sdrt.schedulers import FrozenConfig

from . import decoding, loop
from .arrays import to_xp
from .call_state import CallState, FromCall, copy_scheduler
from .loading import bundle_scheduler, shared_vae_encoder
from .parts import ENGINE_PARTS, LOAD_OPTIONS_WITHOUT_EFFECT, PartLoader, check_part
from .surface import DiffusersSurface, check_scheduler

logger = logging.getLogger(__name__)


class DiffusionPipeline:
    """Base class of the pipelines; ``DiffusionPipeline.from_pretrained`` dispatches on the model type."""

    #: components (engines) a pipeline needs, and those it uses when the bundle has them
    required_components: tuple[str, ...] = ()
    optional_components: tuple[str, ...] = ()
    #: parts made of several engines, each loaded, accepted and listed by its loader (``controlnet_part.py``)
    part_loaders: tuple[PartLoader, ...] = ()
    #: diffusers' names of the pipeline's parts: its constructor's arguments, ``pipe.components``' keys
    parts: tuple[str, ...] = ("unet", "scheduler")
    #: the part that denoises (DiT: ``transformer``): the pipeline's bundle, manifest and provider come from it
    denoiser_part = "unet"
    #: the part that decodes latents (latent diffusion's ``vqvae``): ``self.vae`` whatever its name
    vae_part = "vae"
    output_types: tuple[str, ...] = ("pil", "np", "pt", "latent")
    _callback_tensor_inputs: tuple[str, ...] = ("latents",)
    # the parts every pipeline has a slot for (None where its class or the bundle has none)
    unet: Any
    vae: Any
    text_encoder: Any
    text_encoder_2: Any
    tokenizer: Any
    tokenizer_2: Any

    def __init__(self, **parts: Any) -> None:
        """The pipeline over ``parts`` (diffusers' names: ``unet``, ``vae``, ``text_encoder``, ``tokenizer``,
        ``scheduler``...), as ``from_pretrained`` loads them or ``pipe.components`` hands them over."""
        self._local = threading.local()
        self._progress_bar_config: dict[str, Any] = {}
        for name, value in parts.items():
            check_part(type(self).__name__, name, value)
        unet: Any = parts.get(self.denoiser_part)
        if getattr(unet, "manifest", None) is None:
            raise BundleError(
                f"{type(self).__name__} needs `{self.denoiser_part}`: the {self.denoiser_part} engine of an sdrt "
                f"bundle; load the pipeline with {type(self).__name__}.from_pretrained(bundle) or pass "
                "pipe.components of a loaded one"
            )
        self.bundle: Bundle = unet.bundle
        self.manifest = unet.manifest
        self.provider: str = unet.provider
        self.xp = array_module(self.provider)
        self._check_model_type(self.bundle)
        for name in ("text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2"):
            setattr(self, name, parts.get(name))
        self.vae = parts.get(self.vae_part)
        setattr(self, self.vae_part, self.vae)
        self.unet = unet
        setattr(self, self.denoiser_part, unet)
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
        for option in set(parts) & set(LOAD_OPTIONS_WITHOUT_EFFECT):
            logger.warning(
                "from_pretrained(%s=...) is ignored: %s", option, LOAD_OPTIONS_WITHOUT_EFFECT[option]
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
        engines: dict[str, Any] = {name: open_component(bundle, name, provider) for name in names}
        check_weights(bundle, [n for n in names if n in bundle.components])  # after: engines name theirs
        if scheduler is None:
            scheduler = bundle_scheduler(bundle)
        loaded: dict[str, Any] = {name: engines.get(engine) for name, engine in ENGINE_PARTS.items()}
        if "vae_decoder" in engines or "vae_encoder" in engines:
            loaded[cls.vae_part] = Vae.from_engines(engines, bundle.manifest.vae)
        for name, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
            if encoder in engines:
                loaded[name] = cls.load_tokenizer(bundle.path / name)
        loaded |= cls.parts_from_engines(engines)
        loaded = {k: v for k, v in {**loaded, "scheduler": scheduler, **parts}.items() if k in cls.parts}
        logger.info("loaded %s (%s) from %s on %s", cls.__name__, bundle.model_type, bundle.path, provider)
        return cls(**loaded)

    @staticmethod
    def load_tokenizer(folder: Path) -> Any:
        """The tokenizer in a bundle's ``folder`` (CLIP's; LDMTextToImagePipeline reads BERT's)."""
        from sdrt.runtime.text.tokenizer import CLIPTokenizer

        return CLIPTokenizer.from_pretrained(folder)

    @classmethod
    def components_to_load(cls, bundle: Bundle) -> tuple[str, ...]:
        """The bundle components ``from_pretrained`` opens: the required ones, the optional ones it has, and
        those of the part loaders (the ControlNets)."""
        names = cls.required_components + tuple(n for n in cls.optional_components if n in bundle.components)
        return names + tuple(n for loader in cls.part_loaders for n in loader.components(bundle))

    @classmethod
    def parts_from_engines(cls, engines: dict[str, Component]) -> dict[str, Any]:
        """Parts the part loaders make of the opened engines besides the shared ones (the ControlNets)."""
        return {loader.name: loader.from_engines(engines) for loader in cls.part_loaders}

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
        vae = self.vae if self.vae_part in self.parts else None
        found = {
            engine: getattr(self, part, None) for part, engine in ENGINE_PARTS.items() if part in self.parts
        }
        found |= {"vae_decoder": getattr(vae, "decoder", None), "vae_encoder": getattr(vae, "encoder", None)}
        for loader in self.part_loaders:
            found |= loader.engines(getattr(self, loader.name, None))
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

    def call_arguments(self) -> dict[str, Any]:
        """The current call's arguments by name, defaults applied (empty outside a call)."""
        state = self._state
        return {} if state is None else state.arguments

    @property
    def interrupt(self) -> bool:
        """Set ``pipe._interrupt = True`` in a step-end callback to skip the call's remaining steps."""
        state = self._state
        return bool(state is not None and state.interrupt)

    @property
    def _interrupt(self) -> bool:
        return self.interrupt

    @_interrupt.setter
    def _interrupt(self, value: bool) -> None:
        state = self._state
        if state is not None:
            state.interrupt = bool(value)

    # diffusers' per-call properties, read from the current thread's call (None outside one)
    num_timesteps = FromCall()
    guidance_scale = FromCall()
    guidance_rescale = FromCall()
    do_classifier_free_guidance = FromCall()
    clip_skip = FromCall()
    cross_attention_kwargs = FromCall()

    @contextlib.contextmanager
    def call_state(self) -> Iterator[CallState]:
        """A fresh :class:`CallState` for the current thread while a call runs (nested calls restore); the
        engines it runs are fixed at its start (loads and unloads in other threads change later calls)."""
        previous = self._state
        with ENGINE_SWAPS:  # the engines and LoRA state the call runs, as one consistent set
            engines = current_engines(self.engines.values())
            state = CallState(copy_scheduler(self._scheduler), lora=self.lora_at_call_start())
        with engines_fixed(engines):
            self._local.state = state
            try:
                yield state
            finally:
                self._local.state = previous

    def lora_at_call_start(self) -> Any:
        """What a call needs of the LoRA state to run at its own scale (pipelines with run-time LoRA)."""
        return None

    # ---- diffusers' attributes besides the call (surface.py: what they do here) -------------------------
    @property
    def config(self) -> FrozenConfig:
        """Like diffusers' pipeline config: ``_class_name``, the bundle path, and (library, class) per part."""
        return DiffusersSurface(self).config()

    def _config_values(self) -> dict[str, Any]:
        """The pipeline's config values besides its parts (SD: ``requires_safety_checker``...)."""
        return {}

    @property
    def device(self) -> str:
        """``"cpu"`` (ONNX Runtime on the CPU, OpenVINO) or ``"cuda"`` (ONNX Runtime on CUDA, TensorRT)."""
        return DiffusersSurface(self).device()

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the UNet engine's ``sample`` input (float16 in an fp16 build)."""
        return DiffusersSurface(self).dtype()

    def to(self, *args: Any, **kwargs: Any) -> DiffusionPipeline:
        """diffusers' ``pipe.to(device, dtype)``: changes nothing (a warning when it asks for a change)."""
        DiffusersSurface(self).to(*args, **kwargs)
        return self

    def enable_attention_slicing(self, slice_size: Any = "auto") -> None:
        DiffusersSurface(self).slicing(f"enable_attention_slicing({slice_size!r})")

    def disable_attention_slicing(self) -> None:
        DiffusersSurface(self).slicing("disable_attention_slicing()")

    def enable_vae_slicing(self) -> None:
        DiffusersSurface(self).slicing("enable_vae_slicing()")

    def disable_vae_slicing(self) -> None:
        DiffusersSurface(self).slicing("disable_vae_slicing()")

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
        **options: Any,
    ) -> Any:
        """diffusers' denoising loop (``loop.denoise``): ``state`` holds ``latents`` and whatever the callback
        may read or replace; ``options``: ``noise``, ``eta``, ``after_step``, the step-end callback."""
        return loop.denoise(self, state, timesteps, num_inference_steps, predict, **options)

    # ---- sizes and outputs ----------------------------------------------------------------------
    def default_size(self) -> tuple[int, int]:
        return self.manifest.default_size

    def check_size(self, height: int, width: int) -> None:
        """Multiples of 8, inside the shape range the engines were built for (``decoding.check_size``)."""
        decoding.check_size(self, height, width)

    def decode_latents(self, latents: Any, output_type: str = "pil") -> Any:
        """``vae.decode(latents / scaling_factor (+ shift_factor))`` -> images of ``output_type``."""
        return decoding.decode_latents(self, latents, output_type)

    def to_xp(self, array: Any, dtype: Any = np.float32) -> Any:
        """An array of this pipeline's array module (host data is copied to the device once)."""
        return to_xp(self.xp, array, dtype)
