"""Jobs: every request's progress, preview and stop flags, in one place every replica and the ingress reach.

The ``JobBoard`` runs as one named, detached Ray actor per application (``Board`` finds or makes it), so
that progress is right with several model replicas and several ingress replicas: the ingress queues and
finishes a job; the replica running it reports each step (``report``, which answers the job's stop flags,
so a replica learns of an interrupt one step later at no extra round trip); ``/progress``, ``/interrupt``
and ``/skip`` read and set it. Outside Ray (tests of the app alone) the board is a plain local object.

A1111 has one job at a time; here several run at once. A request naming no job means A1111's "current
job": the most recently started one still running (``interrupt`` and ``skip`` without an id stop every
running job, as A1111's stop whatever runs).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass
from typing import Any

log = logging.getLogger("ray.serve")

KEEP_FINISHED = 256  # finished jobs remembered (``/internal/progress`` answers "completed" for them)
KEEP_ALL = 4096  # jobs remembered at most (an ingress that died never finished its jobs)
STALE_S = 600.0  # a running job not reported for this long is not "the current job" (its replica died)


@dataclass
class JobState:
    """One job as the board knows it (A1111's ``shared.state`` fields, per job)."""

    job: str
    model: str
    queued_at: float
    started_at: float | None = None
    job_timestamp: str = "0"
    job_no: int = 0  # the pipeline call of the job now running (A1111: the n_iter iteration)
    job_count: int = 1
    sampling_step: int = 0
    sampling_steps: int = 0
    interrupted: bool = False
    skip_call: int | None = None  # /skip: the call (job_no) to end early
    preview: bytes | None = None  # the latest preview, a PNG
    preview_count: int = 0  # previews made so far
    finished: bool = False
    reported_at: float = 0.0

    @property
    def skipped(self) -> bool:
        return self.skip_call is not None and self.skip_call == self.job_no


class JobBoard:
    """The jobs of one application (the Ray actor's body; every method is quick and never raises)."""

    def __init__(self) -> None:
        self.jobs: OrderedDict[str, JobState] = OrderedDict()

    def queue(self, job: str, model: str) -> None:
        if job not in self.jobs:  # its replica may have reported first
            self.jobs[job] = JobState(job, model, time.time())
        while len(self.jobs) > KEEP_ALL:
            self.jobs.popitem(last=False)

    def report(self, updates: dict[str, dict[str, Any]]) -> dict[str, tuple[bool, int | None]]:
        """Replica -> board: each job's new fields; answers each job's (interrupted, skip_call)."""
        flags = {}
        for job, fields in updates.items():
            state = self.jobs.get(job)
            if state is None:  # queued by an ingress that restarted, or reported after its finish
                state = self.jobs[job] = JobState(job, fields.get("model", ""), time.time())
            state.reported_at = time.time()
            if state.started_at is None:
                state.started_at = time.time()
                state.job_timestamp = time.strftime("%Y%m%d%H%M%S")
            preview = fields.pop("preview", None)
            if preview is not None:
                state.preview, state.preview_count = preview, state.preview_count + 1
            for name, value in fields.items():
                if name in ("job_no", "job_count", "sampling_step", "sampling_steps"):
                    setattr(state, name, value)
            flags[job] = (state.interrupted, state.skip_call)
        return flags

    def flags(self, jobs: list[str]) -> dict[str, tuple[bool, int | None]]:
        return self.report({job: {} for job in jobs if job in self.jobs})

    def finish(self, job: str) -> None:
        state = self.jobs.get(job)
        if state is not None:
            state.finished = True
            self.jobs.move_to_end(job)
        finished = [j for j, s in self.jobs.items() if s.finished]
        for old in finished[: max(0, len(finished) - KEEP_FINISHED)]:
            del self.jobs[old]

    def get(self, job: str | None, with_preview: bool = True) -> dict[str, Any] | None:
        """A job's state (with ``skipped``, ``queued``: the jobs queued before it), or the current job's for
        None; None for an unknown job, or when none runs."""
        state = self.jobs.get(job) if job is not None else self._current()
        if state is None:
            return None
        answer = asdict(state)
        answer["skipped"] = state.skipped
        if not with_preview:
            answer["preview"] = None
        pending = [s for s in self.jobs.values() if s.started_at is None and not s.finished]
        answer["queue_position"] = next((i for i, s in enumerate(pending) if s.job == state.job), None)
        answer["queued"] = len(pending)
        return answer

    def interrupt(self, job: str | None) -> int:
        """Stop a job (or every running one): its current call ends, decoding the latents it has; the job
        answers with the images made so far. The number of jobs flagged."""
        states = self._chosen(job)
        for state in states:
            state.interrupted = True
        return len(states)

    def skip(self, job: str | None) -> int:
        """End a job's current pipeline call (or every running job's), keeping its image; its next calls run."""
        states = self._chosen(job)
        for state in states:
            state.skip_call = state.job_no
        return len(states)

    def _chosen(self, job: str | None) -> list[JobState]:
        if job is not None:
            state = self.jobs.get(job)
            return [state] if state is not None and not state.finished else []
        return self._running()

    def _current(self) -> JobState | None:
        return max(self._running(), key=lambda s: s.started_at or 0.0, default=None)

    def _running(self) -> list[JobState]:
        recent = time.time() - STALE_S
        return [
            s
            for s in self.jobs.values()
            if s.started_at is not None and not s.finished and s.reported_at > recent
        ]


class Board:
    """The application's :class:`JobBoard`: the named Ray actor when Ray runs (found or made at first use),
    else a local one. Calls never fail a request: a board that cannot be reached answers None."""

    def __init__(self, app: str = "sdrt") -> None:
        self.name = f"sdrt-jobs-{app}"
        self._actor: Any = None
        self._local: JobBoard | None = None

    def _target(self) -> Any:
        if self._actor is None and self._local is None:
            import ray

            if ray.is_initialized():
                options = {"name": self.name, "namespace": "sdrt", "get_if_exists": True}
                self._actor = (
                    ray.remote(JobBoard)
                    .options(**options, lifetime="detached", num_cpus=0, max_restarts=-1)
                    .remote()
                )
            else:
                self._local = JobBoard()
        return self._local if self._local is not None else self._actor

    async def ask(self, method: str, *args: Any) -> Any:
        target = self._target()
        if isinstance(target, JobBoard):
            return getattr(target, method)(*args)
        try:
            return await getattr(target, method).remote(*args)
        except Exception:  # noqa: BLE001 - the board restarts empty; a job's progress is not its result
            log.warning("sdrt job board %s.%s failed", self.name, method, exc_info=True)
            return None

    def ask_now(self, method: str, *args: Any, timeout: float = 10.0) -> Any:
        """The answer, from a thread that is not an event loop's (the replica's pipeline thread)."""
        return self.tell(method, *args).wait(timeout)

    def tell(self, method: str, *args: Any) -> Pending:
        """Send without waiting; the answer, if wanted, from the returned :class:`Pending`."""
        target = self._target()
        if isinstance(target, JobBoard):
            return Pending(value=getattr(target, method)(*args))
        try:
            return Pending(ref=getattr(target, method).remote(*args))
        except Exception:  # noqa: BLE001 - as in ask
            log.warning("sdrt job board %s.%s failed", self.name, method, exc_info=True)
            return Pending()


class Pending:
    """A board call's answer: ``poll()`` it (None until it came) or ``wait`` for it."""

    def __init__(self, ref: Any = None, value: Any = None) -> None:
        self.ref, self.value = ref, value

    def poll(self) -> Any:
        return self.wait(0)

    def wait(self, timeout: float) -> Any:
        if self.ref is None:
            return self.value
        import ray

        try:
            ready, _ = ray.wait([self.ref], timeout=timeout)
            if ready:
                self.value, self.ref = ray.get(self.ref), None
        except Exception:  # noqa: BLE001 - as in Board.ask
            log.warning("sdrt job board answer failed", exc_info=True)
            self.ref = None
        return self.value
