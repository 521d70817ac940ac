"""The guided loops over SD engines against diffusers' pipelines of the same names on the tiny SD 1.x folder
(ORT CPU, fp32): panorama (MultiDiffusion), SEGA, safe latent diffusion; and their bad inputs."""

from __future__ import annotations

import pytest

from tests.parity import PARITY_DB, assert_parity, build_bundle, initial_latents, psnr

torch = pytest.importorskip("torch")

PROMPT = "a photo of a red cat"
STEPS = 4
SCHEDULERS = ["DDIMScheduler", "EulerDiscreteScheduler"]
# the UNet denoises 512-pixel-wide views: a range holding them and the panorama (+128 circular padding)
PANORAMA_BUILD = ["--min-size", "64", "--max-size", "768", "--max-batch", "2"]
PANORAMA_BUILD += ["--components", "text_encoder", "unet", "vae_decoder"]


def _with_scheduler(ref, pipe, name: str):
    import diffusers

    from sdrt.schedulers import get_scheduler_class

    ref.scheduler = getattr(diffusers, name).from_config(ref.scheduler.config)
    pipe.scheduler = get_scheduler_class(name).from_config(pipe.scheduler.config)
    return ref, pipe


@pytest.fixture(scope="module")
def panorama_pipe(model_folders, tmp_path_factory):
    from sdrt.runtime import StableDiffusionPanoramaPipeline

    bundle = build_bundle(
        model_folders("sd1"), tmp_path_factory.mktemp("panorama") / "bundle", PANORAMA_BUILD
    )
    pipe = StableDiffusionPanoramaPipeline.from_pretrained(bundle, provider="cpu")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_panorama_matches_diffusers(tiny, panorama_pipe, scheduler):
    ref, pipe = _with_scheduler(
        tiny.reference("sd1", "StableDiffusionPanoramaPipeline"), panorama_pipe, scheduler
    )
    latents = initial_latents((1, 4, 8, 80))  # 64x640: three 64x512 views, two per UNet batch
    kwargs = dict(height=64, width=640, num_inference_steps=3, view_batch_size=2, output_type="np")
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, **kwargs).images
    assert actual.shape == (1, 64, 640, 3)
    assert_parity(actual, expected)


def test_panorama_circular_padding_matches_diffusers(tiny, panorama_pipe):
    ref, pipe = _with_scheduler(
        tiny.reference("sd1", "StableDiffusionPanoramaPipeline"), panorama_pipe, "DDIMScheduler"
    )
    latents = initial_latents((1, 4, 8, 80), seed=1)
    kwargs = dict(height=64, width=640, num_inference_steps=2, view_batch_size=5, output_type="np")
    kwargs |= dict(circular_padding=True, negative_prompt="blue square")
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, **kwargs).images
    assert_parity(actual, expected)


def test_panorama_outside_the_engines_range_is_refused(panorama_pipe):
    from sdrt.runtime.errors import InputError

    with pytest.raises(InputError, match=r"panorama 1024x64 .*64\.\.768"):
        panorama_pipe(PROMPT, height=64, width=1024, num_inference_steps=1)
    with pytest.raises(InputError, match="circular padding"):  # 704 + 128 wrapped columns > 768
        panorama_pipe(PROMPT, height=64, width=704, num_inference_steps=1, circular_padding=True)


SEGA = dict(
    editing_prompt=["blue square", "a dog"],
    edit_guidance_scale=[6.0, 3.0],
    edit_warmup_steps=[1, 2],  # step 1: one concept warm (diffusers' partial branch), then both
    edit_cooldown_steps=3,
    edit_threshold=[0.8, 0.6],
    reverse_editing_direction=[False, True],
    edit_weights=[1.0, 0.5],
)


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_semantic_guidance_matches_diffusers(tiny, scheduler):
    ref = tiny.reference("sd1", "SemanticStableDiffusionPipeline")
    ref, pipe = _with_scheduler(ref, tiny.pipeline("sd1", "SemanticStableDiffusionPipeline"), scheduler)
    latents = initial_latents((2, 4, 8, 8), seed=2)
    kwargs = dict(
        height=64, width=64, num_inference_steps=STEPS, num_images_per_prompt=2, output_type="np", **SEGA
    )
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs).images
    actual = pipe(PROMPT, latents=latents, **kwargs).images
    assert_parity(actual, expected)
    plain = pipe(
        PROMPT, latents=latents[:1], height=64, width=64, num_inference_steps=STEPS, output_type="np"
    )
    assert psnr(plain.images, actual[:1]) < PARITY_DB  # the editing prompts change the picture beyond the bar


def test_semantic_list_of_wrong_length_is_refused(tiny):
    from sdrt.runtime.errors import InputError

    pipe = tiny.pipeline("sd1", "SemanticStableDiffusionPipeline")
    with pytest.raises(InputError, match="`edit_weights` has 3 values for 2 editing prompts"):
        pipe(PROMPT, num_inference_steps=1, editing_prompt=["a", "b"], edit_weights=[1.0, 1.0, 1.0])
    with pytest.raises(InputError, match="`edit_guidance_scale` has 1 values for 2 editing prompts"):
        pipe(PROMPT, num_inference_steps=1, editing_prompt=["a", "b"], edit_guidance_scale=[5.0])


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_safe_latent_diffusion_matches_diffusers(tiny, scheduler):
    from diffusers.pipelines.deprecated.stable_diffusion_safe import SafetyConfig as DiffusersConfig

    from sdrt.runtime import SafetyConfig

    assert SafetyConfig.MAX == DiffusersConfig.MAX and SafetyConfig.WEAK == DiffusersConfig.WEAK
    ref = tiny.reference("sd1", "StableDiffusionPipelineSafe")
    ref, pipe = _with_scheduler(ref, tiny.pipeline("sd1", "StableDiffusionPipelineSafe"), scheduler)
    assert pipe.safety_concept == ref.safety_concept
    latents = initial_latents((1, 4, 8, 8), seed=3)
    kwargs = dict(height=64, width=64, num_inference_steps=STEPS, output_type="np", **SafetyConfig.MAX)
    expected = ref(PROMPT, latents=torch.from_numpy(latents), **kwargs)
    actual = pipe(PROMPT, latents=latents, **kwargs)
    assert actual.applied_safety_concept == expected.applied_safety_concept
    assert_parity(actual.images, expected.images)
    medium = dict(kwargs, sld_warmup_steps=1, sld_guidance_scale=50.0, sld_threshold=0.0)
    assert_parity(
        pipe(PROMPT, latents=latents, **medium).images,
        ref(PROMPT, latents=torch.from_numpy(latents), **medium).images,
    )
    with pytest.warns(UserWarning, match="Safety checker disabled"):
        plain = pipe(
            PROMPT,
            latents=latents,
            height=64,
            width=64,
            num_inference_steps=STEPS,
            output_type="np",
            sld_guidance_scale=0,
        )
    assert plain.applied_safety_concept is None
    assert (
        psnr(plain.images, actual.images) < PARITY_DB
    )  # the safety concept changes the picture beyond the bar


def test_unknown_safety_preset_is_refused():
    from sdrt.runtime.errors import InputError
    from sdrt.runtime.pipelines.safe_guidance import safety_preset

    assert safety_preset("Strong")["sld_guidance_scale"] == 2000
    with pytest.raises(
        InputError, match="unknown safety preset 'extreme'; pick one of weak, medium, strong, max"
    ):
        safety_preset("extreme")


def test_tasks_load_from_the_family_table(tiny):
    from sdrt.runtime.families import PANORAMA, SAFE, SEMANTIC, task_pipeline

    names = {task: task_pipeline("sd1", task).__name__ for task in (PANORAMA, SEMANTIC, SAFE)}
    assert names == {
        PANORAMA: "StableDiffusionPanoramaPipeline",
        SEMANTIC: "SemanticStableDiffusionPipeline",
        SAFE: "StableDiffusionPipelineSafe",
    }
