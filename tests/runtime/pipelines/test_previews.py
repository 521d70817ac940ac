"""Previews of a call's latents from a step callback (``runtime/pipelines/previews.py``), without a preview VAE:
AUTOMATIC1111's "Approx cheap" (``modules/sd_vae_approx.py``'s ``cheap_approximation``, then
``single_sample_to_image``'s ``* 0.5 + 0.5``), computed here in torch with its published factors."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

# A1111's factors, copied from modules/sd_vae_approx.py (SD 1.x/2.x, then SDXL)
A1111_SD = [[0.298, 0.207, 0.208], [0.187, 0.286, 0.173], [-0.158, 0.189, 0.264], [-0.184, -0.271, -0.473]]
A1111_SDXL = [
    [0.3448, 0.4168, 0.4395],
    [-0.1953, -0.0290, 0.0250],
    [0.1074, 0.0886, -0.0163],
    [-0.3730, -0.2499, -0.2088],
]


def a1111_cheap(sample: np.ndarray, factors: list[list[float]]) -> np.ndarray:
    """A1111's cheap approximation of one latent, as the uint8 HWC picture it shows."""
    x = torch.einsum("lxy,lr -> rxy", torch.from_numpy(sample), torch.tensor(factors))
    x = torch.clamp(x * 0.5 + 0.5, 0, 1)
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


@pytest.mark.parametrize(("kind", "factors"), [("sd1", A1111_SD), ("sdxl", A1111_SDXL)])
def test_cheap_previews_in_a_step_callback_are_a1111s(tiny, kind: str, factors: list[list[float]]) -> None:
    from sdrt.runtime.pipelines.previews import can_preview, preview_images

    class_name = "StableDiffusionXLPipeline" if kind == "sdxl" else "StableDiffusionPipeline"
    pipe = tiny.pipeline(kind, class_name)
    seen: list[tuple[np.ndarray, list]] = []

    def on_step(p, step, timestep, tensors):
        latents = np.array(tensors["latents"])
        seen.append((latents, preview_images(p, tensors["latents"], [1])))
        return {}

    pipe(
        ["a red cat", "a blue dog"], num_inference_steps=2, height=64, width=64, callback_on_step_end=on_step
    )
    assert can_preview(pipe) and len(seen) >= 2
    latents, previews = seen[-1]
    assert len(previews) == 1 and previews[0].size == (64, 64)
    small = previews[0].resize((8, 8), resample=0)  # the 8x8 projection, nearest-sampled back
    expected = a1111_cheap(latents[1], factors)
    assert np.abs(np.asarray(small).astype(int) - expected.astype(int)).max() <= 24
    exact = preview_images(pipe, latents, [1], size=(8, 8))[0]
    np.testing.assert_allclose(np.asarray(exact), expected, atol=1)
