"""diffusers' side of ``build-engine FILE``: the config folder a checkpoint is read with, the checkpoint's
weights checked against it with diffusers' own key mapping, then its pipeline loaded by diffusers'
``from_single_file`` (nothing fetched) and saved as a diffusers folder."""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

from sdrt.export.errors import CheckpointError

log = logging.getLogger(__name__)

_CONFIG_HINT = (
    "a diffusers folder of that model (model_index.json, each part's config.json, tokenizer/ and scheduler/; "
    "no weights needed)"
)


def checkpoint_config(path: Path, config: str | Path | None) -> Path:
    """The diffusers folder ``path`` is read with: ``config``, or the one diffusers infers when the local
    Hugging Face cache has it (sdrt fetches nothing)."""
    if config is not None:
        config = Path(config)
        if not (config / "model_index.json").is_file():
            raise CheckpointError(
                f"--config {config}: not a diffusers model folder (no model_index.json); pass {_CONFIG_HINT}"
            )
        pipeline_class(config)
        return config
    model_type, repo = inferred_model_type(path)
    cached = _cached_snapshot(repo)
    if cached is None:
        raise CheckpointError(
            f"{path}: diffusers infers a {model_type!r} checkpoint, whose configuration is the Hugging Face "
            f"repository {repo}; it is not in the local cache and build-engine downloads nothing: pass --config "
            f"with {_CONFIG_HINT}"
        )
    log.info("%s: a %r checkpoint, read with the cached configuration of %s", path, model_type, repo)
    pipeline_class(cached)
    return cached


def inferred_model_type(path: Path) -> tuple[str, str]:
    """(diffusers' model type for the checkpoint, the Hub repository diffusers takes its configuration from)."""
    from diffusers.loaders.single_file_utils import (
        DIFFUSERS_DEFAULT_PIPELINE_PATHS,
        infer_diffusers_model_type,
    )

    model_type = infer_diffusers_model_type(_shapes(path))
    return model_type, DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"]


def _shapes(path: Path) -> dict[str, Any]:
    """The checkpoint's tensors as meta tensors (names and shapes, read from a safetensors header), or the
    checkpoint itself for a pickle."""
    if path.suffix.lower() != ".safetensors":
        return load_checkpoint(path)
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        return {key: torch.empty(file.get_slice(key).get_shape(), device="meta") for key in file.keys()}


def _cached_snapshot(repo: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        folder = Path(snapshot_download(repo, local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or no huggingface_hub cache at all
        return None
    return folder if (folder / "model_index.json").is_file() else None


def pipeline_class(config: Path) -> type:
    """diffusers' pipeline class named by ``config``'s model_index.json, one with a single-file loader."""
    import diffusers

    try:
        name = json.loads((config / "model_index.json").read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError) as err:
        raise CheckpointError(f"--config {config}: cannot read its model_index.json: {err}") from err
    cls = getattr(diffusers, str(name), None)
    if cls is None or not hasattr(cls, "from_single_file"):
        raise CheckpointError(
            f"--config {config}: diffusers has no single-file loader for its pipeline {name!r}; pass the config of "
            "an SD 1.x, 2.x or SDXL model (text-to-image, image-to-image or inpainting)"
        )
    return cls


def load_checkpoint(path: Path) -> dict[str, Any]:
    """The checkpoint's state dict, read as diffusers reads it (a pickle with torch's ``weights_only``)."""
    from diffusers.loaders.single_file_utils import load_single_file_checkpoint

    try:
        return load_single_file_checkpoint(str(path), local_files_only=True)
    except Exception as err:  # torch, safetensors and diffusers raise their own kinds for a bad file
        raise CheckpointError(
            f"{path} cannot be read ({_reason(err)}); it is damaged, download it again"
        ) from err


def save_checkpoint_folder(path: Path, config: Path, folder: Path) -> None:
    """Load ``path`` with diffusers' ``from_single_file(config=config)`` and save it into ``folder``."""
    import torch

    cls = pipeline_class(config)
    problems = key_problems(load_checkpoint(path), config)
    if problems:
        raise CheckpointError(
            f"{path} does not match --config {config} ({cls.__name__}): {'; '.join(problems)}. Pass --config the "
            "folder of the model this checkpoint was trained as (SD 1.x, 2.x, SDXL; base, inpainting...)"
        )
    try:
        pipe = cls.from_single_file(
            str(path), config=str(config), local_files_only=True, torch_dtype=torch.float32
        )
    except Exception as err:  # diffusers and torch raise many kinds for a checkpoint of another architecture
        raise CheckpointError(
            f"diffusers cannot load {path} as the {cls.__name__} of --config {config}: {_reason(err)}"
        ) from err
    log.info("%s: loaded as a %s, saving it as a diffusers folder", path, cls.__name__)
    pipe.save_pretrained(str(folder), safe_serialization=True)


def key_problems(checkpoint: dict[str, Any], config: Path) -> list[str]:
    """What keeps the checkpoint's weights from filling the models ``config`` describes, per part: weights
    the models need that diffusers' mapping does not find in the file, weights it finds for no parameter,
    and shapes that differ."""
    problems = []
    for part, expected, build in _mapped_parts(checkpoint, config):
        try:
            found = expected()
        except Exception as err:  # diffusers' mapping indexes keys the file may not have
            problems.append(f"{part}: diffusers' key mapping fails ({_reason(err)})")
            continue
        params = build()
        missing = [k for k in params if k not in found]
        unexpected = [k for k in found if k not in params]
        shapes = [k for k in params if k in found and found[k].numel() != params[k].numel()]
        for what, keys in (
            ("missing from the file", missing),
            ("unexpected", unexpected),
            ("of another shape", shapes),
        ):
            if keys:
                detail = f"{found[keys[0]].shape} vs {params[keys[0]].shape}" if what.startswith("of") else ""
                problems.append(
                    f"{part}: {len(keys)} weights {what} (e.g. {keys[0]} {detail})".replace(" )", ")")
                )
    return problems


def _mapped_parts(checkpoint: dict[str, Any], config: Path):
    """(part, its weights mapped by diffusers from the checkpoint, its parameters) for each part diffusers
    maps from the original layout: the UNet, the VAE and a CLIP text encoder."""
    import diffusers
    from diffusers.loaders.single_file_model import SINGLE_FILE_LOADABLE_CLASSES
    from diffusers.loaders.single_file_utils import convert_ldm_clip_checkpoint, is_clip_model

    index = json.loads((config / "model_index.json").read_text(encoding="utf-8"))
    for part, entry in sorted(index.items()):
        if not isinstance(entry, list) or len(entry) != 2 or entry[1] is None:
            continue
        mapping = SINGLE_FILE_LOADABLE_CLASSES.get(entry[1], {}).get("checkpoint_mapping_fn")
        if mapping is not None and part in ("unet", "vae"):
            cls = getattr(diffusers, entry[1])
            module_config = dict(cls.load_config(str(config / part)))
            found = functools.partial(mapping, checkpoint=checkpoint, config=module_config)
            yield part, found, _meta_state(functools.partial(cls.from_config, module_config))
        elif part == "text_encoder" and entry[1] == "CLIPTextModel" and is_clip_model(checkpoint):
            yield (
                part,
                lambda: _without_ids(convert_ldm_clip_checkpoint(checkpoint)),
                _clip_state(config / part),
            )


def _meta_state(make):
    """The parameters (names and shapes) of the module ``make()`` builds, without memory for them."""

    def state():
        import torch

        with torch.device("meta"):
            return make().state_dict()

    return state


def _clip_state(folder: Path):
    """A CLIP text encoder's parameters, named as diffusers' mapping names them (with ``text_model.``)."""

    def state():
        import transformers

        config = transformers.CLIPTextConfig.from_pretrained(str(folder))
        params = _meta_state(lambda: transformers.CLIPTextModel(config))()
        return _without_ids(
            {(k if k.startswith("text_model.") else "text_model." + k): v for k, v in params.items()}
        )

    return state


def _without_ids(state: dict[str, Any]) -> dict[str, Any]:
    """CLIP's ``position_ids`` is a buffer some checkpoints hold and transformers 5 does not save."""
    return {k: v for k, v in state.items() if not k.endswith("position_ids")}


def _reason(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return " ".join(lines[:2])[:400] if lines else type(err).__name__
