"""``RePaintPipeline``: inpainting with an unconditional UNet2DModel (Lugmayr et al.,
https://arxiv.org/abs/2201.09865) and ``RePaintScheduler``: denoise the whole picture, keep the noised original
where the mask is 1, and jump back up the schedule now and then (``undo_step``) so both parts harmonise.
Deprecated in diffusers, still shipped; note its mask convention: 0 (black) is generated, 1 (white) kept."""

from __future__ import annotations

from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .call_state import pipeline_call
from .checks import integer
from .outputs import ImagePipelineOutput
from .repaint_inputs import repaint_image, repaint_mask
from .unconditional import UnconditionalPipeline


class RePaintPipeline(UnconditionalPipeline):
    """``pipe(image, mask_image, num_inference_steps=250, eta=0.0, jump_length=10, jump_n_sample=10,
    generator=None, output_type="pil")``."""

    @pipeline_call
    def __call__(
        self,
        image: Any,
        mask_image: Any,
        num_inference_steps: int = 250,
        eta: float = 0.0,
        jump_length: int = 10,
        jump_n_sample: int = 10,
        generator: GeneratorLike = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """``image``: the picture(s) to inpaint, of the UNet's size; ``mask_image``: 0 where to inpaint."""
        for name, value in (("jump_length", jump_length), ("jump_n_sample", jump_n_sample)):
            if integer(name, value, f"pass e.g. {name}=10") < 1:
                raise InputError(f"`{name}` must be at least 1, got {value}")
        original = self.to_xp(repaint_image(image))
        self._check_image_shape(tuple(original.shape))
        mask = self.to_xp(repaint_mask(mask_image))
        batch_size = original.shape[0]
        check_generator_list(generator, batch_size)
        noise = NoiseSource(generator, self.xp)
        sample = noise.randn(original.shape)
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps, jump_length, jump_n_sample)
        scheduler.eta = eta
        # after the first noise diffusers draws from the first generator of a list only
        steps_noise = NoiseSource(noise.generators[0], self.xp) if noise.generators else noise
        t_last = scheduler.timesteps[0] + 1
        for t in self.progress_bar(scheduler.timesteps):
            if t < t_last:  # x_t -> x_t-1, the known part from the original
                model_output = self.unet(sample, t)
                sample = scheduler.step(model_output, t, sample, original, mask, steps_noise).prev_sample
            else:  # x_t-1 -> x_t: back up the schedule
                sample = scheduler.undo_step(sample, t_last, steps_noise)
            t_last = t
        return self.images_out(sample / 2 + 0.5, output_type, return_dict)

    def _check_image_shape(self, shape: tuple[int, ...]) -> None:
        expected = self.sample_shape(1)[1:]
        if len(shape) != 4 or shape[1:] != expected:
            raise InputError(
                f"`image` has shape {shape} as NCHW; this bundle's UNet takes {expected[0]}-channel pictures of "
                f"{expected[1]}x{expected[2]} pixels: resize the image (and its mask) to that size"
            )
