"""Request and answer bodies as pydantic models, named after the schemas clients are written against:
AUTOMATIC1111's ``modules/api/models.py`` and OpenAI's images API (``ImageGenerateParams``,
``ImagesResponse``).

The models check each field's type, finiteness and static range (``NaN``, ``Infinity``, ``1e999``, a
string for a number: a 400 naming the field); the server's own limits (``--max-steps``,
``--max-images``, ``--max-prompt-chars``) and each bundle's sizes are checked after, in ``a1111.py`` and
``openai_images.py``. Clients send many fields sdrt does not read (hires fix, scripts, ``quality``...):
they are accepted (``extra="allow"``) and checked only for being plain, finite JSON.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_SEED = 2**32 - 1
_BIG = 1_000_000  # static ceiling for counts; the server's own limits are lower


def _not_a_bool(value: Any) -> Any:
    if isinstance(value, bool):  # pydantic would read true as 1
        raise ValueError("a number, not true/false")
    return value


_Number = BeforeValidator(_not_a_bool)
Seed = Annotated[int, _Number, Field(ge=-1, le=MAX_SEED)]
Count = Annotated[int, _Number, Field(ge=1, le=_BIG)]
Side = Annotated[int, _Number, Field(ge=8, le=16384)]
Guidance = Annotated[float, _Number, Field(ge=0.0, le=100.0)]
Strength = Annotated[float, _Number, Field(ge=0.0, le=1.0)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="allow", allow_inf_nan=False)


class StableDiffusionProcessingTxt2Img(_Body):
    """``POST /sdapi/v1/txt2img`` (the fields sdrt reads; A1111's others are accepted and ignored)."""

    prompt: str | None = ""
    negative_prompt: str | None = ""
    seed: Seed | None = -1
    sampler_name: str | None = None
    sampler_index: str | None = None
    scheduler: str | None = None
    batch_size: Count | None = 1
    n_iter: Count | None = 1
    steps: Count | None = 20
    cfg_scale: Guidance | None = 7.0
    width: Side | None = Field(None, description="default: the bundle's default width")
    height: Side | None = Field(None, description="default: the bundle's default height")
    override_settings: dict[str, Any] | None = None
    force_task_id: str | None = Field(
        None,
        max_length=128,
        description="the job's id for /sdapi/v1/progress?id_task= (default: the request id)",
    )


class StableDiffusionProcessingImg2Img(StableDiffusionProcessingTxt2Img):
    """``POST /sdapi/v1/img2img``: ``init_images`` (base64), and a ``mask`` for inpainting."""

    init_images: list[str] | None = None
    mask: str | None = None
    denoising_strength: Strength | None = 0.75
    inpainting_mask_invert: Annotated[int, Field(ge=0, le=1)] | None = 0
    image_cfg_scale: Guidance | None = Field(
        None, description="InstructPix2Pix models: image_guidance_scale (default 1.5); others ignore it"
    )


class TextToImageResponse(BaseModel):
    images: list[str] = Field(description="base64 PNGs")
    parameters: dict[str, Any]
    info: str = Field(description="a JSON string: seeds, sampler, infotexts, sdrt's batch facts")


class ImageToImageResponse(TextToImageResponse):
    pass


class Options(_Body):
    """``POST /sdapi/v1/options``: ``sd_model_checkpoint`` switches the active model; the rest is kept."""

    sd_model_checkpoint: str | None = None


class ImageGenerateParams(_Body):
    """``POST /v1/images/generations``: OpenAI's fields, and sdrt's own (sent with ``extra_body``)."""

    prompt: str
    model: str | None = None
    n: Count | None = 1
    size: str | None = Field(None, description="'WIDTHxHEIGHT' or 'auto'")
    response_format: str | None = Field("b64_json", description="only 'b64_json': nothing is stored")
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    seed: Seed | None = -1
    negative_prompt: str | None = ""
    steps: Count | None = 20
    guidance_scale: Guidance | None = 7.5
    sampler_name: str | None = None
    scheduler: str | None = None
    stream: bool | None = Field(
        False, description="answer server-sent events (partial images, then the image)"
    )
    partial_images: Annotated[int, _Number, Field(ge=0, le=3)] | None = Field(
        None, description="previews sent while streaming (0-3)"
    )


class Image(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[Image]
