"""Per-example Fisher scores: ``grad_theta log p_theta(x)`` of each image, over all or some of the parameters."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from app.core.fisher.errors import FisherError
from app.core.model import ARModel

#: The ``layers`` setting that takes every trainable parameter.
ALL_LAYERS = "all"


def trainable_parameters(model: ARModel) -> list[tuple[str, nn.Parameter]]:
    """Every ``(name, parameter)`` of ``model`` that requires a gradient, in the model's order."""
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def layer_prefixes(layers: str) -> tuple[str, ...]:
    """``"all"`` to ``()``; ``"layers.9., head"`` to ``("layers.9.", "head")``."""
    if layers.strip() in ("", ALL_LAYERS):
        return ()
    return tuple(part.strip() for part in layers.split(",") if part.strip())


def selected_parameters(model: ARModel, layers: str = ALL_LAYERS) -> list[tuple[str, nn.Parameter]]:
    """The trainable parameters whose names start with one of the comma-separated prefixes of ``layers``.

    Raises
    ------
    FisherError
        A prefix matches no parameter (the message names the model's top-level modules).
    """
    params = trainable_parameters(model)
    prefixes = layer_prefixes(layers)
    if not prefixes:
        return params
    for prefix in prefixes:
        if not any(name.startswith(prefix) for name, _ in params):
            tops = sorted({name.split(".")[0] for name, _ in params})
            raise FisherError(f"no parameter of {model.spec.title} starts with {prefix!r} (its modules: "
                              f"{', '.join(tops)})")
    return [(name, p) for name, p in params if name.startswith(prefixes)]


def num_parameters(model: ARModel, layers: str = ALL_LAYERS) -> int:
    """How many numbers a Fisher score of ``model`` has (over the parameters ``layers`` selects)."""
    return sum(p.numel() for _, p in selected_parameters(model, layers))


def check_model(model: ARModel) -> None:
    """Refuse a model that a Fisher score cannot be taken of (conditional, or without parameters)."""
    if model.config.condition is not None:
        raise FisherError(f"{model.spec.title} here is conditional; Fisher scores use unconditional models")
    if not trainable_parameters(model):
        raise FisherError(f"{model.spec.title} has no parameters to take a Fisher score over")


def as_batch(model: ARModel, images: np.ndarray | Tensor) -> Tensor:
    """Images ``(N, C, H, W)`` or one ``(C, H, W)`` as a float32 batch on the model's device."""
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(model.shape):
        raise FisherError(f"images of shape {tuple(x.shape[1:])} do not fit a model of shape {tuple(model.shape)}")
    return x.to(device=model.device, dtype=torch.float32)


def _gradients_loop(model: ARModel, x: Tensor, layers: str = ALL_LAYERS) -> Tensor:
    params = [p for _, p in selected_parameters(model, layers)]
    rows = []
    for i in range(x.shape[0]):
        with torch.enable_grad():
            total = model.log_prob(x[i : i + 1]).sum()
            grads = torch.autograd.grad(total, params, allow_unused=True)
        rows.append(torch.cat([
            (g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)
        ]))
    return torch.stack(rows)


def _gradients_vmap(model: ARModel, x: Tensor, layers: str = ALL_LAYERS) -> Tensor:
    from torch.func import functional_call, grad, vmap

    names = [name for name, _ in selected_parameters(model, layers)]
    chosen = set(names)
    wanted = {name: p.detach() for name, p in model.named_parameters() if name in chosen}
    fixed = {name: p.detach() for name, p in model.named_parameters() if name not in chosen}
    buffers = dict(model.named_buffers())

    def log_likelihood(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        batch = xi.unsqueeze(0)
        out = functional_call(model, ({**fixed, **p}, buffers), (batch,))
        return model.likelihood.log_prob(out, batch).sum()

    with torch.enable_grad():
        grads = vmap(grad(log_likelihood), in_dims=(None, 0))(wanted, x)
    return torch.cat([grads[name].reshape(x.shape[0], -1) for name in names], dim=1)


def per_example_gradients(
    model: ARModel, images: np.ndarray | Tensor, method: str = "auto", layers: str = ALL_LAYERS
) -> Tensor:
    """``(B, P)``: ``grad_theta log p_theta(x_b)`` (nats) for each image, over the parameters ``layers`` selects.

    ``method``: ``"vmap"`` (``torch.func``), ``"loop"`` (one backward pass per image) or ``"auto"`` (vmap on a
    GPU, the loop on a CPU, where it measured faster); vmap falls back to the loop for an op without a batching
    rule.
    """
    check_model(model)
    x = as_batch(model, images)
    model.eval()
    if method == "auto":
        method = "vmap" if model.device.type == "cuda" else "loop"
    if method == "vmap":
        try:
            return _gradients_vmap(model, x, layers)
        except (RuntimeError, NotImplementedError, ValueError):  # an op without a batching rule
            return _gradients_loop(model, x, layers)
    if method != "loop":
        raise FisherError(f"the gradient method must be auto, vmap or loop, not {method!r}")
    return _gradients_loop(model, x, layers)


__all__ = [
    "ALL_LAYERS",
    "as_batch",
    "check_model",
    "layer_prefixes",
    "num_parameters",
    "per_example_gradients",
    "selected_parameters",
    "trainable_parameters",
]
