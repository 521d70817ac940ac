"""Few-step recipes on a plain SD bundle, against diffusers' StableDiffusionPipeline with the same settings:
TCD (three gamma/step settings) and Turbo-style sampling (trailing timesteps, no guidance, 1-4 steps)."""

from __future__ import annotations

import pytest

from tests.parity import assert_parity, initial_latents, injected_noise

torch = pytest.importorskip("torch")

PROMPT = "a photo of a red cat"


def _with_scheduler(tiny, name: str, **overrides):
    import diffusers

    from sdrt.schedulers import get_scheduler_class

    ref = tiny.reference("sd1", "StableDiffusionPipeline")
    pipe = tiny.pipeline("sd1", "StableDiffusionPipeline")
    original = ref.scheduler
    ref.scheduler = getattr(diffusers, name).from_config(ref.scheduler.config, **overrides)
    pipe.scheduler = get_scheduler_class(name).from_config(pipe.scheduler.config, **overrides)
    return ref, pipe, original


@pytest.mark.parametrize(("steps", "eta"), [(2, 0.0), (4, 0.3), (8, 1.0)])
def test_tcd_matches_diffusers(tiny, steps, eta):
    ref, pipe, original = _with_scheduler(tiny, "TCDScheduler")
    latents = initial_latents((1, 4, 8, 8), seed=3)
    try:
        with injected_noise(11) as rng:
            expected = ref(
                PROMPT,
                num_inference_steps=steps,
                guidance_scale=1.5,
                eta=eta,
                latents=torch.from_numpy(latents),
                output_type="np",
            ).images
        actual = pipe(
            PROMPT,
            num_inference_steps=steps,
            guidance_scale=1.5,
            eta=eta,
            latents=latents,
            generator=rng,
            output_type="np",
        ).images
    finally:
        ref.scheduler = original
    assert_parity(actual, expected)


@pytest.mark.parametrize(
    ("scheduler", "steps"), [("EulerAncestralDiscreteScheduler", 1), ("EulerDiscreteScheduler", 4)]
)
def test_turbo_style_matches_diffusers(tiny, scheduler, steps):
    """SD-Turbo's recipe: trailing timestep spacing, guidance 0 (a single, unguided UNet batch), 1-4 steps."""
    ref, pipe, original = _with_scheduler(tiny, scheduler, timestep_spacing="trailing")
    latents = initial_latents((1, 4, 8, 8), seed=4)
    try:
        with injected_noise(5) as rng:
            expected = ref(
                PROMPT,
                num_inference_steps=steps,
                guidance_scale=0.0,
                latents=torch.from_numpy(latents),
                output_type="np",
            ).images
        actual = pipe(
            PROMPT,
            num_inference_steps=steps,
            guidance_scale=0.0,
            latents=latents,
            generator=rng,
            output_type="np",
        ).images
    finally:
        ref.scheduler = original
    assert_parity(actual, expected)


def test_tcd_from_the_cli(tiny, tmp_path, capsys):
    """``sdrt generate --scheduler tcd --eta 0.3``: TCD's recipe from the shell, as diffusers makes it."""
    import diffusers
    from PIL import Image

    from sdrt.cli.sdrt import main

    bundle = tiny.bundle("sd1")
    out = tmp_path / "tcd.png"
    options = ["--steps", "4", "--guidance", "1.5", "--scheduler", "tcd", "--eta", "0.3", "--seed", "7"]
    code = main(
        ["generate", str(bundle), PROMPT, *options, "--provider", "cpu", "--no-progress", "-o", str(out)]
    )
    assert code == 0, capsys.readouterr().err
    ref = diffusers.StableDiffusionPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    ref.scheduler = diffusers.TCDScheduler.from_config(ref.scheduler.config)
    expected = ref(
        PROMPT, num_inference_steps=4, guidance_scale=1.5, eta=0.3, generator=torch.Generator().manual_seed(7)
    ).images
    assert_parity([Image.open(out)], expected, threshold=40.0)
