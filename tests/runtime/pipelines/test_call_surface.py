"""diffusers' call surface on sdrt's pipelines, each against diffusers (or transformers) where it has a
reference: torch generators, the deprecated ``callback``, ``cross_attention_kwargs``, ``clip_skip``,
``output_type="pt"``, ``pipe.components`` and the constructors, ``config``/``device``/``dtype``/``to``,
the per-call properties a callback reads, the scheduler slot and the tokenizer."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from tests.parity import assert_parity, initial_latents
from tests.runtime.pipelines.test_img2img_inpaint import init_image

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

PROMPT = "a photo of a red cat"
STEPS = 4


@pytest.fixture
def sd1(tiny):
    ref = diffusers.StableDiffusionPipeline.from_pipe(tiny.reference("sd1", "StableDiffusionPipeline"))
    ref.set_progress_bar_config(disable=True)
    return ref, tiny.pipeline("sd1", "StableDiffusionPipeline")


def _euler_a(ref, pipe) -> None:
    from sdrt.schedulers import EulerAncestralDiscreteScheduler

    ref.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(ref.scheduler.config)
    pipe.scheduler = EulerAncestralDiscreteScheduler.from_config(pipe.scheduler.config)


# ---- generator=torch.Generator ------------------------------------------------------------------------
def test_torch_generator_draws_as_diffusers(sd1):
    ref, pipe = sd1
    _euler_a(ref, pipe)  # draws the latents and noise at every step
    expected = ref(PROMPT, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(4321)).images
    actual = pipe(PROMPT, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(4321)).images
    assert_parity(actual, expected)


def test_list_of_torch_generators_and_img2img(tiny, sd1):
    ref, pipe = sd1
    _euler_a(ref, pipe)

    def generators():
        return [torch.Generator().manual_seed(s) for s in (8, 9)]

    kwargs = dict(num_inference_steps=STEPS, num_images_per_prompt=2)
    assert_parity(
        pipe(PROMPT, generator=generators(), **kwargs).images,
        ref(PROMPT, generator=generators(), **kwargs).images,
    )
    ref_i2i = diffusers.StableDiffusionImg2ImgPipeline(**ref.components)
    ref_i2i.set_progress_bar_config(disable=True)
    from sdrt.runtime import StableDiffusionImg2ImgPipeline

    i2i = StableDiffusionImg2ImgPipeline(**pipe.components)
    i2i.set_progress_bar_config(disable=True)
    kwargs = dict(image=init_image(), strength=0.7, **kwargs)
    assert_parity(
        i2i(PROMPT, generator=generators(), **kwargs).images,
        ref_i2i(PROMPT, generator=generators(), **kwargs).images,
    )


# ---- callbacks and what they read ----------------------------------------------------------------------
def test_deprecated_callback_every_callback_steps(sd1):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=20)
    seen: dict[str, list] = {"diffusers": [], "sdrt": []}

    def recorder(name):
        return lambda step, t, lat: seen[name].append((step, float(t), np.array(lat, dtype=np.float32)))

    kwargs = dict(num_inference_steps=5, callback_steps=2)
    for name, call, lat in (("diffusers", ref, torch.from_numpy(latents)), ("sdrt", pipe, latents)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call(PROMPT, latents=lat, callback=recorder(name), **kwargs)
        said = [str(w.message) for w in caught if issubclass(w.category, FutureWarning)]
        for old in ("callback", "callback_steps"):
            assert any(
                f"Passing `{old}` as an input argument to `__call__` is deprecated" in m for m in said
            ), name
    assert [s[:2] for s in seen["sdrt"]] == [s[:2] for s in seen["diffusers"]] and len(seen["sdrt"]) >= 2
    for ours, theirs in zip(seen["sdrt"], seen["diffusers"]):
        np.testing.assert_allclose(ours[2], theirs[2], atol=1e-4)


def test_callback_reads_the_calls_properties(sd1):
    ref, pipe = sd1
    _euler_a(ref, pipe)  # a scheduler with diffusers' step_index
    latents = initial_latents((1, 4, 8, 8), seed=21)
    seen: dict[str, list] = {"diffusers": [], "sdrt": []}

    def recorder(name):
        def callback(p, i, t, tensors):
            seen[name].append(
                (i, p.scheduler.step_index, p.num_timesteps, p.guidance_scale, p.do_classifier_free_guidance)
            )
            seen[name].append((p.interrupt, p.guidance_rescale, p.clip_skip, p.cross_attention_kwargs))
            return {}

        return callback

    kwargs = dict(num_inference_steps=STEPS, guidance_scale=5.0, guidance_rescale=0.3)
    ref(
        PROMPT,
        latents=torch.from_numpy(latents),
        generator=torch.Generator().manual_seed(0),
        callback_on_step_end=recorder("diffusers"),
        **kwargs,
    )
    pipe(PROMPT, latents=latents, generator=0, callback_on_step_end=recorder("sdrt"), **kwargs)
    assert seen["sdrt"] == seen["diffusers"] and seen["sdrt"]


# ---- cross_attention_kwargs, clip_skip, output_type="pt" ------------------------------------------------
@pytest.mark.parametrize(
    "kwargs", [{"cross_attention_kwargs": None}, {"cross_attention_kwargs": {}}, {"clip_skip": None}]
)
def test_accepted_options_give_diffusers_image(sd1, kwargs):
    ref, pipe = sd1
    latents = initial_latents((1, 4, 8, 8), seed=22)
    expected = ref(
        PROMPT, num_inference_steps=STEPS, latents=torch.from_numpy(latents), output_type="np", **kwargs
    )
    actual = pipe(PROMPT, num_inference_steps=STEPS, latents=latents, output_type="np", **kwargs)
    assert_parity(actual.images, expected.images)


def test_clip_skip_zero_is_the_last_hidden_state(sd1):
    """diffusers' clip_skip=k takes final_layer_norm(hidden_states[-(k + 1)]): for 0, the last hidden state
    (diffusers' own clip_skip path fails on transformers 5's CLIPTextModel, so its math is checked here)."""
    ref, pipe = sd1
    ids = ref.tokenizer(
        PROMPT, padding="max_length", max_length=77, truncation=True, return_tensors="pt"
    ).input_ids
    with torch.no_grad():
        out = ref.text_encoder(ids, output_hidden_states=True)
        skipped = ref.text_encoder.final_layer_norm(out.hidden_states[-(0 + 1)])
    torch.testing.assert_close(skipped, out.last_hidden_state)
    latents = initial_latents((1, 4, 8, 8), seed=22)
    expected = ref(PROMPT, num_inference_steps=STEPS, latents=torch.from_numpy(latents), output_type="np")
    actual = pipe(PROMPT, num_inference_steps=STEPS, latents=latents, output_type="np", clip_skip=0)
    assert_parity(actual.images, expected.images)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"cross_attention_kwargs": {"scale": "half"}}, "must be a number"),
        ({"cross_attention_kwargs": {"attn_mask": 1}}, r"cross_attention_kwargs \['attn_mask'\].*pass None"),
        ({"clip_skip": 1}, "exported without clip_skip.*--clip-skip 1, or pass clip_skip=None"),
        ({"clip_skip": 2}, "clip_skip=2.*--clip-skip 2"),
    ],
)
def test_refused_options_say_why(sd1, kwargs, message):
    from sdrt.runtime.errors import InputError

    with pytest.raises(InputError, match=message):
        sd1[1](PROMPT, num_inference_steps=STEPS, **kwargs)


def test_output_type_pt(sd1):
    ref, pipe = sd1
    latents = initial_latents((2, 4, 8, 8), seed=23)
    expected = ref(
        [PROMPT, "a blue dog"], num_inference_steps=STEPS, latents=torch.from_numpy(latents), output_type="pt"
    ).images
    actual = pipe([PROMPT, "a blue dog"], num_inference_steps=STEPS, latents=latents, output_type="pt").images
    assert isinstance(actual, torch.Tensor) and actual.dtype == expected.dtype == torch.float32
    assert actual.shape == expected.shape == (2, 3, 64, 64)
    assert_parity(actual.permute(0, 2, 3, 1).numpy(), expected.permute(0, 2, 3, 1).numpy())


# ---- components, constructors, from_pipe ----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("sd1", "StableDiffusionPipeline"),
        ("sd1", "StableDiffusionImg2ImgPipeline"),
        ("inpaint", "StableDiffusionInpaintPipeline"),
        ("sdxl", "StableDiffusionXLPipeline"),
        ("uncond", "DDPMPipeline"),
    ],
)
def test_components_and_config_have_diffusers_parts(tiny, kind, name):
    ref, pipe = tiny.reference(kind, name), tiny.pipeline(kind, name)
    assert set(pipe.components) == set(ref.components)
    assert {k for k in pipe.config if not k.startswith("_")} == {
        k for k in ref.config if not k.startswith("_")
    }
    assert pipe.config["_class_name"] == type(ref).__name__ == name
    assert pipe.config.unet[0] == "sdrt" and pipe.config.scheduler == ("sdrt", ref.config.scheduler[1])
    for part in set(ref.components) - {"safety_checker", "feature_extractor", "image_encoder"}:
        assert (pipe.components[part] is None) == (ref.components[part] is None), part
    rebuilt = type(pipe)(**pipe.components)
    assert rebuilt.components.keys() == pipe.components.keys()
    assert all(rebuilt.components[k] is v for k, v in pipe.components.items() if k != "scheduler")


def test_pipelines_made_from_components_match_diffusers(tiny, sd1):
    from sdrt.runtime import StableDiffusionInpaintPipeline

    ref, pipe = sd1
    ref_inpaint = diffusers.StableDiffusionInpaintPipeline(**ref.components)
    ref_inpaint.set_progress_bar_config(disable=True)
    inpaint = StableDiffusionInpaintPipeline(**pipe.components)
    inpaint.set_progress_bar_config(disable=True)
    mask = np.zeros((64, 64), np.float32)
    mask[16:48, 8:40] = 1.0
    kwargs = dict(image=init_image(), mask_image=mask, num_inference_steps=STEPS, strength=0.8)
    expected = ref_inpaint(PROMPT, generator=torch.Generator().manual_seed(3), **kwargs).images
    assert_parity(inpaint(PROMPT, generator=3, **kwargs).images, expected)
    assert inpaint.unet is pipe.unet and inpaint.vae is pipe.vae  # shared, nothing reloaded


def test_constructor_refusals(tiny, sd1):
    from sdrt.runtime import (
        StableDiffusionImg2ImgPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )
    from sdrt.runtime.errors import BundleError, InputTypeError

    ref, pipe = sd1
    parts = pipe.components
    sd2 = tiny.pipeline("sd2", "StableDiffusionPipeline")  # its bundle has no VAE encoder
    with pytest.raises(BundleError, match="needs the vae_encoder engine.*from_pretrained"):
        StableDiffusionImg2ImgPipeline(**sd2.components)
    with pytest.raises(BundleError, match="needs `unet`"):
        StableDiffusionPipeline(**{**parts, "unet": None})
    with pytest.raises(BundleError, match="needs `scheduler`"):
        StableDiffusionPipeline(**{**parts, "scheduler": None})
    with pytest.raises(BundleError, match="has `text_encoder` but no `tokenizer`"):
        StableDiffusionPipeline(**{**parts, "tokenizer": None})
    with pytest.raises(
        BundleError, match="holds a 'sd1' model, which StableDiffusionXLPipeline does not run"
    ):
        StableDiffusionXLPipeline(**{k: v for k, v in parts.items() if k != "safety_checker"})
    with pytest.raises(InputTypeError, match="a diffusers module cannot run in sdrt"):
        StableDiffusionPipeline(**{**parts, "unet": ref.unet})
    with pytest.raises(InputTypeError, match="runs the safety checker as an engine.*--safety-checker"):
        StableDiffusionPipeline(**{**parts, "safety_checker": object()})
    with pytest.raises(InputTypeError, match="unexpected keyword arguments \\['unett'\\]"):
        StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu", unett=parts["unet"])


# ---- config, device, dtype, to, slicing ------------------------------------------------------------------
def test_device_dtype_and_to(sd1, caplog):
    ref, pipe = sd1
    assert pipe.device == ref.device.type == "cpu"
    assert pipe.dtype == np.dtype(str(ref.dtype).removeprefix("torch."))
    with caplog.at_level(logging.WARNING, logger="sdrt.runtime.pipelines.surface"):
        assert pipe.to("cpu") is pipe and pipe.to(torch.device("cpu"), torch.float32) is pipe
        assert pipe.to(dtype=np.float32) is pipe
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="sdrt.runtime.pipelines.surface"):
        assert pipe.to("cuda") is pipe
        pipe.to(torch.float16)
    assert len(caplog.records) == 2
    assert "device cuda (it is cpu)" in caplog.text and "provider='cpu' | 'cuda' | 'tensorrt'" in caplog.text
    assert "dtype float16 (it is float32)" in caplog.text and "--precision" in caplog.text


def test_slicing_is_accepted_and_changes_nothing(sd1):
    ref, pipe = sd1
    ref.enable_attention_slicing()
    ref.vae.enable_slicing()  # diffusers 0.42 moved enable_vae_slicing to the VAE
    pipe.enable_attention_slicing()
    pipe.enable_vae_slicing()
    latents = initial_latents((1, 4, 8, 8), seed=24)
    expected = ref(PROMPT, num_inference_steps=STEPS, latents=torch.from_numpy(latents)).images
    assert_parity(pipe(PROMPT, num_inference_steps=STEPS, latents=latents).images, expected)
    pipe.disable_attention_slicing()
    pipe.disable_vae_slicing()


# ---- the scheduler slot and the tokenizer ----------------------------------------------------------------
def test_a_diffusers_scheduler_is_refused_with_the_fix(sd1):
    from sdrt.runtime.errors import InputTypeError

    ref, pipe = sd1
    with pytest.raises(
        InputTypeError,
        match=r"sdrt\.schedulers\.EulerDiscreteScheduler\.from_config\(pipe\.scheduler\.config\)",
    ):
        pipe.scheduler = diffusers.EulerDiscreteScheduler.from_config(ref.scheduler.config)
    from sdrt.schedulers import EulerDiscreteScheduler

    pipe.scheduler = EulerDiscreteScheduler.from_config(pipe.scheduler.config)  # the fix the message gives
    assert type(pipe.scheduler).__name__ == "EulerDiscreteScheduler"


def test_pipeline_tokenizer_like_transformers(sd1):
    ref, pipe = sd1
    for text in ("a cat", ["a cat", "a photo of a red dog"], ""):
        assert dict(pipe.tokenizer(text)) == dict(ref.tokenizer(text))
    ours = pipe.tokenizer(["a cat", "a dog"], padding="max_length", max_length=77, return_tensors="np")
    theirs = ref.tokenizer(["a cat", "a dog"], padding="max_length", max_length=77, return_tensors="np")
    np.testing.assert_array_equal(ours.input_ids, theirs.input_ids)


def test_no_warning_without_the_deprecated_callback(sd1):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        sd1[1](PROMPT, num_inference_steps=2)


def test_diffusers_loading_options_are_accepted_with_a_warning(tiny, caplog):
    """``from_pretrained(..., torch_dtype=torch.float16)`` loads in diffusers; it loads here too, and says
    that the precision is the bundle's."""
    import logging

    import torch

    from sdrt.runtime import StableDiffusionPipeline

    with caplog.at_level(logging.WARNING, logger="sdrt.runtime.pipelines.base"):
        pipe = StableDiffusionPipeline.from_pretrained(
            tiny.bundle("sd1"), provider="cpu", torch_dtype=torch.float16
        )
    assert pipe.dtype == "float32"
    assert any(
        "torch_dtype" in r.getMessage() and "build-engine --precision" in r.getMessage()
        for r in caplog.records
    )
