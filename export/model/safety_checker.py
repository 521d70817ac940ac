"""``build-engine --safety-checker DIR``: export diffusers' ``StableDiffusionSafetyChecker`` beside the model's
engines, as diffusers' ``from_pretrained(MODEL, safety_checker=..., feature_extractor=...)`` runs it. ``DIR`` is
the checker's folder (config.json and weights, e.g. CompVis/stable-diffusion-safety-checker) with CLIP's
``preprocessor_config.json`` in it or in a ``feature_extractor/`` beside it, or a model folder holding
``safety_checker/`` and ``feature_extractor/``. Checked before anything is loaded."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from sdrt.export.errors import ModelFolderError, OptionError

from .folder import CLIP_PROCESSOR_CLASSES, WEIGHT_SUFFIXES, ModelFolder

CHECKER_CLASS = "StableDiffusionSafetyChecker"
PROCESSOR_CONFIG = "preprocessor_config.json"


def add_safety_checker(folder: ModelFolder, checker: str | Path) -> ModelFolder:
    """``folder`` with its ``safety_checker`` part (and its image processor) read from ``checker``."""
    path = Path(checker)
    if "safety_checker" not in folder.family.optional:
        raise OptionError(
            f"--safety-checker {path}: {folder.model_type} pipelines run no safety checker in diffusers (SD 1.x, "
            "SD 2.x and inpainting ones do); drop --safety-checker"
        )
    checker_dir, processor_dir = _folders(path)
    config = _json(checker_dir / "config.json", path)
    if CHECKER_CLASS not in config.get("architectures", []):
        raise ModelFolderError(
            f"--safety-checker {path}: {checker_dir / 'config.json'} is not a {CHECKER_CLASS}'s (architectures "
            f"{config.get('architectures')}); pass the safety checker's folder"
        )
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in checker_dir.iterdir()):
        raise ModelFolderError(
            f"--safety-checker {path}: no weights in {checker_dir} (no *.safetensors or *.bin); download them too"
        )
    processor = _json(processor_dir / PROCESSOR_CONFIG, path)
    _check_processor(path, processor, config)
    return dataclasses.replace(
        folder,
        classes={**folder.classes, "safety_checker": ("stable_diffusion", CHECKER_CLASS)},
        configs={**folder.configs, "safety_checker": config, "feature_extractor": processor},
        parts={
            **folder.parts,
            "safety_checker": checker_dir.resolve(),
            "feature_extractor": processor_dir.resolve(),
        },
    )


def _folders(path: Path) -> tuple[Path, Path]:
    """(the checker's folder, the folder of its ``preprocessor_config.json``)."""
    if not path.is_dir():
        raise ModelFolderError(
            f"--safety-checker {path} is not a folder; pass a {CHECKER_CLASS} folder (config.json, weights, "
            f"{PROCESSOR_CONFIG}) or a model folder with safety_checker/ and feature_extractor/"
        )
    if (path / "safety_checker" / "config.json").is_file():
        return path / "safety_checker", path / "feature_extractor"
    for processor in (path, path.parent / "feature_extractor"):
        if (processor / PROCESSOR_CONFIG).is_file():
            return path, processor
    raise ModelFolderError(
        f"--safety-checker {path}: no {PROCESSOR_CONFIG} (CLIP's image processor, the checker's input) in it or "
        "in a feature_extractor/ beside it; add the one the checker was published with"
    )


def _json(path: Path, option: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ModelFolderError(f"--safety-checker {option}: cannot read {path} ({error})") from error
    if not isinstance(data, dict):
        raise ModelFolderError(f"--safety-checker {option}: {path} does not hold a JSON object")
    return data


def _check_processor(option: Path, processor: dict[str, Any], config: dict[str, Any]) -> None:
    """A CLIP image processor whose crop is the checker's vision image size."""
    kind = processor.get("image_processor_type") or processor.get("feature_extractor_type")
    if kind is not None and kind not in CLIP_PROCESSOR_CLASSES:
        raise ModelFolderError(
            f"--safety-checker {option}: its image processor is a {kind}, not CLIP's ({CLIP_PROCESSOR_CLASSES[0]})"
        )
    crop = processor.get("crop_size", 224)
    crop = (crop, crop) if isinstance(crop, int) else (crop.get("height"), crop.get("width"))
    size = config.get("vision_config", {}).get("image_size", 224)
    if crop != (size, size):
        raise ModelFolderError(
            f"--safety-checker {option}: the image processor crops to {crop[0]}x{crop[1]} but the checker's "
            f"vision model takes {size}x{size}; pass the processor the checker was published with"
        )
