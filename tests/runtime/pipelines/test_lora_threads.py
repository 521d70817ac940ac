"""Run-time LoRA with one pipeline called from several threads: a call runs the adapters, weights and scale
it started with, whatever other threads load, unload, fuse, set or scale meanwhile; every image equals the
same call run alone, bit for bit. Before, a load in one thread changed the steps left of a call in another
(images matching neither LoRA), and two threads' ``cross_attention_kwargs`` scales crossed.
``fuse_lora`` twice fuses once, as diffusers (PEFT's ``check_adapters_to_merge``)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tests.lora_files import diffusers_lora_file, kohya_lora_file
from tests.parity import assert_parity, psnr
from tests.runtime.pipelines.test_lora import LATENTS, PROMPT, _ours, _run

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")

SCALES = (None, 0.5, 1.5)
PROMPTS = (PROMPT, "a blue square")
WAIT_S = 120  # a forced interleaving that never comes fails, it does not hang


@pytest.fixture(scope="module")
def files(tiny, tmp_path_factory):
    root, model = tmp_path_factory.mktemp("loras"), tiny.model("sd1")
    return {"a": diffusers_lora_file(root, model, 1, alpha=8), "b": kohya_lora_file(root, model, 2, alpha=2)}


def _kwargs(index: int) -> dict:
    scale = SCALES[index % len(SCALES)]
    return {
        "prompt": PROMPTS[index // len(SCALES) % len(PROMPTS)],
        "cross_attention_kwargs": None if scale is None else {"scale": scale},
    }


def _image(pipe, prompt=PROMPT, **kwargs):
    return np.asarray(pipe(prompt, latents=LATENTS, num_inference_steps=3, output_type="np", **kwargs).images)


def test_scales_in_threads_give_each_call_its_own_image(tiny, files):
    pipe = _ours(tiny)
    pipe.load_lora_weights(files["a"], adapter_name="a")
    pipe.load_lora_weights(files["b"], adapter_name="b")
    pipe.set_adapters(["a", "b"], adapter_weights=[0.7, 0.3])
    calls, threads = len(SCALES) * len(PROMPTS), len(SCALES)
    alone = [_image(pipe, **_kwargs(i)) for i in range(calls)]
    assert psnr(alone[0], alone[1]) < 35  # the scale changes the picture
    together = threading.Barrier(threads, timeout=WAIT_S)  # every thread's call is past its start at once

    def meet(pipe, i, t, tensors):
        if i == 0:
            together.wait()
        return {}

    threaded: dict[int, np.ndarray] = {}

    def run(first: int) -> None:
        for i in range(first, calls, threads):
            threaded[i] = _image(pipe, callback_on_step_end=meet, **_kwargs(i))

    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(run, first) for first in range(threads)]:
            done.result()
    crossed = [i for i in range(calls) if not np.array_equal(threaded[i], alone[i])]
    assert not crossed, f"calls {crossed} gave another call's image in threads"


def test_calls_while_another_thread_switches_adapters_run_one_set_whole(tiny, files):
    """Each call's image is the image of one of the sets alone (the one current when it started), never
    a mixture, while a thread switches sets and scales calls go on."""
    pipe = _ours(tiny)
    pipe.load_lora_weights(files["a"], adapter_name="a")
    pipe.load_lora_weights(files["b"], adapter_name="b")
    sets = [(["a"], [1.0]), (["b"], [1.0]), (["a", "b"], [0.5, 0.5])]
    alone = {}
    for n, (names, weights) in enumerate(sets):
        pipe.set_adapters(names, adapter_weights=weights)
        for scale in SCALES[:2]:
            alone[n, scale] = _image(pipe, **_kwargs(SCALES.index(scale)))
    stop = threading.Event()

    def switch() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            pipe.set_adapters(*sets[n % len(sets)])

    switcher = threading.Thread(target=switch)
    switcher.start()
    try:
        with ThreadPoolExecutor(3) as pool:
            threaded = list(pool.map(lambda i: (i % 2, _image(pipe, **_kwargs(i % 2))), range(9)))
    finally:
        stop.set()
        switcher.join()
    for i, (index, image) in enumerate(threaded):
        scale = SCALES[index]
        matches = [n for n in range(len(sets)) if np.array_equal(image, alone[n, scale])]
        assert matches, f"call {i} (scale {scale}) matched no adapter set alone: a mixture"


ACTIONS = {
    "load": lambda pipe, files: pipe.load_lora_weights(files["b"], adapter_name="b"),
    "unload": lambda pipe, files: pipe.unload_lora_weights(),
    "fuse": lambda pipe, files: pipe.fuse_lora(lora_scale=0.8),
    "set_adapters": lambda pipe, files: pipe.set_adapters("a", adapter_weights=0.3),
    "scaled call": lambda pipe, files: _image(pipe, cross_attention_kwargs={"scale": 1.5}),
}


@pytest.mark.parametrize("scale", [None, 0.5])
@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_change_in_another_thread_does_not_reach_a_running_call(tiny, files, action, scale):
    """B changes the LoRA after A's first step and before its second (A's step-end callback waits for it):
    A's image is A's alone; the call after it sees B's change."""
    pipe = _ours(tiny)
    pipe.load_lora_weights(files["a"], adapter_name="a")
    call = {} if scale is None else {"cross_attention_kwargs": {"scale": scale}}
    alone = _image(pipe, **call)
    stepped, changed = threading.Event(), threading.Event()

    def wait_for_b(pipe, i, t, tensors):
        if i == 0:
            stepped.set()
            assert changed.wait(WAIT_S), "thread B never changed the LoRA"
        return {}

    def b() -> None:
        assert stepped.wait(WAIT_S), "thread A never stepped"
        try:
            ACTIONS[action](pipe, files)
        finally:
            changed.set()

    with ThreadPoolExecutor(2) as pool:
        a_image = pool.submit(_image, pipe, callback_on_step_end=wait_for_b, **call)
        pool.submit(b).result()
        np.testing.assert_array_equal(a_image.result(), alone)
    if action != "scaled call":
        assert not np.array_equal(_image(pipe, **call), alone)  # B's change is there for the calls after


def test_fuse_lora_twice_fuses_once_as_diffusers(tiny, files):
    once, twice = _ours(tiny), _ours(tiny)
    for pipe, times in ((once, 1), (twice, 2)):
        pipe.load_lora_weights(files["a"], adapter_name="a")
        for _ in range(times):
            pipe.fuse_lora(lora_scale=0.5)
        pipe.unload_lora_weights()
    np.testing.assert_array_equal(_run(twice), _run(once))

    ref = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    ref.set_progress_bar_config(disable=True)
    ref.load_lora_weights(str(files["a"]), adapter_name="a")
    ref.fuse_lora(lora_scale=0.5)
    ref.fuse_lora(lora_scale=0.5)
    ref.unload_lora_weights()
    assert_parity(_run(twice), _run(ref), threshold=40.0)
