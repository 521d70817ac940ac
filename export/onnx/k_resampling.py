"""The K-diffusion UNet's resampling layers (``KDownsample2D``, ``KUpsample2D``: the latent upscaler's) as
depthwise convolutions.

diffusers builds their convolution weight at run time, a [C, C, 4, 4] zero tensor with the 4x4 kernel on its
diagonal, sized from the input's channel count; the TorchScript exporter cannot write a convolution whose weight
shape it only knows at run time. Channel i only ever reads channel i, so a grouped convolution (``groups=C``) of
the same kernel computes the same sums without the zeros; C is the layer's fixed channel count, a constant here.
"""

from __future__ import annotations

import types
from typing import Any

import torch
import torch.nn.functional as F


def _depthwise_kernel(module: Any, inputs: torch.Tensor) -> torch.Tensor:
    channels = int(inputs.shape[1])  # fixed by the layer before: a constant in the traced graph
    kernel = module.kernel.to(inputs)
    return kernel[None, None].expand(channels, 1, kernel.shape[0], kernel.shape[1]).contiguous()


def _down(self: Any, inputs: torch.Tensor) -> torch.Tensor:
    inputs = F.pad(inputs, (self.pad,) * 4, self.pad_mode)
    return F.conv2d(inputs, _depthwise_kernel(self, inputs), stride=2, groups=int(inputs.shape[1]))


def _up(self: Any, inputs: torch.Tensor) -> torch.Tensor:
    inputs = F.pad(inputs, ((self.pad + 1) // 2,) * 4, self.pad_mode)
    weight = _depthwise_kernel(self, inputs)
    return F.conv_transpose2d(inputs, weight, stride=2, padding=self.pad * 2 + 1, groups=int(inputs.shape[1]))


def install_k_resampling(model: torch.nn.Module) -> int:
    """Give every K resampling layer of ``model`` the depthwise forward; the number of layers changed."""
    changed = 0
    for module in model.modules():
        forward = {"KDownsample2D": _down, "KUpsample2D": _up}.get(type(module).__name__)
        if forward is not None:
            setattr(module, "forward", types.MethodType(forward, module))  # noqa: B010 (mypy: a method assigned)
            changed += 1
    return changed
