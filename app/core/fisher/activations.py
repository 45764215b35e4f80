"""The paper's baseline embedding: the network's mean hidden activations (each layer averaged over positions)."""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from app.core.fisher.errors import FisherError
from app.core.fisher.scores import as_batch, check_model
from app.core.model import ARModel


def hidden_layers(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs count as hidden activations: the entries of the model's layer lists, else
    every leaf module that holds parameters."""
    layers = [child for module in model.modules() if isinstance(module, nn.ModuleList) for child in module]
    if layers:
        return layers
    return [m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))]


def pool_positions(tensor: Tensor) -> Tensor:
    """One layer output ``(B, ...)`` to ``(B, F)``: averaged over positions.

    ``(B, C, H, W)``: the mean of each channel; ``(B, A, L)`` (sequence-first or channel-first alike): both
    marginal means; ``(B, F)``: as it is.
    """
    if tensor.dim() == 2:
        return tensor
    if tensor.dim() == 3:
        return torch.cat([tensor.mean(1), tensor.mean(2)], dim=1)
    return tensor.flatten(2).mean(2)


def activation_features(model: ARModel, images: np.ndarray | Tensor) -> Tensor:
    """``(B, F)``: the mean hidden activations of every layer, concatenated."""
    check_model(model)
    x = as_batch(model, images)
    outputs: list[Tensor] = []
    owner = threading.get_ident()

    def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if threading.get_ident() != owner:  # another thread (a view sampling) runs the same model meanwhile
            return
        for item in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(item, Tensor) and item.is_floating_point() and item.dim() >= 2:
                outputs.append(pool_positions(item.detach().float()).reshape(item.shape[0], -1))

    handles = [layer.register_forward_hook(keep) for layer in hidden_layers(model)]
    try:
        with torch.no_grad():
            model.log_prob(x)
    finally:
        for handle in handles:
            handle.remove()
    if not outputs:
        raise FisherError(f"{model.spec.title} exposes no hidden layers to take activations from")
    return torch.cat(outputs, dim=1)


__all__ = ["activation_features", "hidden_layers", "pool_positions"]
