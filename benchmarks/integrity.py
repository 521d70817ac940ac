"""The cost of item 6 of issue 28 (integrity): sha256 throughput of this machine, and checking a bundle's
files by size (every load) and by sha256 (a rebuild, the first load of a build, ``inspect --verify``).

    python benchmarks/integrity.py BUNDLE
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

from sdrt.runtime.bundle import integrity
from sdrt.runtime.bundle.manifest import read_manifest


def throughput(megabytes: int = 256) -> float:
    data = os.urandom(megabytes << 20)
    started = time.perf_counter()
    digest = hashlib.sha256()
    for at in range(0, len(data), 1 << 20):
        digest.update(data[at : at + (1 << 20)])
    return len(data) / (time.perf_counter() - started)


def check_seconds(bundle: Path, hashes: bool) -> float:
    manifest = read_manifest(bundle)
    integrity._file_sha256.cache_clear()
    started = time.perf_counter()
    for record in manifest.components.values():
        integrity.file_problems(bundle, record, hashes=hashes)
    return time.perf_counter() - started


def main(bundle: Path) -> None:
    manifest = read_manifest(bundle)
    size = sum(f.bytes for r in manifest.components.values() for f in r.checksums.values())
    speed = max(throughput() for _ in range(3))
    print(
        f"sha256: {speed / 1e9:.2f} GB/s, {1e9 / speed:.2f} s per GB (cores: {os.cpu_count()}, load {os.getloadavg()[0]:.1f})"
    )
    sizes, hashed = check_seconds(bundle, False), check_seconds(bundle, True)
    print(f"{bundle}: {size / 1e6:.1f} MB recorded; sizes {sizes * 1e3:.1f} ms, sha256 {hashed * 1e3:.1f} ms")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
