"""LoRA at run time, torch-free (``pipe.load_lora_weights`` / ``set_adapters`` / ``unload_lora_weights`` /
``fuse_lora``): images equal diffusers' after the same calls on the same files (diffusers/PEFT and kohya
layouts, alphas other than the rank, Linear and Conv layers); switching and unloading start from the
bundle's own weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sdrt.runtime.errors import BundleError, InputError
from tests.lora_files import CONV_TARGETS, diffusers_lora_file, kohya_lora_file
from tests.parity import assert_parity, initial_latents, psnr

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")

LATENTS = initial_latents((1, 4, 8, 8), seed=11)
PROMPT = "a red circle on a blue background"
LORA_DB = 35.0


def _run(pipe, **kwargs):
    latents = torch.from_numpy(LATENTS) if isinstance(pipe, diffusers.DiffusionPipeline) else LATENTS
    return np.asarray(pipe(PROMPT, latents=latents, num_inference_steps=3, output_type="np", **kwargs).images)


def _ours(tiny):
    from sdrt.runtime import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny.bundle("sd1"), provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _reference(tiny, *loads, weights=None, fuse_scale=None, **call):
    """diffusers' image after ``load_lora_weights`` of each (file, name), ``set_adapters`` with ``weights``."""
    ref = diffusers.StableDiffusionPipeline.from_pretrained(tiny.model("sd1"))
    ref.set_progress_bar_config(disable=True)
    for file, name in loads:
        ref.load_lora_weights(str(file), adapter_name=name)
    if weights is not None:
        ref.set_adapters([name for _, name in loads], adapter_weights=weights)
    if fuse_scale is not None:
        ref.fuse_lora(lora_scale=fuse_scale)
        ref.unload_lora_weights()
    return _run(ref, **call)


@pytest.fixture(scope="module")
def files(tiny, tmp_path_factory):
    root, model = tmp_path_factory.mktemp("loras"), tiny.model("sd1")
    return {
        "peft": diffusers_lora_file(root, model, 1, alpha=8, unet_targets=CONV_TARGETS),
        "kohya": kohya_lora_file(root, model, 2, alpha=2),
    }


def test_run_time_loras_match_diffusers_and_switch_from_the_base(tiny, files):
    pipe = _ours(tiny)
    base = _run(pipe)
    pipe.load_lora_weights(files["peft"], adapter_name="a")
    with_a = _run(pipe)
    assert_parity(with_a, _reference(tiny, (files["peft"], "a")), threshold=LORA_DB)
    assert psnr(with_a, base) < LORA_DB  # the LoRA changes the picture
    assert_parity(
        _run(pipe, cross_attention_kwargs={"scale": 0.5}),
        _reference(tiny, (files["peft"], "a"), cross_attention_kwargs={"scale": 0.5}),
        threshold=LORA_DB,
    )
    pipe.load_lora_weights(str(files["kohya"]), adapter_name="b")  # the last loaded is the active one
    assert pipe.get_active_adapters() == ["b"]
    assert pipe.get_list_adapters() == {"unet": ["a", "b"], "text_encoder": ["a", "b"]}
    fresh_b = _ours(tiny)
    fresh_b.load_lora_weights(files["kohya"], adapter_name="b")
    np.testing.assert_array_equal(_run(pipe), _run(fresh_b))  # nothing of A remains
    assert_parity(_run(pipe), _reference(tiny, (files["kohya"], "b")), threshold=LORA_DB)
    pipe.set_adapters(["a", "b"], adapter_weights=[0.7, 0.3])
    expected = _reference(tiny, (files["peft"], "a"), (files["kohya"], "b"), weights=[0.7, 0.3])
    assert_parity(_run(pipe), expected, threshold=LORA_DB)
    pipe.unload_lora_weights()
    assert pipe.get_list_adapters() == {}
    np.testing.assert_array_equal(_run(pipe), base)


def test_fuse_lora_keeps_the_weights_through_unload_until_unfuse(tiny, files):
    pipe = _ours(tiny)
    base = _run(pipe)
    pipe.load_lora_weights(files["peft"], adapter_name="a")
    pipe.fuse_lora(lora_scale=0.5)
    pipe.unload_lora_weights()
    assert_parity(_run(pipe), _reference(tiny, (files["peft"], "a"), fuse_scale=0.5), threshold=LORA_DB)
    with pytest.raises(InputError, match="not in the list of present adapters"):
        pipe.set_adapters("a")
    pipe.unfuse_lora()
    np.testing.assert_array_equal(_run(pipe), base)


def test_lora_and_textual_inversion_share_the_text_encoder(tiny, files, tmp_path):
    from safetensors.torch import save_file

    from tests.models import TEXT_HIDDEN

    embedding = tmp_path / "toy.safetensors"
    save_file({"<toy>": torch.randn(TEXT_HIDDEN, generator=torch.Generator().manual_seed(0))}, str(embedding))
    pipe, lora_only = _ours(tiny), _ours(tiny)
    lora_only.load_lora_weights(files["kohya"])
    pipe.load_textual_inversion(embedding)
    pipe.load_lora_weights(files["kohya"])
    assert pipe.get_active_adapters() == ["default_0"]
    pipe.unload_textual_inversion()  # the LoRA stays in the text encoder
    np.testing.assert_array_equal(_run(pipe), _run(lora_only))


def test_loras_that_cannot_be_applied_are_clear_errors_and_change_nothing(tiny, files, tmp_path):
    from safetensors.numpy import save_file

    pipe = _ours(tiny)
    pipe.load_lora_weights(files["kohya"], adapter_name="k")
    before, engine = _run(pipe), pipe.engines["unet"].engine
    other = tmp_path / "other.safetensors"
    save_file(
        {
            "lora_unet_mystery_block.lora_down.weight": np.zeros((4, 8), np.float32),
            "lora_unet_mystery_block.lora_up.weight": np.zeros((8, 4), np.float32),
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": np.zeros((4, 64), np.float32),
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": np.zeros((64, 4), np.float32),
        },
        str(other),
    )
    sdxl = tmp_path / "sdxl.safetensors"  # kohya's SDXL names its blocks as the original checkpoints do
    save_file(
        {
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_down.weight": np.zeros((4, 640)),
            "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q.lora_up.weight": np.zeros((640, 4)),
        },
        str(sdxl),
    )
    wrong_shape = tmp_path / "wrong.safetensors"
    save_file(
        {
            "unet.down_blocks.0.attentions.0.proj_in.lora_A.weight": np.zeros((4, 7), np.float32),
            "unet.down_blocks.0.attentions.0.proj_in.lora_B.weight": np.zeros((64, 4), np.float32),
        },
        str(wrong_shape),
    )
    loha = tmp_path / "loha.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a": np.zeros((4, 4))}, str(loha))
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(files["kohya"].read_bytes()[:-100])
    pickle = tmp_path / "lora.pt"
    pickle.write_bytes(b"not read")
    cases = {
        other: "1 of its 2 layers fit this bundle's text_encoder / unet (e.g. lora_unet_mystery_block",
        sdxl: "0 of its 1 layers fit",
        wrong_shape: "up [64, 4] x down [4, 7] does not make a weight of [16, 16, 1, 1]",
        loha: "LoHa / LoKr / DoRA",
        truncated: "truncated",
        pickle: "pickle, which needs torch",
        tmp_path / "missing": "no such file",
    }
    for file, said in cases.items():
        with pytest.raises(InputError, match=None) as caught:
            pipe.load_lora_weights(file, adapter_name="x")
        assert said in str(caught.value), str(caught.value)
    with pytest.raises(InputError, match="already in use"):
        pipe.load_lora_weights(files["peft"], adapter_name="k")
    with pytest.raises(InputError, match=r"\['nope'\] not in the list of present adapters: \['k'\]"):
        pipe.set_adapters(["k", "nope"])
    with pytest.raises(InputError, match="Length of adapter names 1 is not equal"):
        pipe.set_adapters(["k"], adapter_weights=[0.5, 0.5])
    assert pipe.engines["unet"].engine is engine and pipe.get_active_adapters() == ["k"]
    np.testing.assert_array_equal(_run(pipe), before)


def test_a_bundle_without_a_weight_map_names_the_rebuild(tiny, tmp_path, files):
    import shutil

    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.bundle.manifest import read_manifest, write_manifest

    bundle = tmp_path / "old"
    shutil.copytree(tiny.bundle("sd1"), bundle)
    # a bundle built before weight maps: the UNet's record names none (a sealed manifest, as built then)
    manifest = read_manifest(bundle)
    manifest.components["unet"] = dataclasses.replace(manifest.components["unet"], weights=None)
    write_manifest(bundle, manifest)
    pipe = StableDiffusionPipeline.from_pretrained(bundle, provider="cpu")
    with pytest.raises(BundleError, match="build-engine MODEL_DIR -o"):
        pipe.load_lora_weights(files["peft"])


def test_sdxl_lora_on_unet_and_both_text_encoders_matches_diffusers(tiny, tmp_path):
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict

    from sdrt.runtime import StableDiffusionXLPipeline

    model = tiny.model("sdxl")
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(model)
    ref.set_progress_bar_config(disable=True)
    ref.unet.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    generator, layers = torch.Generator().manual_seed(5), {}
    for name in ("unet", "text_encoder", "text_encoder_2"):
        module = getattr(ref, name)
        if name != "unet":
            inject_adapter_in_model(
                LoraConfig(r=4, lora_alpha=4, target_modules=["q_proj", "v_proj"]), module
            )
        layers[f"{name}_lora_layers"] = {
            k: torch.randn(v.shape, generator=generator) * 0.3
            for k, v in get_peft_model_state_dict(module).items()
        }
    diffusers.StableDiffusionXLPipeline.save_lora_weights(tmp_path / "lora", **layers)
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(model)
    ref.set_progress_bar_config(disable=True)
    ref.load_lora_weights(str(tmp_path / "lora"), adapter_name="a")
    ours = StableDiffusionXLPipeline.from_pretrained(tiny.bundle("sdxl"), provider="cpu")
    ours.set_progress_bar_config(disable=True)
    base = _run(ours)
    ours.load_lora_weights(tmp_path / "lora", adapter_name="a")  # a folder: diffusers' file name in it
    assert sorted(ours.get_list_adapters()) == ["text_encoder", "text_encoder_2", "unet"]
    assert_parity(_run(ours), _run(ref), threshold=LORA_DB)
    ours.unload_lora_weights()
    np.testing.assert_array_equal(_run(ours), base)


def test_sdxl_kohya_lora_with_original_block_names_matches_diffusers(tiny, tmp_path):
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import save_file

    from sdrt.runtime import StableDiffusionXLPipeline
    from tests.export.single_file import _UNET_RESNET, _rename, _unet_renames

    model = tiny.model("sdxl")
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(model)
    ref.unet.add_adapter(LoraConfig(r=4, lora_alpha=2, target_modules=CONV_TARGETS))
    generator, renames, state = torch.Generator().manual_seed(8), _unet_renames(ref.unet.config), {}
    for key, value in get_peft_model_state_dict(ref.unet).items():  # kohya's SDXL layout: original names
        module, _, kind = key.rpartition(".lora_")
        if ".resnets." in module:
            block, _, rest = module.partition(".resnets.")
            index, _, name = rest.partition(".")
            module = f"{block}.resnets.{index}.{dict((a[:-1], b[:-1]) for a, b in _UNET_RESNET)[name]}"
        original = _rename(module + ".", renames).rstrip(".").replace(".", "_")
        role = "lora_down" if kind.startswith("A") else "lora_up"
        state[f"lora_unet_{original}.{role}.weight"] = torch.randn(value.shape, generator=generator) * 0.3
        state[f"lora_unet_{original}.alpha"] = torch.tensor(2.0)
    assert any(k.startswith("lora_unet_input_blocks_") for k in state) and any(
        "in_layers_2" in k for k in state
    )
    file = tmp_path / "sdxl-kohya.safetensors"
    save_file(state, str(file))
    ref = diffusers.StableDiffusionXLPipeline.from_pretrained(model)
    ref.set_progress_bar_config(disable=True)
    ref.load_lora_weights(str(file))
    ours = StableDiffusionXLPipeline.from_pretrained(tiny.bundle("sdxl"), provider="cpu")
    ours.set_progress_bar_config(disable=True)
    base = _run(ours)
    ours.load_lora_weights(file)
    assert psnr(_run(ours), base) < LORA_DB
    assert_parity(_run(ours), _run(ref), threshold=LORA_DB)
