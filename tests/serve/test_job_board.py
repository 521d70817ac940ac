"""The job board's rules (``serve/jobs.py``), without Ray: A1111's "current job" among several, stop flags,
jobs forgotten."""

from __future__ import annotations

import pytest

from sdrt.serve import jobs
from sdrt.serve.jobs import JobBoard


def step(board: JobBoard, job: str, sampling_step: int, job_no: int = 0) -> tuple[bool, int | None]:
    fields = {"job_no": job_no, "job_count": 2, "sampling_step": sampling_step, "sampling_steps": 10}
    return board.report({job: fields})[job]


def test_the_current_job_is_the_latest_started_and_stops_hit_running_jobs_only() -> None:
    board = JobBoard()
    for job in ("a", "b", "queued"):
        board.queue(job, "m")
    step(board, "a", 1)
    step(board, "b", 1)
    assert board.get(None)["job"] == "b" and board.get("queued")["queue_position"] == 0
    assert board.interrupt(None) == 2 and step(board, "a", 2) == (True, None)
    assert board.get("queued")["interrupted"] is False
    board.skip("b")
    assert step(board, "b", 2) == (True, 0) and board.get("b")["skipped"]
    assert board.get("b", with_preview=False)["preview"] is None
    step(board, "b", 0, job_no=1)
    assert not board.get("b")["skipped"]  # a skip ends one call, not the job
    board.finish("b")
    board.finish("a")
    assert board.get(None) is None and board.get("b")["finished"] and board.get("nope") is None


def test_a_job_no_replica_reports_is_not_current_and_old_jobs_are_forgotten(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    board = JobBoard()
    board.queue("lost", "m")
    step(board, "lost", 3)
    monkeypatch.setattr(jobs, "STALE_S", -1.0)
    assert board.get(None) is None and board.get("lost") is not None
    monkeypatch.setattr(jobs, "KEEP_ALL", 3)
    for i in range(5):
        board.queue(str(i), "m")
    assert list(board.jobs) == ["2", "3", "4"]
