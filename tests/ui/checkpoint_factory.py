"""Tiny checkpoints for the GUI tests: their architecture, not their training, is what the tests look at."""

from __future__ import annotations

import numpy as np

BINARIZATION = "standard binarized MNIST (Larochelle & Murray, stochastic, fixed once)"


def save_tiny(folder, name: str, model_name: str, shape=(1, 28, 28), num_values: int = 2, quantiles=None,
              meta: dict | None = None):
    """Save an untrained model of ``model_name`` (its tiny hyperparameters) as checkpoint ``folder/name``."""
    import torch

    from app.core.checkpoints import save_checkpoint
    from app.core.registry import get_registry

    spec = get_registry().model(model_name)
    torch.manual_seed(0)
    model = spec.create(spec.make_config(shape, num_values, tiny=True))
    meta = {"dataset": "binarized-mnist", "binarization": BINARIZATION, **(meta or {})}
    if quantiles is not None:
        dims = int(np.prod(shape))
        meta.update({"test_nll_nats": float(np.mean(quantiles)),
                     "test_bits_per_dim": float(np.mean(quantiles)) / (dims * np.log(2)),
                     "test_nll_quantiles": [float(q) for q in quantiles]})
    return save_checkpoint(model, folder / name, meta)
