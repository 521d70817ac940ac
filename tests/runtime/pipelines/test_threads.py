"""One pipeline object called from several threads at once: every call gives the image it gives alone.

Each call runs on its own copy of the scheduler and its own loop state (``runtime/pipelines/call_state.py``);
before that, two threads stepping one scheduler raised IndexError/TypeError or returned wrong images for all
three schedulers below. The sequential images are anchored to diffusers (same seeds), so "identical to
sequential" cannot hold for images that are wrong in both runs.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.parity import assert_parity

torch = pytest.importorskip("torch")

SCHEDULERS = ["PNDMScheduler", "DPMSolverMultistepScheduler", "EulerAncestralDiscreteScheduler"]
THREADS, CALLS_PER_THREAD = 4, 8
STEPS = 4
PROMPTS = ["a photo of a red cat", "a blue dog on a square", "a red circle", "the blue square background"]


def _call(index: int) -> dict:
    """The arguments of call ``index``: prompts, seeds, guidance and sizes vary, so crossed state shows."""
    return dict(
        prompt=PROMPTS[index % len(PROMPTS)],
        num_inference_steps=STEPS + index % 2,
        guidance_scale=(7.5, 1.0, 4.0)[index % 3],
        height=64 if index % 4 else 48,
        width=64,
        generator=1000 + index,
        output_type="np",
    )


@pytest.fixture(params=SCHEDULERS)
def pipes(request, tiny):
    import diffusers

    from sdrt.schedulers import get_scheduler_class

    pipe = tiny.pipeline("sd1", "StableDiffusionPipeline")
    pipe.scheduler = get_scheduler_class(request.param).from_config(pipe.scheduler.config)
    ref = diffusers.StableDiffusionPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    ref.scheduler = getattr(diffusers, request.param).from_config(ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    return pipe, ref


def test_threads_give_the_sequential_images(pipes):
    pipe, ref = pipes
    total = THREADS * CALLS_PER_THREAD
    sequential = [pipe(**_call(i)).images for i in range(total)]
    for i in (0, 1):  # the sequential images are diffusers' images for the same torch seeds
        kwargs = _call(i)
        kwargs["generator"] = torch.Generator().manual_seed(kwargs["generator"])
        assert_parity(sequential[i], ref(**kwargs).images)

    with ThreadPoolExecutor(THREADS) as pool:
        threaded = list(pool.map(lambda i: pipe(**_call(i)).images, range(total)))

    different = [i for i in range(total) if not np.array_equal(threaded[i], sequential[i])]
    assert not different, f"calls {different} gave other images in threads"


def test_an_interrupt_stops_only_its_own_call(tiny):
    """``pipe._interrupt = True`` in one call's callback skips that call's remaining steps, not the others'."""
    pipe = tiny.pipeline("sd1", "StableDiffusionPipeline")
    alone = [pipe(**_call(i)).images for i in range(8)]
    interrupted_alone = pipe(**_call(8), callback_on_step_end=_interrupt_after_first_step).images

    def run(i: int):
        if i == 8:
            return pipe(**_call(8), callback_on_step_end=_interrupt_after_first_step).images
        return pipe(**_call(i)).images

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(run, [8, *range(8)]))
    np.testing.assert_array_equal(results[0], interrupted_alone)
    assert not np.array_equal(results[0], pipe(**_call(8)).images)  # the interrupt did cut that call short
    for i in range(8):
        np.testing.assert_array_equal(results[i + 1], alone[i])


def _interrupt_after_first_step(pipe, i, t, tensors):
    pipe._interrupt = True
    return {}
