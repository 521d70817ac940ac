"""Seconds per image with step caching (DeepCache) against none, on one bundle built with --deepcache, the
settings interleaved (1, 3, 1, 3...) so that a shared, loaded machine slows each alike; the ratio is the figure.

    python benchmarks/deepcache_steps.py BUNDLE [--intervals 1,3] [--steps 25] [--rounds 5] [--provider cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

from sdrt.runtime import DiffusionPipeline
from sdrt.schedulers import DPMSolverMultistepScheduler


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("bundle")
    p.add_argument("--intervals", default="1,3")
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--size", type=int, default=None, help="height and width (default: the model's)")
    p.add_argument("--provider", default="cpu")
    p.add_argument("--prompt", default="a red circle")
    args = p.parse_args()
    pipe = DiffusionPipeline.from_pretrained(args.bundle, provider=args.provider)
    pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    intervals = [int(n) for n in args.intervals.split(",")]
    size = {} if args.size is None else {"height": args.size, "width": args.size}
    seconds: dict[int, list[float]] = {n: [] for n in intervals}
    for round_ in range(args.rounds + 1):  # round 0 warms up (engines opened, caches filled)
        for n in intervals:
            started = time.perf_counter()
            pipe(args.prompt, num_inference_steps=args.steps, generator=0, cache_interval=n, **size)
            if round_:
                seconds[n].append(time.perf_counter() - started)
    base = statistics.median(seconds[intervals[0]])
    for n in intervals:
        median = statistics.median(seconds[n])
        print(
            f"cache_interval {n}: {median:.3f} s per image (median of {args.rounds}; "
            f"min {min(seconds[n]):.3f}), {base / median:.2f}x the speed of cache_interval {intervals[0]}"
        )


if __name__ == "__main__":
    main()
