"""diffusers' side of ``build-engine FILE``: the config folder a checkpoint is read with, the checkpoint's
weights checked against it with diffusers' own key mapping, then its pipeline loaded by diffusers'
``from_single_file`` (nothing fetched) and saved as a diffusers folder."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdrt.export.errors import CheckpointError

from .shipped_configs import BY_DIFFUSERS_TYPE, SHIPPED, shipped_config

if TYPE_CHECKING:
    from diffusers.loaders import FromSingleFileMixin

log = logging.getLogger(__name__)

_CONFIG_HINT = (
    "a diffusers folder of that model (model_index.json, each part's config.json, tokenizer/ and scheduler/; "
    "no weights needed), or one sdrt ships: sd15, sd2 (768 px v-prediction), sd2-base, sdxl"
)


def checkpoint_config(path: Path, config: str | Path | None, *, readable: Path | None = None) -> Path:
    """The diffusers folder ``path`` is read with: ``config``, or the one diffusers infers when the local
    Hugging Face cache has it (sdrt fetches nothing). ``readable``: the file the tensors are read from (a
    pickle's re-saved as safetensors), ``path`` by default."""
    if config is not None and str(config) in SHIPPED and not Path(config).exists():
        return shipped_config(str(config))
    if config is not None:
        config = Path(config)
        if not (config / "model_index.json").is_file():
            raise CheckpointError(
                f"--config {config}: not a diffusers model folder (no model_index.json); pass {_CONFIG_HINT}"
            )
        pipeline_class(config)
        return config
    model_type, repo = inferred_model_type(readable or path)
    cached = _cached_snapshot(repo)
    if cached is None and model_type in BY_DIFFUSERS_TYPE:
        name = BY_DIFFUSERS_TYPE[model_type]
        log.info(
            "%s: a %r checkpoint, read with sdrt's %s configuration (--config %s)",
            path,
            model_type,
            name,
            name,
        )
        return shipped_config(name)
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

    try:
        model_type = infer_diffusers_model_type(checkpoint_shapes(path))
        return model_type, DIFFUSERS_DEFAULT_PIPELINE_PATHS[model_type]["pretrained_model_name_or_path"]
    except Exception as err:  # its checks index keys and shapes a file of another kind may not have
        raise CheckpointError(
            f"{path}: diffusers cannot tell which model this checkpoint is ({_reason(err)}); pass --config with "
            f"{_CONFIG_HINT}"
        ) from err


def checkpoint_shapes(path: Path) -> dict[str, Any]:
    """The checkpoint's tensors as meta tensors: names and shapes, read from its safetensors header (enough
    for diffusers' model-type inference and key mapping; the weights are read once, by ``from_single_file``)."""
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


def pipeline_class(config: Path) -> type[FromSingleFileMixin]:
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


def save_checkpoint_folder(
    path: Path, config: Path, folder: Path, *, readable: Path | None = None, vae: Path | None = None
) -> None:
    """Load ``path`` (from ``readable`` where given) with diffusers' ``from_single_file(config=config)`` and
    save it into ``folder``; with the ``AutoencoderKL`` folder ``vae`` in place of the file's VAE."""
    import torch

    cls = pipeline_class(config)
    readable = readable or path
    problems = key_problems(checkpoint_shapes(readable), config, skip=("vae",) if vae else ())
    if problems:
        vae_hint = "; a file without a VAE needs --vae" if any(p.startswith("vae:") for p in problems) else ""
        raise CheckpointError(
            f"{path} does not match --config {config} ({cls.__name__}): {'; '.join(problems)}. Pass --config the "
            f"folder of the model this checkpoint was trained as (SD 1.x, 2.x, SDXL; base, inpainting...), or one "
            f"sdrt ships: sd15, sd2, sd2-base, sdxl{vae_hint}"
        )
    with _libraries_quiet():
        try:
            parts = {"vae": _load_vae(vae)} if vae else {}
            pipe = cls.from_single_file(
                str(readable), config=str(config), local_files_only=True, torch_dtype=torch.float32, **parts
            )
        except Exception as err:  # diffusers and torch raise many kinds for a checkpoint of another model
            raise CheckpointError(
                f"diffusers cannot load {path} as the {cls.__name__} of --config {config}: {_reason(err)}"
            ) from err
        stored = _uniform_dtype(readable)
        for name, module in pipe.components.items():  # saved at the file's precision: half the scratch space
            if isinstance(module, torch.nn.Module) and not (vae and name == "vae"):
                module.to(stored)
        log.info("%s: loaded as a %s, saving it as a diffusers folder (%s)", path, cls.__name__, stored)
        try:
            pipe.save_pretrained(str(folder), safe_serialization=True)
        except Exception as err:  # safetensors' SafetensorError wraps the OS error (a full disk, mostly)
            need = sum(p.numel() * p.element_size() for p in pipe.unet.parameters()) / 1e9
            raise CheckpointError(
                f"{path}: cannot save its weights as a diffusers folder in {folder.parent} ({_reason(err)}); "
                f"the conversion needs scratch space about the checkpoint's size (the UNet alone: {need:.1f} GB) "
                "beside the bundle's output folder: free some, or write the bundle (-o) on a disk with room"
            ) from err


def _uniform_dtype(path: Path):
    """The one floating-point dtype of every tensor in the file (fp16 for most published checkpoints), else
    fp32. The build reads the saved folder in fp32, and fp16 -> fp32 -> fp16 is exact."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as file:
        dtypes = {file.get_slice(key).get_dtype() for key in file.keys()}
    floats = dtypes & {"F16", "BF16", "F32", "F64"}
    return {"F16": torch.float16, "BF16": torch.bfloat16}.get(
        floats.pop() if len(floats) == 1 else "", torch.float32
    )


def _load_vae(folder: Path):
    import diffusers
    import torch

    return diffusers.AutoencoderKL.from_pretrained(str(folder), torch_dtype=torch.float32)


@contextlib.contextmanager
def _libraries_quiet() -> Iterator[None]:
    """diffusers' and transformers' progress bars and advice off while they load and save (the weights were
    checked key by key before)."""
    from diffusers.utils import logging as diffusers_logging
    from transformers.utils import logging as transformers_logging

    libraries = (diffusers_logging, transformers_logging)
    saved = [(lib, lib.get_verbosity(), lib.is_progress_bar_enabled()) for lib in libraries]
    for lib in libraries:
        lib.set_verbosity_error()
        lib.disable_progress_bar()
    try:
        yield
    finally:
        for lib, verbosity, bars in saved:
            lib.set_verbosity(verbosity)
            if bars:
                lib.enable_progress_bar()


def key_problems(checkpoint: dict[str, Any], config: Path, *, skip: tuple[str, ...] = ()) -> list[str]:
    """What keeps the checkpoint's weights from filling the models ``config`` describes, per part: weights
    the models need that diffusers' mapping does not find in the file, weights it finds for no parameter,
    and shapes that differ."""
    problems = []
    for part, expected, build in _mapped_parts(checkpoint, config, skip):
        try:
            found = expected()
        except KeyError as err:  # diffusers' mapping indexes keys the file may not have
            problems.append(f"{part}: the file has no {err.args[0]!r}, which diffusers' key mapping needs")
            continue
        except Exception as err:
            problems.append(f"{part}: diffusers' key mapping fails ({_reason(err)})")
            continue
        params = build()
        missing = [k for k in params if k not in found]
        unexpected = [k for k in found if k not in params]
        shapes = [k for k in params if k in found and tuple(found[k].shape) != tuple(params[k].shape)]
        for what, keys in (
            ("missing from the file", missing),
            ("unexpected", unexpected),
            ("of another shape", shapes),
        ):
            if keys:
                key, detail = keys[0], ""
                if what.startswith("of"):
                    detail = f"{tuple(found[key].shape)} in the file, {tuple(params[key].shape)} in the model"
                problems.append(
                    f"{part}: {len(keys)} weights {what} (e.g. {keys[0]} {detail})".replace(" )", ")")
                )
    return problems


def _mapped_parts(checkpoint: dict[str, Any], config: Path, skip: tuple[str, ...]):
    """(part, its weights mapped by diffusers from the checkpoint, its parameters) for each part diffusers
    maps from the original layout: the UNet, the VAE and the CLIP text encoders it recognises."""
    import diffusers
    from diffusers.loaders.single_file_model import SINGLE_FILE_LOADABLE_CLASSES

    index = json.loads((config / "model_index.json").read_text(encoding="utf-8"))
    for part, entry in sorted(index.items()):
        if not isinstance(entry, list) or len(entry) != 2 or entry[1] is None or part in skip:
            continue
        mapping = SINGLE_FILE_LOADABLE_CLASSES.get(entry[1], {}).get("checkpoint_mapping_fn")
        if mapping is not None and part in ("unet", "vae"):
            cls = getattr(diffusers, entry[1])
            module_config = dict(cls.load_config(str(config / part)))
            found = functools.partial(mapping, checkpoint=checkpoint, config=module_config)
            yield (
                part,
                found,
                functools.partial(_meta_state, functools.partial(cls.from_config, module_config)),
            )
        elif part.startswith("text_encoder") and entry[1] in ("CLIPTextModel", "CLIPTextModelWithProjection"):
            converter = _clip_converter(part, checkpoint)
            if converter is not None:
                model = functools.partial(_meta_clip, config / part, entry[1])
                yield (
                    part,
                    functools.partial(_clip_found, converter, model),
                    functools.partial(_clip_params, model),
                )


def _meta_state(make) -> dict[str, Any]:
    """The parameters (names and shapes) of the module ``make()`` builds, without memory for them."""
    import torch

    with torch.device("meta"):
        return make().state_dict()


def _meta_clip(folder: Path, class_name: str):
    import torch
    import transformers

    cls = getattr(transformers, class_name)
    with torch.device("meta"):
        return cls(cls.config_class.from_pretrained(str(folder)))


def _clip_converter(part: str, checkpoint: dict[str, Any]):
    """diffusers' mapping of the text encoder ``part`` from the checkpoint's original keys: OpenAI CLIP (SD 1.x,
    SDXL's first encoder) or OpenCLIP (SD 2.x, SDXL's second), as diffusers tells them apart."""
    from diffusers.loaders import single_file_utils as sfu

    if part == "text_encoder" and (sfu.is_clip_model(checkpoint) or sfu.is_clip_sdxl_model(checkpoint)):
        return lambda model: sfu.convert_ldm_clip_checkpoint(checkpoint)
    if part == "text_encoder" and sfu.is_open_clip_model(checkpoint):
        return lambda model: sfu.convert_open_clip_checkpoint(model, checkpoint)
    if part == "text_encoder_2" and sfu.is_open_clip_sdxl_model(checkpoint):
        prefix = "conditioner.embedders.1.model."
        return lambda model: sfu.convert_open_clip_checkpoint(model, checkpoint, prefix=prefix)
    return None


def _clip_found(converter, model) -> dict[str, Any]:
    return _clip_names(converter(model()))


def _clip_params(model) -> dict[str, Any]:
    return _clip_names(model().state_dict())


def _clip_names(state: dict[str, Any]) -> dict[str, Any]:
    """Keys without the ``text_model.`` level (transformers 5 flattened CLIPTextModel), and without the
    ``position_ids`` buffer some checkpoints hold and transformers 5 does not save."""
    return {k.removeprefix("text_model."): v for k, v in state.items() if not k.endswith("position_ids")}


def _reason(err: BaseException) -> str:
    lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
    return " ".join(lines[:2])[:400] if lines else type(err).__name__
