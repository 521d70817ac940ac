"""``StableDiffusionLatentUpscalePipeline``: 2x upscaling in latent space (stabilityai/sd-x2-latent-upscaler).

As diffusers: the text encoder's unnormalised last hidden states (``hidden_states[-1]``) condition the UNet's
cross-attention, its pooled output (after 64 ones and 64 zeros, the noise-level embedding of level 0) is the UNet's
``timestep_cond``; the image's latents (a picture is encoded by the VAE, one draw of its distribution; 4-channel
latents pass as they are) are nearest-upsampled 2x beside the latents; the K-diffusion UNet takes ``log(sigma) / 4``
as its timestep and its output (the first 4 of 5 channels) is preconditioned into a sample prediction
(``x / (sigma^2 + 1) + sigma / sqrt(sigma^2 + 1) * out``). EulerDiscreteScheduler (``prediction_type="sample"``)
is the scheduler it is made for: the loop reads ``scheduler.sigmas``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from sdrt.runtime.errors import BundleError, InputError, InputTypeError
from sdrt.runtime.images import ImageInput, nearest_resize, preprocess_image
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .call_state import pipeline_call, take_callback
from .image_latents import encode_image
from .outputs import ImagePipelineOutput
from .prompts import PromptEmbeds

NOISE_LEVEL_EMBED = 64  # diffusers' ones and zeros before the pooled embedding, for noise level 0


class StableDiffusionLatentUpscalePipeline(DiffusionPipeline):
    """``StableDiffusionLatentUpscalePipeline(vae, text_encoder, tokenizer, unet, scheduler)``;
    ``pipe(prompt, image=low_res_image_or_latents)``: images 2x the input's (in pixels: 16x its latents')."""

    parts = ("vae", "text_encoder", "tokenizer", "unet", "scheduler")
    required_components = ("text_encoder", "unet", "vae_decoder")
    _callback_tensor_inputs: tuple[str, ...] = ("latents",)

    def __init__(
        self,
        vae: Any = None,
        text_encoder: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        scheduler: Any = None,
    ) -> None:
        super().__init__(
            vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler
        )
        outputs = getattr(getattr(self.text_encoder, "record", None), "outputs", {})
        if "pooler_output" not in outputs:
            raise BundleError(
                f"{self.bundle.path}'s text_encoder engine gives no pooled output (an older sdrt built it); rebuild it "
                "with build-engine MODEL -o BUNDLE --force"
            )

    def encode_text(self, prompts: list[str]) -> tuple[Any, Any]:
        """(``hidden_states[-1]``, ``pooler_output``) of the prompts, padded and truncated to the tokenizer's
        length."""
        ids = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="np",
        ).input_ids
        out = self.text_encoder(ids)
        return self.xp.asarray(out["hidden_state_unnormed"]), self.xp.asarray(out["pooler_output"])

    def encode_prompt(
        self,
        prompt: str | list[str] | None,
        do_classifier_free_guidance: bool,
        negative_prompt: str | list[str] | None = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
    ) -> tuple[Any, Any, Any, Any]:
        """diffusers' ``encode_prompt``: (prompt_embeds, negative_prompt_embeds, pooled_prompt_embeds,
        negative_pooled_prompt_embeds); the negatives None without guidance."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if prompt_embeds is None or pooled_prompt_embeds is None:
            if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
                raise InputTypeError(
                    f"`prompt` has to be of type `str` or `list` but is {type(prompt).__name__}"
                )
            prompt_embeds, pooled_prompt_embeds = self.encode_text(prompts)
        prompt_embeds, pooled_prompt_embeds = self.to_xp(prompt_embeds), self.to_xp(pooled_prompt_embeds)
        if not do_classifier_free_guidance:
            return prompt_embeds, None, pooled_prompt_embeds, None
        if negative_prompt_embeds is None or negative_pooled_prompt_embeds is None:
            negative_prompt_embeds, negative_pooled_prompt_embeds = self.encode_text(
                negative_prompts(prompt, negative_prompt, prompt_embeds.shape[0])
            )
        return (
            prompt_embeds,
            self.to_xp(negative_prompt_embeds),
            pooled_prompt_embeds,
            self.to_xp(negative_pooled_prompt_embeds),
        )

    def image_latents(self, image: ImageInput, batch: int, noise: NoiseSource) -> Any:
        """The image's latents: a picture encoded by the VAE (its size floored to the VAE's grid, bicubic), latents
        (a torch tensor, or sdrt's NCHW arrays of ``output_type="latent"``) as they are."""
        if image is None:
            raise InputError(
                "`image` input cannot be undefined: the upscaler starts from an image or its latents"
            )
        channels = int(self.vae.config.latent_channels)
        if (
            hasattr(image, "shape")
            and hasattr(image, "ndim")
            and image.ndim == 4
            and image.shape[1] == channels
        ):
            pixels = np.asarray(image.get() if hasattr(image, "get") else image, dtype=np.float32)
        else:
            pixels = preprocess_image(
                image,
                scale_factor=self.vae_scale_factor,
                latent_channels=channels,
                resample=Image.Resampling.BICUBIC,
            )
        if pixels.shape[0] != batch:
            raise InputError(
                f"`prompt` has batch size {batch} and `image` has batch size {pixels.shape[0]}; pass one image per prompt"
            )
        height, width = (n * 2 * self.vae_scale_factor for n in pixels.shape[2:])
        if pixels.shape[1] != channels:
            height, width = height // self.vae_scale_factor, width // self.vae_scale_factor
        try:
            self.check_size(height, width)
        except InputError as error:
            raise InputError(
                f"`image` of shape {tuple(pixels.shape)} makes a {width}x{height} output: {error}"
            ) from None
        return encode_image(self.vae, self.to_xp(pixels), noise)

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        image: ImageInput = None,
        num_inference_steps: int = 75,
        guidance_scale: float = 9.0,
        negative_prompt: str | list[str] | None = None,
        generator: GeneratorLike = None,
        latents: Any = None,
        prompt_embeds: Any = None,
        negative_prompt_embeds: Any = None,
        pooled_prompt_embeds: Any = None,
        negative_pooled_prompt_embeds: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback: Callable[[int, int, Any], None] | None = None,
        callback_steps: int = 1,
    ) -> ImagePipelineOutput | tuple:
        """diffusers' arguments and defaults; one image per prompt. ``guidance_scale`` 0 encodes the empty prompt
        (as diffusers); above 1 guides against ``negative_prompt``."""
        take_callback(self._state, callback, callback_steps)
        check_prompt_arguments(
            prompt, prompt_embeds, pooled_prompt_embeds, negative_prompt, negative_prompt_embeds
        )
        check_pooled(negative_prompt_embeds, negative_pooled_prompt_embeds)
        batch = (
            (1 if isinstance(prompt, str) else len(prompt))
            if prompt is not None
            else int(prompt_embeds.shape[0])
        )
        guided = guidance_scale > 1.0
        if guidance_scale == 0:
            prompt = [""] * batch
        embeds = self.encode_prompt(
            prompt,
            guided,
            negative_prompt,
            prompt_embeds,
            negative_prompt_embeds,
            pooled_prompt_embeds,
            negative_pooled_prompt_embeds,
        )
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, self.xp)
        cond = self.image_latents(image, batch, noise)
        latents = self.denoise_latents(
            PromptEmbeds(embeds[0], embeds[1]), embeds[2], embeds[3], cond, noise, latents
        )
        images = self.decode_latents(latents, output_type)
        return ImagePipelineOutput(images) if return_dict else (images,)

    def denoise_latents(
        self,
        embeds: PromptEmbeds,
        pooled: Any,
        negative_pooled: Any,
        image: Any,
        noise: NoiseSource,
        latents: Any,
    ) -> Any:
        """diffusers' loop over the image latents ``image`` (upsampled 2x here) from noise (or ``latents``)."""
        xp, scheduler, guided = self.xp, self.scheduler, embeds.negative_prompt_embeds is not None
        prompt_embeds = embeds.prompt_embeds
        if guided:
            prompt_embeds = xp.concatenate([embeds.negative_prompt_embeds, prompt_embeds])
            pooled = xp.concatenate([negative_pooled, pooled])
            image = xp.concatenate([image, image])
        # noise level 0: the image scaled by (0^2 + 1)^-0.5 = 1; its embedding 64 ones, 64 zeros
        image_cond = nearest_resize(image, image.shape[2] * 2, image.shape[3] * 2)
        rows = pooled.shape[0]
        level = xp.concatenate(
            [xp.ones((rows, NOISE_LEVEL_EMBED), xp.float32), xp.zeros((rows, NOISE_LEVEL_EMBED), xp.float32)],
            axis=1,
        )
        timestep_cond = xp.concatenate([level, pooled], axis=1)
        scheduler.set_timesteps(self.call_arguments()["num_inference_steps"])
        latents = self.start_latents(
            prompt_embeds.shape[0] // (2 if guided else 1), image_cond.shape, noise, latents
        )
        sigmas = np.asarray(
            scheduler.sigmas.get() if hasattr(scheduler.sigmas, "get") else scheduler.sigmas, np.float32
        )
        steps = iter(range(len(sigmas)))

        def predict(state: dict[str, Any], t: Any) -> Any:
            sigma = sigmas[next(steps)]
            model_input = xp.concatenate([state["latents"]] * 2) if guided else state["latents"]
            scaled = xp.concatenate([scheduler.scale_model_input(model_input, t), image_cond], axis=1)
            timestep = np.float32(np.log(sigma) * np.float32(0.25))
            out = self.unet(scaled, timestep, prompt_embeds, timestep_cond=timestep_cond)[:, :-1]
            inv_sigma = np.float32(1) / (sigma**2 + np.float32(1))
            pred = inv_sigma * model_input + scheduler.scale_model_input(sigma, t) * out
            if not guided:
                return pred
            uncond, text = pred[: pred.shape[0] // 2], pred[pred.shape[0] // 2 :]
            return uncond + self.call_arguments()["guidance_scale"] * (text - uncond)

        state = {"latents": latents}
        steps_count = self.call_arguments()["num_inference_steps"]
        return self.denoise(state, scheduler.timesteps, steps_count, predict, noise=None)

    def start_latents(
        self, batch: int, image_shape: tuple[int, ...], noise: NoiseSource, latents: Any
    ) -> Any:
        shape = (batch, int(self.vae.config.latent_channels), image_shape[2], image_shape[3])
        if latents is None:
            latents = noise.randn(shape)
        else:
            latents = self.to_xp(latents)
            if tuple(latents.shape) != shape:
                raise InputError(f"Unexpected latents shape, got {tuple(latents.shape)}, expected {shape}")
        return latents * self.scheduler.init_noise_sigma


def negative_prompts(prompt: Any, negative_prompt: Any, batch: int) -> list[str]:
    """diffusers' uncond tokens: empty prompts, the negative prompt, or one per prompt."""
    if negative_prompt is None:
        return [""] * batch
    if prompt is not None and type(prompt) is not type(negative_prompt):
        raise InputTypeError(
            f"`negative_prompt` should be the same type to `prompt`, but got {type(negative_prompt)} != {type(prompt)}."
        )
    if isinstance(negative_prompt, str):
        return [negative_prompt]
    if len(negative_prompt) != batch:
        raise InputError(
            f"`negative_prompt` has batch size {len(negative_prompt)}, but `prompt` has batch size {batch}; pass one "
            "negative prompt per prompt"
        )
    return list(negative_prompt)


def check_prompt_arguments(
    prompt: Any,
    prompt_embeds: Any,
    pooled_prompt_embeds: Any,
    negative_prompt: Any,
    negative_prompt_embeds: Any,
) -> None:
    """diffusers' ``check_inputs`` for the prompts."""
    if prompt is not None and prompt_embeds is not None:
        raise InputError("Cannot forward both `prompt` and `prompt_embeds`; pass one of the two")
    if prompt is None and prompt_embeds is None:
        raise InputError("Provide either `prompt` or `prompt_embeds`. Cannot leave both undefined.")
    if prompt is not None and not isinstance(prompt, str | list):
        raise InputTypeError(f"`prompt` has to be of type `str` or `list` but is {type(prompt)}")
    if negative_prompt is not None and negative_prompt_embeds is not None:
        raise InputError(
            "Cannot forward both `negative_prompt` and `negative_prompt_embeds`; pass one of the two"
        )
    if prompt_embeds is not None and negative_prompt_embeds is not None:
        if tuple(prompt_embeds.shape) != tuple(negative_prompt_embeds.shape):
            raise InputError(
                "`prompt_embeds` and `negative_prompt_embeds` must have the same shape when passed directly, but got: "
                f"{tuple(prompt_embeds.shape)} != {tuple(negative_prompt_embeds.shape)}."
            )
    if prompt_embeds is not None and pooled_prompt_embeds is None:
        raise InputError(
            "If `prompt_embeds` are provided, `pooled_prompt_embeds` also have to be passed (from the same text encoder)"
        )


def check_pooled(negative_prompt_embeds: Any, negative_pooled_prompt_embeds: Any) -> None:
    if negative_prompt_embeds is not None and negative_pooled_prompt_embeds is None:
        raise InputError(
            "If `negative_prompt_embeds` are provided, `negative_pooled_prompt_embeds` also have to be passed (from the "
            "same text encoder)"
        )
