"""``sdrt generate --lora FILE[:SCALE]``: LoRAs applied at run time give diffusers' image after its
``load_lora_weights`` and ``set_adapters`` at the same scales."""

from __future__ import annotations

import pytest
from PIL import Image

from tests.lora_files import diffusers_lora_file, kohya_lora_file
from tests.parity import assert_parity

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
pytest.importorskip("peft")


def test_generate_with_two_loras_matches_diffusers(tiny, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    model = tiny.model("sd1")
    first, second = diffusers_lora_file(tmp_path, model, 1), kohya_lora_file(tmp_path, model, 2)
    out = tmp_path / "cat.png"
    argv = ["generate", str(tiny.bundle("sd1")), "a photo of a cat", "--steps", "3", "--seed", "7"]
    argv += ["--scheduler", "euler", "--provider", "cpu", "--no-progress", "-o", str(out)]
    assert main([*argv, "--lora", f"{first}:0.6", "--lora", str(second)]) == 0
    ref = diffusers.StableDiffusionPipeline.from_pretrained(model)
    ref.set_progress_bar_config(disable=True)
    ref.scheduler = diffusers.EulerDiscreteScheduler.from_config(ref.scheduler.config)
    ref.load_lora_weights(str(first), adapter_name="a")
    ref.load_lora_weights(str(second), adapter_name="b")
    ref.set_adapters(["a", "b"], adapter_weights=[0.6, 1.0])
    expected = ref(
        "a photo of a cat", num_inference_steps=3, generator=torch.Generator().manual_seed(7)
    ).images
    assert_parity([Image.open(out)], expected, threshold=35.0)
    capsys.readouterr()
    assert main([*argv, "--lora", f"{first}:half"]) == 2
    assert "the scale after ':' must be a number" in capsys.readouterr().err


def test_inspect_names_the_components_lora_can_change_at_run_time(tiny):
    from sdrt.cli.inspect import describe_bundle
    from sdrt.runtime.bundle.bundle import open_bundle

    assert "LoRA runtime text_encoder, unet (" in describe_bundle(open_bundle(tiny.bundle("sd1")))
