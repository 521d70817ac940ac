"""Tell the shape and colour of a shapes picture by pixel statistics (NumPy only, no torch).

background  the median colour of the border pixels;
foreground  pixels far from the background, reduced to the largest 4-connected blob;
colour      the palette colour nearest to the median of the blob's inner pixels;
shape       from the blob's fill of its bounding box (square ~0.81..1, circle ~0.79,
            triangle ~0.5) and how much wider its bottom is than its top (a triangle points up).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
from PIL import Image

from .shapes_data import COLOURS, SIZE

_PALETTE_NAMES = list(COLOURS)
_PALETTE = np.array([COLOURS[name] for name in _PALETTE_NAMES], dtype=np.float32)


@dataclass(frozen=True)
class CheckResult:
    """The checker's reading of one picture; ``shape``/``colour`` are None when nothing was found."""

    shape: str | None
    colour: str | None
    fill: float
    taper: float
    area: int


def to_array(image: Image.Image | np.ndarray) -> np.ndarray:
    """A picture as float32 RGB [64, 64, 3] in 0..255 (resized with a box filter if needed)."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            image = np.clip(image * 255.0 if image.max() <= 1.0 else image, 0, 255).astype(np.uint8)
        image = Image.fromarray(image[..., :3])
    image = image.convert("RGB")
    if image.size != (SIZE, SIZE):
        image = image.resize((SIZE, SIZE), Image.Resampling.BOX)
    return np.asarray(image, dtype=np.float32)


def _largest_blob(mask: np.ndarray) -> np.ndarray:
    """The largest 4-connected component of a boolean mask."""
    labels = np.zeros(mask.shape, dtype=np.int32)
    best, best_size, current = 0, 0, 0
    height, width = mask.shape
    for y0, x0 in zip(*np.nonzero(mask)):
        if labels[y0, x0]:
            continue
        current += 1
        labels[y0, x0] = current
        queue, size = deque([(y0, x0)]), 0
        while queue:
            y, x = queue.popleft()
            size += 1
            for ny, nx in ((y - 1, x), (y + 1, x), (y, x - 1), (y, x + 1)):
                if 0 <= ny < height and 0 <= nx < width and mask[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    queue.append((ny, nx))
        if size > best_size:
            best, best_size = current, size
    return labels == best if best else np.zeros_like(mask)


def _erode(mask: np.ndarray) -> np.ndarray:
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return inner


def nearest_colour(rgb: np.ndarray) -> str:
    """The palette colour nearest (Euclidean RGB) to one colour."""
    return _PALETTE_NAMES[int(np.argmin(((_PALETTE - rgb) ** 2).sum(axis=1)))]


def classify_mask(mask: np.ndarray) -> tuple[str, float, float]:
    """(shape, fill of the bounding box, taper = bottom width / top width - 1) of a blob."""
    ys, xs = np.nonzero(mask)
    top, bottom, left, right = ys.min(), ys.max(), xs.min(), xs.max()
    box = mask[top : bottom + 1, left : right + 1]
    fill = float(box.mean())
    rows = box.sum(axis=1).astype(np.float32)
    quarter = max(1, len(rows) // 4)
    taper = float(rows[-quarter:].mean() / max(rows[:quarter].mean(), 1.0) - 1.0)
    if fill < 0.66 or taper > 1.0:
        shape = "triangle"
    elif fill > 0.89:
        shape = "square"
    else:
        shape = "circle" if _corner_fill(box) < 0.5 else "square"
    return shape, fill, taper


def _corner_fill(box: np.ndarray) -> float:
    """Mean fill of the four corner squares (a sixth of the side): ~0 for a circle, 1 for a square."""
    h, w = box.shape
    k_h, k_w = max(1, h // 6), max(1, w // 6)
    corners = [box[:k_h, :k_w], box[:k_h, -k_w:], box[-k_h:, :k_w], box[-k_h:, -k_w:]]
    return float(np.mean([c.mean() for c in corners]))


def check_image(image: Image.Image | np.ndarray) -> CheckResult:
    """Read the shape and colour of one picture (PIL image or uint8/float array, any size)."""
    pixels = to_array(image)
    border = np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])
    background = np.median(border, axis=0)
    distance = np.sqrt(((pixels - background) ** 2).sum(axis=-1))
    mask = _largest_blob(distance > 0.5 * max(float(distance.max()), 60.0))
    area = int(mask.sum())
    if area < 6:
        return CheckResult(None, None, 0.0, 0.0, area)
    inner = _erode(mask)
    core = pixels[inner] if inner.sum() >= 4 else pixels[mask]
    colour = nearest_colour(np.median(core, axis=0))
    shape, fill, taper = classify_mask(mask)
    return CheckResult(shape, colour, fill, taper, area)
