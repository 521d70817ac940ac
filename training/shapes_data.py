"""Procedural data set: one coloured shape on a plain background, 64x64 RGB, with a caption.

Every example is drawn from its own seed (``make_example(seed)``), so a data set is a range of seeds
and any example can be redrawn alone. Shapes are drawn 4x larger and box-filtered down, which gives
anti-aliased edges like a photo of a flat figure.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
_SUPERSAMPLE = 4

SHAPES = ("circle", "square", "triangle")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (40, 190, 40),
    "blue": (40, 70, 230),
    "yellow": (240, 220, 40),
    "purple": (170, 40, 200),
    "cyan": (30, 210, 220),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "black": (0, 0, 0),
    "white": (255, 255, 255),
    "gray": (128, 128, 128),
}
# Half-extent of the shape in pixels (of the 64x64 picture), by size word.
SIZE_RANGES: dict[str, tuple[float, float]] = {
    "small": (7.0, 11.0),
    "medium": (11.0, 16.0),
    "large": (16.0, 22.0),
}
_COLOUR_JITTER = 12


@dataclass(frozen=True)
class ShapeLabels:
    """What an example shows: the caption's words and where the shape was drawn."""

    shape: str
    colour: str
    background: str
    size: str
    half_extent: float
    centre_x: float
    centre_y: float

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def caption_for(labels: ShapeLabels, *, with_size: bool, with_background: bool) -> str:
    """ "a [small|large] <colour> <shape>[ on a <background> background]"."""
    words = ["a"]
    if with_size and labels.size != "medium":
        words.append(labels.size)
    words += [labels.colour, labels.shape]
    if with_background:
        words += ["on", "a", labels.background, "background"]
    return " ".join(words)


def draw_shape(
    shape: str,
    colour: tuple[int, int, int],
    background: tuple[int, int, int],
    *,
    half_extent: float,
    centre: tuple[float, float],
    size: int = SIZE,
) -> np.ndarray:
    """Draw one shape, anti-aliased, as uint8 [size, size, 3]."""
    scale = _SUPERSAMPLE * size / SIZE
    big = Image.new("RGB", (size * _SUPERSAMPLE,) * 2, background)
    draw = ImageDraw.Draw(big)
    cx, cy, r = centre[0] * scale, centre[1] * scale, half_extent * scale
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        s = 0.9 * r
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)], fill=colour)
    else:
        raise ValueError(f"Unknown shape {shape!r}; expected one of {SHAPES}")
    return np.asarray(big.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def make_example(seed: int) -> tuple[np.ndarray, str, ShapeLabels]:
    """The example of one seed: (image uint8 [64, 64, 3], caption, labels)."""
    rng = np.random.default_rng(seed)
    shape = SHAPES[rng.integers(len(SHAPES))]
    colour = list(COLOURS)[rng.integers(len(COLOURS))]
    background = list(BACKGROUNDS)[rng.integers(len(BACKGROUNDS))]
    size = list(SIZE_RANGES)[rng.integers(len(SIZE_RANGES))]
    half_extent = float(rng.uniform(*SIZE_RANGES[size]))
    margin = half_extent + 2.0
    centre = (float(rng.uniform(margin, SIZE - margin)), float(rng.uniform(margin, SIZE - margin)))
    jitter = rng.integers(-_COLOUR_JITTER, _COLOUR_JITTER + 1, size=3)
    rgb = tuple(int(v) for v in np.clip(np.array(COLOURS[colour]) + jitter, 0, 255))
    image = draw_shape(shape, rgb, BACKGROUNDS[background], half_extent=half_extent, centre=centre)
    labels = ShapeLabels(shape, colour, background, size, half_extent, centre[0], centre[1])
    caption = caption_for(
        labels, with_size=bool(rng.random() < 0.5), with_background=bool(rng.random() < 0.5)
    )
    return image, caption, labels


def iter_examples(start: int, count: int) -> Iterator[tuple[np.ndarray, str, ShapeLabels]]:
    """Examples of seeds ``start .. start + count - 1``."""
    for seed in range(start, start + count):
        yield make_example(seed)


def make_dataset(start: int, count: int) -> tuple[np.ndarray, list[str], list[ShapeLabels]]:
    """``count`` examples stacked: images uint8 [N, 64, 64, 3], captions, labels."""
    images, captions, labels = [], [], []
    for image, caption, label in iter_examples(start, count):
        images.append(image)
        captions.append(caption)
        labels.append(label)
    return np.stack(images), captions, labels
