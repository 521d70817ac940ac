"""The safety checker (diffusers' ``StableDiffusionSafetyChecker``) as a bundle component, against diffusers'
StableDiffusionPipeline with the same checker on the same folder: a tiny checker from a small CLIPConfig whose
concept embeddings are set here so that, of the two images of one call, the first is flagged (only through the
special-care adjustment of 0.01: without it, it would pass) and the second is not. The same flags, the same
black image, the same other image; the build's export gate; ``sdrt inspect`` and ``sdrt generate``;
``--safety-checker DIR`` reading the same part; bad input."""

from __future__ import annotations

import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from tests.parity import assert_parity, build_bundle

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

PROMPT = "a photo of a red cat"
SEED, STEPS = 31, 3
CALL = dict(num_images_per_prompt=2, num_inference_steps=STEPS, height=64, width=64)
OPTIONS = ["--min-size", "32", "--max-size", "128", "--max-batch", "2"]
OPTIONS += ["--components", "text_encoder", "unet", "vae_decoder", "vae_encoder", "safety_checker"]


def tiny_checker(seed: int = 0):
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

    torch.manual_seed(seed)
    config = transformers.CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=24, num_hidden_layers=1, num_attention_heads=2),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    return StableDiffusionSafetyChecker(config).eval()


def processor():
    return transformers.CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}, do_convert_rgb=True
    )


def flag_the_first(checker, pictures) -> None:
    """Concept embeddings that flag the first picture and not the second: d, the difference of their normalised
    embeddings, is a special-care concept the first meets (threshold s / 2) and a concept it misses by 0.005
    without the special-care adjustment of 0.01 (threshold s + 0.005), s = cos(first, d)."""
    with torch.no_grad():
        pixels = processor()(pictures, return_tensors="pt").pixel_values
        embeds = checker.visual_projection(checker.vision_model(pixels)[1])
    e = torch.nn.functional.normalize(embeds)
    d = e[0] - e[1]
    s = float(torch.nn.functional.normalize(e[:1]) @ torch.nn.functional.normalize(d[None]).t())
    assert s > 0.02, f"the two pictures are too alike for the test (cos {s})"
    with torch.no_grad():
        checker.concept_embeds.copy_(torch.randn_like(checker.concept_embeds))
        checker.special_care_embeds.copy_(torch.randn_like(checker.special_care_embeds))
        checker.concept_embeds_weights.fill_(2.0)  # never met: cosines are at most 1
        checker.special_care_embeds_weights.fill_(2.0)
        checker.concept_embeds[3] = d
        checker.concept_embeds_weights[3] = s + 0.005
        checker.special_care_embeds[1] = d
        checker.special_care_embeds_weights[1] = s / 2


@pytest.fixture(scope="module")
def setup(model_folders, tmp_path_factory):
    """(the model folder with its own safety checker, its bundle (export gates on), the plain sd1 folder)."""
    root = tmp_path_factory.mktemp("safety")
    plain = model_folders("sd1")
    folder = root / "sd1_safe"
    shutil.copytree(plain, folder)
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(folder, safety_checker=None)
    pipe.set_progress_bar_config(disable=True)
    pictures = pipe(PROMPT, generator=torch.Generator().manual_seed(SEED), **CALL).images
    checker = tiny_checker()
    flag_the_first(checker, pictures)
    checker.save_pretrained(folder / "safety_checker")
    processor().save_pretrained(folder / "feature_extractor")
    index = json.loads((folder / "model_index.json").read_text())
    index |= {
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "requires_safety_checker": True,
    }
    (folder / "model_index.json").write_text(json.dumps(index))
    return folder, build_bundle(folder, root / "bundle", OPTIONS), plain


def reference(setup, scheduler: str | None = None):
    ref = diffusers.StableDiffusionPipeline.from_pretrained(setup[0])
    assert ref.safety_checker is not None
    if scheduler:
        ref.scheduler = getattr(diffusers, scheduler).from_config(ref.scheduler.config)
    ref.set_progress_bar_config(disable=True)
    return ref


def sdrt_pipe(setup, scheduler: str | None = None, name: str = "StableDiffusionPipeline"):
    import sdrt.runtime
    from sdrt import schedulers

    pipe = getattr(sdrt.runtime, name).from_pretrained(setup[1], provider="cpu")
    if scheduler:
        pipe.scheduler = getattr(schedulers, scheduler).from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("output_type", ["np", "pil"])
def test_flags_and_images_match_diffusers(setup, output_type):
    expected = reference(setup)(
        PROMPT, generator=torch.Generator().manual_seed(SEED), output_type=output_type, **CALL
    )
    actual = sdrt_pipe(setup)(PROMPT, generator=SEED, output_type=output_type, **CALL)
    assert expected.nsfw_content_detected == [True, False]  # the test's premise, in diffusers
    assert actual.nsfw_content_detected == [True, False]
    black = np.asarray(actual.images[0], dtype=np.float64)
    assert black.max() == 0.0 and np.asarray(expected.images[0], dtype=np.float64).max() == 0.0
    assert_parity(actual.images[1:], expected.images[1:])


def test_the_adjustment_is_what_flags_the_first_image(setup):
    """Without the special-care concept the first image passes: the flag comes from diffusers' 0.01."""
    from sdrt.runtime.clip_processor import CLIPImageProcessor

    pipe = sdrt_pipe(setup)
    plain = sdrt_pipe(setup)
    plain.safety_checker = None  # the pictures before the check
    pictures = plain(PROMPT, generator=SEED, **CALL).images
    scores = pipe.safety_checker.scores(
        CLIPImageProcessor.from_pretrained(setup[1] / "feature_extractor")(pictures)
    )
    assert scores["has_nsfw_concepts"].tolist() == [1.0, 0.0]
    assert scores["special_scores"][0, 1] > 0 > scores["special_scores"][1, 1]
    assert -0.01 < scores["concept_scores"][0, 3] - 0.01 < 0 < scores["concept_scores"][0, 3]


def test_another_scheduler_and_img2img_match_diffusers(setup):
    args = dict(num_inference_steps=STEPS, output_type="np")
    init = Image.fromarray((np.random.default_rng(0).uniform(0, 1, (64, 64, 3)) * 255).astype(np.uint8))
    ref = diffusers.StableDiffusionImg2ImgPipeline.from_pipe(reference(setup, "DPMSolverMultistepScheduler"))
    expected = ref([PROMPT, "a blue dog"], image=init, generator=torch.Generator().manual_seed(3), **args)
    pipe = sdrt_pipe(setup, "DPMSolverMultistepScheduler", "StableDiffusionImg2ImgPipeline")
    actual = pipe([PROMPT, "a blue dog"], image=init, generator=3, **args)
    assert actual.nsfw_content_detected == expected.nsfw_content_detected
    assert_parity(actual.images, expected.images)


def test_the_export_gate_passes_and_inspect_lists_it(setup, tmp_path, capsys):
    from sdrt.cli.build_engine import main as build_engine
    from sdrt.cli.sdrt import main
    from sdrt.runtime.bundle.bundle import open_bundle

    out = tmp_path / "gated"  # the ONNX graph against the torch checker at two batch sizes (fp32: 1e-4)
    argv = [str(setup[0]), "-o", str(out), "--backend", "ort", "--precision", "fp32", "-q", *OPTIONS[:6]]
    assert build_engine([*argv, "--components", "safety_checker"]) in (0, None)
    validation = open_bundle(out).record("safety_checker").validation
    assert validation is not None and validation["value"] <= validation["allowed"] <= 1e-3
    assert set(validation["outputs"]) == {"special_scores", "concept_scores", "has_nsfw_concepts"}
    assert (out / "feature_extractor" / "preprocessor_config.json").is_file()
    capsys.readouterr()
    assert main(["inspect", str(setup[1])]) == 0
    assert "safety_checker" in capsys.readouterr().out


def test_sdrt_generate_says_which_image_was_flagged(setup, tmp_path, capsys):
    from sdrt.cli.sdrt import main

    argv = [
        "generate",
        str(setup[1]),
        PROMPT,
        "--steps",
        str(STEPS),
        "--seed",
        str(SEED),
        "--num-images",
        "2",
    ]
    assert (
        main([*argv, "--size", "64x64", "--provider", "cpu", "--no-progress", "-o", str(tmp_path / "o.png")])
        == 0
    )
    err = capsys.readouterr().err
    assert "o-0.png: flagged by the safety checker" in err and "o-1.png" not in err


def test_safety_checker_none_turns_it_off_with_diffusers_warning(setup, caplog):
    from sdrt.runtime import StableDiffusionPipeline

    with caplog.at_level("WARNING"):
        pipe = StableDiffusionPipeline.from_pretrained(setup[1], provider="cpu", safety_checker=None)
    assert "You have disabled the safety checker" in caplog.text
    pipe.set_progress_bar_config(disable=True)
    assert pipe(PROMPT, generator=SEED, **CALL).nsfw_content_detected is None


def test_the_option_reads_the_same_part(setup, tmp_path):
    """``--safety-checker DIR`` on the folder without one: the same component (inputs hash) as the folder's own."""
    from sdrt.runtime.bundle.bundle import open_bundle

    options = [
        *OPTIONS[:6],
        "--components",
        "safety_checker",
        "--safety-checker",
        str(setup[0] / "safety_checker"),
    ]
    ours = open_bundle(build_bundle(setup[2], tmp_path / "b", options)).record("safety_checker")
    assert ours.inputs_hash == open_bundle(setup[1]).record("safety_checker").inputs_hash


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ("sdxl", "sdxl pipelines run no safety checker"),
        ("no processor", "no preprocessor_config.json"),
        ("crop", "crops to 48x48 but the checker's vision model takes 32x32"),
        ("unet", "is not a StableDiffusionSafetyChecker's"),
    ],
)
def test_bad_safety_checkers_are_clear_errors(setup, model_folders, tmp_path, capsys, change, said):
    from sdrt.cli.build_engine import main as build_engine

    checker = tmp_path / "checker"
    shutil.copytree(setup[0] / ("unet" if change == "unet" else "safety_checker"), checker)
    if change != "no processor":
        crop = 48 if change == "crop" else 32
        processor().save_pretrained(checker)
        config = json.loads((checker / "preprocessor_config.json").read_text())
        config["crop_size"] = {"height": crop, "width": crop}
        (checker / "preprocessor_config.json").write_text(json.dumps(config))
    model = model_folders("sdxl") if change == "sdxl" else setup[2]
    assert build_engine([str(model), "-o", str(tmp_path / "out"), "--safety-checker", str(checker)]) == 2
    assert re.search(re.escape(said), capsys.readouterr().err)
    assert not (tmp_path / "out").exists()  # nothing built half


def test_a_torch_safety_checker_is_refused(setup):
    from sdrt.runtime import StableDiffusionPipeline
    from sdrt.runtime.errors import InputTypeError

    pipe = sdrt_pipe(setup)
    with pytest.raises(InputTypeError, match="--safety-checker DIR"):
        StableDiffusionPipeline(**{**pipe.components, "safety_checker": tiny_checker()})


def test_served_jobs_carry_the_flags(setup):
    """``sdrt serve``'s batching runs the pipeline and keeps each image's flag (A1111's ``info``, the log line):
    the seed of the setup's first image is flagged; another seed's flag is diffusers' for that image."""
    from sdrt.serve.batching import call_arguments, run_jobs
    from sdrt.serve.requests import TXT2IMG, Job, Row, Settings

    pipe = sdrt_pipe(setup)
    settings = Settings("safe", TXT2IMG, 64, 64, STEPS, 7.5, None)
    jobs = [Job(settings, (Row(PROMPT, "", SEED),)), Job(settings, (Row(PROMPT, "", 5),))]
    results = run_jobs(jobs, 2, lambda call: pipe(**call_arguments(call)))
    assert [r.nsfw_content_detected for r in results] == [
        [True],
        reference(setup)(
            PROMPT, generator=torch.Generator().manual_seed(5), **{**CALL, "num_images_per_prompt": 1}
        ).nsfw_content_detected,
    ]
    assert np.asarray(Image.open(io.BytesIO(results[0].images[0]))).max() == 0
