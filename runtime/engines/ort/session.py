"""Opening ONNX Runtime sessions, and the CPU graphs at the *all* level cached per machine.

build-engine saves CPU graphs at the *extended* level so that bundles stay portable: the *all* level
adds NCHWc layouts (blocked convolutions) tied to the CPU's vector width. A session redoes that level at
every load, which for SD1.5's UNet is 12 s of a 13 s load (2-core EPYC), for calls 15% faster than the
extended graph's. So the first load on a machine saves the graph the session optimized, under
``<cache>/ort/``, and later loads open it with optimizations off: about 1 s, and the fast calls.
An entry's key holds the source graph's path, size and mtime (a rebuild writes new files), ONNX
Runtime's version and the CPU; saving a new entry deletes the stale ones of the same graph.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from sdrt.runtime.engines.cache import cache_dir
from sdrt.runtime.errors import EngineError

logger = logging.getLogger(__name__)

GRAPH = "graph.onnx"
THREADS_ENV = "SDRT_CPU_THREADS"
_WARNED: set[str] = set()


def open_session(ort: ModuleType, path: Path, options: Any, providers: list[Any], *, name: str) -> Any:
    """An ``InferenceSession``; a graph ONNX Runtime cannot load (truncated, damaged) is an ``EngineError``."""
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as error:  # ORT's own exception types (InvalidProtobuf, Fail, ...) are not exported
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise EngineError(
            f"{name}: ONNX Runtime cannot load {path} ({reason}); the file is damaged or incomplete. Rebuild "
            f"the bundle with: build-engine MODEL_DIR -o {path.parent.parent} --force"
        ) from error


def open_cpu_session(ort: ModuleType, path: Path, *, name: str) -> tuple[Any, Path]:
    """A CPU session at the *all* level, from this machine's cache when it has the graph; and the file opened."""
    root = cache_dir("ort")
    providers = ["CPUExecutionProvider"]
    if root is None:
        return open_session(ort, path, session_options(ort, "ORT_ENABLE_ALL"), providers, name=name), path
    entry = root / _entry_name(ort, path, name)
    if (entry / GRAPH).is_file():
        try:
            options = session_options(ort, "ORT_DISABLE_ALL")
            return ort.InferenceSession(
                str(entry / GRAPH), sess_options=options, providers=providers
            ), entry / GRAPH
        except Exception:  # a damaged entry: drop it and optimize again
            logger.warning("%s: the cached graph %s is damaged; optimizing %s again", name, entry, path)
            shutil.rmtree(entry, ignore_errors=True)
    session = _save_optimized(ort, path, entry, name=name)
    if session is None:
        return open_session(ort, path, session_options(ort, "ORT_ENABLE_ALL"), providers, name=name), path
    return session, path


def _save_optimized(ort: ModuleType, path: Path, entry: Path, *, name: str) -> Any | None:
    """The session on ``path``, its optimized graph saved into ``entry``; None when it cannot be saved."""
    scratch = entry.with_name(f"{entry.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        scratch.mkdir(parents=True)
    except OSError as error:
        logger.info("%s: no ONNX Runtime graph cache at %s (%s)", name, entry.parent, error)
        return None
    options = session_options(ort, "ORT_ENABLE_ALL")
    options.log_severity_level = 3  # its warning that NCHWc graphs fit this CPU only: the key holds the CPU
    options.optimized_model_filepath = str(scratch / GRAPH)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", GRAPH + "_data"
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception:  # a damaged source graph or a full disk: the plain load says which
        logger.debug("%s: saving the optimized graph failed", name, exc_info=True)
        shutil.rmtree(scratch, ignore_errors=True)
        return None
    for stale in entry.parent.glob(entry.name.rsplit("-", 1)[0] + "-*"):
        if stale != scratch and ".tmp-" not in stale.name:
            shutil.rmtree(stale, ignore_errors=True)
    try:
        scratch.rename(entry)
        size = sum(f.stat().st_size for f in entry.iterdir())
        logger.info("%s: cached ONNX Runtime's graph for this CPU in %s (%.1f MB)", name, entry, size / 1e6)
    except OSError:  # another process saved it first
        shutil.rmtree(scratch, ignore_errors=True)
    return session


def session_options(ort: ModuleType, level: str) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    threads = cpu_threads()
    if threads:
        options.intra_op_num_threads = threads
    return options


def cpu_threads() -> int | None:
    """``$SDRT_CPU_THREADS``: threads per CPU session (None, ONNX Runtime's default: one per core). Several
    processes on one machine, such as ``sdrt serve``'s replicas, each set it to their share of the cores.
    More threads than cores only make the threads wait for each other (1000 on 2 cores: 150x slower), so
    the value is capped at the cores this process may use, with a warning."""
    value = os.environ.get(THREADS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise EngineError(
            f"${THREADS_ENV}={value!r}: give a whole number of threads, at least 1 (or unset it)"
        )
    cores = usable_cores()
    if int(value) > cores:
        if value not in _WARNED:  # once per process, not per session
            _WARNED.add(value)
            logger.warning(
                "$%s=%s is more than the %d cores here; using %d", THREADS_ENV, value, cores, cores
            )
        return cores
    return int(value)


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _entry_name(ort: ModuleType, path: Path, name: str) -> str:
    """``<name>-<graph>-<files, ORT, CPU>``: the middle part names the graph, the last its version."""
    path = path.resolve()
    files = [path, path.with_name(path.stem + ".onnx_data")]
    stats = [(f.stat().st_size, f.stat().st_mtime_ns) for f in files if f.exists()]
    version = json.dumps([stats, ort.__version__, _cpu_signature()])
    return f"{name}-{_digest(str(path))}-{_digest(version)}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _cpu_signature() -> str:
    """The CPU's model and feature flags (the NCHWc block size follows its vector width)."""
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return f"{platform.machine()} {platform.processor()}"
    keep = [line for line in info if line.split(":")[0].strip() in ("model name", "flags", "Features")]
    return "\n".join(dict.fromkeys(keep))
