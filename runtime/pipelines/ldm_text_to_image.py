"""``LDMTextToImagePipeline``: text-to-image by the first latent diffusion model (CompVis/ldm-text2im-large-256): its
LDMBert text encoder (the bundle's ``text_encoder`` engine, fed by BERT's tokenizer) conditions a
UNet2DConditionModel, the ``vqvae`` (an AutoencoderKL) decodes. As diffusers' loop: no ``init_noise_sigma`` and no
``scale_model_input`` (so DDIM, PNDM and the other alpha schedulers are the ones that fit), guidance against the
empty prompt when ``guidance_scale != 1``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .call_state import pipeline_call
from .ldm import eta_options
from .outputs import ImagePipelineOutput

MAX_LENGTH = 77  # diffusers pads and truncates LDMBert's input to 77 tokens


class LDMTextToImagePipeline(DiffusionPipeline):
    """``LDMTextToImagePipeline(vqvae, bert, tokenizer, unet, scheduler)``; ``pipe(prompt, height=None, width=None,
    num_inference_steps=50, guidance_scale=1.0, eta=0.0, generator=None, latents=None, output_type="pil",
    return_dict=True)``."""

    parts = ("vqvae", "bert", "tokenizer", "unet", "scheduler")
    vae_part = "vqvae"
    required_components = ("text_encoder", "unet", "vae_decoder")
    output_types = ("pil", "np", "pt")
    vqvae: Any

    def __init__(
        self,
        vqvae: Any = None,
        bert: Any = None,
        tokenizer: Any = None,
        unet: Any = None,
        scheduler: Any = None,
    ) -> None:
        self.bert = bert  # before the base checks the engines: it is the text_encoder engine
        super().__init__(vqvae=vqvae, tokenizer=tokenizer, unet=unet, scheduler=scheduler)

    @staticmethod
    def load_tokenizer(folder: Path) -> Any:
        from sdrt.runtime.text.bert import BertTokenizer

        return BertTokenizer.from_pretrained(folder)

    def embed(self, prompts: list[str]) -> Any:
        """LDMBert's last hidden states of the prompts, padded and truncated to 77 tokens."""
        ids = self.tokenizer(
            prompts, padding="max_length", max_length=MAX_LENGTH, truncation=True, return_tensors="np"
        ).input_ids
        return self.bert(ids)["last_hidden_state"]

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str],
        height: int | None = None,
        width: int | None = None,
        num_inference_steps: int = 50,
        guidance_scale: float = 1.0,
        eta: float = 0.0,
        generator: GeneratorLike = None,
        latents: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """One image per prompt; ``guidance_scale`` 1 (the default) is no guidance."""
        prompts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
            raise InputTypeError(
                f"`prompt` has to be a str or a non-empty list of str, got {type(prompt).__name__}"
            )
        default_h, default_w = self.default_size()
        height, width = height or default_h, width or default_w
        self.check_size(height, width)
        batch, scale, guided = len(prompts), self.vae_scale_factor, guidance_scale != 1.0
        context = self.embed(prompts)
        if guided:
            context = self.xp.concatenate([self.embed([""] * batch), context])
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, self.xp)
        shape = (batch, int(self.unet.config.in_channels), height // scale, width // scale)
        if latents is None:
            latents = noise.randn(shape)
        else:
            latents = self.to_xp(latents)
            if tuple(latents.shape) != shape:
                raise InputError(f"`latents` have shape {tuple(latents.shape)}, expected {shape}")
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        options = eta_options(scheduler, eta, noise)
        for t in self.progress_bar(scheduler.timesteps):
            model_input = self.xp.concatenate([latents, latents]) if guided else latents
            noise_pred = self.unet(model_input, t, context)
            if guided:
                uncond, text = noise_pred[:batch], noise_pred[batch:]
                noise_pred = uncond + guidance_scale * (text - uncond)
            latents = scheduler.step(noise_pred, t, latents, **options).prev_sample
        images = self.decode_latents(latents, output_type)
        return ImagePipelineOutput(images) if return_dict else (images,)
