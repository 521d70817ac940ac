"""ControlNet over A1111's API through its client (webuiapi's ``ControlNetUnit``): the served image equals the
runtime's StableDiffusionControlNetPipeline in-process and is near diffusers'; sd-webui-controlnet's
``/controlnet/*`` routes; bad units refused naming their field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from benchmarks.serve_load import ServerProcess
from tests.parity import psnr

from .conftest import KEY, PASSWORD, SHIPPED_MODEL, USER

webuiapi = pytest.importorskip("webuiapi")

SETTINGS = {"steps": 6, "cfg_scale": 7.5, "width": 64, "height": 64, "sampler_name": "Euler a"}
PROMPT, SEED = "a red circle", 4
NEAR_DIFFUSERS_DB = 40.0  # measured: the served image equals diffusers' after 8-bit rounding (inf dB)


def control_image(flip: bool = False) -> Image.Image:
    y, x = np.mgrid[0:64, 0:64] / 64
    edges = (np.abs(np.sin(9 * x) * np.cos(7 * y)) > 0.5).astype(np.float64)
    image = Image.fromarray((np.stack([edges, x, 1.0 - y], axis=-1) * 255).astype(np.uint8))
    return image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else image


@pytest.fixture
def webui(server: ServerProcess):
    return webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1", username=USER, password=PASSWORD)


def _served(webui, units: list, prompt: str = PROMPT) -> np.ndarray:
    served = {"sd_model_checkpoint": "sd-shapes-cn"}
    # a fresh alwayson_scripts each call: webuiapi's default {} is shared, so it keeps the last call's units
    result = webui.txt2img(
        prompt=prompt,
        seed=SEED,
        controlnet_units=units,
        alwayson_scripts={},
        override_settings=served,
        **SETTINGS,
    )
    return np.asarray(result.images[0].convert("RGB")) / 255.0


def _unit(weight: float = 1.0, flip: bool = False, model: str = "controlnet", **extra):
    return webuiapi.ControlNetUnit(
        image=control_image(flip), module="none", model=model, weight=weight, **extra
    )


def _in_process(bundle: Path, weight: float | None) -> np.ndarray:
    """The runtime's ControlNet pipeline over the bundle's first ControlNet (None: its plain pipeline)."""
    from sdrt.runtime import StableDiffusionControlNetPipeline, StableDiffusionPipeline

    pipe = StableDiffusionControlNetPipeline.from_pretrained(bundle, provider="cpu")
    pipe = StableDiffusionControlNetPipeline(**{**pipe.components, "controlnet": pipe.controlnet.nets[0]})
    control = {"image": control_image(), "controlnet_conditioning_scale": weight}
    if weight is None:
        pipe, control = StableDiffusionPipeline.from_pipe(pipe), {}
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        PROMPT,
        **control,
        num_inference_steps=SETTINGS["steps"],
        guidance_scale=SETTINGS["cfg_scale"],
        height=64,
        width=64,
        generator=SEED,
        prompt_syntax="a1111",
    ).images[0]
    return np.asarray(image.convert("RGB")) / 255.0


def _diffusers(net: Path, weight: float) -> np.ndarray:
    import diffusers
    import torch

    pipe = diffusers.StableDiffusionControlNetPipeline.from_pretrained(
        SHIPPED_MODEL, controlnet=diffusers.ControlNetModel.from_pretrained(net), safety_checker=None
    )
    pipe.set_progress_bar_config(disable=True)
    image = pipe(
        PROMPT,
        image=control_image(),
        controlnet_conditioning_scale=weight,
        num_inference_steps=SETTINGS["steps"],
        guidance_scale=SETTINGS["cfg_scale"],
        height=64,
        width=64,
        generator=torch.Generator().manual_seed(SEED),
    ).images[0]
    return np.asarray(image.convert("RGB")) / 255.0


def test_unit_equals_runtime_pipeline_and_is_near_diffusers(webui, controlnet_served) -> None:
    bundle, nets = controlnet_served
    served = _served(webui, [_unit(0.8)])
    assert psnr(served, _in_process(bundle, 0.8)) >= 40
    assert psnr(served, _diffusers(nets[0], 0.8)) >= NEAR_DIFFUSERS_DB
    assert psnr(served, _served(webui, [_unit(0.8, flip=True)])) < 30, "the control image changed nothing"
    plain, zero = _served(webui, []), _served(webui, [_unit(0.0)])
    assert psnr(plain, _in_process(bundle, None)) >= 40
    assert psnr(served, plain) < 30
    np.testing.assert_array_equal(zero, plain)  # weight 0: the plain image
    two = _served(webui, [_unit(0.8), _unit(0.5, flip=True, model="controlnet_edges")])
    assert psnr(two, served) < 30  # the second ControlNet took part


def test_controlnet_routes(webui, server: ServerProcess) -> None:
    assert webui.controlnet_model_list() == ["controlnet", "controlnet_edges"]
    assert webui.controlnet_module_list() == ["none"]
    version = requests.get(f"{server.url}/controlnet/version", headers={"Authorization": f"Bearer {KEY}"})
    assert version.json() == {"version": 3}


@pytest.mark.parametrize(
    ("unit", "field"),
    [
        ({"model": "canny"}, "args[0].model"),
        ({"module": "canny"}, "args[0].module"),
        ({"control_mode": "ControlNet is more important"}, "args[0].control_mode"),
        ({"image": "bm90IGFuIGltYWdl"}, "args[0].image"),
        ({"weight": "heavy"}, "args[0].weight"),
    ],
)
def test_bad_units_are_400_naming_the_field(server: ServerProcess, unit: dict, field: str) -> None:
    import base64
    import io

    buffer = io.BytesIO()
    control_image().save(buffer, format="PNG")
    full = {"image": base64.b64encode(buffer.getvalue()).decode(), "module": "none", "model": "controlnet"}
    body = {
        "prompt": PROMPT,
        "steps": 2,
        "override_settings": {"sd_model_checkpoint": "sd-shapes-cn"},
        "alwayson_scripts": {"controlnet": {"args": [{**full, **unit}]}},
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    answer = requests.post(f"{server.url}/sdapi/v1/txt2img", json=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == f"alwayson_scripts.controlnet.{field}"
    body["override_settings"] = {"sd_model_checkpoint": "sd-shapes"}
    body["alwayson_scripts"] = {"controlnet": {"args": [full]}}
    answer = requests.post(f"{server.url}/sdapi/v1/txt2img", json=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert "has no ControlNet" in answer.json()["detail"]


def test_equal_units_share_calls_and_hand_diffusers_arguments() -> None:
    from sdrt.serve.batching import call_arguments, plan_calls
    from sdrt.serve.controlnet_units import ControlUse
    from sdrt.serve.requests import Job, Row, Settings

    canny, edges = ControlUse("controlnet", 0.8, 0.0, 1.0), ControlUse("controlnet_edges", 0.5, 0.2, 0.9)
    base = Settings("m", "txt2img", 64, 64, 8, 7.5, None)
    a, b = control_image(), control_image(flip=True)
    jobs = [
        Job(Settings(**{**base.__dict__, "controlnets": units}), (Row("p", "", i, control=images),))
        for i, (units, images) in enumerate(
            [((canny,), (a,)), ((edges,), (a,)), ((canny,), (b,)), ((), ()), ((canny, edges), (a, b))]
        )
    ]
    calls = plan_calls(jobs, max_rows=8)
    assert sorted(c.owners for c in calls) == [(0, 2), (1,), (3,), (4,)]
    one = call_arguments(next(c for c in calls if c.owners == (0, 2)))
    assert one["image"] == [a, b] and one["controlnet_conditioning_scale"] == 0.8
    two = call_arguments(next(c for c in calls if c.owners == (4,)))
    assert two["image"] == [[a, b]] and two["control_guidance_start"] == [0.0, 0.2]
    assert "image" not in call_arguments(next(c for c in calls if c.owners == (3,)))
