"""``ConsistencyModelPipeline``: one- or few-step sampling of a consistency model (Song et al.,
https://arxiv.org/abs/2303.01469, Algorithm 1) with ``CMStochasticIterativeScheduler`` on a UNet2DModel bundle.

A class-conditional UNet (``num_class_embeds``: the ImageNet 64 models) takes ``class_labels``, an int or a list
of ids; none given, random ids are drawn (diffusers draws them from torch's global generator, sdrt from the seed
where ``generator`` is an int). A UNet without class embeddings ignores them, as in diffusers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike

from .call_state import pipeline_call
from .checks import integer
from .outputs import ImagePipelineOutput
from .unconditional import UnconditionalPipeline


class ConsistencyModelPipeline(UnconditionalPipeline):
    """``pipe(batch_size=1, class_labels=None, num_inference_steps=1, timesteps=None, generator=None,
    latents=None, output_type="pil", callback=None, callback_steps=1)``."""

    @pipeline_call
    def __call__(
        self,
        batch_size: int = 1,
        class_labels: Any = None,
        num_inference_steps: int = 1,
        timesteps: Sequence[int] | None = None,
        generator: GeneratorLike = None,
        latents: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, Any, Any], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple:
        """``timesteps``: custom integer training steps (descending) instead of ``num_inference_steps``."""
        if integer("callback_steps", callback_steps, "pass e.g. callback_steps=1") < 1:
            raise InputError(f"`callback_steps` has to be a positive integer but is {callback_steps}")
        if callback is not None and not callable(callback):
            raise InputError(f"`callback` must be a function (step, timestep, sample), got {callback!r}")
        first, noise = self.first_noise(batch_size, generator, latents)
        labels = self.prepare_class_labels(batch_size, generator, class_labels)
        scheduler = self.scheduler
        sample = first * np.float32(scheduler.init_noise_sigma)
        try:
            if timesteps is not None:
                scheduler.set_timesteps(timesteps=list(timesteps))
            else:
                scheduler.set_timesteps(num_inference_steps)
        except ValueError as error:  # the scheduler's word on custom timesteps
            raise InputError(f"`timesteps`: {error}") from None
        steps = scheduler.timesteps
        with self.progress_bar(total=len(steps)) as bar:
            for i, t in enumerate(steps):
                scaled = scheduler.scale_model_input(sample, t)
                sample = scheduler.step(
                    self.unet(scaled, t, class_labels=labels), t, sample, generator=noise
                ).prev_sample
                bar.update()
                if callback is not None and i % callback_steps == 0:
                    callback(i, t, sample)
        return self.images_out(sample / 2 + 0.5, output_type, return_dict)

    def prepare_class_labels(self, batch_size: int, generator: GeneratorLike, class_labels: Any) -> Any:
        """The UNet's int64 class ids for the batch, or None for a UNet without class embeddings."""
        classes = self.unet.config.num_class_embeds
        if classes is None:
            return None
        if class_labels is None:
            seed = generator if isinstance(generator, int) else None
            return np.random.default_rng(seed).integers(0, classes, size=(batch_size,))
        if isinstance(class_labels, int) and batch_size != 1:
            raise InputError(
                f"`class_labels` is one int but batch_size is {batch_size}: pass one id per image"
            )
        labels = np.asarray(class_labels.get() if hasattr(class_labels, "get") else class_labels).reshape(-1)
        if labels.size != batch_size or labels.dtype.kind not in "iu":
            raise InputError(
                f"`class_labels` {class_labels!r}: pass batch_size ({batch_size}) integer class ids"
            )
        if labels.min() < 0 or labels.max() >= classes:
            raise InputError(f"`class_labels` {labels.tolist()}: this model's classes are 0..{classes - 1}")
        return labels.astype(np.int64)
