"""``DiTPipeline``: class-conditional generation with a diffusion transformer (Peebles & Xie,
https://arxiv.org/abs/2212.09748) on a DiT bundle: the transformer engine denoises latents guided by the null
class (id 1000), the VAE decodes them. Class names map to ids as diffusers' ``get_label_ids`` (the folder's
``id2label``, each comma-separated synonym a name)."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from typing import Any

from sdrt.runtime.errors import InputError, InputTypeError
from sdrt.runtime.random.noise import GeneratorLike, NoiseSource, check_generator_list

from .base import DiffusionPipeline
from .call_state import pipeline_call
from .outputs import ImagePipelineOutput

NULL_CLASS = 1000  # diffusers' unconditional label (the transformer's extra class-embedding row)
LABELS_FILE = "id2label.json"  # the bundle's copy of the folder's id2label


def label_table(id2label: Mapping[Any, str] | None) -> dict[str, int]:
    """diffusers' ``pipe.labels``: each comma-separated name of ``id2label`` -> its id, sorted by name."""
    labels: dict[str, int] = {}
    for key, value in (id2label or {}).items():
        for label in value.split(","):
            labels[label.strip()] = int(key)
    return dict(sorted(labels.items()))


class DiTPipeline(DiffusionPipeline):
    """``DiTPipeline(transformer, vae, scheduler, id2label=None)``; ``pipe(class_labels, guidance_scale=4.0,
    generator=None, num_inference_steps=50, output_type="pil", return_dict=True)``."""

    parts = ("transformer", "vae", "scheduler")
    denoiser_part = "transformer"
    required_components = ("transformer", "vae_decoder")
    output_types = ("pil", "np", "pt")
    transformer: Any  # the denoiser (``self.unet`` too, where the shared code reads it)

    def __init__(
        self, transformer: Any = None, vae: Any = None, scheduler: Any = None, id2label: Any = None
    ) -> None:
        super().__init__(transformer=transformer, vae=vae, scheduler=scheduler)
        if id2label is None:
            path = self.bundle.path / LABELS_FILE
            id2label = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
        self.labels = label_table(id2label)

    def get_label_ids(self, label: str | Sequence[str]) -> list[int]:
        """Class ids of ImageNet names (``pipe.labels``' keys); an unknown name is an error naming near matches."""
        names = [label] if isinstance(label, str) else list(label)
        for name in names:
            if name not in self.labels:
                near = difflib.get_close_matches(str(name), list(self.labels), n=5, cutoff=0.5)
                hint = f"near matches: {', '.join(repr(n) for n in near)}" if near else "no near match"
                known = (
                    f"{len(self.labels)} labels in pipe.labels" if self.labels else "the bundle has no labels"
                )
                raise InputError(f"class label {name!r} is not one this model knows ({hint}; {known})")
        return [self.labels[name] for name in names]

    def _class_ids(self, class_labels: Any) -> list[int]:
        values = [class_labels] if isinstance(class_labels, int | str) else list(class_labels)
        ids = [self.get_label_ids(v)[0] if isinstance(v, str) else v for v in values]
        for value in ids:
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < NULL_CLASS:
                raise InputTypeError(
                    f"`class_labels` must be class ids in 0..{NULL_CLASS - 1} (or names, see pipe.labels), got {value!r}"
                )
        if not ids:
            raise InputError("`class_labels` is empty: pass one class id per image")
        return ids

    @pipeline_call
    def __call__(
        self,
        class_labels: Sequence[int] | int | str,
        guidance_scale: float = 4.0,
        generator: GeneratorLike = None,
        num_inference_steps: int = 50,
        output_type: str = "pil",
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """One image per entry of ``class_labels``; guidance (``guidance_scale > 1``) against the null class on the
        epsilon half of the output (a model learning sigma outputs twice the latent channels)."""
        labels = self._class_ids(class_labels)
        xp, batch = self.xp, len(labels)
        config = self.transformer.config
        channels, size = int(config.in_channels), int(config.sample_size)
        check_generator_list(generator, batch)
        noise = NoiseSource(generator, xp)
        latents = noise.randn((batch, channels, size, size))
        guided = guidance_scale > 1
        class_input = labels + [NULL_CLASS] * batch if guided else labels
        scheduler = self.scheduler
        scheduler.set_timesteps(num_inference_steps)
        for t in self.progress_bar(scheduler.timesteps):
            model_input = xp.concatenate([latents, latents]) if guided else latents
            model_input = scheduler.scale_model_input(model_input, t)
            noise_pred = self.transformer(model_input, t, class_input)
            eps = noise_pred[:, :channels]
            if guided:
                cond, uncond = eps[:batch], eps[batch:]
                eps = uncond + guidance_scale * (cond - uncond)
            # both halves of diffusers' doubled batch are equal: step the first (the same with any scheduler)
            latents = scheduler.step(eps, t, latents, generator=noise).prev_sample
        return self._images(latents, output_type, return_dict)

    def _images(self, latents: Any, output_type: str, return_dict: bool) -> ImagePipelineOutput | tuple:
        images = self.decode_latents(latents, output_type)
        return ImagePipelineOutput(images) if return_dict else (images,)
