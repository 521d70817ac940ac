"""What the stages share: the paths, the device and dry-run choices, the loaded pipelines."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np


class Setup:
    """What the stages share: the paths, the device, and the loaded pipelines."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.dry = args.cpu_dry_run
        self.work = Path(args.work)
        self.out = Path(args.out)
        self.model_dir = self.work / ("tiny-sd1" if self.dry else "sd15-random")
        self.bundle = self.work / ("engine-tiny" if self.dry else "engine-sd15")
        self.size = 64 if self.dry else 512
        self.steps = args.steps or (3 if self.dry else 50)
        self.provider = "cpu" if self.dry else "cuda"
        self.torch_device = "cpu" if self.dry else "cuda"
        self.iters = args.iters or (3 if self.dry else 30)
        self.compile = not args.skip_compile
        self.sdrt: Any = None
        self.diffusers: Any = None
        import torch

        self.torch_dtype = torch.float32 if self.dry else torch.float16

    @property
    def xp(self) -> Any:
        if self.dry:
            return np
        import cupy

        return cupy

    def sync_sdrt(self) -> None:
        if not self.dry:
            import cupy

            cupy.cuda.Device().synchronize()

    def sync_torch(self) -> None:
        if not self.dry:
            import torch

            torch.cuda.synchronize()

    def latents(self) -> np.ndarray:
        lat = self.size // 8
        return np.random.default_rng(0).standard_normal((1, 4, lat, lat)).astype(np.float32)
