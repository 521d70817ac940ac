"""The model folder as a build reads it: the checkpoint it came from, another VAE, ControlNets, then
embeddings and LoRAs put in (in scratch folders), each checked against the build's options first."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from pathlib import Path

from sdrt.runtime.components.deepcache import branch_problem
from sdrt.runtime.families import CLIP_SKIP, DEEPCACHE, all_families

from .errors import ModelFolderError, OptionError
from .model.adapter import add_adapters
from .model.controlnet import add_controlnets
from .model.folder import ModelFolder, inspect_model_folder
from .model.ip_adapter import add_ip_adapter
from .model.lora import check_loras, loras_merged
from .model.safety_checker import add_safety_checker
from .model.single_file import Checkpoint
from .model.textual_inversion import check_textual_inversions, textual_inversions_added
from .model.vae_swap import add_preview_vae, swap_vae, vae_file_loaded
from .options import BuildOptions


@contextlib.contextmanager
def parts_added(folder: ModelFolder, options: BuildOptions) -> Iterator[ModelFolder]:
    """The folder with a single-file VAE converted, the embeddings of ``options`` added, then its LoRAs
    fused (each in a scratch folder)."""
    with (
        vae_file_loaded(folder) as folder,
        textual_inversions_added(folder, options.textual_inversions) as folder,
        loras_merged(folder, options.loras) as folder,
    ):
        yield folder


def model_folder(
    model_dir: str | Path, options: BuildOptions, checkpoint: Checkpoint | None = None
) -> ModelFolder:
    """The model folder (converted from ``checkpoint`` when given), its VAE swapped for ``options.vae`` when
    given, a preview VAE and its ControlNets added, checked against the build's options."""
    folder = inspect_model_folder(model_dir)
    check_runnable(folder)
    check_unconditioned_unet(folder)
    if checkpoint is not None:
        folder = dataclasses.replace(folder, checkpoint=checkpoint)
    if options.vae is not None:
        folder = swap_vae(folder, options.vae)
    if options.preview_vae is not None:
        folder = add_preview_vae(folder, options.preview_vae)
    if options.controlnets:
        folder = add_controlnets(folder, options.controlnets)
    if options.ip_adapter is not None or options.image_encoder is not None:
        folder = _with_ip_adapter(folder, options)
    if options.adapters:
        folder = add_adapters(folder, options.adapters)
    if options.safety_checker is not None:
        folder = add_safety_checker(folder, options.safety_checker)
    if options.textual_inversions:
        check_textual_inversions(folder, options.textual_inversions)
    if options.loras:
        check_loras(folder, options.loras)
    if options.deepcache is not None:
        check_deepcache(folder, options.deepcache)
        folder = dataclasses.replace(folder, deepcache=options.deepcache)
    check_components(folder, options.components)
    check_clip_skip(folder, options.clip_skip)
    check_prompt_chunks(options.prompt_chunks)
    return folder


MAX_PROMPT_CHUNKS = 16  # 1200 tokens; TensorRT's profile and attention memory grow with it


def check_prompt_chunks(chunks: int | None) -> None:
    if chunks is None:
        return
    if isinstance(chunks, bool) or not isinstance(chunks, int) or not 1 <= chunks <= MAX_PROMPT_CHUNKS:
        raise OptionError(
            f"--prompt-chunks {chunks} must be a whole number from 1 to {MAX_PROMPT_CHUNKS} (chunks of 75 "
            "prompt tokens the UNet takes)"
        )


def check_runnable(folder: ModelFolder) -> None:
    """Refuse, before any export work, a model type whose bundle no sdrt pipeline would run."""
    if not folder.family.runnable:
        raise ModelFolderError(
            f"{folder.path} is a {folder.model_type!r} model ({folder.pipeline_class}): sdrt cannot run "
            f"{folder.family.title} models yet, so it does not build them; build one of "
            f"{', '.join(f.name for f in all_families() if f.runnable)}"
        )


def check_unconditioned_unet(folder: ModelFolder) -> None:
    """Refuse a class-conditional UNet2DModel that no sdrt pipeline would feed: class ids (``num_class_embeds``)
    reach the UNet in consistency models only, as in diffusers; other class embeddings (``class_embed_type``)
    are not exported."""
    config = folder.configs.get("unet", {})
    if folder.classes.get("unet", ("", ""))[1] != "UNet2DModel":
        return
    classes, embed_type = config.get("num_class_embeds"), config.get("class_embed_type")
    if embed_type is None and (classes is None or folder.pipeline_class == "ConsistencyModelPipeline"):
        return
    raise ModelFolderError(
        f"{folder.path / 'unet'} is a class-conditional UNet2DModel (num_class_embeds={classes}, "
        f"class_embed_type={embed_type!r}): sdrt builds class-conditional UNet2DModels of consistency models "
        "(ConsistencyModelPipeline folders, class ids by num_class_embeds) only"
    )


def check_components(folder: ModelFolder, components: list[str] | None) -> None:
    names = [c.name for c in folder.components]
    unknown = [c for c in components or () if c not in names]
    if unknown:
        raise OptionError(
            f"unknown component(s) {unknown} for this {folder.model_type} model; choose from {names}"
        )


def check_clip_skip(folder: ModelFolder, clip_skip: int | None) -> None:
    if clip_skip is None:
        return
    layers = folder.configs.get("text_encoder", {}).get("num_hidden_layers")
    if layers is None or not folder.family.takes(CLIP_SKIP):
        raise OptionError(f"--clip-skip {clip_skip}: this {folder.model_type} model has no text encoder")
    if isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or not 1 <= clip_skip < layers:
        raise OptionError(
            f"--clip-skip {clip_skip} must be a whole number from 1 to {layers - 1} (the text encoder has {layers} "
            "layers); drop the option for no clip skip"
        )


def _with_ip_adapter(folder: ModelFolder, options: BuildOptions) -> ModelFolder:
    if options.ip_adapter is None:
        raise OptionError(
            f"--image-encoder {options.image_encoder}: sdrt exports an image encoder with --ip-adapter FILE; add it"
        )
    if options.deepcache is not None:
        raise OptionError(
            "--ip-adapter with --deepcache: sdrt's step-caching UNets take no image tokens; build them apart"
        )
    return add_ip_adapter(folder, options.ip_adapter, options.image_encoder)


def check_deepcache(folder: ModelFolder, branch: int) -> None:
    """``--deepcache BRANCH``: a family that takes it, no ControlNets (their residuals enter the deep blocks),
    a branch the UNet has."""
    if not folder.family.takes(DEEPCACHE):
        raise OptionError(
            f"--deepcache: step caching splits the UNet of SD 1.x/2.x, SDXL, inpainting and LCM models; this is a "
            f"{folder.model_type} model; drop --deepcache"
        )
    if any(part.startswith(("controlnet", "adapter")) for part in folder.classes):
        raise OptionError(
            "--deepcache with --controlnet or --adapter: sdrt's step caching does not take ControlNet residuals or "
            "adapter features (they enter the deep blocks the shallow UNet skips); build that bundle and the "
            "--deepcache bundle apart"
        )
    problem = branch_problem(folder.configs["unet"], branch)
    if problem is not None:
        raise OptionError(f"--deepcache {branch}: {problem}; pass another BRANCH (0: the shallowest)")
