"""The pipeline tests' shared bundles beyond ``tiny``'s: built once per session, on first use."""

from __future__ import annotations

from pathlib import Path

import pytest

SDXL_CONTROLNET_OPTIONS = [
    "--components",
    "text_encoder",
    "text_encoder_2",
    "unet",
    "vae_encoder",
    "vae_decoder",
    "controlnet",
]


@pytest.fixture(scope="session")
def sdxl_controlnet(model_folders, tmp_path_factory) -> tuple[Path, Path, list[Path]]:
    """(the tiny SDXL folder, a bundle of it with two tiny SDXL ControlNets, the ControlNet folders)."""
    from tests.parity import controlnet_bundle

    model = model_folders("sdxl")
    bundle, nets = controlnet_bundle(
        tmp_path_factory.mktemp("sdxl_controlnet"), model, extra=SDXL_CONTROLNET_OPTIONS
    )
    return model, bundle, nets
