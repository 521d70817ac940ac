"""``sdrt bench BUNDLE``: per-stage latency, optionally beside diffusers on the same weights."""

from __future__ import annotations

from pathlib import Path

from sdrt.runtime.errors import InputError

from .options import check_writable, scheduler_class_name


def bench(
    *,
    bundle: str,
    steps: int,
    runs: int,
    warmup: int,
    size: tuple[int, int] | None,
    batch: int,
    scheduler: str | None,
    provider: str,
    prompt: str | None,
    compare_diffusers: str | None,
    diffusers_dtype: str = "auto",
    json_path: Path | None,
) -> str:
    """Run the benchmark (beside diffusers when a model folder is given); write the JSON; return the table."""
    from sdrt.runtime.bench.report import format_table, write_json
    from sdrt.runtime.bench.run import run_bench

    if json_path is not None:
        check_writable(json_path, "--json")
    reference = None
    if compare_diffusers is not None:
        from sdrt.export.diffusers_reference import DiffusersReference

        reference = DiffusersReference(compare_diffusers, diffusers_dtype)

    result = run_bench(
        bundle,
        steps=steps,
        runs=runs,
        warmup=warmup,
        size=size,
        batch=batch,
        scheduler=scheduler_class_name(scheduler) if scheduler else None,
        provider=provider,
        prompt=prompt,
        reference=reference,
    )
    if json_path is not None:
        try:
            write_json(result, json_path)
        except OSError as error:  # removed or made read-only during the run
            raise InputError(f"--json {json_path}: cannot write there ({error})") from None
    return format_table(result)
