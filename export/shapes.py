"""Build sizes: from the CLI's size and batch options to the bundle's ``Shapes`` (image pixels, prompt
batches). Each component turns them into its own dim ranges (``Component.dim_ranges``)."""

from __future__ import annotations

from sdrt.runtime.bundle.manifest import Shapes

from .errors import OptionError
from .options import BuildOptions

Range = tuple[int, int]


def _round_down(value: int, multiple: int) -> int:
    return max(multiple, value // multiple * multiple)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


MAX_SIZE = 8192  # pixels: past it, attention over the latents fits no GPU and TensorRT's profiles refuse


def _check_size(option: str, value: int, multiple: int) -> None:
    if value <= 0:
        raise OptionError(f"{option} {value} must be a positive number of pixels")
    if value > MAX_SIZE:
        raise OptionError(
            f"{option} {value} is above the {MAX_SIZE} pixels sdrt builds for; pass a smaller size"
        )
    if value % 8:
        raise OptionError(
            f"{option} {value} is not a multiple of 8; use {_round_down(value, 8)} or {_round_up(value, 8)}"
        )
    if value % multiple:
        raise OptionError(
            f"{option} {value} is not a multiple of {multiple} (this model's VAE scale times its UNet's "
            f"down-sampling); use {_round_down(value, multiple)} or {_round_up(value, multiple)}"
        )


def resolve_shapes(
    default_size: tuple[int, int], multiple: int, options: BuildOptions, guidance_rows: int = 2
) -> Shapes:
    """Check the size and batch options and turn them into ranges (errors name the option and the fix);
    ``guidance_rows``: the UNet's rows per prompt under guidance (the family's)."""
    height, width, min_size, max_size = options.height, options.width, options.min_size, options.max_size
    batch, max_batch, static = options.batch, options.max_batch, options.static
    if (height is not None or width is not None) and (min_size is not None or max_size is not None):
        raise OptionError(
            "give either --height/--width (one size) or --min-size/--max-size (a range), not both"
        )
    if batch < 1:
        raise OptionError(f"--batch {batch} must be at least 1")
    if max_batch is None:
        max_batch = batch if static else max(batch, 4)
    if max_batch < batch:
        raise OptionError(
            f"--max-batch {max_batch} is below --batch {batch}; raise --max-batch or lower --batch"
        )
    if static and max_batch != batch:
        raise OptionError(f"--static builds one batch size; drop --max-batch or set it to --batch ({batch})")

    opt_h, opt_w = default_size
    if height is not None or width is not None:
        h = height if height is not None else (width if width is not None else opt_h)
        w = width if width is not None else h
        _check_size("--height", h, multiple)
        _check_size("--width", w, multiple)
        h_range, w_range, opt_h, opt_w = (h, h), (w, w), h, w
    else:
        if static and (min_size is not None or max_size is not None) and min_size != max_size:
            raise OptionError(
                "--static builds one size; pass --height/--width instead of --min-size/--max-size"
            )
        lo = (
            min_size
            if min_size is not None
            else (opt_h if static else _round_down(min(opt_h, opt_w) // 2, multiple))
        )
        hi = (
            max_size
            if max_size is not None
            else (opt_h if static else _round_up(max(opt_h, opt_w) * 3 // 2, multiple))
        )
        _check_size("--min-size", lo, multiple)
        _check_size("--max-size", hi, multiple)
        if lo > hi:
            raise OptionError(f"--min-size {lo} is above --max-size {hi}; swap them")
        h_range = w_range = (lo, hi)
        opt_h = min(max(opt_h, lo), hi) // multiple * multiple
        opt_w = min(max(opt_w, lo), hi) // multiple * multiple
    return Shapes(
        batch=(batch, max_batch),
        height=h_range,
        width=w_range,
        default=(opt_h, opt_w),
        size_multiple=multiple,
        static=static,
        guidance_rows=guidance_rows,
    )
