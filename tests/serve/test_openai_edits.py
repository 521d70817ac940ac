"""OpenAI's ``/v1/images/edits`` through its client: a masked edit equals the runtime's inpainting pipeline
in-process (OpenAI's mask convention: transparent = edit); a mask of another size is a 400 naming it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from benchmarks.serve_load import ServerProcess
from tests.parity import psnr

from .conftest import KEY

openai = pytest.importorskip("openai")

PROMPT, SEED, STEPS = "a blue square", 5, 6


def _pictures(root: Path, mask_size: int = 64) -> tuple[Path, Path, Image.Image, Image.Image]:
    """A picture, OpenAI's mask of it (the centre transparent), and diffusers' mask (white = repaint)."""
    y, x = np.mgrid[0:64, 0:64] / 64
    picture = Image.fromarray((np.stack([x, y, 0.5 + 0 * x], axis=-1) * 255).astype(np.uint8))
    edit = np.zeros((mask_size, mask_size), dtype=bool)
    edit[mask_size // 4 : 3 * mask_size // 4, mask_size // 4 : 3 * mask_size // 4] = True
    alpha = np.where(edit, 0, 255).astype(np.uint8)
    mask = Image.fromarray(np.dstack([np.zeros_like(alpha)] * 3 + [alpha]), "RGBA")
    picture.save(root / "picture.png")
    mask.save(root / "mask.png")
    return (
        root / "picture.png",
        root / "mask.png",
        picture,
        Image.fromarray(np.where(edit, 255, 0).astype(np.uint8)),
    )


def _client(server: ServerProcess):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0)


def test_masked_edit_equals_runtime_inpaint_pipeline(server, shapes_bundle, tmp_path) -> None:
    import base64
    import io

    from sdrt.runtime import StableDiffusionInpaintPipeline

    picture_file, mask_file, picture, mask = _pictures(tmp_path)
    with picture_file.open("rb") as image, mask_file.open("rb") as mask_part:
        answer = _client(server).images.edit(
            image=image,
            mask=mask_part,
            prompt=PROMPT,
            response_format="b64_json",
            size="64x64",
            extra_body={"seed": SEED, "steps": STEPS},
        )
    served = Image.open(io.BytesIO(base64.b64decode(answer.data[0].b64_json or "")))
    assert served.size == (64, 64)
    pipe = StableDiffusionInpaintPipeline.from_pretrained(shapes_bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)

    def inpainted(mask_image: Image.Image) -> np.ndarray:
        image = pipe(
            PROMPT,
            image=picture,
            mask_image=mask_image,
            strength=1.0,
            num_inference_steps=STEPS,
            guidance_scale=7.5,
            height=64,
            width=64,
            generator=SEED,
        ).images[0]
        return np.asarray(image.convert("RGB")) / 255.0

    served_pixels = np.asarray(served.convert("RGB")) / 255.0
    assert psnr(served_pixels, inpainted(mask)) >= 40
    # the mask read as OpenAI's (transparent = edit), not the other way round
    assert psnr(served_pixels, inpainted(ImageOps.invert(mask))) < 30


def test_mask_of_another_size_is_400_naming_it(server, tmp_path) -> None:
    picture_file, mask_file, _, _ = _pictures(tmp_path, mask_size=32)
    with picture_file.open("rb") as image, mask_file.open("rb") as mask_part:
        with pytest.raises(openai.BadRequestError) as raised:
            _client(server).images.edit(
                image=image, mask=mask_part, prompt=PROMPT, response_format="b64_json"
            )
    assert raised.value.status_code == 400
    assert raised.value.body["param"] == "mask"  # OpenAI's error shape, as the generations route answers
