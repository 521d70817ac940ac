"""``sdrt generate BUNDLE PROMPT``: load a bundle, generate, save the images (numbered, and a grid).

The bundle and the image flags choose the task as a diffusers user chooses a pipeline (``task_choice.py``: text,
``--image``, ``--mask``, ``--depth-map``, ``--control-image``...), and the bundle's family names the pipeline class
that runs it (``sdrt.runtime.families``; an unconditional bundle: its folder's class, which takes no prompt).
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from sdrt.runtime.errors import InputError
from sdrt.runtime.families import (
    CLASS_CONDITIONAL,
    DIFFEDIT,
    INSTRUCT_PIX2PIX,
    PANORAMA,
    REPAINT,
    SAFE,
    SEMANTIC,
    SUPER_RESOLUTION,
    T2I_ADAPTER,
    UNCLIP_IMAGE_TO_IMAGE,
    family,
)

from .adapter_arguments import adapter_arguments
from .diffedit import diffedit_output, mask_path
from .format import report_flagged
from .image_conditioned import (
    IMAGE_GUIDED_TASKS,
    PROMPT_OPTIONAL_TASKS,
    image_guided_arguments,
    read_depth_map,
    read_image,
)
from .ip_adapter_arguments import ip_adapter_arguments
from .options import check_writable, scheduler_class_name
from .refiner import NO_REFINER, Refiner, load_refiner, refined
from .task_choice import (
    CONTROL_TASKS,
    NO_IMAGE_INPUTS,
    SIZED_BY_IMAGE,
    ImageInputs,
    chosen_task,
    default_steps,
    pipeline_class,
)

__all__ = ["ImageInputs", "generate", "pipeline_class"]


def output_paths(output: Path, count: int) -> list[Path]:
    """``out.png`` for one image; ``out-0.png``, ``out-1.png``, ... for several."""
    if count == 1:
        return [output]
    return [output.with_name(f"{output.stem}-{i}{output.suffix}") for i in range(count)]


def control_arguments(inputs: ImageInputs, count: int, size: tuple[int, int] | None) -> dict[str, Any]:
    """The ControlNet pipelines' control images and scales (``image`` for text-to-image, ``control_image``
    beside the init ``image``, ``strength`` and ``mask_image`` otherwise) and the size."""
    images = [read_image(path, "--control-image", "RGB") for path in inputs.control_images]
    scales = list(inputs.control_scales) or [1.0]
    height, width = size or (None, None)
    arguments = {
        "controlnet_conditioning_scale": scales[0] if len(scales) == 1 else scales,
        "height": height,
        "width": width,
    }
    controls = images[0] if count == 1 else images
    if inputs.image is None:
        return {**arguments, "image": controls}
    arguments |= {"image": read_image(inputs.image, "--image", "RGB"), "control_image": controls}
    if inputs.mask is not None:
        arguments["mask_image"] = read_image(inputs.mask, "--mask", "L")
    return arguments | ({} if inputs.strength is None else {"strength": inputs.strength})


def image_arguments(
    task: str, inputs: ImageInputs, size: tuple[int, int] | None, cls: type | None = None
) -> dict[str, Any]:
    """The pipeline call's image arguments (and its size, where the pipeline ``cls`` takes one)."""
    if task in CONTROL_TASKS:
        return control_arguments(inputs, len(inputs.control_images), size)
    if task == T2I_ADAPTER:
        return adapter_arguments(inputs, size)
    if task == PANORAMA and size is None:
        return {}  # the pipeline's own panorama size (diffusers': 2048x512)
    if inputs.image is None:
        height, width = size or (None, None)
        return {"height": height, "width": width}
    arguments: dict[str, Any] = {"image": read_image(inputs.image, "--image", "RGB")}
    if inputs.strength is not None:
        arguments["strength"] = inputs.strength
    if inputs.depth_map is not None:
        arguments["depth_map"] = read_depth_map(inputs.depth_map)
    if task == UNCLIP_IMAGE_TO_IMAGE:  # the image is embedded, not the start: any size
        height, width = size or (None, None)
        return {**arguments, "height": height, "width": width}
    if task == INSTRUCT_PIX2PIX:
        return arguments | instruct_arguments(cls, inputs, size)
    if task in SIZED_BY_IMAGE:
        if size is not None:
            raise InputError("--size does not apply with --image alone: the output has the image's size")
        return arguments
    if inputs.mask is None:
        raise InputError(f"{task} needs --mask (white where the picture is repainted)")
    arguments["mask_image"] = read_image(inputs.mask, "--mask", "L")
    height, width = size or (None, None)
    return {**arguments, "height": height, "width": width}


def instruct_arguments(cls: type | None, inputs: ImageInputs, size: tuple[int, int] | None) -> dict[str, Any]:
    """InstructPix2Pix's ``image_guidance_scale`` (``--image-guidance``) and the size, where ``cls`` takes one
    (SDXL's; SD's edits at the image's size)."""
    arguments = {} if inputs.image_guidance is None else {"image_guidance_scale": inputs.image_guidance}
    if size is None:
        return arguments
    if cls is None or "height" not in inspect.signature(cls.__call__).parameters:
        name = cls.__name__ if cls is not None else "this pipeline"
        raise InputError(f"--size does not apply to {name}: the output has --image's size; drop --size")
    return arguments | {"height": size[0], "width": size[1]}


def generate(
    *,
    bundle: str,
    prompt: str | None,
    negative_prompt: str | None,
    steps: int | None,
    guidance: float | None,
    scheduler: str | None,
    seed: int | None,
    size: tuple[int, int] | None,
    num_images: int,
    provider: str,
    output: Path,
    progress: bool = True,
    inputs: ImageInputs = NO_IMAGE_INPUTS,
    loras: list[str] | None = None,
    prompt_syntax: str = "diffusers",
    class_labels: list[str] | None = None,
    cache_interval: int = 1,
    refiner: Refiner = NO_REFINER,
    eta: float | None = None,
) -> list[Path]:
    """Load the bundle, generate, save the images (and a grid for several); return the paths written.
    ``steps``: None for the model's default (``task_choice.default_steps``).
    ``loras``: ``FILE[:SCALE]`` LoRAs applied at run time (``load_lora_weights`` and ``set_adapters``).
    ``prompt_syntax``: "a1111" for A1111's weights, BREAK and long prompts (the pipelines' ``prompt_syntax``).
    ``class_labels``: DiT's classes, names or ids (one image each, ``num_images`` times).
    ``cache_interval``: step caching (DeepCache), the full UNet every N steps (a bundle built with --deepcache).
    ``refiner``: an SDXL refiner bundle finishing the base's last steps (``refiner.py``).
    ``eta``: the scheduler's eta (DDIM's noise, TCD's gamma); None for the pipeline's default."""
    from sdrt.runtime.bundle.bundle import open_bundle

    refiner.check()
    manifest = open_bundle(bundle).manifest
    for path in output_paths(output, num_images):  # before the work, whose images would have nowhere to go
        check_writable(path, "-o", make_parents=True)
    task = chosen_task(manifest.model_type, inputs, list(manifest.controlnets), manifest.pipeline_class)
    if steps is None:
        steps = default_steps(manifest.model_type, manifest.pipeline_class)
    found = family(manifest.model_type)
    cls = found.pipeline(task)
    check_class_labels(task, class_labels, manifest.unet.num_class_embeds)
    if not found.takes_prompt:
        pictured = task in IMAGE_GUIDED_TASKS  # guided by an image embedding, sized by --size or the image
        guided = task == CLASS_CONDITIONAL or pictured
        check_no_text(cls, prompt, negative_prompt, None if guided else guidance, None if pictured else size)
    pipe: Any = cls.from_pretrained(bundle, provider=provider)  # its call arguments depend on the task
    pipe.set_progress_bar_config(disable=not progress)
    if loras:
        load_loras(pipe, loras)
    pipes = [pipe]
    if refiner.bundle is not None:
        pipes.append(load_refiner(pipe, refiner.bundle, provider, progress))
    for each in pipes:
        set_scheduler(each, scheduler)
    depth: list[Any] = []
    flags: list[bool] | None = None
    if not found.takes_prompt:
        arguments = (  # image variation, Paint-by-Example: pictures in place of a prompt (image_conditioned.py)
            image_guided_arguments(task, inputs, num_images, guidance, size)
            if task in IMAGE_GUIDED_TASKS
            else unconditional_arguments(task, inputs, num_images, class_labels or [], guidance)
        )
        images = pipe(generator=seed, num_inference_steps=steps, **arguments).images
    else:
        if not prompt and task not in PROMPT_OPTIONAL_TASKS:
            raise InputError(f"{cls.__name__} needs a prompt")
        prompt = prompt or ""
        kwargs = text_arguments(cls, prompt, negative_prompt, guidance, prompt_syntax, num_images)
        kwargs |= {"num_inference_steps": steps, "generator": seed}
        kwargs |= {} if cache_interval == 1 else {"cache_interval": cache_interval}
        kwargs |= {} if eta is None else {"eta": eta}
        images = task_output(task, pipes, prompt, inputs, kwargs, size, refiner, output)
        flags = getattr(images, "nsfw_content_detected", None)
        depth = list(getattr(images, "depth", None) or [])  # LDM3D: pictures and their depth maps
        images = images.rgb if depth else images.images
    paths = save_images(images, output, flags)
    return paths + save_depth_maps(depth, paths)


def save_images(images: list[Any], output: Path, flags: list[bool] | None) -> list[Path]:
    """The images as ``output`` (numbered, and a grid, for several), saying which the safety checker flagged."""
    from sdrt.runtime import make_image_grid

    paths = output_paths(output, len(images))
    report_flagged(flags, paths)
    if len(images) > 1:
        images = [*images, make_image_grid(images)]
        paths.append(output.with_name(f"{output.stem}-grid{output.suffix}"))
    for image, path in zip(images, paths):
        save_image(image, path)
    return paths


def task_output(
    task: str,
    pipes: list[Any],
    prompt: str,
    inputs: ImageInputs,
    call: dict[str, Any],
    size: tuple[int, int] | None,
    refiner: Refiner,
    output: Path,
) -> Any:
    """A prompted task's pipeline output (DiffEdit's mask saved beside ``output``)."""
    call = call | ip_adapter_arguments(pipes[0], inputs)  # --ip-adapter-image (its scale set on the pipeline)
    if task == DIFFEDIT:
        result, mask = diffedit_output(pipes[0], inputs, call, size)
        save_image(mask, mask_path(output))
        return result
    cls = type(pipes[0])
    images = {**image_arguments(task, inputs, size, cls), **guided_arguments(task, inputs)}
    return prompted_output(pipes, prompt, images, call, refiner)


def save_depth_maps(depth: list[Any], paths: list[Path]) -> list[Path]:
    """LDM3D's 16-bit depth maps beside their pictures (``NAME-depth.png``)."""
    written = [path.with_name(f"{path.stem}-depth.png") for path in paths[: len(depth)]]
    for image, path in zip(depth, written):
        save_image(image, path)
    return written


def guided_arguments(task: str, inputs: ImageInputs) -> dict[str, Any]:
    """The guided loops' own arguments: SEGA's editing prompts, an SLD preset's settings."""
    if task == SEMANTIC:
        scale = (
            {} if inputs.edit_guidance_scale is None else {"edit_guidance_scale": inputs.edit_guidance_scale}
        )
        return {"editing_prompt": list(inputs.editing_prompts), **scale}
    if task == SAFE and inputs.safety_preset is not None:
        from sdrt.runtime.pipelines.safe_guidance import safety_preset

        return safety_preset(inputs.safety_preset)
    return {}


def text_arguments(
    cls: type, prompt: str, negative_prompt: str | None, guidance: float | None, syntax: str, num_images: int
) -> dict[str, Any]:
    """The prompt arguments the pipeline takes: the prompt (once per image where it takes no
    ``num_images_per_prompt``: LDMTextToImagePipeline), the negative prompt, guidance scale and prompt syntax."""
    accepted = inspect.signature(cls.__call__).parameters
    kwargs: dict[str, Any] = {} if guidance is None else {"guidance_scale": guidance}
    if syntax != "diffusers":
        kwargs["prompt_syntax"] = syntax
    if negative_prompt is not None:
        if "negative_prompt" not in accepted:  # latent consistency, latent diffusion text-to-image
            raise InputError(f"--negative-prompt: {cls.__name__} takes no negative prompt; drop it")
        kwargs["negative_prompt"] = negative_prompt
    if "num_images_per_prompt" in accepted:
        return {"prompt": prompt, "num_images_per_prompt": num_images, **kwargs}
    if num_images != 1 and "image" in accepted:  # one image per prompt and image (the latent upscaler)
        raise InputError(f"--num-images: {cls.__name__} makes one image of --image; drop --num-images")
    return {"prompt": [prompt] * num_images, **kwargs}


def set_scheduler(pipe: Any, scheduler: str | None) -> None:
    """``--scheduler``: the class (or alias) from the pipeline's scheduler config."""
    from sdrt.schedulers import get_scheduler_class

    if scheduler:
        chosen = get_scheduler_class(scheduler_class_name(scheduler))
        pipe.scheduler = chosen.from_config(pipe.scheduler.config)


def prompted_output(
    pipes: list[Any], prompt: str, images: dict[str, Any], call: dict[str, Any], refiner: Refiner
) -> Any:
    """The base pipeline's output (``call`` holds the prompt arguments, ``text_arguments``); with a refiner
    (``pipes[1]``), the base stops at ``refiner.fraction`` of the schedule and hands its latents on, and the
    refiner's output is returned."""
    if len(pipes) == 1:
        return pipes[0](**images, **call)
    start = refiner.fraction
    latents = pipes[0](denoising_end=start, output_type="latent", **images, **call).images
    return refined(pipes[1], latents, prompt, call, start)


def check_no_text(
    cls: type, prompt: str | None, negative_prompt: str | None, guidance: float | None, size: Any
) -> None:
    """An unconditional model reads no text and has a fixed size: the flags saying otherwise are errors."""
    if prompt:
        raise InputError(
            f"this bundle's model is guided by no text ({cls.__name__}): it takes no prompt, got {prompt!r}; "
            "drop the prompt (sdrt generate BUNDLE --seed N)"
        )
    for flag, value in (("--negative-prompt", negative_prompt), ("--guidance", guidance)):
        if value is not None:
            raise InputError(f"{flag}: this bundle's model ({cls.__name__}) is guided by no text")
    if size is not None:
        raise InputError(
            "--size does not apply to models without text (their size is fixed, or the --image's for super-resolution)"
        )


def check_class_labels(task: str, class_labels: list[str] | None, unet_classes: int | None) -> None:
    """``--class-label`` for the class-conditional models only (DiT, which needs one; a consistency model with
    ``num_class_embeds``, ids only, random ones where none is given)."""
    if class_labels and unet_classes is not None:
        if not all(label.isdigit() for label in class_labels):
            raise InputError(
                f"--class-label {' '.join(class_labels)}: this bundle's classes are ids 0..{unet_classes - 1}"
            )
        return
    if class_labels and task != CLASS_CONDITIONAL:
        raise InputError("--class-label is for class-conditional (DiT) bundles; this bundle takes none")
    if task == CLASS_CONDITIONAL and not class_labels:
        raise InputError(
            'this bundle is a class-conditional (DiT) model: pass --class-label NAME (e.g. "golden retriever", or a '
            "class id), once per image"
        )


def unconditional_arguments(
    task: str, inputs: ImageInputs, num_images: int, class_labels: list[str], guidance: float | None
) -> dict[str, Any]:
    """RePaint's picture and mask (once per image), DiT's class labels (ids or names; and the guidance scale), or
    the batch size of the pipelines that start from noise."""
    if task == CLASS_CONDITIONAL:
        return {"class_labels": ids_per_image(class_labels, num_images)} | (
            {} if guidance is None else {"guidance_scale": guidance}
        )
    if task == SUPER_RESOLUTION:
        if num_images != 1:
            raise InputError("--num-images: super-resolution makes one image of --image; drop --num-images")
        assert inputs.image is not None  # chosen_task asked for it
        return {"image": read_image(inputs.image, "--image", "RGB")}
    if task != REPAINT and class_labels:  # a class-conditional consistency model: one image per label
        return {
            "batch_size": num_images * len(class_labels),
            "class_labels": ids_per_image(class_labels, num_images),
        }
    if task != REPAINT:
        return {"batch_size": num_images}
    assert inputs.image is not None and inputs.mask is not None  # chosen_task asked for both
    image, mask = read_image(inputs.image, "--image", "RGB"), read_image(inputs.mask, "--mask", "L")
    return {"image": [image] * num_images, "mask_image": [mask] * num_images}


def ids_per_image(class_labels: list[str], num_images: int) -> list[int | str]:
    """Each label (an id as an int, a name as it is) ``num_images`` times."""
    return [int(n) if n.isdigit() else n for n in class_labels for _ in range(num_images)]


def load_loras(pipe: Any, specs: list[str]) -> None:
    """Each ``FILE[:SCALE]`` as an adapter of its own, all active at their scales."""
    from sdrt.runtime.lora.files import parse_lora_spec

    if not hasattr(pipe, "load_lora_weights"):
        raise InputError(f"--lora: {type(pipe).__name__} takes no LoRA (SD 1.x/2.x and SDXL bundles do)")
    parsed = [parse_lora_spec(spec) for spec in specs]
    names = [f"lora_{i}" for i in range(len(parsed))]
    for (path, _), name in zip(parsed, names):
        pipe.load_lora_weights(path, adapter_name=name)
    pipe.set_adapters(names, adapter_weights=[scale for _, scale in parsed])


def save_image(image: Any, path: Path) -> None:
    """Save as the suffix says; a path that cannot be written is the caller's error, said in one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
    except (OSError, ValueError) as error:  # PIL: ValueError for an unknown suffix
        raise InputError(f"cannot write the image {path}: {error}; choose another -o") from error
