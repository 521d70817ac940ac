"""Host time of one scheduler ``step`` on a 1×4×64×64 float32 latent: sdrt (NumPy) beside diffusers (torch CPU).

    python benchmarks/scheduler_step.py [--steps 25] [--repeats 7]

Each repeat times a whole ``steps``-step loop (a fixed fake model output, so only the scheduler is
timed) for both libraries back to back; the figures are medians of the per-step time, and the ratio
is taken within each repeat, so machine noise hits both sides alike.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

SD15 = {
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "skip_prk_steps": True,
    "clip_sample": False,
}
SCHEDULERS = {
    "Euler": ("EulerDiscreteScheduler", {}),
    "DPM++ 2M": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "UniPC": ("UniPCMultistepScheduler", {}),
}


def loop_seconds(scheduler, sample, model_output, steps: int) -> float:
    """Mean seconds of one ``step`` call in a ``steps``-step loop (``scale_model_input`` called, not timed)."""
    scheduler.set_timesteps(steps)
    total = 0.0
    x = sample
    for t in scheduler.timesteps:
        scheduler.scale_model_input(x, t)
        start = time.perf_counter()
        x = scheduler.step(model_output, t, x).prev_sample
        total += time.perf_counter() - start
    return total / steps


def main() -> None:
    import diffusers

    import sdrt.schedulers

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    sample = rng.standard_normal((1, 4, 64, 64)).astype(np.float32)
    model_output = rng.standard_normal((1, 4, 64, 64)).astype(np.float32)
    rows = []
    for label, (name, extra) in SCHEDULERS.items():
        config = {**SD15, **extra}
        ours = getattr(sdrt.schedulers, name).from_config(config)
        ref = getattr(diffusers, name).from_config(config)
        loop_seconds(ours, sample, model_output, 3)
        loop_seconds(ref, torch.from_numpy(sample), torch.from_numpy(model_output), 3)
        times_ours, times_ref, ratios = [], [], []
        for _ in range(args.repeats):
            a = loop_seconds(ours, sample, model_output, args.steps)
            b = loop_seconds(ref, torch.from_numpy(sample), torch.from_numpy(model_output), args.steps)
            times_ours.append(a)
            times_ref.append(b)
            ratios.append(a / b)
        rows.append(
            {
                "scheduler": label,
                "sdrt_us": statistics.median(times_ours) * 1e6,
                "diffusers_us": statistics.median(times_ref) * 1e6,
                "ratio": statistics.median(ratios),
            }
        )
    print(f"one step, 1x4x64x64 float32, {args.steps}-step loop, median of {args.repeats}")
    print(
        f"{'scheduler':<10} {'sdrt (NumPy) µs':>16} {'diffusers (torch CPU) µs':>25} {'sdrt/diffusers':>15}"
    )
    for r in rows:
        print(f"{r['scheduler']:<10} {r['sdrt_us']:>16.1f} {r['diffusers_us']:>25.1f} {r['ratio']:>15.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "numpy": np.__version__, "torch": torch.__version__}, f, indent=2)


if __name__ == "__main__":
    main()
