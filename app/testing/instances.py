"""The instances the conformance kit builds: their sizes, orderings and conditions, and how it names a
dimension in its messages.

A spec's ``tiny_hparams`` may carry the kit's own keys: ``kit_shape`` and ``kit_num_values`` (the small
instance every check builds), ``kit_norm_shape`` (the instance whose K^D images are enumerated) and
``kit_real_shape`` (the image size of the real-size autoregressive check).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from app.core.conditions import derive_condition
from app.core.model import ARModel, ModelSpec
from app.core.orderings import Ordering, random, raster, zigzag

Shape = tuple[int, int, int]

#: The keys of ``tiny_hparams`` that the kit reads (and that models ignore).
KIT_KEYS = ("kit_shape", "kit_num_values", "kit_norm_shape", "kit_real_shape")

#: The image size of the datasets of each data kind (MNIST), for the real-size check.
REAL_SIZE = (28, 28)


def kit_setting(spec: ModelSpec, key: str, default: Any) -> Any:
    """``tiny_hparams["kit_" + key]``, else ``default``."""
    return spec.tiny_hparams.get(f"kit_{key}", default)


def default_shape(spec: ModelSpec) -> tuple[Shape, int]:
    """The shape ``(C, H, W)`` and number of values K of the small instance the kit checks."""
    shape = kit_setting(spec, "shape", None)
    k = kit_setting(spec, "num_values", None)
    kinds = spec.data_kinds
    if k is None:
        k = 2 if "binary" in kinds else 4
    if shape is None:
        c = 3 if kinds == ("colour",) else 1
        shape = (c, 5, 5) if c == 1 else (c, 3, 3)
    return tuple(shape), int(k)  # type: ignore[return-value]


def norm_shape(spec: ModelSpec, shape: Shape, k: int) -> Shape:
    """The largest small shape whose K^D images can be enumerated (at most 2^16)."""
    explicit = kit_setting(spec, "norm_shape", None)
    if explicit is not None:
        return tuple(explicit)  # type: ignore[return-value]
    c = shape[0]
    for h, w in ((4, 4), (3, 4), (3, 3), (2, 3), (2, 2), (1, 2), (1, 1)):
        if h <= shape[1] and w <= shape[2] and k ** (c * h * w) <= 2**16:
            return (c, h, w)
    return (c, 1, 1)


def real_shape(spec: ModelSpec) -> Shape | None:
    """The image size of the model's data (``kit_real_shape``, else 28x28 for images), or None for the 1-D
    and 2-D models, whose small instance is their real size."""
    explicit = kit_setting(spec, "real_shape", None)
    if explicit is not None:
        return tuple(int(v) for v in explicit)  # type: ignore[return-value]
    kinds = set(spec.data_kinds)
    if not kinds & {"binary", "grey", "colour"}:
        return None
    c = 3 if kinds == {"colour"} else 1
    return (c, *REAL_SIZE)


def orderings_for(spec: ModelSpec, h: int, w: int, extra: Sequence[Ordering] = ()) -> list[Ordering | None]:
    """The orderings a check runs under: the model's own (None) for a fixed model, else several."""
    if spec.orderings == "fixed":
        return [None]
    return [raster(h, w), zigzag(h, w), random(h, w, 1), random(h, w, 2), *extra]


def build(
    spec: ModelSpec,
    shape: Shape,
    k: int,
    ordering: Ordering | None,
    hparams: dict | None,
    seed: int,
    perturb: bool = True,
) -> ARModel:
    """A model of ``spec`` at ``shape`` from its ``tiny_hparams`` (and ``hparams``), in eval mode."""
    torch.manual_seed(seed)
    config = spec.make_config(shape, k, hparams, ordering if spec.orderings == "build" else None, tiny=True)
    model = spec.create(config)
    if perturb:
        # Parameters initialised at zero (gates, class biases, a plain FVSBN) would hide a leak from the
        # gradient test; a small random nudge makes every connection that exists carry a gradient.
        generator = torch.Generator().manual_seed(seed + 99)
        with torch.no_grad():
            for p in model.parameters():
                if p.is_floating_point():
                    p.add_(0.05 * torch.randn(p.shape, generator=generator, dtype=p.dtype))
    model.eval()
    return model


def run_ordering(spec: ModelSpec, ordering: Ordering | None) -> Ordering | None:
    """The ordering to pass at every call: only models of capability ``"any"`` take one."""
    return ordering if spec.orderings == "any" else None


def condition(model: ARModel, n: int, seed: int) -> torch.Tensor | None:
    """A condition for ``n`` images of a conditional model (labels, or an image of its shape), else None."""
    spec = model.config.condition
    if spec is None:
        return None
    g = torch.Generator().manual_seed(seed)
    if spec.kind == "class":
        return torch.randint(0, spec.num_classes, (n,), generator=g)
    if spec.derive in ("downsample", "grey"):
        images = torch.randint(0, model.num_values, (n, *model.shape), generator=g).float()
        return derive_condition(spec, images, None, model.num_values)
    return torch.randint(0, max(spec.num_values, 2), (n, *spec.shape), generator=g).float()


def expand(cond: torch.Tensor | None, n: int) -> torch.Tensor | None:
    """The condition of one image, for a batch of ``n``."""
    return None if cond is None else cond[:1].expand(n, *cond.shape[1:])


def random_images(n: int, shape: Shape, k: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, k, (n, *shape), generator=generator).float()


def all_images(shape: Shape, k: int) -> torch.Tensor:
    """Every one of the K^D images of ``shape``, ``(K^D, C, H, W)``."""
    d = int(np.prod(shape))
    return torch.tensor(list(itertools.product(range(k), repeat=d)), dtype=torch.float32).reshape(-1, *shape)


def step_of(model: ARModel, ordering: Ordering | None) -> np.ndarray:
    """``(D,)``: the step of the model's sampling plan at which each dimension is drawn."""
    plan = model.sampling_plan(ordering)
    steps = np.empty(int(np.prod(model.shape)), dtype=np.int64)
    for g, dims in enumerate(plan):
        steps[dims] = g
    return steps


def ordering_name(model: ARModel, ordering: Ordering | None) -> str:
    return ordering.name if ordering is not None else model.ordering.name


def describe_dim(d: int, shape: Shape) -> str:
    """``position 17 (row 3, col 2)``, with the channel for images of several channels."""
    c, h, w = shape
    ch, rem = divmod(int(d), h * w)
    r, col = divmod(rem, w)
    where = f"row {r}, col {col}" + (f", channel {ch}" if c > 1 else "")
    return f"position {rem if c == 1 else d} ({where})"


def size(shape: Shape) -> str:
    """``1x28x28``."""
    return "x".join(str(s) for s in shape)


def within(value: float, tolerance: float) -> bool:
    """``value <= tolerance``, and False for NaN: no check may pass on a number it could not measure."""
    return math.isfinite(value) and value <= tolerance
