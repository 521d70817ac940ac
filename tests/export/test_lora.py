"""``build-engine --lora FILE[:SCALE]``: LoRAs fused at build give diffusers' images after its
``load_lora_weights`` and ``set_adapters`` at the same scales (diffusers/PEFT and kohya formats)."""

from __future__ import annotations

import numpy as np
import pytest

from sdrt.cli.build_engine import main
from tests.lora_files import diffusers_lora_file as _diffusers_file
from tests.lora_files import kohya_lora_file as _kohya_file
from tests.parity import BUILD_OPTIONS, assert_parity, build_bundle, initial_latents, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
peft = pytest.importorskip("peft")

LATENTS = initial_latents((1, 4, 8, 8), seed=11)
PROMPT = "a red circle on a blue background"
LORA_DB = 35.0


def _bundle(tiny, tmp_path, name, *loras):
    flags = [f for lora in loras for f in ("--lora", str(lora))]
    options = [*BUILD_OPTIONS["sd1"], *flags, "--components", "text_encoder", "unet", "vae_decoder"]
    return build_bundle(tiny.model("sd1"), tmp_path / name, options)


def _ours(bundle):
    from sdrt.runtime import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe(PROMPT, latents=LATENTS, num_inference_steps=3, output_type="np").images


def _diffusers(tiny, loras):
    ref = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    ref.set_progress_bar_config(disable=True)
    names = []
    for i, (file, _) in enumerate(loras):
        ref.load_lora_weights(str(file), adapter_name=f"l{i}")
        names.append(f"l{i}")
    ref.set_adapters(names, adapter_weights=[scale for _, scale in loras])
    return ref(PROMPT, latents=torch.from_numpy(LATENTS), num_inference_steps=3, output_type="np").images


# suite time: build-time fusion runs in the default run through the SDXL LoRA test
@pytest.mark.slow
def test_loras_fused_at_build_match_diffusers(tiny, tmp_path):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.runtime.bundle.bundle import open_bundle

    model = tiny.model("sd1")
    first, second = _diffusers_file(tmp_path, model, 1), _kohya_file(tmp_path, model, 2)
    base = _ours(tiny.bundle("sd1"))
    one = _ours(_bundle(tiny, tmp_path, "one", f"{first}:0.8"))
    assert_parity(one, _diffusers(tiny, [(first, 0.8)]), threshold=LORA_DB)
    assert psnr(one, base) < LORA_DB  # the LoRA changes the picture
    two_bundle = _bundle(tiny, tmp_path, "two", f"{first}:0.7", f"{second}:0.3")
    assert_parity(_ours(two_bundle), _diffusers(tiny, [(first, 0.7), (second, 0.3)]), threshold=LORA_DB)
    assert f"LoRA fused   {first}:0.7, {second}:0.3" in describe_bundle(open_bundle(two_bundle))
    np.testing.assert_array_equal(_ours(_bundle(tiny, tmp_path, "zero", f"{first}:0")), base)


def test_loras_that_cannot_be_fused_are_clear_errors(tiny, tmp_path, capsys):
    from safetensors.torch import load_file, save_file

    other = tmp_path / "other.safetensors"
    save_file({"lora_unet_mystery_block.lora_down.weight": torch.zeros(4, 8)}, str(other))
    state = load_file(str(_kohya_file(tmp_path, tiny.model("sd1"), 2)))
    transposed, flat = tmp_path / "transposed.safetensors", tmp_path / "flat.safetensors"
    save_file({k: v.t().contiguous() if v.ndim == 2 else v for k, v in state.items()}, str(transposed))
    down = next(k for k in sorted(state) if k.startswith("lora_unet") and k.endswith("lora_down.weight"))
    save_file({**state, down: torch.tensor(1.0)}, str(flat))
    cases = {
        str(tmp_path / "missing.safetensors"): "no such file",
        f"{other}:x": "must be a number",
        f"{other}:nan": "must be a number (finite",
        f"{other}:-inf": "must be a number (finite",
        str(other): "other.safetensors",
        str(transposed): "(transposed?)",
        str(flat): f"{down} [] with its up weight",
    }
    out = tmp_path / "bundle"
    for spec, said in cases.items():
        assert main([str(tiny.model("sd1")), "-o", str(out), "--lora", spec, "--no-validate"]) == 2
        err = capsys.readouterr().err
        assert said in err and "Traceback" not in err, err
        assert not out.exists()


def test_sdxl_lora_on_unet_and_both_text_encoders_matches_diffusers(tiny, tmp_path):
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    from sdrt.runtime import StableDiffusionXLPipeline

    model = tiny.model("sdxl")
    pipe = diffusers.StableDiffusionXLPipeline.from_pretrained(model)
    pipe.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    text_config = LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "k_proj", "v_proj", "out_proj"])
    generator = torch.Generator().manual_seed(5)
    layers = {}
    for name in ("unet", "text_encoder", "text_encoder_2"):
        module = getattr(pipe, name)
        if name != "unet":
            inject_adapter_in_model(text_config, module)
        layers[f"{name}_lora_layers"] = {
            k: torch.randn(v.shape, generator=generator) * 0.3
            for k, v in get_peft_model_state_dict(module).items()
        }
    diffusers.StableDiffusionXLPipeline.save_lora_weights(tmp_path / "lora", **layers)
    file = tmp_path / "lora" / "pytorch_lora_weights.safetensors"
    bundle = build_bundle(model, tmp_path / "bundle", [*BUILD_OPTIONS["sdxl"], "--lora", f"{file}:0.6"])
    latents = initial_latents((1, 4, 8, 8), seed=3)
    ours = StableDiffusionXLPipeline.from_pretrained(bundle, provider="cpu")
    ours.set_progress_bar_config(disable=True)
    actual = ours(PROMPT, latents=latents, num_inference_steps=3, output_type="np").images
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(model)
    ref.set_progress_bar_config(disable=True)
    ref.load_lora_weights(str(file), adapter_name="a")
    ref.set_adapters(["a"], adapter_weights=[0.6])
    expected = ref(PROMPT, latents=torch.from_numpy(latents), num_inference_steps=3, output_type="np").images
    assert_parity(actual, expected, threshold=LORA_DB)
