"""A1111's progress answers from a job's state (``jobs.JobState`` as ``JobBoard.get`` gives it).

``/sdapi/v1/progress`` is A1111's ``modules/api/api.py`` ``progressapi`` (progress, ``eta_relative``, ``state``,
``current_image``, ``textinfo``, ``current_task``); ``/internal/progress`` is its ``modules/progress.py``
(``active``, ``queued``, ``completed``, ``live_preview`` as a data URL, ``id_live_preview``), the one its
web page polls with an ``id_task``. The arithmetic is theirs: a job is ``job_count`` pipeline calls of
``sampling_steps`` steps each; the ETA assumes the rest runs as fast as what ran.
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, Field

from .images import b64

# A1111's shared.state.dict() when nothing runs
IDLE_STATE = {
    "skipped": False,
    "interrupted": False,
    "stopping_generation": False,
    "job": "",
    "job_count": 0,
    "job_timestamp": "0",
    "job_no": 0,
    "sampling_step": 0,
    "sampling_steps": 0,
}


class ProgressResponse(BaseModel):
    """``GET /sdapi/v1/progress``"""

    progress: float = Field(description="0 to 1")
    eta_relative: float = Field(description="seconds left, estimated")
    state: dict[str, Any] = Field(description="A1111's shared.state: job, job_count, sampling_step...")
    current_image: str | None = Field(None, description="a base64 PNG preview of the job's first image")
    textinfo: str | None = None
    current_task: str | None = Field(None, description="the job's id")


class InternalProgressRequest(BaseModel):
    """``POST /internal/progress``"""

    id_task: str | None = None
    id_live_preview: int = -1
    live_preview: bool = True


class InternalProgressResponse(BaseModel):
    active: bool
    queued: bool
    completed: bool
    progress: float | None = None
    eta: float | None = None
    live_preview: str | None = None
    id_live_preview: int | None = None
    textinfo: str | None = None


def fraction(job: dict[str, Any]) -> float:
    """How much of the job is done, 0 to 1 (A1111's formula, without its 0.01 head start)."""
    done = 0.0
    if job["job_count"] > 0:
        done += job["job_no"] / job["job_count"]
        if job["sampling_steps"] > 0:
            done += job["sampling_step"] / job["sampling_steps"] / job["job_count"]
    return min(done, 1.0)


def progress(job: dict[str, Any] | None, skip_current_image: bool) -> dict[str, Any]:
    """``/sdapi/v1/progress``'s answer for a job (None: nothing runs; a queued job has made no progress)."""
    if job is None or job["started_at"] is None or job["finished"]:
        state = dict(IDLE_STATE)
        textinfo = None
        if job is not None:
            state.update(job=job["job"], job_count=job["job_count"], interrupted=job["interrupted"])
            textinfo = "Finished" if job["finished"] else _queue_text(job)
        current = job["job"] if job is not None else None
        return {
            "progress": 1.0 if job and job["finished"] else 0.0,
            "eta_relative": 0.0,
            "state": state,
            "current_image": None,
            "textinfo": textinfo,
            "current_task": current,
        }
    done = 0.01 + fraction(job)  # A1111 starts at 0.01 "to avoid dividing by zero"
    elapsed = time.time() - job["started_at"]
    state = {name: job[name] for name in IDLE_STATE if name in job}
    state["stopping_generation"] = False
    image = job["preview"]
    return {
        "progress": min(done, 1.0),
        "eta_relative": max(0.0, elapsed / done - elapsed),
        "state": state,
        "current_image": None if skip_current_image or image is None else b64(image),
        "textinfo": f"Step {job['sampling_step']}/{job['sampling_steps']}",
        "current_task": job["job"],
    }


def internal_progress(job: dict[str, Any] | None, id_live_preview: int, live_preview: bool) -> dict[str, Any]:
    """``/internal/progress``'s answer; an unknown ``id_task`` is "Waiting..." (inactive), as in A1111."""
    if job is None or job["started_at"] is None or job["finished"]:
        completed = bool(job and job["finished"])
        queued = bool(job and not completed)
        textinfo = "Waiting..." if not queued else _queue_text(job)
        return {
            "active": False,
            "queued": queued,
            "completed": completed,
            "id_live_preview": -1,
            "textinfo": textinfo,
        }
    done = fraction(job)
    elapsed = time.time() - job["started_at"]
    answer: dict[str, Any] = {
        "active": True,
        "queued": False,
        "completed": False,
        "progress": done,
        "eta": max(0.0, elapsed / done - elapsed) if done > 0 else None,
        "id_live_preview": id_live_preview,
        "textinfo": f"Step {job['sampling_step']}/{job['sampling_steps']}",
    }
    if live_preview and job["preview"] is not None and job["preview_count"] != id_live_preview:
        answer["live_preview"] = "data:image/png;base64," + b64(job["preview"])
        answer["id_live_preview"] = job["preview_count"]
    return answer


def _queue_text(job: dict[str, Any] | None) -> str:
    position = job.get("queue_position") if job else None
    return "Waiting..." if position is None else f"In queue: {position + 1}/{job['queued'] if job else 0}"
