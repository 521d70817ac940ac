"""``DiffusionPipeline``: what every sdrt pipeline shares.

Loading a bundle (manifest, one engine per component for the chosen provider, the scheduler from
``scheduler/scheduler_config.json``, the tokenizers), the progress bar, size checks against the
engines' shape ranges, the denoising loop's bookkeeping (``callback_on_step_end``, ``interrupt``,
progress updates as diffusers counts them), VAE decoding and the output types.

``DiffusionPipeline.from_pretrained(bundle)`` picks the pipeline class from the manifest's model type;
``StableDiffusionPipeline.from_pretrained(bundle)`` etc. load that class (when the bundle fits it).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.bundle.bundle import Bundle, open_bundle
from sdrt.runtime.components import Component, Vae, open_component
from sdrt.runtime.engines.open import array_module, resolve_provider
from sdrt.runtime.errors import BundleError, InputError
from sdrt.runtime.images import postprocess

from .arrays import to_xp
from .timesteps import step_kwargs

logger = logging.getLogger(__name__)


class DiffusionPipeline:
    """Base class of the pipelines; ``DiffusionPipeline.from_pretrained`` dispatches on the model type."""

    #: components a pipeline needs, and those it uses when the bundle has them
    required_components: tuple[str, ...] = ()
    optional_components: tuple[str, ...] = ()
    #: manifest model types the pipeline runs
    model_types: tuple[str, ...] = ()
    _callback_tensor_inputs: tuple[str, ...] = ("latents",)

    def __init__(
        self,
        bundle: Bundle,
        provider: str,
        components: dict[str, Component],
        scheduler: Any,
        tokenizer: Any = None,
        tokenizer_2: Any = None,
    ) -> None:
        self.bundle = bundle
        self.manifest = bundle.manifest
        self.provider = provider
        self.xp = array_module(provider)
        self.scheduler = scheduler
        self.tokenizer = tokenizer
        self.tokenizer_2 = tokenizer_2
        self._components = dict(components)
        self.vae_scale_factor = self.manifest.vae_scale_factor
        self.unet = components.get("unet")
        self.text_encoder = components.get("text_encoder")
        self.text_encoder_2 = components.get("text_encoder_2")
        self.vae = Vae(components.get("vae_decoder"), components.get("vae_encoder"), self.manifest.vae)
        self._progress_bar_config: dict[str, Any] = {}
        self._interrupt = False

    # ---- loading -------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, bundle_dir: str | os.PathLike[str], provider: str = "auto", scheduler: Any = None
    ) -> DiffusionPipeline:
        """Load the engines of ``bundle_dir`` (built by build-engine) for ``provider``.

        ``provider``: ``"cpu"``, ``"cuda"``, ``"tensorrt"`` or ``"auto"`` (the best one installed).
        """
        bundle = open_bundle(bundle_dir)
        if cls is DiffusionPipeline:
            from .auto import pipeline_class_for

            cls = pipeline_class_for(bundle)
        cls._check_model_type(bundle)
        names = cls.required_components + tuple(n for n in cls.optional_components if n in bundle.components)
        bundle.require(cls.required_components, cls.__name__)
        provider = resolve_provider(provider, bundle, names)
        components = {name: open_component(bundle, name, provider) for name in names}
        if scheduler is None:
            from sdrt.schedulers import scheduler_from_config

            scheduler = scheduler_from_config(bundle.path / "scheduler")
        tokenizers = {}
        for name, encoder in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2")):
            if encoder in components:
                from sdrt.runtime.text.tokenizer import CLIPTokenizer

                tokenizers[name] = CLIPTokenizer.from_pretrained(bundle.path / name)
        logger.info("loaded %s (%s) from %s on %s", cls.__name__, bundle.model_type, bundle.path, provider)
        return cls(bundle, provider, components, scheduler, **tokenizers)

    @classmethod
    def from_pipe(cls, pipe: DiffusionPipeline) -> DiffusionPipeline:
        """This pipeline class over another pipeline's engines, scheduler and tokenizers (nothing reloaded)."""
        cls._check_model_type(pipe.bundle)
        missing = [n for n in cls.required_components if n not in pipe.components]
        if missing:
            raise BundleError(
                f"{cls.__name__} needs {', '.join(missing)}, which the {type(pipe).__name__} did not load; "
                f"use {cls.__name__}.from_pretrained({str(pipe.bundle.path)!r})"
            )
        return cls(
            pipe.bundle, pipe.provider, pipe.components, pipe.scheduler, pipe.tokenizer, pipe.tokenizer_2
        )

    @classmethod
    def _check_model_type(cls, bundle: Bundle) -> None:
        if cls.model_types and bundle.model_type not in cls.model_types:
            raise BundleError(
                f"{bundle.path} holds a {bundle.model_type!r} model, which {cls.__name__} does not run (it runs "
                f"{', '.join(cls.model_types)}); load it with DiffusionPipeline.from_pretrained"
            )

    @property
    def components(self) -> dict[str, Component]:
        return dict(self._components)

    # ---- progress and loop bookkeeping ----------------------------------------------------------
    def set_progress_bar_config(self, **kwargs: Any) -> None:
        """Options for tqdm, e.g. ``disable=True``."""
        self._progress_bar_config = kwargs

    def progress_bar(self, iterable: Any = None, total: int | None = None) -> Any:
        from tqdm.auto import tqdm

        return tqdm(iterable, total=total, **self._progress_bar_config)

    @property
    def interrupt(self) -> bool:
        return self._interrupt

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
        """diffusers' denoising loop: predict, ``scheduler.step``, ``after_step``, callback, progress.

        ``state`` holds ``latents`` and whatever the callback may read or replace.
        """
        kwargs = step_kwargs(self.scheduler, noise, eta)
        order = self.scheduler.order
        num_warmup_steps = len(timesteps) - num_inference_steps * order
        self._num_timesteps = len(timesteps)
        self._interrupt = False
        with self.progress_bar(total=num_inference_steps) as bar:
            for i, t in enumerate(timesteps):
                if self.interrupt:
                    continue
                model_output = predict(state, t)
                state["latents"] = self.scheduler.step(
                    model_output, t, state["latents"], **kwargs
                ).prev_sample
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
        """``vae.decode(latents / scaling_factor (+ shift_factor))`` -> images of ``output_type``."""
        if output_type == "latent":
            return latents
        if output_type not in ("pil", "np"):
            raise InputError(f"output_type must be 'pil', 'np' or 'latent', got {output_type!r}")
        latents = latents / self.vae.config.scaling_factor
        if self.vae.config.shift_factor is not None:
            latents = latents + self.vae.config.shift_factor
        return postprocess(self.vae.decode(latents), output_type)

    def to_xp(self, array: Any, dtype: Any = np.float32) -> Any:
        """An array of this pipeline's array module (host data is copied to the device once)."""
        return to_xp(self.xp, array, dtype)
