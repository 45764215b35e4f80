"""Building a model within a budget: a config that asks for far more than it should is refused as it is built,
before the memory is taken.

A checkpoint's config is handed to its plugin's constructor. A 2 MB file whose config claims 2000 channels, or a
million layers, would make that constructor allocate gigabytes, or loop for minutes, before the weights could be
compared with the file. :func:`build_within` counts what the constructor asks torch to allocate (every factory
call: ``torch.empty``, ``zeros``, ``randn``, ...), checking each request *before* it is served, and stops the
build once the count passes the budget.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from app.core.model import ARModel, ModelConfig, ModelSpec

#: Factories whose size is their positional arguments (or a ``size`` keyword).
_SIZED = frozenset({"empty", "zeros", "ones", "rand", "randn", "empty_strided", "full"})
#: Factories the size of another tensor.
_LIKE = frozenset({"empty_like", "zeros_like", "ones_like", "rand_like", "randn_like", "full_like", "randint_like"})
#: Tensor methods whose size follows ``self``.
_NEW = frozenset({"new_empty", "new_zeros", "new_ones", "new_full"})


class BudgetExceeded(Exception):
    """A build asked for more values, or more allocations, than its budget allows."""

    def __init__(self, values: int, calls: int, max_values: int, max_calls: int) -> None:
        self.values, self.calls, self.max_values, self.max_calls = values, calls, max_values, max_calls
        what = (f"more than {_millions(max_values)} values" if values > max_values
                else f"more than {max_calls} allocations")
        super().__init__(f"asks for {what}")


def _millions(count: int) -> str:
    return f"{count / 1e6:.1f} million" if count >= 1e5 else str(count)


def _numel(dims: Sequence[Any]) -> int | None:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list, torch.Size)):
        dims = dims[0]
    total = 1
    for dim in dims:
        if isinstance(dim, bool):
            return None
        try:
            total *= max(int(dim), 0)
        except (TypeError, ValueError):
            return None
    return total


def _arange_count(args: Sequence[Any], kwargs: dict) -> int | None:
    numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    start, end, step = 0.0, None, 1.0
    if len(numbers) == 1:
        end = numbers[0]
    elif len(numbers) >= 2:
        start, end = numbers[0], numbers[1]
        step = numbers[2] if len(numbers) > 2 else kwargs.get("step", 1.0)
    end = kwargs.get("end", end)
    if end is None or not step or not all(math.isfinite(float(v)) for v in (start, end, step)):
        return None
    return max(0, math.ceil((float(end) - float(start)) / float(step)))


def requested_values(func: Any, args: Sequence[Any], kwargs: dict) -> int | None:
    """How many values a torch call allocates, where it is a factory whose size its arguments tell; else None."""
    name = getattr(func, "__name__", "")
    if name in _SIZED:
        size = kwargs.get("size")
        if size is not None:
            return _numel([size])
        positional = args[:1] if name in ("full", "empty_strided") else args
        return _numel(positional)
    if name in _LIKE:
        return int(args[0].numel()) if args and isinstance(args[0], torch.Tensor) else None
    if name in _NEW:
        return _numel([kwargs["size"]]) if "size" in kwargs else _numel(args[1:2] if name == "new_full" else args[1:])
    if name == "randint":
        size = kwargs.get("size", args[-1] if args else None)
        return _numel([size]) if isinstance(size, (tuple, list, torch.Size)) else None
    if name == "randperm":
        return _numel(args[:1])
    if name == "eye":
        numbers = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
        return numbers[0] * (numbers[1] if len(numbers) > 1 else numbers[0]) if numbers else None
    if name in ("linspace", "logspace"):
        steps = kwargs.get("steps", args[2] if len(args) > 2 else None)
        return int(steps) if isinstance(steps, int) else None
    if name == "arange":
        return _arange_count(args, kwargs)
    return None


class AllocationBudget(TorchFunctionMode):
    """A torch function mode that refuses factory calls past ``max_values`` values or ``max_calls`` calls in
    all (counted when asked for, so a refused allocation never happens). Thread-local, like every mode."""

    def __init__(self, max_values: int, max_calls: int) -> None:
        super().__init__()
        self.max_values, self.max_calls = max_values, max_calls
        self.values = 0
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001 - torch's protocol
        kwargs = kwargs or {}
        count = requested_values(func, args, kwargs)
        if count is not None:
            self.values += count
            self.calls += 1
            if self.values > self.max_values or self.calls > self.max_calls:
                raise BudgetExceeded(self.values, self.calls, self.max_values, self.max_calls)
        return func(*args, **kwargs)


def build_within(spec: ModelSpec, config: ModelConfig, max_values: int, max_calls: int = 10**6) -> ARModel:
    """``spec.create(config)``, stopped with :class:`BudgetExceeded` as soon as the constructor's allocations
    pass ``max_values`` values (of any dtype) or ``max_calls`` factory calls."""
    with AllocationBudget(max_values, max_calls):
        return spec.create(config)


#: A model trained from scratch may hold at most this many values (1 GiB in float32): far beyond every model of
#: the lecture, and short of what a typo in a hyperparameter (``channels=64000``) would ask for.
MAX_MODEL_VALUES = 2**28


def checkpoint_budget(file_values: int, file_tensors: int) -> tuple[int, int]:
    """The budget of a model built to receive a file's weights: a few times what the file holds (constructors
    also make masks and temporaries), and a few allocations per tensor in it."""
    return 8 * file_values + 2**24, 32 * file_tensors + 4096


__all__ = ["AllocationBudget", "BudgetExceeded", "build_within", "requested_values", "checkpoint_budget",
           "MAX_MODEL_VALUES"]
