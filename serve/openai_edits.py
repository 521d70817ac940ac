"""OpenAI's ``POST /v1/images/edits``: a multipart form (``image``, optional ``mask``, ``prompt``, ``n``,
``size``, ``response_format``) run as inpainting, or img2img where nothing marks where to edit.

OpenAI's mask convention: a PNG whose transparent pixels (alpha 0) are the area to edit, of the image's
size; without a mask the image's own alpha does the same. The form is read with the standard library's
MIME parser (no python-multipart dependency); its text fields are checked as the generations route's.
"""

from __future__ import annotations

import dataclasses
import email.parser
import email.policy
import io
from typing import Any

from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from . import openai_images
from .catalog import Catalog
from .fields import Limits, RequestError
from .images import MAX_INPUT_PIXELS, fit
from .requests import IMG2IMG, INPAINT, Job
from .schemas import ImageGenerateParams

Form = dict[str, bytes]
FILES = ("image", "mask")


def read_form(content_type: str, body: bytes) -> Form:
    """The form's parts by name (``image[]``, as newer clients name a single image, read as ``image``)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise RequestError("send the edit as multipart/form-data (image, mask, prompt...)", field="image")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    form: Form = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            form.setdefault(name.removesuffix("[]"), payload if isinstance(payload, bytes) else b"")
    return form


def parse_edit(form: Form, catalog: Catalog, limits: Limits) -> Job:
    """An edits request as a Job: the generations route's checks, then the pictures."""
    if "image" not in form:
        raise RequestError("image is required (a PNG file part)", field="image")
    text = {k: v.decode("utf-8", "replace") for k, v in form.items() if k not in FILES}
    image = _picture(form["image"], "image")
    if "size" not in text:
        text["size"] = f"{image.width}x{image.height}"
    try:
        params = ImageGenerateParams.model_validate(text)
    except ValidationError as error:
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in error.errors()]) from error
    if params.stream:
        raise RequestError("stream is not served on edits; leave it out for one JSON answer", field="stream")
    job = openai_images.parse(params, catalog, limits)
    s = job.settings
    mask = _mask(form, image)
    mode = IMG2IMG if mask is None else INPAINT
    catalog.models[s.model].check_mode(mode)
    strength = _strength(text.get("strength"), 1.0 if mode == INPAINT else 0.75)
    picture = fit(image.convert("RGB"), s.width, s.height)
    mask = None if mask is None else fit(mask, s.width, s.height)
    rows = tuple(dataclasses.replace(r, image=picture, mask=mask) for r in job.rows)
    return Job(dataclasses.replace(s, mode=mode, strength=strength), rows)


def _picture(data: bytes, field: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > MAX_INPUT_PIXELS:
                raise RequestError(f"{field} is {opened.width}x{opened.height}: too large", field=field)
            return opened.convert("RGBA")
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise RequestError(f"{field} is not an image Pillow can read ({error})", field=field) from error


def _mask(form: Form, image: Any) -> Any:
    """diffusers' mask ("L", white = repaint) from OpenAI's (transparent = edit); None: nothing to edit
    marked (img2img)."""
    from PIL import ImageOps

    source = image
    if "mask" in form:
        source = _picture(form["mask"], "mask")
        if source.size != image.size:
            raise RequestError(
                f"mask is {source.width}x{source.height} but image is {image.width}x{image.height}; send a "
                "mask of the image's size",
                field="mask",
            )
    alpha = source.getchannel("A")
    if "mask" not in form and alpha.getextrema()[0] == 255:
        return None
    return ImageOps.invert(alpha)


def _strength(value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        strength = float(value)
    except ValueError:
        strength = -1.0
    if not 0 < strength <= 1:
        raise RequestError(f"strength must be a number in (0, 1], got {value[:20]!r}", field="strength")
    return strength
