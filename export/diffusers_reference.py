"""The diffusers side of ``sdrt bench --compare-diffusers``: the model check and a timed diffusers pipeline.

torch and diffusers are imported inside the functions only (the runtime stays importable without them);
the comparison needs the [export] extra. :func:`check_comparison_model` reads JSON and hashes files, so a
wrong folder is refused before anything is loaded.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sdrt.runtime.backends import get_backend
from sdrt.runtime.bench.process import ProcessRunner
from sdrt.runtime.bench.runner import BenchSettings
from sdrt.runtime.bench.stages import (
    DENOISE_LOOP,
    TEXT_ENCODER,
    UNET,
    VAE_DECODE,
    HostClock,
    StageRecorder,
    run_figures,
    wrap_method,
)
from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import InputError, ProviderNotAvailableError

from .model.folder import inspect_model_folder


def pipeline_from_pretrained(pipeline_class: Any, model_dir: Path | str, dtype: Any, **kwargs: Any) -> Any:
    """``pipeline_class.from_pretrained`` in ``dtype``, quiet about diffusers' torch_dtype rename.

    Newer diffusers call the argument ``dtype`` and warn on ``torch_dtype``; older ones know only
    ``torch_dtype``, which both still accept.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pipeline_class.from_pretrained(model_dir, torch_dtype=dtype, **kwargs)


class ComparisonModelError(InputError):
    """The --compare-diffusers folder is not the model the bundle was built from."""


DIFFUSERS_DTYPES = ("auto", "float32", "float16", "bfloat16")


class DiffusersReference:
    """``sdrt bench --compare-diffusers MODEL_DIR``: diffusers on the folder the bundle was built from
    (the bench's :class:`~sdrt.runtime.bench.runner.Reference`).

    ``dtype``: diffusers' ``torch_dtype``; ``"auto"`` matches sdrt's engines (float16 when they are fp16,
    else float32). On a CPU, ``"bfloat16"`` is diffusers' fastest setting.
    """

    def __init__(self, model_dir: str | Path, dtype: str = "auto") -> None:
        if dtype not in DIFFUSERS_DTYPES:
            raise InputError(f"--diffusers-dtype {dtype!r} is not one of {', '.join(DIFFUSERS_DTYPES)}")
        self.model_dir = Path(model_dir)
        self.source = str(model_dir)
        self.dtype = dtype

    def check(self, bundle: Bundle) -> None:
        check_comparison_model(bundle, self.model_dir)

    def runner(self, settings: BenchSettings, sdrt: dict[str, Any]) -> ProcessRunner:
        """diffusers with sdrt's scheduler, on the GPU when sdrt runs there, in the asked dtype (``auto``: fp16
        when sdrt's engines are, else fp32), in a process of its own (``sdrt.export.diffusers_process``):
        never in the process that has run sdrt's engines, whose thread pools and memory it would share."""
        dtype = self.dtype
        if dtype == "auto":
            dtype = "float16" if "fp16" in sdrt["precision"] else "float32"
        request = {
            "model_dir": str(self.model_dir),
            "settings": asdict(settings),
            "scheduler": sdrt["scheduler"],
            "on_gpu": get_backend(sdrt["provider"]).on_gpu,
            "dtype": dtype,
        }
        return ProcessRunner("sdrt.export.diffusers_process", "diffusers", request)


def check_comparison_model(bundle: Bundle, model_dir: Path) -> None:
    """Refuse a model folder of another model type, or whose weights hash differs from the manifest's."""
    recorded, built_from = bundle.manifest.source.weights_sha256, bundle.manifest.source.path
    folder = inspect_model_folder(model_dir)
    digest = folder.weights_sha256()
    if folder.model_type != bundle.model_type:
        raise ComparisonModelError(
            f"--compare-diffusers {model_dir} holds a {folder.model_type!r} model ({folder.pipeline_class}), but "
            f"the bundle {bundle.path} is a {bundle.model_type!r} model built from {built_from}; pass the model "
            "folder the bundle was built from"
        )
    if not recorded:
        raise ComparisonModelError(
            f"the manifest of {bundle.path} records no weights hash, so {model_dir} cannot be checked against it; "
            f"rebuild the bundle with build-engine {model_dir} -o {bundle.path}"
        )
    if digest != recorded:
        raise ComparisonModelError(
            f"--compare-diffusers {model_dir} has other weights (sha256 {digest[:12]}) than the bundle "
            f"{bundle.path} was built from ({built_from}, sha256 {recorded[:12]}); pass that folder, or rebuild "
            f"the bundle from this one with build-engine {model_dir} -o {bundle.path}"
        )


class TorchEventClock:
    """CUDA events on torch's current stream (the diffusers side on a GPU)."""

    def __init__(self) -> None:
        import torch

        self._torch = torch

    def mark(self) -> Any:
        event = self._torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def settle(self, last: Any) -> None:
        last.synchronize()

    def seconds(self, start: Any, end: Any) -> float:
        return float(start.elapsed_time(end)) / 1000.0


class _TimedProgress:
    """Stands in for ``pipe.progress_bar``: diffusers runs its denoising loop inside it (as a context
    manager, or iterating over it for DDPM), so its span is the loop's span."""

    def __init__(self, original: Any, recorder: StageRecorder) -> None:
        self.original = original
        self.recorder = recorder

    def __call__(self, iterable: Any = None, total: int | None = None) -> Any:
        bar = self.original(iterable=iterable, total=total)
        return self._iterate(bar) if iterable is not None else self._context(bar)

    def _iterate(self, bar: Any) -> Iterator[Any]:
        with self.recorder.stage(DENOISE_LOOP):
            yield from bar

    @contextmanager
    def _context(self, bar: Any) -> Iterator[Any]:
        with self.recorder.stage(DENOISE_LOOP), bar:
            yield bar


class DiffusersRunner:
    """diffusers' pipeline on a model folder, stages timed by wrapping the modules' ``forward``."""

    library = "diffusers"

    def __init__(self, model_dir: Path, settings: Any, *, scheduler: str, on_gpu: bool, dtype: str) -> None:
        try:
            import diffusers
            import torch
        except ImportError as error:
            raise ProviderNotAvailableError(
                f"--compare-diffusers needs torch and diffusers ({error}); install them: pip install 'sdrt[export]'"
            ) from error
        self.settings = settings
        self.device = "cuda" if on_gpu else "cpu"
        self.dtype = getattr(torch, dtype)
        self._torch = torch
        if on_gpu:
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        pipe = pipeline_from_pretrained(diffusers.DiffusionPipeline, model_dir, self.dtype)
        pipe = pipe.to(self.device)
        pipe.scheduler = getattr(diffusers, scheduler).from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.load_s = time.perf_counter() - start
        self.pipe = pipe
        self.recorder = StageRecorder(TorchEventClock() if on_gpu else HostClock())
        self.undo = self._instrument()

    def _instrument(self) -> Any:
        pipe, undos = self.pipe, []
        for name in ("text_encoder", "text_encoder_2"):
            if getattr(pipe, name, None) is not None:
                undos.append(wrap_method(getattr(pipe, name), "forward", self.recorder, TEXT_ENCODER))
        undos.append(wrap_method(pipe.unet, "forward", self.recorder, UNET))
        if getattr(pipe, "vae", None) is not None:
            undos.append(wrap_method(pipe.vae, "decode", self.recorder, VAE_DECODE))
        original = pipe.progress_bar
        pipe.progress_bar = _TimedProgress(original, self.recorder)

        def undo() -> None:
            del pipe.progress_bar
            for step in reversed(undos):
                step()

        return undo

    def describe(self) -> dict[str, Any]:
        return {
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "torch_threads": self._torch.get_num_threads(),
        }

    def run(self) -> dict[str, Any]:
        s, torch = self.settings, self._torch
        generator = torch.Generator(self.device).manual_seed(s.seed)
        start = time.perf_counter()
        with torch.inference_mode():
            if s.height is None:
                self.pipe(
                    batch_size=s.batch, generator=generator, num_inference_steps=s.steps, output_type="np"
                )
            else:
                self.pipe(
                    [s.prompt] * s.batch,
                    height=s.height,
                    width=s.width,
                    num_inference_steps=s.steps,
                    guidance_scale=s.guidance_scale,
                    generator=generator,
                    output_type="np",
                )
        if self.device == "cuda":
            torch.cuda.synchronize()
        pipeline_s = time.perf_counter() - start
        return run_figures(self.recorder.take(), pipeline_s)

    def memory_figures(self) -> dict[str, float]:
        if self.device != "cuda":
            return {}
        return {"peak_device_mib": self._torch.cuda.max_memory_allocated() / 2**20}

    def close(self) -> None:
        self.undo()
