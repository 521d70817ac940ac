"""NaN or Inf from a call is reported with what this call had that can make them (its run-time LoRA and
scale, the embeddings its prompt used, its callback), never with the fp16 advice on an fp32 bundle; LoRA
weights that are NaN, not matrices, or that overflow when merged are refused at load, naming the layer."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.runtime.errors import EngineError, InputError
from tests.models import TEXT_HIDDEN

torch = pytest.importorskip("torch")
safetensors_numpy = pytest.importorskip("safetensors.numpy")


@pytest.fixture(scope="module")
def pipe(tiny):
    from sdrt.runtime import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.fixture(scope="module")
def lora(tiny, tmp_path_factory):
    from tests.lora_files import diffusers_lora_file

    file = diffusers_lora_file(tmp_path_factory.mktemp("nan_lora"), tiny.model("sd1"), seed=1)
    return safetensors_numpy.load_file(str(file))


def _nan_callback(pipe, step, timestep, tensors):
    return {"latents": tensors["latents"] * np.nan}


def _run(pipe, prompt="a red cat", **kwargs):
    return pipe(prompt, num_inference_steps=2, output_type="np", **kwargs)


def test_damaged_lora_weights_are_refused_at_load(pipe, lora):
    key = next(k for k in lora if k.startswith("unet.") and "lora_A" in k)
    with pytest.raises(InputError, match=f"{key}.*NaN or Inf.*use another"):
        pipe.load_lora_weights({**lora, key: lora[key] * np.nan})
    with pytest.raises(InputError, match=f"down weight of {key} has shape \\[\\], not a matrix"):
        pipe.load_lora_weights({**lora, key: np.array(1.0, np.float32)})
    assert pipe.get_list_adapters() == {}


def test_lora_overflow_is_blamed_on_the_lora_not_on_fp16(pipe, lora):
    key = next(k for k in lora if k.startswith("unet.") and "lora_A" in k)
    module = key[: key.index(".lora_A")]
    pipe.load_lora_weights({**lora, f"{module}.alpha": np.array(1e38, np.float32)}, adapter_name="huge")
    with pytest.raises(
        InputError, match=f"{key} \\(alpha 1e\\+38, rank 4\\) at weight 1000 makes .* overflow"
    ):
        pipe.set_adapters(["huge"], [1e3])
    pipe.unload_lora_weights()
    pipe.load_lora_weights(lora, adapter_name="good")
    try:
        with pytest.raises(EngineError) as error:
            _run(pipe, cross_attention_kwargs={"scale": 1e30})  # finite weights, activations overflow
    finally:
        pipe.unload_lora_weights()
    said = str(error.value)
    assert "NaN/Inf latents" in said and "LoRA loaded at run time (good at 1; call scale 1e+30)" in said, said
    assert "fp16" not in said and "--precision" not in said, said


def test_embeddings_in_the_prompt_are_named(pipe, tmp_path):
    file = tmp_path / "toy.safetensors"
    safetensors_numpy.save_file({"<toy>": np.ones(TEXT_HIDDEN, np.float32)}, str(file))
    pipe.load_textual_inversion(str(file))
    try:
        with pytest.raises(EngineError, match="embedding\\(s\\) <toy> in the prompt.*callback returns"):
            _run(pipe, "a <toy> cat", callback_on_step_end=_nan_callback)
        with pytest.raises(EngineError) as error:  # loaded, but not in this prompt: not a suspect
            _run(pipe, "a red cat", callback_on_step_end=_nan_callback)
        assert "<toy>" not in str(error.value)
    finally:
        pipe.unload_textual_inversion()


def test_with_no_suspect_the_engines_are_checked(pipe):
    """Nothing of the call's own explains NaN from an fp32 engine: its files or cache are the suspects."""
    from sdrt.runtime.pipelines.nan_causes import nonfinite_error

    said = str(nonfinite_error(pipe, "the denoising loop produced NaN/Inf latents", "unet"))
    assert "unet engine is fp32" in said and f"sdrt inspect {pipe.bundle.path} --verify" in said, said
    assert "fp16" not in said, said


def test_unconditional_pixels_name_the_engine_not_fp16(tiny):
    pipe = tiny.pipeline("uncond", "DDPMPipeline")
    with pipe.call_state(), pytest.raises(EngineError) as error:
        pipe.images_out(np.full((1, 3, 8, 8), np.nan, np.float32), "np", True)
    said = str(error.value)
    assert "NaN/Inf pixels" in said and "unet engine is fp32" in said and "fp16" not in said, said
