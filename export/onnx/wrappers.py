"""Small modules that give each component the fixed I/O names and plain-tensor outputs of DESIGN.md."""

from __future__ import annotations

import torch
from torch import nn


class TextEncoderWrapper(nn.Module):
    """input_ids int32 -> last_hidden_state [, penultimate_hidden_state] [, text_embeds]."""

    def __init__(self, model: nn.Module, *, penultimate: bool, projection: bool):
        super().__init__()
        self.model = model
        self.penultimate = penultimate
        self.projection = projection

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(input_ids.to(torch.int64), output_hidden_states=self.penultimate, return_dict=True)
        results = [out.last_hidden_state]
        if self.penultimate:
            results.append(out.hidden_states[-2])
        if self.projection:
            results.append(out.text_embeds)
        return tuple(results)


class UNetWrapper(nn.Module):
    """sample, timestep, encoder_hidden_states [, text_embeds, time_ids] -> noise_pred."""

    def __init__(self, unet: nn.Module, *, text_time: bool):
        super().__init__()
        self.unet = unet
        self.text_time = text_time

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        text_embeds: torch.Tensor | None = None,
        time_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        added = {"text_embeds": text_embeds, "time_ids": time_ids} if self.text_time else None
        return self.unet(sample, timestep, encoder_hidden_states, added_cond_kwargs=added, return_dict=False)[
            0
        ]


class UncondUNetWrapper(nn.Module):
    """sample, timestep -> noise_pred (UNet2DModel)."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
        return self.unet(sample, timestep, return_dict=False)[0]


class VaeEncoderWrapper(nn.Module):
    """image in [-1, 1] -> moments (mean and logvar, concatenated on channels)."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        moments = self.vae.encoder(image)
        if getattr(self.vae, "quant_conv", None) is not None:
            moments = self.vae.quant_conv(moments)
        return moments


class VaeDecoderWrapper(nn.Module):
    """latent (already divided by the scaling factor) -> image in about [-1, 1]."""

    def __init__(self, vae: nn.Module):
        super().__init__()
        self.vae = vae

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.vae.decode(latent, return_dict=False)[0]
