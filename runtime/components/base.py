"""The building blocks of a pipeline, each wrapping one engine: ``pipe.unet``, ``pipe.vae``, text encoders.

They take and return arrays of the engine's array module (NumPy for ORT CPU, CuPy on GPUs), cast
inputs to the dtypes the engine was built with and outputs to float32, and split a batch larger than
the engine's batch range into several runs. So a user can write their own loop as in diffusers::

    noise_pred = pipe.unet(latents, t, encoder_hidden_states=embeds)
    image = pipe.vae.decode(latents / pipe.vae.config.scaling_factor)
"""

from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np


class Component:
    """One engine of the bundle, with its manifest record (I/O dtypes, dims ranges)."""

    def __init__(self, name: str, engine: Any, record: Mapping[str, Any], xp: ModuleType) -> None:
        self.name = name
        self.engine = engine
        self.record = dict(record)
        self.xp = xp
        self._dtypes = {
            k: np.dtype(v.get("dtype", "float32")) for k, v in self.record.get("inputs", {}).items()
        }
        batch = (self.record.get("dims") or {}).get("batch")
        self.batch_range: tuple[int, int] | None = (int(batch[0]), int(batch[1])) if batch else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {type(self.engine).__name__})"

    def run(self, **feeds: Any) -> dict[str, Any]:
        """Run the engine on named inputs (batch split into chunks the engine accepts); float32 outputs."""
        feeds = {k: self._cast(k, v) for k, v in feeds.items()}
        batch = next(iter(feeds.values())).shape[0]
        if self.batch_range is None or batch <= self.batch_range[1]:
            return self._run_once(feeds)
        step = self.batch_range[1]
        chunks = [
            self._run_once({k: v[start : start + step] for k, v in feeds.items()})
            for start in range(0, batch, step)
        ]
        return {k: self.xp.concatenate([c[k] for c in chunks], axis=0) for k in chunks[0]}

    def _check_min_batch(self, batch: int) -> None:
        if self.batch_range is not None and 0 < batch < self.batch_range[0]:
            raise ValueError(
                f"{self.name}: a batch of {batch} is below the engine's batch range "
                f"{self.batch_range[0]}..{self.batch_range[1]}; rebuild it with build-engine --batch {batch}"
            )

    def _run_once(self, feeds: dict[str, Any]) -> dict[str, Any]:
        batch = next(iter(feeds.values())).shape[0]
        self._check_min_batch(batch)
        outputs = self.engine.run(feeds)
        # engines may hand back their own buffers (TensorRT): copy, so the next run cannot overwrite them
        return {k: self.xp.array(v, dtype=np.float32, copy=True) for k, v in outputs.items()}

    def _cast(self, name: str, value: Any) -> Any:
        dtype = self._dtypes.get(name)
        value = self.xp.asarray(value)
        if dtype is not None and value.dtype != dtype:
            value = value.astype(dtype)
        return self.xp.ascontiguousarray(value)


class UNet(Component):
    """``unet(sample, timestep, encoder_hidden_states, text_embeds=, time_ids=)`` -> the model output."""

    def __init__(
        self, name: str, engine: Any, record: Mapping[str, Any], xp: ModuleType, config: dict
    ) -> None:
        super().__init__(name, engine, record, xp)
        self.config = SimpleNamespace(**config)

    def __call__(
        self,
        sample: Any,
        timestep: Any,
        encoder_hidden_states: Any = None,
        *,
        text_embeds: Any = None,
        time_ids: Any = None,
        added_cond_kwargs: Mapping[str, Any] | None = None,
    ) -> Any:
        sample = self.xp.asarray(sample)
        feeds: dict[str, Any] = {"sample": sample, "timestep": self._timesteps(timestep, sample.shape[0])}
        if added_cond_kwargs:
            text_embeds = added_cond_kwargs.get("text_embeds", text_embeds)
            time_ids = added_cond_kwargs.get("time_ids", time_ids)
        for key, value in (
            ("encoder_hidden_states", encoder_hidden_states),
            ("text_embeds", text_embeds),
            ("time_ids", time_ids),
        ):
            if key in self._dtypes:
                if value is None:
                    raise ValueError(f"the {self.name} engine needs `{key}`")
                feeds[key] = value
        return self.run(**feeds)["noise_pred"]

    def _timesteps(self, timestep: Any, batch: int) -> Any:
        """A scalar (or one-element) timestep broadcast to float32 [batch], as diffusers' UNet does."""
        if hasattr(timestep, "get"):
            timestep = timestep.get()
        t = np.asarray(timestep, dtype=np.float32).reshape(-1)
        if t.size == 1:
            t = np.full((batch,), t[0], dtype=np.float32)
        elif t.size != batch:
            raise ValueError(f"timestep has {t.size} values for a batch of {batch}")
        return self.xp.asarray(t)


class TextEncoder(Component):
    """``text_encoder(input_ids)`` -> dict with ``last_hidden_state`` (and ``penultimate_hidden_state``,
    ``text_embeds`` where the engine has them)."""

    def __call__(self, input_ids: Any) -> dict[str, Any]:
        return self.run(input_ids=self.xp.asarray(np.asarray(input_ids, dtype=np.int32)))


class LatentDistribution:
    """diffusers' ``DiagonalGaussianDistribution`` over the VAE encoder's moments (mean, logvar)."""

    def __init__(self, moments: Any, xp: ModuleType) -> None:
        half = moments.shape[1] // 2
        self.mean, self.logvar = moments[:, :half], xp.clip(moments[:, half:], -30.0, 20.0)
        self.std = xp.exp(0.5 * self.logvar)

    def sample(self, generator: Any) -> Any:
        """mean + std * noise, the noise drawn once from ``generator.standard_normal``."""
        noise = generator.standard_normal(size=self.mean.shape)
        return self.mean + self.std * noise.astype(self.mean.dtype)

    def mode(self) -> Any:
        return self.mean


class Vae:
    """``vae.encode(image)`` -> :class:`LatentDistribution`; ``vae.decode(latent)`` -> image in [-1, 1].

    ``decode`` takes latents already divided by ``vae.config.scaling_factor`` (as diffusers' ``decode``).
    """

    def __init__(self, decoder: Component | None, encoder: Component | None, config: dict) -> None:
        self.decoder = decoder
        self.encoder = encoder
        self.config = SimpleNamespace(**config)

    def decode(self, latent: Any) -> Any:
        if self.decoder is None:
            raise ValueError("this bundle has no vae_decoder engine; rebuild it with build-engine")
        return self.decoder.run(latent=latent)["image"]

    def encode(self, image: Any) -> LatentDistribution:
        if self.encoder is None:
            raise ValueError(
                "this bundle has no vae_encoder engine (needed for img2img and inpainting); rebuild it with "
                "build-engine including the vae_encoder component"
            )
        return LatentDistribution(self.encoder.run(image=image)["moments"], self.encoder.xp)
