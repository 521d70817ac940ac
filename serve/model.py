"""The model deployment: one bundle's pipeline per replica, requests batched by their settings."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
from typing import Any

from ray import serve
from ray.serve.metrics import Counter, Histogram

from sdrt.runtime.families import TEXT_TO_IMAGE, family
from sdrt.runtime.pipelines.controlnet_part import ControlNetPart

from .application import APP_NAME
from .batching import Call, call_arguments, plan_calls, run_jobs
from .catalog import CONTROL_TASKS, mode_task, served_model
from .embeddings import load_embeddings
from .jobs import Board
from .lora_calls import CallLoras
from .reporter import BatchReporter
from .requests import Job, JobResult
from .samplers import make_scheduler

log = logging.getLogger("ray.serve")


class ModelServer:
    """Loads the bundle once; ``generate`` takes one Job and answers with its JobResult."""

    def __init__(
        self,
        bundle: str,
        provider: str,
        max_batch_size: int,
        batch_wait_ms: float,
        cpu_threads: int | None,
        embeddings_dir: str | None = None,
    ) -> None:
        from sdrt.runtime import DiffusionPipeline
        from sdrt.runtime.engines.ort.session import THREADS_ENV

        from .loopback import keep_on_loopback

        keep_on_loopback()

        if cpu_threads and THREADS_ENV not in os.environ:  # replicas sharing a machine share its cores
            os.environ[THREADS_ENV] = str(cpu_threads)
        self.model = served_model(bundle)
        self.base = DiffusionPipeline.from_pretrained(bundle, provider=provider)
        self.base.set_progress_bar_config(disable=True)
        self.loras = CallLoras(self.base, self.model.name)
        self.embeddings = load_embeddings(self.base, embeddings_dir)
        self.pipelines: dict[tuple[Any, ...], Any] = {}
        self.board = Board(APP_NAME)
        self.max_rows = max(1, min(max_batch_size, self.model.batch[1]))
        batched: Any = self.generate  # @serve.batch adds these setters to the method
        batched.set_max_batch_size(max_batch_size)
        batched.set_batch_wait_timeout_s(batch_wait_ms / 1000)
        tags: Any = ("model", "mode")  # Ray annotates tag_keys as a 1-tuple; it takes any number
        self.images_total = Counter("sdrt_images_total", "images generated", tag_keys=tags)
        self.batch_images = Histogram(
            "sdrt_batch_images",
            "images per pipeline call",
            boundaries=[1, 2, 3, 4, 6, 8, 12, 16],
            tag_keys=tags,
        )
        self.job_ms = Histogram(
            "sdrt_job_ms",
            "ms from a batch's start to a request's images",
            boundaries=[50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000],
            tag_keys=tags,
        )

    @serve.batch(max_batch_size=4, batch_wait_timeout_s=0.05)
    async def generate(self, jobs: list[Job]) -> list[JobResult]:
        reporter = BatchReporter(self.board, jobs, plan_calls(jobs, self.max_rows))
        run_call = functools.partial(self._run_call, reporter=reporter)
        results = await asyncio.to_thread(run_jobs, jobs, self.max_rows, run_call, reporter.keep)
        for job, result in zip(jobs, results):
            self._record(job, result)
        return results

    def _record(self, job: Job, result: JobResult) -> None:
        """Metrics and the log line of one job; a failed job made no images (Ray's counters refuse an
        increment of 0, which once failed every request of the batch)."""
        tags = {"model": job.settings.model, "mode": job.settings.mode}
        if result.images:
            self.images_total.inc(len(result.images), tags=tags)
            self.job_ms.observe(result.ms, tags=tags)
        log.info(
            "sdrt request %s %s images=%d batch_images=%d batch_requests=%d ms=%.0f%s",
            job.request_id,
            job.settings.describe(),
            len(job.rows),
            result.batch_images,
            result.batch_requests,
            result.ms,
            f" error={result.error}" if result.error else "",
        )
        flagged = [i for i, f in enumerate(result.nsfw_content_detected) if f]
        if flagged:
            log.warning(
                "sdrt request %s: the safety checker flagged image(s) %s, answered black (nsfw_content_detected)",
                job.request_id,
                ", ".join(map(str, flagged)),
            )

    def _run_call(self, call: Call, reporter: BatchReporter) -> Any:
        settings = call.settings
        self.batch_images.observe(len(call.rows), tags={"model": settings.model, "mode": settings.mode})
        nets = tuple(u.name for u in settings.controlnets)
        pipe = self._pipeline(settings.mode, settings.sampler, settings.karras, nets)
        takes_negative = "negative_prompt" in inspect.signature(type(pipe).__call__).parameters
        try:
            self.loras.apply(settings.loras)
            return pipe(**call_arguments(call, takes_negative), callback_on_step_end=reporter.callback(call))
        finally:
            reporter.ended(call)

    def _pipeline(self, mode: str, sampler: str | None, karras: bool, nets: tuple[str, ...] = ()) -> Any:
        """The pipeline for a mode, sampler and ControlNets (by name, in the units' order), over the one
        set of loaded engines (made once). Without ControlNets a ControlNet bundle runs its plain
        pipeline (its UNet then adds zero residuals)."""
        key = (mode, sampler, karras, nets)
        if key not in self.pipelines:
            task = CONTROL_TASKS[mode] if nets else mode_task(self.base.bundle.model_type, mode)
            cls = family(self.base.bundle.model_type).pipeline(task)
            if (
                task == TEXT_TO_IMAGE
                and not self.model.controlnets
                and not self.base.bundle.manifest.adapters
            ):
                cls = type(
                    self.base
                )  # an adapter bundle's base is its adapter pipeline: txt2img runs the plain one
            parts: dict[str, Any] = {}
            if sampler is not None:
                parts["scheduler"] = make_scheduler(sampler, karras, dict(self.base.scheduler.config))
            if nets:
                loaded = ControlNetPart.engines(self.base.controlnet)
                parts["controlnet"] = [loaded[name] for name in nets]
            pipe = cls.from_pipe(self.base, **parts)
            pipe.set_progress_bar_config(disable=True)
            self.pipelines[key] = pipe
        return self.pipelines[key]

    def embeddings_listed(self) -> dict[str, Any]:
        """A1111's ``/sdapi/v1/embeddings`` for this replica's model."""
        return self.embeddings

    def check_health(self) -> None:
        """Ray Serve's health check: the engines are loaded (raising here restarts the replica)."""
        if not self.base.engines:
            raise RuntimeError(f"{self.model.name}: no engines loaded")
