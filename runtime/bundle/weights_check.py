"""The weights a load opens, checked against the manifest: sizes at every load (a ``stat`` per file),
sha256 at the first load of each build on this machine.

A verified build is recorded by a marker under ``<cache>/verified/`` named by the sha256 of the
bundle's ``manifest.json`` and its path (a rebuild writes another manifest, so its first load hashes again) that
lists the components checked. Hashing runs at the speed of ``hashlib.sha256`` (BENCHMARKS.md: about
1.9 GB/s on this project's 2-core EPYC, about 1 s for SD1.5's fp16 engines), once. With the caches
off (``SDRT_CACHE_DIR=``) nothing can be recorded, so only the sizes are checked.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from sdrt.runtime.engines.cache import cache_dir
from sdrt.runtime.errors import BundleError

from .bundle import Bundle
from .integrity import file_problems
from .manifest import manifest_sha256

log = logging.getLogger(__name__)


def check_weights(bundle: Bundle, names: list[str]) -> None:
    """Raise a ``BundleError`` naming the files of components ``names`` that differ from the manifest."""
    marker = _marker(bundle)
    done = set(marker.read_text().split()) if marker is not None and marker.is_file() else set()
    to_hash = [n for n in names if n not in done] if marker is not None else []
    problems = [
        f"{name}: {problem}"
        for name in names
        for problem in file_problems(bundle.path, bundle.components[name], hashes=name in to_hash)
        if not problem.endswith(" is missing")  # the engines opened: a missing file is another backend's
    ]
    if problems:
        raise BundleError(
            f"{bundle.path}: cannot load the bundle, its files are damaged ({'; '.join(problems)}). Rebuild "
            f"it with: build-engine MODEL_DIR -o {bundle.path} --force (inspect --verify lists every file)"
        )
    if marker is not None and to_hash:
        try:
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("\n".join(sorted(done | set(to_hash))) + "\n")
        except OSError as error:  # a read-only cache: hashed again next time
            log.info("cannot record the verified weights in %s (%s)", marker, error)


def _marker(bundle: Bundle) -> Path | None:
    root = cache_dir("verified")
    if root is None:
        return None
    try:
        build = manifest_sha256(bundle.path)
    except OSError:
        return None
    place = hashlib.sha256(str(bundle.path.resolve()).encode()).hexdigest()[:16]
    return root / f"{build}-{place}"  # copies of one build (same manifest) are checked each
