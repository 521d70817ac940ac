"""Bad calls: a clear error (sdrt's class, a message naming the argument and the fix) or the right result
(compared with diffusers), never silent junk. Two tables: ``ERRORS`` and ``RIGHT``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from sdrt.runtime.errors import EngineError, InputError, InputTypeError
from tests.parity import assert_parity, initial_latents
from tests.runtime.pipelines.test_img2img_inpaint import init_image, mask_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

KINDS = {  # kind -> (model, pipeline class, the arguments every call of that kind takes)
    "t2i": ("sd1", "StableDiffusionPipeline", lambda: {"prompt": "a red cat", "num_inference_steps": 2}),
    "i2i": ("sd1", "StableDiffusionImg2ImgPipeline", lambda: {"prompt": "a red cat", "image": init_image()}),
    "inpaint": (
        "inpaint",
        "StableDiffusionInpaintPipeline",
        lambda: {"prompt": "a red cat", "image": init_image(), "mask_image": mask_image()},
    ),
    "sdxl": ("sdxl", "StableDiffusionXLPipeline", lambda: {"prompt": "a red cat", "num_inference_steps": 2}),
    "ddpm": ("uncond", "DDPMPipeline", lambda: {"num_inference_steps": 2}),
}
HWC = np.linspace(0, 1, 64 * 64 * 3, dtype=np.float32).reshape(64, 64, 3)
MASK = np.asarray(mask_image(), dtype=np.float32) / 255.0


@dataclass
class Bad:
    """A call that must raise ``error`` with ``match`` in its message."""

    id: str
    kind: str
    kwargs: Any  # dict, or a function giving one (torch tensors, big arrays)
    error: type
    match: str
    scheduler: str | None = None


def _nan_latents() -> np.ndarray:
    latents = initial_latents((1, 4, 8, 8))
    latents[0, 0, 0, 0] = np.nan
    return latents


def _set_latents(value: float):
    def callback(pipe, i, t, tensors):
        return {"latents": tensors["latents"] * 0 + value} if i == 1 else {}

    return callback


ERRORS = [
    # num_inference_steps
    Bad(
        "steps-0-pndm",
        "t2i",
        {"num_inference_steps": 0},
        InputError,
        "`num_inference_steps` must be at least 1",
    ),
    Bad(
        "steps-0-dpm",
        "t2i",
        {"num_inference_steps": 0},
        InputError,
        "at least 1",
        "DPMSolverMultistepScheduler",
    ),
    Bad(
        "steps-neg-dpm",
        "t2i",
        {"num_inference_steps": -5},
        InputError,
        "at least 1",
        "DPMSolverMultistepScheduler",
    ),
    Bad(
        "steps-1001-dpm",
        "t2i",
        {"num_inference_steps": 1001},
        InputError,
        r"at most the scheduler's num_train_timesteps \(1000\), got 1001",
        "DPMSolverMultistepScheduler",
    ),
    Bad(
        "steps-float",
        "t2i",
        {"num_inference_steps": 10.5},
        InputTypeError,
        "`num_inference_steps` must be an int, got float 10.5",
    ),
    Bad("steps-str", "t2i", {"num_inference_steps": "10"}, InputTypeError, "must be an int, got str"),
    Bad("steps-bool", "t2i", {"num_inference_steps": True}, InputTypeError, "must be an int, got bool"),
    Bad("steps-ddpm-0", "ddpm", {"num_inference_steps": 0}, InputError, "at least 1"),
    Bad("timesteps-empty", "t2i", {"timesteps": []}, InputTypeError, "`timesteps` must be a non-empty list"),
    # guidance_scale, guidance_rescale, eta, strength, denoising_end
    Bad(
        "guidance-inf", "t2i", {"guidance_scale": float("inf")}, InputError, "`guidance_scale` must be finite"
    ),
    Bad(
        "guidance-nan", "t2i", {"guidance_scale": float("nan")}, InputError, "`guidance_scale` must be finite"
    ),
    Bad(
        "guidance-str",
        "t2i",
        {"guidance_scale": "7.5"},
        InputTypeError,
        "`guidance_scale` must be a number, got str",
    ),
    Bad(
        "rescale-above-1",
        "t2i",
        {"guidance_rescale": 1.5},
        InputError,
        r"`guidance_rescale` must be in \[0.0, 1.0\]",
    ),
    Bad(
        "rescale-nan",
        "t2i",
        {"guidance_rescale": float("nan")},
        InputError,
        "`guidance_rescale` must be finite",
    ),
    Bad("eta-str", "t2i", {"eta": "0"}, InputTypeError, "`eta` must be a number"),
    Bad("eta-inf", "t2i", {"eta": float("inf")}, InputError, "`eta` must be finite"),
    Bad("eta-negative", "t2i", {"eta": -0.5}, InputError, r"`eta` must be in \[0.0, 1.0\]"),
    Bad(
        "strength-above-1",
        "i2i",
        {"strength": 1.5},
        InputError,
        r"strength should in \[0.0, 1.0\] but is 1.5",
    ),
    Bad("strength-nan", "i2i", {"strength": float("nan")}, InputError, "`strength` must be finite"),
    Bad("strength-str", "inpaint", {"strength": "0.5"}, InputTypeError, "`strength` must be a number"),
    Bad(
        "strength-0",
        "i2i",
        {"strength": 0.0, "num_inference_steps": 4},
        InputError,
        "leaves no denoising step",
    ),
    Bad(
        "denoising-end-nan",
        "sdxl",
        {"denoising_end": float("nan")},
        InputError,
        "`denoising_end` must be finite",
    ),
    # sizes and counts
    Bad("height-float", "t2i", {"height": 64.0}, InputTypeError, "`height` must be an int, got float"),
    Bad("width-str", "t2i", {"width": "64"}, InputTypeError, "`width` must be an int, got str"),
    Bad(
        "images-0",
        "t2i",
        {"num_images_per_prompt": 0},
        InputError,
        "`num_images_per_prompt` must be at least 1",
    ),
    Bad(
        "images-float",
        "t2i",
        {"num_images_per_prompt": 2.0},
        InputTypeError,
        "`num_images_per_prompt` must be an int",
    ),
    Bad("batch-0", "ddpm", {"batch_size": 0}, InputError, "`batch_size` must be at least 1"),
    Bad(
        "negative-list",
        "t2i",
        {"prompt": ["a", "b"], "negative_prompt": ["c"]},
        InputError,
        "`negative_prompt` has 1 entries",
    ),
    # arrays with NaN/Inf, and what the engines make of finite ones
    Bad("latents-nan", "t2i", {"latents": _nan_latents()}, InputError, "`latents` has NaN or Inf"),
    Bad(
        "latents-inf",
        "t2i",
        lambda: {"latents": initial_latents((1, 4, 8, 8)) * np.inf},
        InputError,
        "`latents` has NaN or Inf",
    ),
    Bad(
        "embeds-nan",
        "t2i",
        lambda: {"prompt": None, "prompt_embeds": np.full((1, 77, 32), np.nan, np.float32)},
        InputError,
        "`prompt_embeds` has NaN",
    ),
    Bad(
        "loop-nan",
        "t2i",
        lambda: {"callback_on_step_end": _set_latents(np.nan)},
        EngineError,
        r"^(?!.*fp16).*denoising loop produced NaN/Inf latents; suspects: the latents the call's callback returns",
    ),
    Bad(
        "vae-overflow",
        "t2i",
        lambda: {"callback_on_step_end": _set_latents(1e36)},
        EngineError,
        r"^(?!.*fp16).*VAE decoder produced NaN/Inf.*callback returns",  # an fp32 bundle: not its precision
    ),
    # image inputs
    Bad(
        "image-chw",
        "i2i",
        {"image": HWC.transpose(2, 0, 1)},
        InputError,
        r"looks channels first.*transpose\(1, 2, 0\)",
    ),
    Bad(
        "image-nchw",
        "i2i",
        {"image": HWC.transpose(2, 0, 1)[None]},
        InputError,
        r"channels first.*transpose\(0, 2, 3, 1\)",
    ),
    Bad(
        "image-0-255-floats",
        "i2i",
        {"image": HWC * 255},
        InputError,
        "image arrays must be floats in \\[0, 1\\].*array / 255",
    ),
    Bad("image-nan", "i2i", {"image": HWC * np.nan}, InputError, "`image` has NaN or Inf"),
    Bad(
        "image-int32",
        "i2i",
        {"image": (HWC * 255).astype(np.int32)},
        InputTypeError,
        "array of int32: pass floats in \\[0, 1\\] or uint8",
    ),
    Bad("image-gray-2d", "i2i", {"image": HWC[..., 0]}, InputError, "HWC or NHWC"),
    Bad(
        "image-rgba",
        "i2i",
        {"image": np.concatenate([HWC, HWC[..., :1]], axis=-1)},
        InputError,
        "must have 3 channels",
    ),
    Bad("image-mixed-list", "i2i", lambda: {"image": [init_image(), HWC]}, InputError, "do not mix"),
    Bad(
        "image-latents-inpaint",
        "inpaint",
        lambda: {"image": torch.zeros(1, 4, 8, 8)},
        InputError,
        "must have 3 channels",
    ),
    Bad(
        "mask-rgb",
        "inpaint",
        {"mask_image": np.repeat(MASK[..., None], 3, axis=-1)},
        InputError,
        r"must have one channel.*mask\[\.\.\., 0\]",
    ),
    Bad(
        "mask-0-255-floats",
        "inpaint",
        {"mask_image": MASK * 255},
        InputError,
        "mask arrays must be floats in \\[0, 1\\]",
    ),
    Bad("mask-n1hw-numpy", "inpaint", {"mask_image": MASK[None, None]}, InputError, "channels first"),
    # options sdrt does not run, and the rest of the call surface
    Bad(
        "output-type",
        "t2i",
        {"output_type": "tensor"},
        InputError,
        "output_type must be one of 'pil', 'np', 'pt', 'latent'",
    ),
    Bad(
        "output-type-ddpm",
        "ddpm",
        {"output_type": "latent"},
        InputError,
        "output_type must be one of 'pil', 'np'",
    ),
    Bad(
        "unknown-keyword",
        "t2i",
        {"num_inference_step": 3},
        InputTypeError,
        r"unexpected keyword arguments \['num_inference_step'\]",
    ),
    Bad(
        "callback-steps-0",
        "t2i",
        lambda: {"callback": print, "callback_steps": 0},
        InputError,
        "`callback_steps` has to be a positive integer",
    ),
    Bad("ip-adapter", "t2i", {"ip_adapter_image": HWC}, InputError, "has no IP-Adapter; rebuild it"),
    Bad(
        "padding-mask-crop",
        "inpaint",
        {"padding_mask_crop": 8},
        InputError,
        "crop the image and mask yourself",
    ),
]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("case", ERRORS, ids=[c.id for c in ERRORS])
def test_bad_call_is_refused(tiny, case):
    model, name, base = KINDS[case.kind]
    pipe = tiny.pipeline(model, name)
    if case.scheduler:
        from sdrt.schedulers import get_scheduler_class

        pipe.scheduler = get_scheduler_class(case.scheduler).from_config(pipe.scheduler.config)
    kwargs = case.kwargs() if callable(case.kwargs) else case.kwargs
    with pytest.raises(case.error, match=case.match):
        pipe(**{**base(), **kwargs})


@dataclass
class Right:
    """A call sdrt takes where the same call (or ``reference``, its diffusers spelling) gives diffusers' image."""

    id: str
    kind: str
    kwargs: Any
    reference: Any = None  # diffusers' arguments where they differ (a PIL image for a uint8 array...)
    seeded: bool = True  # same torch seed on both sides
    extra: dict = field(default_factory=dict)


def _tensor(array: np.ndarray) -> Any:
    return torch.from_numpy(np.ascontiguousarray(array))


RIGHT = [
    Right("steps-numpy-int", "t2i", {"num_inference_steps": np.int64(3)}, {"num_inference_steps": 3}),
    Right(
        "steps-1-dpm", "t2i", {"num_inference_steps": 1}, extra={"scheduler": "DPMSolverMultistepScheduler"}
    ),
    Right("guidance-numpy-float", "t2i", {"guidance_scale": np.float32(5.0)}, {"guidance_scale": 5.0}),
    Right("guidance-int", "t2i", {"guidance_scale": 3}),
    Right("eta-1-ddim", "t2i", {"eta": 1.0, "num_inference_steps": 3}, extra={"scheduler": "DDIMScheduler"}),
    Right(
        "size-numpy-ints", "t2i", {"height": np.int64(48), "width": np.int32(80)}, {"height": 48, "width": 80}
    ),
    Right("empty-prompt", "t2i", {"prompt": ""}),
    Right(
        "latents-torch",
        "t2i",
        lambda: {"latents": _tensor(initial_latents((1, 4, 8, 8), seed=3))},
        seeded=False,
    ),
    Right("image-uint8", "i2i", {"image": np.asarray(init_image())}, lambda: {"image": init_image()}),
    Right("image-float-hwc", "i2i", {"image": HWC}),
    Right("image-nhwc", "i2i", {"image": HWC[None]}),
    Right("image-minus-1-to-1", "i2i", {"image": HWC * 2 - 1}),
    Right("image-torch-chw", "i2i", lambda: {"image": _tensor(HWC.transpose(2, 0, 1))}),
    Right("image-torch-nchw", "i2i", lambda: {"image": _tensor(HWC.transpose(2, 0, 1)[None])}),
    Right("mask-hw", "inpaint", {"mask_image": MASK}),
    Right("mask-hw1", "inpaint", {"mask_image": MASK[..., None]}),
    Right("mask-nhw", "inpaint", {"mask_image": MASK[None]}),
    Right("mask-uint8-0-255", "inpaint", {"mask_image": (MASK * 255).astype(np.uint8)}),
    Right("mask-torch-hw", "inpaint", lambda: {"mask_image": _tensor(MASK)}),
    Right("sdxl-denoising-end-ignored-at-1", "sdxl", {"denoising_end": 1.0}),
]


@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("case", RIGHT, ids=[c.id for c in RIGHT])
def test_odd_but_valid_call_gives_diffusers_image(tiny, case):
    model, name, base = KINDS[case.kind]
    pipe = tiny.pipeline(model, name)
    ref = getattr(diffusers, name).from_pipe(tiny.reference(model, name))
    ref.set_progress_bar_config(disable=True)
    if "scheduler" in case.extra:
        from sdrt.schedulers import get_scheduler_class

        pipe.scheduler = get_scheduler_class(case.extra["scheduler"]).from_config(pipe.scheduler.config)
        ref.scheduler = getattr(diffusers, case.extra["scheduler"]).from_config(ref.scheduler.config)
    kwargs = case.kwargs() if callable(case.kwargs) else case.kwargs
    reference = case.reference() if callable(case.reference) else case.reference
    ours = {**base(), "output_type": "np", **kwargs}
    theirs = {**base(), "output_type": "np", **kwargs, **(reference or {})}
    if "latents" not in kwargs and case.kind == "t2i":
        latents = initial_latents((1, 4, theirs.get("height", 64) // 8, theirs.get("width", 64) // 8), seed=5)
        ours["latents"], theirs["latents"] = latents, _tensor(latents)
    if case.seeded:
        ours["generator"], theirs["generator"] = 11, torch.Generator().manual_seed(11)
    assert_parity(pipe(**ours).images, ref(**theirs).images)
