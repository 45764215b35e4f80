"""Families of orderings to train any-order models on: random permutations, and the structured orderings people
actually use (sweeps at any angle, rings from a centre, regions grown from a seed, the presets turned and
flipped).

An order-agnostic model trained on uniformly random permutations only ever sees scattered context: at step t
the observed pixels are a random subset. The orderings of the lecture and of the ordering editor are
structured instead (the top rows, a ring, a painted stroke), and such a model scores them 10 to 20 nats worse
than a random one. Training on a mixture of both fixes that without giving up any ordering.

Every function returns ranks: ``rank[i]`` is the step at which position ``i`` (raster index) is generated.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from app.core.orderings import PRESETS

#: The share of each family in a training batch (the rest, ``random``, are uniform permutations).
DEFAULT_MIX = {"random": 0.4, "sweep": 0.2, "ring": 0.1, "grown": 0.15, "preset": 0.15}


def dihedral(rank: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 rotations and reflections of a square ``(H, W)`` rank grid (``k`` in 0..7)."""
    out = np.rot90(rank, k % 4)
    return np.ascontiguousarray(out[:, ::-1] if k >= 4 else out)


def _ranks_from_keys(keys: np.ndarray) -> np.ndarray:
    """``(N, D)`` keys to ``(N, D)`` ranks (ties broken by position)."""
    order = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(keys.shape[1])[None, :].repeat(keys.shape[0], 0), axis=1)
    return ranks


def sweep_ranks(height: int, width: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Straight sweeps at a random angle, within each line left to right or back (raster and columns among them)."""
    rows, cols = np.mgrid[0:height, 0:width]
    theta = rng.uniform(0, 2 * np.pi, (n, 1))
    # A quarter of them exactly along a row or a column, as raster and columns are.
    snap = rng.random((n, 1)) < 0.25
    theta = np.where(snap, np.round(theta / (np.pi / 2)) * (np.pi / 2), theta)
    side = rng.choice([-1.0, 1.0], (n, 1)) * 1e-3
    r, c = rows.reshape(1, -1), cols.reshape(1, -1)
    keys = np.sin(theta) * r + np.cos(theta) * c + side * (np.cos(theta) * r - np.sin(theta) * c)
    return _ranks_from_keys(keys)


def ring_ranks(height: int, width: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Rings around a random centre, outwards or inwards (spiral and centre-last among them)."""
    rows, cols = np.mgrid[0:height, 0:width]
    cy = rng.uniform(-0.25, 1.25, (n, 1)) * (height - 1)
    cx = rng.uniform(-0.25, 1.25, (n, 1)) * (width - 1)
    dy, dx = rows.reshape(1, -1) - cy, cols.reshape(1, -1) - cx
    square = rng.random((n, 1)) < 0.5
    distance = np.where(square, np.maximum(np.abs(dy), np.abs(dx)), np.hypot(dy, dx))
    direction = rng.choice([-1.0, 1.0], (n, 1))
    angle = np.mod(np.arctan2(dy, dx) + rng.uniform(0, 2 * np.pi, (n, 1)), 2 * np.pi)
    return _ranks_from_keys(direction * np.round(distance) + 1e-3 * angle)


def grown_ranks(height: int, width: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Regions grown from one to three seeds, one random neighbour of the region at a time (like painting)."""
    d = height * width
    out = np.empty((n, d), dtype=np.int64)
    for k in range(n):
        rank = np.full(d, -1, dtype=np.int64)
        frontier: list[int] = list(rng.choice(d, size=int(rng.integers(1, 4)), replace=False))
        in_frontier = np.zeros(d, dtype=bool)
        in_frontier[frontier] = True
        step = 0
        while frontier:
            # Mostly the newest frontier pixels (a stroke moving on), sometimes any of them (a blob).
            j = len(frontier) - 1 - int(rng.integers(0, min(len(frontier), 4))) if rng.random() < 0.7 else int(
                rng.integers(0, len(frontier)))
            p = frontier.pop(j)
            rank[p] = step
            step += 1
            r, c = divmod(p, width)
            for q in ((r - 1) * width + c if r else -1, (r + 1) * width + c if r + 1 < height else -1,
                      p - 1 if c else -1, p + 1 if c + 1 < width else -1):
                if q >= 0 and not in_frontier[q]:
                    in_frontier[q] = True
                    frontier.append(q)
        out[k] = rank
    return out


def preset_ranks(height: int, width: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The preset orderings (raster, columns, spiral, Hilbert, ...) in one of their 8 rotations and reflections."""
    names = [name for name in PRESETS if name != "random"]
    out = np.empty((n, height * width), dtype=np.int64)
    for k in range(n):
        rank = PRESETS[names[int(rng.integers(len(names)))]](height, width, 0).rank
        out[k] = (dihedral(rank, int(rng.integers(8))) if height == width else rank).reshape(-1)
    return out


_FAMILIES = {"sweep": sweep_ranks, "ring": ring_ranks, "grown": grown_ranks, "preset": preset_ranks}


class TrainingOrderings:
    """Draws ranks ``(N, H*W)`` for a training batch from a mixture of families.

    Grown regions cost a Python loop each, so a pool of them is made once (seeded) and drawn from, turned and
    flipped; the other families are drawn afresh every time.
    """

    def __init__(self, height: int, width: int, mix: dict[str, float] | None = None, pool: int = 512, seed: int = 0):
        self.height, self.width = height, width
        mix = dict(DEFAULT_MIX if mix is None else mix)
        unknown = set(mix) - {"random", *_FAMILIES}
        if unknown:
            raise ValueError(f"unknown ordering families {sorted(unknown)}; known: random, {', '.join(_FAMILIES)}")
        total = sum(mix.values())
        if total <= 0 or min(mix.values()) < 0:
            raise ValueError("the ordering mixture needs non-negative shares that add up to more than 0")
        self.names = list(mix)
        self.shares = np.array([mix[k] / total for k in self.names])
        self.pool_size = pool
        self.seed = seed
        self._pool: np.ndarray | None = None

    def _grown(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self._pool is None:
            self._pool = grown_ranks(self.height, self.width, self.pool_size, np.random.default_rng(self.seed))
        picks = self._pool[rng.integers(0, len(self._pool), n)]
        if self.height != self.width:
            return picks
        return np.stack([dihedral(p.reshape(self.height, self.width), int(rng.integers(8))).reshape(-1) for p in picks])

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``(n, H*W)`` long ranks, each row from a family drawn by the mixture's shares."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rng = np.random.default_rng(seed)
        family = rng.choice(len(self.names), size=n, p=self.shares)
        d = self.height * self.width
        ranks = np.empty((n, d), dtype=np.int64)
        for index, name in enumerate(self.names):
            rows = np.flatnonzero(family == index)
            if not len(rows):
                continue
            if name == "random":
                ranks[rows] = np.argsort(rng.random((len(rows), d)), axis=1).argsort(axis=1)
            elif name == "grown":
                ranks[rows] = self._grown(len(rows), rng)
            else:
                ranks[rows] = _FAMILIES[name](self.height, self.width, len(rows), rng)
        return torch.from_numpy(ranks)


__all__ = ["TrainingOrderings", "DEFAULT_MIX", "dihedral", "sweep_ranks", "ring_ranks", "grown_ranks", "preset_ranks"]
