"""Offline data made by the project: stroke-drawn digits, and the 1-D and 2-D toy distributions.

``synthetic_digits`` draws each digit 0-9 from a small set of pen strokes, with a random affine jitter (scale,
rotation, shear, shift) and pen width, at 4x resolution, then box-filters it to 28x28 grey. It needs no
download and is deterministic for a seed: tests and offline training use it. It is *not* MNIST: NLL figures
on it are not comparable to any published figure.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

# Strokes in a unit box (x right, y down), one list of polylines per digit.
_ARC = [(0.5 + 0.32 * math.cos(t), 0.5 + 0.42 * math.sin(t)) for t in np.linspace(0, 2 * math.pi, 25)]
_STROKES: dict[int, list[list[tuple[float, float]]]] = {
    0: [_ARC],
    1: [[(0.35, 0.25), (0.55, 0.08), (0.55, 0.92)]],
    2: [[(0.22, 0.28), (0.35, 0.1), (0.62, 0.08), (0.78, 0.25), (0.7, 0.45), (0.22, 0.9), (0.82, 0.9)]],
    3: [[(0.22, 0.15), (0.5, 0.07), (0.76, 0.2), (0.7, 0.4), (0.45, 0.48), (0.76, 0.6), (0.78, 0.8), (0.5, 0.93),
         (0.2, 0.85)]],
    4: [[(0.62, 0.92), (0.62, 0.08), (0.18, 0.65), (0.85, 0.65)]],
    5: [[(0.78, 0.08), (0.3, 0.08), (0.25, 0.45), (0.55, 0.4), (0.78, 0.55), (0.75, 0.82), (0.45, 0.93),
         (0.2, 0.85)]],
    6: [[(0.72, 0.1), (0.4, 0.25), (0.25, 0.6), (0.35, 0.88), (0.62, 0.9), (0.75, 0.68), (0.55, 0.5),
         (0.3, 0.6)]],
    7: [[(0.2, 0.1), (0.8, 0.1), (0.45, 0.92)]],
    8: [[(0.5, 0.48), (0.25, 0.3), (0.5, 0.08), (0.75, 0.3), (0.5, 0.48), (0.22, 0.7), (0.5, 0.93), (0.78, 0.7),
         (0.5, 0.48)]],
    9: [[(0.72, 0.4), (0.5, 0.52), (0.28, 0.35), (0.45, 0.1), (0.72, 0.2), (0.72, 0.4), (0.62, 0.92)]],
}

_SCALE = 4  # supersampling factor


def _draw_digit(digit: int, rng: np.random.Generator, size: int) -> np.ndarray:
    big = size * _SCALE
    image = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(image)
    scale = rng.uniform(0.55, 0.72) * big
    angle = rng.uniform(-0.3, 0.3)
    shear = rng.uniform(-0.25, 0.25)
    centre = np.array([big / 2, big / 2]) + rng.normal(0, 0.04 * big, 2)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    affine = rot @ np.array([[1.0, shear], [0.0, 1.0]]) * scale
    width = int(rng.uniform(1.6, 3.2) * _SCALE)
    for stroke in _STROKES[digit]:
        points = np.asarray(stroke) - 0.5
        points = points + rng.normal(0, 0.025, points.shape)
        xy = points @ affine.T + centre
        draw.line([tuple(p) for p in xy], fill=255, width=width, joint="curve")
        for p in xy[[0, -1]]:
            r = width / 2
            draw.ellipse([p[0] - r, p[1] - r, p[0] + r, p[1] + r], fill=255)
    small = np.asarray(image, dtype=np.float32).reshape(size, _SCALE, size, _SCALE).mean(axis=(1, 3))
    return np.clip(small, 0, 255).astype(np.uint8)


def synthetic_digits(n: int, seed: int = 0, size: int = 28) -> tuple[np.ndarray, np.ndarray]:
    """``n`` grey digits ``(n, 1, size, size)`` uint8 0..255 and their labels ``(n,)``, reproducible."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    images = np.stack([_draw_digit(int(d), rng, size) for d in labels]) if n else np.zeros((0, size, size), np.uint8)
    return images[:, None], labels.astype(np.int64)


def mixture_1d(n: int, seed: int = 0, num_values: int = 100) -> np.ndarray:
    """The lecture's 1-D demo data: a two-bump mixture over ``0 .. num_values-1``; a gap of values that the
    training split never shows tests how a model handles unseen values."""
    rng = np.random.default_rng(seed)
    a = rng.normal(0.3 * num_values, 0.06 * num_values, n)
    b = rng.normal(0.7 * num_values, 0.1 * num_values, n)
    x = np.where(rng.random(n) < 0.4, a, b)
    return np.clip(np.round(x), 0, num_values - 1).astype(np.int64)


def smiley_2d(n: int, seed: int = 0, num_values: int = 25) -> np.ndarray:
    """A 2-D distribution over a ``num_values``^2 grid (two eyes and a smile), for the p(x1) p(x2|x1) demo.

    Returns ``(n, 2)`` integer pairs ``(x1, x2)``."""
    rng = np.random.default_rng(seed)
    part = rng.choice(3, n, p=[0.2, 0.2, 0.6])
    out = np.empty((n, 2))
    eyes = np.array([[0.3, 0.7], [0.7, 0.7]])
    for k in range(2):
        sel = part == k
        out[sel] = eyes[k] + rng.normal(0, 0.04, (sel.sum(), 2))
    sel = part == 2
    t = rng.uniform(math.pi * 1.15, math.pi * 1.85, sel.sum())
    out[sel] = np.stack([0.5 + 0.3 * np.cos(t), 0.55 + 0.3 * np.sin(t)], 1) + rng.normal(0, 0.02, (sel.sum(), 2))
    return np.clip(np.round(out * (num_values - 1)), 0, num_values - 1).astype(np.int64)
