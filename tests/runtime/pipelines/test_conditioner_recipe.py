"""The "add a conditioner" recipe, proved with no package edit: a conditioner and a pipeline using it are
written here only (``conditioners.Conditioner`` subclass, ``open_call`` + ``generate``), and the image equals
diffusers' text-to-image with a step-end callback doing the same to the latents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

from sdrt.runtime.pipelines.call_state import pipeline_call
from sdrt.runtime.pipelines.conditioners import Conditioner
from sdrt.runtime.pipelines.stable_diffusion import StableDiffusionBase
from tests.parity import assert_parity

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 3
NUDGE = 0.05


class NudgeLatents(Conditioner):
    """Made up for this test: adds a constant to the latents after every step."""

    def __init__(self, value: float) -> None:
        self.value = value

    def after_step(self, i: int, t: Any, state: dict[str, Any]) -> None:
        state["latents"] = state["latents"] + self.value


class NudgedPipeline(StableDiffusionBase):
    """Made up for this test: SD 1/2 text-to-image with the latents nudged by ``nudge`` after every step."""

    @pipeline_call
    def __call__(
        self,
        prompt: str | list[str] | None = None,
        nudge: float = 0.0,
        num_inference_steps: int = 50,
        guidance_scale: float = 7.5,
        generator: Any = None,
        output_type: str = "pil",
        return_dict: bool = True,
        callback_on_step_end: Callable[..., dict[str, Any]] | None = None,
        callback_on_step_end_tensor_inputs: Sequence[str] = ("latents",),
    ) -> Any:
        return self.generate(self.open_call(self.default_size(), [NudgeLatents(nudge)]))


def test_a_conditioner_written_outside_the_package_plugs_in(tiny):
    pipe = NudgedPipeline(**tiny.pipeline("sd1", "StableDiffusionPipeline").components)
    pipe.set_progress_bar_config(disable=True)
    ref = diffusers.StableDiffusionPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    ref.set_progress_bar_config(disable=True)

    def nudge(pipeline: Any, i: int, t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        return {"latents": tensors["latents"] + NUDGE}

    def run(**kwargs: Any) -> Any:
        generator = torch.Generator().manual_seed(1234)
        return pipe(PROMPT, num_inference_steps=STEPS, generator=generator, output_type="np", **kwargs).images

    nudged = run(nudge=NUDGE)
    expected = ref(
        PROMPT,
        num_inference_steps=STEPS,
        generator=torch.Generator().manual_seed(1234),
        output_type="np",
        callback_on_step_end=nudge,
    ).images
    assert_parity(nudged, expected)
    assert not np.allclose(nudged, run(nudge=0.0), atol=1e-3)  # the conditioner did change the image
