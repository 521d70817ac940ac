"""Tiny LoRA files made with PEFT on the tiny SD 1.x model, saved as diffusers saves them and in kohya's
layout (diffusers' ``convert_state_dict_to_kohya``): the inputs of the build-time and run-time LoRA tests."""

from __future__ import annotations

import diffusers
import torch

UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]
CONV_TARGETS = [*UNET_TARGETS, "proj_in", "conv1"]  # Conv2d layers too: 1x1 and 3x3 (LoCon)


def lora_state(model_dir, seed: int, unet_targets: list[str] = UNET_TARGETS, rank: int = 4) -> dict:
    """A random LoRA (``rank``) on the UNet's attention and the text encoder's, keys as diffusers saves them."""
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    pipe = diffusers.StableDiffusionPipeline.from_pretrained(model_dir)
    unet_config = LoraConfig(r=rank, lora_alpha=rank, target_modules=unet_targets)
    pipe.unet.add_adapter(unet_config)
    text_config = LoraConfig(r=rank, lora_alpha=rank, target_modules=TEXT_TARGETS)
    inject_adapter_in_model(text_config, pipe.text_encoder)
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for prefix, module in (("unet", pipe.unet), ("text_encoder", pipe.text_encoder)):
        for key, value in get_peft_model_state_dict(module).items():
            state[f"{prefix}.{key}"] = torch.randn(value.shape, generator=generator) * 0.3
    return state


def diffusers_lora_file(tmp_path, model_dir, seed: int, *, alpha: int | None = None, **targets):
    """``pytorch_lora_weights.safetensors`` as diffusers' ``save_lora_weights`` writes it; ``alpha``: PEFT's
    ``lora_alpha`` in the file's adapter metadata (else none: alpha = rank)."""
    state = lora_state(model_dir, seed, **targets)
    folder = tmp_path / f"lora-{seed}-{alpha}"
    metadata = {}
    if alpha is not None:
        for part, modules in (
            ("unet", targets.get("unet_targets", UNET_TARGETS)),
            ("text_encoder", TEXT_TARGETS),
        ):
            metadata[f"{part}_lora_adapter_metadata"] = {
                "r": 4,
                "lora_alpha": alpha,
                "target_modules": modules,
            }
    diffusers.StableDiffusionPipeline.save_lora_weights(
        folder,
        unet_lora_layers={k[5:]: v for k, v in state.items() if k.startswith("unet.")},
        text_encoder_lora_layers={k[13:]: v for k, v in state.items() if k.startswith("text_encoder.")},
        **metadata,
    )
    return folder / "pytorch_lora_weights.safetensors"


def kohya_lora_file(tmp_path, model_dir, seed: int, *, alpha: int | None = None, **targets):
    """The same LoRA in kohya's layout (``lora_unet_...lora_down.weight``, ``.alpha``: ``alpha`` or the rank;
    ``rank=`` another rank than 4)."""
    from diffusers.utils import convert_state_dict_to_kohya
    from safetensors.torch import save_file

    path = tmp_path / f"kohya-{seed}-{alpha}-{targets.get('rank', 4)}.safetensors"
    state = convert_state_dict_to_kohya(lora_state(model_dir, seed, **targets))
    if alpha is not None:
        state = {k: torch.tensor(float(alpha)) if k.endswith(".alpha") else v for k, v in state.items()}
    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path
