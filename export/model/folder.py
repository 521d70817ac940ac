"""Inspect a diffusers model folder before anything is loaded: type, components, classes, configs.

Every problem found here is a :class:`ModelFolderError` naming the path at fault and the fix.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdrt.export.errors import ModelFolderError
from sdrt.runtime.components import Component, components_of
from sdrt.runtime.families import (
    Family,
    families_for_pipeline_class,
    family,
    family_for_folder,
    folder_pipeline_classes,
)

if TYPE_CHECKING:
    from .ip_adapter import IPAdapter
    from .single_file import Checkpoint

log = logging.getLogger(__name__)

SINGLE_FILE_SUFFIXES = (".ckpt", ".safetensors", ".pt", ".pth", ".bin")
WEIGHT_SUFFIXES = (".safetensors", ".bin")

PROCESSOR_CLASSES = (
    "DPTImageProcessor",
    "DPTImageProcessorPil",
    "DPTImageProcessorFast",
    "DPTFeatureExtractor",
)
CLIP_PROCESSOR_CLASSES = (
    "CLIPImageProcessor",
    "CLIPImageProcessorPil",
    "CLIPImageProcessorFast",
    "CLIPFeatureExtractor",
)
# an optional part fed by the folder's feature_extractor -> (what it is, the processor classes it takes)
PROCESSED_PARTS = {
    "depth_estimator": ("the depth estimator", PROCESSOR_CLASSES),
    "image_encoder": ("the image encoder", CLIP_PROCESSOR_CLASSES),
    "safety_checker": ("the safety checker", CLIP_PROCESSOR_CLASSES),
}
TOKENIZER_CLASSES = ("CLIPTokenizer", "CLIPTokenizerFast")
# classes of one diffusers pipeline's own that model_index.json names under "diffusers": their module
PIPELINE_OWN_CLASSES = {"PaintByExampleImageEncoder": "paint_by_example"}


@dataclass
class ModelFolder:
    """What a diffusers folder holds, read from its JSON files only (no torch)."""

    path: Path
    pipeline_class: str
    model_type: str
    classes: dict[str, tuple[str, str]]  # folder component -> (library, class)
    configs: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_index: dict[str, Any] = field(default_factory=dict)
    parts: dict[str, Path] = field(default_factory=dict)  # a part taken from elsewhere (build-engine --vae)
    embeddings: tuple[str, ...] = ()  # textual inversions added to the tokenizer and text encoder
    loras: tuple[str, ...] = ()  # LoRAs fused into the UNet and text encoders (FILE[:SCALE])
    vae_file: Path | None = None  # build-engine --vae FILE.safetensors, converted when the build starts
    checkpoint: Checkpoint | None = None  # the single-file checkpoint this folder was saved from
    deepcache: int | None = None  # build-engine --deepcache BRANCH: the UNet split for step caching
    ip_adapter: IPAdapter | None = (
        None  # build-engine --ip-adapter FILE: loaded into the UNet, its projection a part
    )

    def part_path(self, part: str) -> Path:
        """The folder a part (``unet``, ``vae``, ...) is read from."""
        return self.parts.get(part, self.path / part)

    @property
    def family(self) -> Family:
        """What sdrt knows of this model type: its parts, build features and pipelines."""
        return family(self.model_type)

    @property
    def components(self) -> list[type[Component]]:
        """The components this model exports, in build order."""
        return components_of(self)

    def weight_files(self, part: str) -> list[Path]:
        folder = self.part_path(part)
        if folder.is_file():  # a part read from one file (the IP-Adapter's projection)
            return [folder]
        return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(WEIGHT_SUFFIXES))

    def hashed_files(self, part: str) -> list[Path]:
        """What decides the export of a folder part: its weight files, its config.json (and the settings
        that fix its input size: the depth estimator's image processor)."""
        extra = [self.support_file(f) for f in self.family.hashed_with.get(part, ())]
        if part == "unet" and self.ip_adapter is not None:  # the adapter's attention layers are the UNet's
            extra.append(self.ip_adapter.file)
        if self.part_path(part).is_file():
            return [*self.weight_files(part), *extra]
        return [*self.weight_files(part), self.part_path(part) / "config.json", *extra]

    def support_file(self, relative: str) -> Path:
        """``feature_extractor/preprocessor_config.json`` and the like, in the part it names (which may be taken
        from elsewhere: build-engine --safety-checker)."""
        part, _, rest = relative.partition("/")
        return self.part_path(part) / rest

    def weights_sha256(self) -> str:
        """The source hash the manifest records: every exported component's weights and config."""
        from .hashing import files_sha256

        files = {f for c in self.components for f in self.hashed_files(c.source)}
        return files_sha256(sorted(files), root=self.path)


def _single_file_message(path: Path) -> str:
    return (
        f"{path} is a single-file checkpoint; pass the file itself (build-engine {path} -o BUNDLE --config DIR, "
        "DIR a diffusers folder of its model: configs, tokenizer and scheduler)"
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelFolderError(
            f"cannot read {path}: {err}; the model folder is damaged, download it again"
        ) from err
    if not isinstance(data, dict):
        raise ModelFolderError(
            f"{path} does not hold a JSON object; the model folder is damaged, download it again"
        )
    return data


def inspect_model_folder(path: str | Path) -> ModelFolder:
    """Check ``path`` is a supported diffusers folder with every component this build needs."""
    path = Path(path)
    index_path = _model_index_path(path)
    index = _read_json(index_path)
    pipeline_class = str(index.get("_class_name", ""))
    candidates = families_for_pipeline_class(pipeline_class)
    if not candidates:
        raise ModelFolderError(
            f"{index_path}: pipeline class {pipeline_class or '(none)'!r} is not supported; sdrt exports "
            f"{', '.join(sorted(folder_pipeline_classes()))}"
        )
    kind = _parts_kind(index, candidates)
    classes = {
        name: _check_part(path, index, name, accepted, pipeline_class)
        for name, accepted in kind.required.items()
    }
    classes |= optional_parts(path, index, kind, pipeline_class)
    _check_tokenizers(path, index, kind, classes)
    _check_embedding_noising(path, kind)
    if not (path / "scheduler" / "scheduler_config.json").is_file():
        raise ModelFolderError(
            f"{path / 'scheduler' / 'scheduler_config.json'} is missing; use a complete model folder"
        )
    for name in (n for n in kind.support if n.endswith("scheduler")):  # the x4 upscaler's low_res_scheduler
        if not (path / name / "scheduler_config.json").is_file():
            raise ModelFolderError(
                f"{path / name / 'scheduler_config.json'} is missing (a {pipeline_class} needs its {name}); use a "
                "complete model folder"
            )
    configs = {name: _read_json(path / name / "config.json") for name in classes}
    configs["scheduler"] = _read_json(path / "scheduler" / "scheduler_config.json")
    for part in sorted(PROCESSED_PARTS.keys() & classes.keys()):
        configs["feature_extractor"] = _processor_config(path, index, part)
    return ModelFolder(
        path=path.resolve(),
        pipeline_class=pipeline_class,
        model_type=family_for_folder(pipeline_class, configs).name,
        classes=classes,
        configs=configs,
        model_index=index,
    )


def _listed(index: dict[str, Any], name: str) -> bool:
    entry = index.get(name)
    return isinstance(entry, list) and len(entry) == 2 and None not in entry


def _parts_kind(index: dict[str, Any], candidates: list[Family]) -> Family:
    """The family whose parts the folder is checked for: the first sharing its class whose required parts
    model_index.json all lists (an SDXL refiner lists no ``text_encoder``), else the first (its errors)."""
    listing = [f for f in candidates if all(_listed(index, name) for name in f.required)]
    return (listing or candidates)[0]


def _model_index_path(path: Path) -> Path:
    """``path/model_index.json``, or an error saying what ``path`` is instead (missing, a file, a checkpoint)."""
    if not path.exists():
        raise ModelFolderError(f"model folder {path} does not exist; pass a diffusers model folder")
    if path.is_file():
        raise ModelFolderError(f"{path} is a file; pass a diffusers model folder (one with model_index.json)")
    index_path = path / "model_index.json"
    if index_path.is_file():
        return index_path
    singles = sorted(p for p in path.iterdir() if p.suffix.lower() in (".ckpt", ".safetensors"))
    if singles:
        raise ModelFolderError(
            f"{path} is not a diffusers model folder (no model_index.json) but holds {singles[0].name}. "
            + _single_file_message(singles[0])
        )
    raise ModelFolderError(
        f"{path} is not a diffusers model folder: it has no model_index.json. Pass the folder that "
        f"DiffusionPipeline.save_pretrained() wrote (or a Hugging Face snapshot of a diffusers model)."
    )


def _check_part(
    path: Path, index: dict[str, Any], name: str, accepted: tuple[str, ...], pipeline_class: str
) -> tuple[str, str]:
    """(library, class) of the folder part ``name``, which must be there, of an accepted class, with weights."""
    entry, folder = index.get(name), path / name
    if not entry or entry[0] is None or entry[1] is None:
        raise ModelFolderError(
            f"{path / 'model_index.json'}: component {name!r} is missing (a {pipeline_class} needs {accepted[0]} "
            "there); use a complete model folder"
        )
    if entry[1] not in accepted:
        raise ModelFolderError(
            f"{path / 'model_index.json'}: component {name!r} has class {entry[1]!r}, which sdrt cannot export "
            f"(supported: {', '.join(accepted)})"
        )
    if not (folder / "config.json").is_file():
        raise ModelFolderError(
            f"component {name!r} is missing: {folder / 'config.json'} does not exist; "
            f"use a complete model folder (download every subfolder)"
        )
    if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in folder.iterdir()):
        raise ModelFolderError(
            f"component {name!r} has no weights in {folder} (no *.safetensors or *.bin); download the weight files too"
        )
    return entry[0], entry[1]


def optional_parts(
    path: Path, index: dict[str, Any], kind: Family, pipeline_class: str
) -> dict[str, tuple[str, str]]:
    """The optional parts the folder has (a depth-to-image folder without its depth estimator runs on given
    depth maps; an SD folder's safety checker): each one listed in model_index.json with its folder and weights
    is checked as a required one."""
    found = {}
    for name, accepted in kind.optional.items():
        entry = index.get(name)
        if not entry or entry[0] is None or not (path / name).is_dir():
            log.info("%s: no %s in the model folder; the bundle will have none", path, name)
            continue
        if not any(p.name.endswith(WEIGHT_SUFFIXES) for p in (path / name).iterdir()):
            log.warning("%s: %s/ has no weights; the bundle will have no %s", path, name, name)
            continue
        found[name] = _check_part(path, index, name, accepted, pipeline_class)
    return found


def _processor_config(path: Path, index: dict[str, Any], part: str) -> dict[str, Any]:
    """The image processor settings (``feature_extractor/preprocessor_config.json``) of ``part``: the depth
    estimator's DPT processor, the image encoder's or the safety checker's CLIP processor."""
    what, classes = PROCESSED_PARTS[part]
    entry, config = index.get("feature_extractor"), path / "feature_extractor" / "preprocessor_config.json"
    if not entry or entry[1] not in classes or not config.is_file():
        raise ModelFolderError(
            f"{path}: {what} needs its image processor ({classes[0]}) in feature_extractor/ with "
            f"preprocessor_config.json, found {entry} and {'a' if config.is_file() else 'no'} config; use a "
            "complete model folder"
        )
    return _read_json(config)


def _check_embedding_noising(path: Path, kind: Family) -> None:
    """Stable unCLIP's normaliser weights (safetensors: the runtime reads them without torch) and noising
    scheduler, which the bundle keeps."""
    if "image_normalizer" not in kind.support:
        return
    if not any((path / "image_normalizer").glob("*.safetensors")):
        raise ModelFolderError(
            f"{path / 'image_normalizer'} has no safetensors weights (the image embedding's mean and std); use a "
            "complete model folder, or re-save it with diffusers (safe_serialization=True)"
        )
    if not (path / "image_noising_scheduler" / "scheduler_config.json").is_file():
        raise ModelFolderError(
            f"{path / 'image_noising_scheduler' / 'scheduler_config.json'} is missing; use a complete model folder"
        )


def _check_tokenizers(
    path: Path, index: dict[str, Any], kind: Family, classes: dict[str, tuple[str, str]]
) -> None:
    """A CLIP tokenizer folder for each text encoder (``tokenizer_2`` feeds ``text_encoder_2``)."""
    for name in kind.tokenizers:
        if name.replace("tokenizer", "text_encoder") not in classes:
            continue
        entry = index.get(name)
        if not entry or entry[1] not in TOKENIZER_CLASSES or not (path / name).is_dir():
            raise ModelFolderError(
                f"{path}: tokenizer {name!r} is missing or not a CLIP tokenizer ({entry}); use a complete model folder"
            )


def load_module(folder: ModelFolder, component: type[Component], *, device: str = "cpu"):
    """Load, in fp32, the torch module ``component`` is exported from (with ``--ip-adapter``: the UNet with the
    adapter loaded, the projection converted from the adapter's file)."""
    if folder.ip_adapter is not None and component.source in ("unet", "image_projection"):
        from . import ip_adapter

        if component.source == "unet":
            module = ip_adapter.load_unet_with_adapter(load_part(folder, "unet"), folder.ip_adapter)
        else:
            module = ip_adapter.load_projection(folder.ip_adapter)
        return module.to(device).eval()
    return load_part(folder, component.source).to(device).eval()


def load_part(folder: ModelFolder, part: str):
    """Load a part of the folder in fp32 (a torch module, or a transformers tokenizer)."""
    import torch

    if part.startswith("tokenizer"):
        library, class_name = "transformers", "CLIPTokenizer"
    else:
        library, class_name = folder.classes[part]
    path = folder.part_path(part)
    try:
        if library == "transformers":
            import transformers

            kwargs = {} if class_name == "CLIPTokenizer" else {"dtype": torch.float32}
            module = getattr(transformers, class_name).from_pretrained(str(path), **kwargs)
        else:
            import diffusers

            # a class of one pipeline's own (LDMBertModel: ["latent_diffusion", ...]) lives in its pipeline module
            owner = diffusers if library == "diffusers" else _pipeline_module(library)
            if not hasattr(
                owner, class_name
            ):  # Paint-by-Example's encoder: ["diffusers", ...], in its pipeline
                owner = _pipeline_module(PIPELINE_OWN_CLASSES.get(class_name, library))
            module = getattr(owner, class_name).from_pretrained(str(path), torch_dtype=torch.float32)
    except Exception as err:  # safetensors, torch and the libraries raise their own kinds for a bad file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelFolderError(
            f"cannot load {class_name} from {path}: {reason}; its weights or config are damaged or incomplete, "
            "download them again"
        ) from err
    return module


def _pipeline_module(library: str) -> Any:
    """diffusers' module of one pipeline's own classes (``paint_by_example``: now under ``deprecated``)."""
    import importlib

    try:
        return importlib.import_module(f"diffusers.pipelines.{library}")
    except ModuleNotFoundError:
        return importlib.import_module(f"diffusers.pipelines.deprecated.{library}")


@contextlib.contextmanager
def with_parts_saved(
    folder: ModelFolder, parts: dict[str, Any], prefix: str, **fields: Any
) -> Iterator[ModelFolder]:
    """``folder`` reading ``parts`` (modules changed in memory: LoRAs fused, embeddings added) from a scratch
    folder they are saved into, removed afterwards; ``fields``: what the manifest records of the change."""
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        work = Path(scratch)
        for name, part in parts.items():
            part.save_pretrained(work / name)
        yield dataclasses.replace(
            folder, parts={**folder.parts, **{name: work / name for name in parts}}, **fields
        )
