"""A replica's side of jobs (``jobs.py``): one batch's jobs as its pipeline calls run them.

Before each call the rows of interrupted jobs are dropped; at each step the call's jobs report their step
(and, every ``Job.preview_every`` steps, a preview of their first image) and read their stop flags. A call
stops (diffusers' ``pipe._interrupt``, the images decoded from the latents it has, as A1111 answers) when
every job in it is interrupted or skipped: a job sharing a call with a job that runs on finishes it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .batching import Call
from .images import png_bytes
from .jobs import Board, Pending
from .requests import Job

log = logging.getLogger("ray.serve")

Flags = dict[str, tuple[bool, int | None]]


class BatchReporter:
    def __init__(self, board: Board, jobs: list[Job], calls: list[Call]) -> None:
        self.board, self.jobs = board, jobs
        self.ids = [job.job_id or job.request_id for job in jobs]
        self.count = [0] * len(jobs)
        for call in calls:
            for owner in set(call.owners):
                self.count[owner] += 1
        self.done = [0] * len(jobs)
        self.flags: Flags = {}
        self.pending: Pending | None = None
        self.failed = False

    def keep(self, call: Call) -> Call | None:
        """``call`` without the rows of interrupted jobs (None: no row left); its jobs reported started."""
        updates = {
            self.ids[o]: self._fields(o, 0, call.settings.steps, call) for o in sorted(set(call.owners))
        }
        self.flags.update(self.board.ask_now("report", updates) or {})
        kept = [(o, row) for o, row in zip(call.owners, call.rows) if not self._interrupted(o)]
        if not kept:
            return None
        return Call(call.settings, tuple(r for _, r in kept), tuple(o for o, _ in kept))

    def ended(self, call: Call) -> None:
        for owner in set(call.owners):
            self.done[owner] += 1

    def callback(self, call: Call) -> Callable[..., dict[str, Any]]:
        """The call's ``callback_on_step_end``: report, preview, stop when all its jobs are stopped."""
        owners = sorted(set(call.owners))
        first_row = {o: call.owners.index(o) for o in owners}

        def on_step(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            try:
                self._on_step(pipe, step, tensors["latents"], owners, first_row, call)
            except Exception:  # noqa: BLE001 - progress must never fail the images
                if not self.failed:
                    log.warning("sdrt progress report failed", exc_info=True)
                self.failed = True
            return {}

        return on_step

    def _on_step(
        self, pipe: Any, step: int, latents: Any, owners: list[int], first_row: dict[int, int], call: Call
    ) -> None:
        if self.pending is not None:
            answer = self.pending.poll()
            if answer is not None:
                self.flags.update(answer)
                self.pending = None
        total = pipe.num_timesteps or call.settings.steps
        updates = {}
        for owner in owners:
            fields = self._fields(owner, step + 1, total, call)
            every = self.jobs[owner].preview_every
            if every > 0 and (step + 1) % every == 0 and step + 1 < total:
                fields["preview"] = self._preview(pipe, latents, first_row[owner], call)
            updates[self.ids[owner]] = fields
        pending = self.board.tell("report", updates)
        if self.pending is None:  # the oldest unanswered report's flags come first
            self.pending = pending
        if all(self._stopped(o) for o in owners):
            pipe._interrupt = True

    def _fields(self, owner: int, step: int, total: int, call: Call) -> dict[str, Any]:
        return {
            "model": call.settings.model,
            "job_no": self.done[owner],
            "job_count": self.count[owner],
            "sampling_step": step,
            "sampling_steps": total,
        }

    def _preview(self, pipe: Any, latents: Any, row: int, call: Call) -> bytes | None:
        from sdrt.runtime.pipelines.previews import preview_images

        size = (call.settings.width, call.settings.height)
        images = preview_images(pipe, latents, [row], size)
        return png_bytes(images[0]) if images else None

    def _interrupted(self, owner: int) -> bool:
        return self.flags.get(self.ids[owner], (False, None))[0]

    def _stopped(self, owner: int) -> bool:
        interrupted, skip_call = self.flags.get(self.ids[owner], (False, None))
        return interrupted or skip_call == self.done[owner]
