"""Wall time of a fresh interpreter importing sdrt's pipeline beside diffusers' (alternating, median).

python benchmarks/import_time.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

IMPORTS = {
    "sdrt.runtime": "from sdrt.runtime import StableDiffusionPipeline",
    "diffusers": "from diffusers import StableDiffusionPipeline",
    "bare interpreter": "pass",
}


def seconds(statement: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    times: dict[str, list[float]] = {name: [] for name in IMPORTS}
    for statement in IMPORTS.values():
        seconds(statement)  # warm the file cache
    for _ in range(args.repeats):
        for name, statement in IMPORTS.items():
            times[name].append(seconds(statement))
    ours, ref = statistics.median(times["sdrt.runtime"]), statistics.median(times["diffusers"])
    print(f"import StableDiffusionPipeline in a fresh interpreter, median of {args.repeats}")
    for name, values in times.items():
        print(
            f"{name:<17} {statistics.median(values):6.2f} s  (min {min(values):.2f}, max {max(values):.2f})"
        )
    print(f"sdrt / diffusers: {ours / ref:.3f}")


if __name__ == "__main__":
    main()
