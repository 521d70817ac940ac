"""``Family``: what sdrt knows of one model type (the manifest's ``model_type``), in one frozen record.

A family says which diffusers folders are of its type, which folder parts it exports (and the classes it
accepts for them), which build features it takes, and which pipeline runs each of its tasks. Pipelines are
named as ``"module:ClassName"`` (a module of ``sdrt.runtime.pipelines``, or an absolute dotted module), so a
family imports no pipeline until one is asked for.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sdrt.runtime.pipelines.base import DiffusionPipeline

# tasks: what a pipeline does with its inputs (the keys of ``Family.tasks``)
TEXT_TO_IMAGE = "text-to-image"
IMAGE_TO_IMAGE = "image-to-image"
INPAINT = "inpaint"
DEPTH = "depth"
CONTROL = "control"
CONTROL_IMAGE_TO_IMAGE = "control-image-to-image"
CONTROL_INPAINT = "control-inpaint"
T2I_ADAPTER = "t2i-adapter"  # text-to-image guided by T2I-Adapter feature maps
UNCONDITIONAL = "unconditional"
# the unconditional family's other loops, one per diffusers pipeline (the folder's class picks one)
UNCONDITIONAL_DDIM = "unconditional-ddim"
UNCONDITIONAL_PNDM = "unconditional-pndm"
REPAINT = "repaint"
SCORE_SDE_VE = "score-sde-ve"
KARRAS_VE = "karras-ve"
CONSISTENCY = "consistency"
# latent models of their own kinds: DiT's class labels, latent diffusion's unconditional and super-resolution loops
CLASS_CONDITIONAL = "class-conditional"
LATENT_UNCONDITIONAL = "latent-unconditional"
SUPER_RESOLUTION = "super-resolution"
# Stable Diffusion's upscalers: x4 in pixels (the low-resolution image beside the latents), x2 in latent space
UPSCALE = "upscale"
LATENT_UPSCALE = "latent-upscale"
# text-to-image loops of their own over the SD engines (diffusers' guided pipelines)
PANORAMA = "panorama"
SEMANTIC = "semantic"
SAFE = "safe"
DIFFEDIT = "diffedit"  # mask from two prompts, DDIM inversion, masked denoising
# conditioned on an image's CLIP embedding (image variation, unCLIP) or an example image (Paint-by-Example)
IMAGE_VARIATION = "image-variation"
UNCLIP_IMAGE_TO_IMAGE = "unclip-image-to-image"
PAINT_BY_EXAMPLE = "paint-by-example"
INSTRUCT_PIX2PIX = "instruct-pix2pix"  # an image edited by an instruction (8-channel UNet, image guidance)

# build features (build-engine options a family may refuse)
LORA = "lora"
TEXTUAL_INVERSION = "textual_inversion"
CONTROLNET = "controlnet"
ADAPTER = "adapter"  # build-engine --adapter: T2I-Adapters and a UNet taking their features
CLIP_SKIP = "clip_skip"
DEEPCACHE = "deepcache"  # build-engine --deepcache: the UNet split for step caching
IP_ADAPTER = "ip_adapter"  # build-engine --ip-adapter: image prompts (text-to-image)

PIPELINES_PACKAGE = "sdrt.runtime.pipelines"

# latent -> RGB factors for cheap previews, one (r, g, b) row per latent channel: AUTOMATIC1111's "Approx cheap"
# (modules/sd_vae_approx.py, cheap_approximation; from https://discuss.huggingface.co/t/23204/2), applied to
# the latents as the sampler holds them, giving about [-1, 1]
SD_LATENT_RGB = (
    (0.298, 0.207, 0.208),
    (0.187, 0.286, 0.173),
    (-0.158, 0.189, 0.264),
    (-0.184, -0.271, -0.473),
)
SDXL_LATENT_RGB = (
    (0.3448, 0.4168, 0.4395),
    (-0.1953, -0.0290, 0.0250),
    (0.1074, 0.0886, -0.0163),
    (-0.3730, -0.2499, -0.2088),
)

Parts = Mapping[str, tuple[str, ...]]  # folder part -> the classes accepted for it
Configs = Mapping[str, Mapping[str, Any]]  # folder part -> its config.json


@dataclass(frozen=True)
class Family:
    """One model type: its folders, parts, build features and task -> pipeline table."""

    name: str  # the manifest's model_type
    title: str  # how messages name it: "SD 1.x", "SDXL", "inpainting"
    folder_pipelines: tuple[str, ...]  # diffusers pipeline classes (model_index.json) whose folders it is
    required: Parts  # folder parts every folder of this type has
    optional: Parts = field(default_factory=dict)  # folder parts exported where the folder has them
    hashed_with: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # part -> files deciding it too
    support: tuple[str, ...] = ()  # folders copied beside the engines: tokenizers, feature_extractor
    features: frozenset[str] = frozenset()  # build features it takes (LORA, CONTROLNET...)
    dual_text_encoders: bool = False  # SDXL's two CLIP encoders (penultimate states, pooled embeddings)
    #: the text encoder also gives its unnormalised last hidden states and pooled output (the latent upscaler)
    pooled_text: bool = False
    tasks: Mapping[str, str] = field(default_factory=dict)  # task -> "module:ClassName"; first: the default
    default_steps: int = 50  # sdrt generate's --steps when not given
    fixed_size: bool = False  # the UNet's sample size is the image size (no --size)
    #: UNet rows per image under guidance: 2 ([negative, positive]), 3 for InstructPix2Pix's image guidance
    guidance_rows: int = 2
    denoiser: str = (
        "unet"  # the folder part that denoises (DiT: "transformer"): the manifest's ``unet`` settings
    )
    #: the task whose pipeline has the folder's class name is the one loaded (else the default task)
    task_by_folder_class: bool = False
    #: latent -> RGB factors for previews without a preview VAE (None: no cheap preview)
    latent_rgb: tuple[tuple[float, float, float], ...] | None = None
    #: the UNet's ``encoder_hidden_states`` length: 77 text tokens, 1 for an image embedding (image variation)
    unet_sequence: int = 77
    #: which of the families sharing a folder pipeline class a folder is, from its configs (None: the only one)
    recognises: Callable[[Configs], bool] | None = None

    @property
    def default_task(self) -> str | None:
        """The task ``DiffusionPipeline.from_pretrained`` loads (None: sdrt cannot run this type yet)."""
        return next(iter(self.tasks), None)

    def folder_task(self, pipeline_class: str) -> str | None:
        """The task ``DiffusionPipeline.from_pretrained`` loads for a bundle built from a folder of
        ``pipeline_class``: the default task, or (``task_by_folder_class``) the one of that class name."""
        if self.task_by_folder_class:
            named = [task for task, ref in self.tasks.items() if class_name(ref) == pipeline_class]
            if named:
                return named[0]
        return self.default_task

    @property
    def takes_prompt(self) -> bool:
        """Whether its pipelines read a prompt (a family with a text encoder: SDXL's refiner has the second only,
        latent diffusion's text-to-image LDMBert)."""
        return any(part in self.required for part in ("text_encoder", "text_encoder_2", "bert"))

    @property
    def runnable(self) -> bool:
        return bool(self.tasks)

    @property
    def tokenizers(self) -> tuple[str, ...]:
        return tuple(name for name in self.support if name.startswith("tokenizer"))

    def takes(self, feature: str) -> bool:
        return feature in self.features

    def pipeline(self, task: str) -> type[DiffusionPipeline]:
        """The pipeline class of ``task`` (imported now); KeyError for a task the family lacks."""
        return resolve(self.tasks[task])

    def pipelines(self) -> list[type[DiffusionPipeline]]:
        return [resolve(ref) for ref in self.tasks.values()]


def resolve(ref: str) -> type[DiffusionPipeline]:
    """``"module:ClassName"`` -> the class; a module without a dot is one of ``sdrt.runtime.pipelines``."""
    module, _, name = ref.partition(":")
    if "." not in module:
        module = f"{PIPELINES_PACKAGE}.{module}"
    cls: type[DiffusionPipeline] = getattr(importlib.import_module(module), name)
    return cls


def class_name(ref: str) -> str:
    return ref.partition(":")[2]
