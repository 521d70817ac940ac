"""``sdrt inspect --verify``'s check of the per-machine caches a bundle uses: ONNX Runtime's CPU
graphs (each recorded with the sha256 of its source graph and of its own files) and OpenVINO's
model cache (its blobs are keyed and checked by OpenVINO itself; only its place is said)."""

from __future__ import annotations

from pathlib import Path

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.engines.cache import cache_dir
from sdrt.runtime.engines.ort.cache_record import entry_problems
from sdrt.runtime.engines.ort.session import entries_of
from sdrt.runtime.errors import BundleError


def verify_caches(bundle: Bundle) -> list[str]:
    """Lines saying what was found; a ``BundleError`` naming each damaged entry and how to drop it."""
    if cache_dir("ort") is None:
        return ["caches      off (SDRT_CACHE_DIR is empty): nothing cached to check"]
    checked, stale, damaged = 0, [], []
    for name, record in bundle.components.items():
        sources = [f for f in (record.ort.file if record.ort else None, record.onnx) if f]
        for source in dict.fromkeys(bundle.path / f for f in sources):
            for entry in entries_of(source, name):
                problems = entry_problems(entry, source)
                checked += 1
                if any("was made from other bytes" in p for p in problems):
                    stale.append(entry.name)  # an earlier build's: not opened, replaced at the next load
                damaged += [p for p in problems if "was made from other bytes" not in p]
    if damaged:
        raise BundleError(
            f"{bundle.path}: the per-machine cache is damaged: {'; '.join(damaged)}. Remove the entry "
            f"(rm -r ENTRY; it is made again at the next load) or the whole cache: rm -r {cache_dir('ort')}"
        )
    lines = [f"cache        {checked} ONNX Runtime CPU graphs in {cache_dir('ort')} match their sha256"]
    if stale:
        lines.append(f"cache        {len(stale)} made from an earlier build (replaced at the next load)")
    lines.append(_openvino_line())
    return lines


def _openvino_line() -> str:
    folder = cache_dir("openvino")
    if folder is None or not Path(folder).is_dir():
        return "cache        no OpenVINO model cache"
    return f"cache        OpenVINO's model cache {folder}: not checked (OpenVINO keys and checks its blobs)"
