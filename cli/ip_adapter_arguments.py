"""``sdrt generate --ip-adapter-image/--ip-adapter-scale``: a text-to-image call's IP-Adapter image (a bundle built
with build-engine --ip-adapter) and the scale set on the pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError

from .task_choice import ImageInputs


def add_ip_adapter_flags(gen: argparse.ArgumentParser) -> None:
    gen.add_argument(
        "--ip-adapter-image",
        type=Path,
        help="image prompt for a bundle built with build-engine --ip-adapter (text-to-image: ip_adapter_image)",
    )
    gen.add_argument(
        "--ip-adapter-scale",
        type=float,
        help="the IP-Adapter's scale, every layer (set_ip_adapter_scale; default 1.0)",
    )


def ip_adapter_arguments(pipe: Any, inputs: ImageInputs) -> dict[str, Any]:
    """``--ip-adapter-image`` as ``ip_adapter_image`` (the pipeline refuses it where it runs no IP-Adapter) and
    ``--ip-adapter-scale`` through ``set_ip_adapter_scale``."""
    if inputs.ip_adapter_scale is not None:
        if inputs.ip_adapter_image is None:
            raise InputError("--ip-adapter-scale scales --ip-adapter-image; pass both")
        if not hasattr(pipe, "set_ip_adapter_scale"):
            raise InputError(f"--ip-adapter-scale: {type(pipe).__name__} runs no IP-Adapter")
        pipe.set_ip_adapter_scale(inputs.ip_adapter_scale)
    if inputs.ip_adapter_image is None:
        return {}
    return {"ip_adapter_image": _read(inputs.ip_adapter_image)}


def _read(path: Path) -> Any:
    from .image_conditioned import read_image

    return read_image(path, "--ip-adapter-image", "RGB")
