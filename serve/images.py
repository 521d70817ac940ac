"""Pictures in requests and answers: base64 (optionally a data URL) in, base64 PNG out."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from .fields import RequestError

MAX_INPUT_PIXELS = 4096 * 4096


def decode_image(value: Any, field: str, mode: str) -> Any:
    """A PIL image in ``mode`` from a base64 string, or a RequestError naming ``field``."""
    from PIL import Image, UnidentifiedImageError

    if not isinstance(value, str) or not value:
        raise RequestError(f"{field} must be a base64-encoded image (PNG, JPEG, WebP)", field=field)
    if value.startswith("data:"):
        value = value.partition(",")[2]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as error:
        raise RequestError(f"{field} is not valid base64 ({error})", field=field) from error
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_INPUT_PIXELS:
                raise RequestError(
                    f"{field} is {image.width}x{image.height}; this server takes pictures up to "
                    f"{MAX_INPUT_PIXELS} pixels",
                    field=field,
                )
            return image.convert(mode)
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise RequestError(f"{field} is not an image Pillow can read ({error})", field=field) from error


def fit(image: Any, width: int, height: int) -> Any:
    """A1111's "just resize" (resize_mode 0): the picture stretched to the request's size."""
    from PIL import Image

    if image.size == (width, height):
        return image
    return image.resize((width, height), Image.Resampling.LANCZOS)


def png_bytes(image: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
