"""Save and load: a model that has run saves a checkpoint that loads into a freshly built model and gives
identical log-probabilities."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch

from app.core.errors import CheckpointError
from app.core.model import ARModel, ModelSpec
from app.core.orderings import Ordering, random
from app.testing.instances import Shape, build, condition, random_images, run_ordering
from app.testing.report import CheckResult


def check_roundtrip(spec: ModelSpec, shape: Shape, k: int, hparams: dict | None = None, seed: int = 0) -> CheckResult:
    """Run a forward pass and a training step, save to safetensors + JSON, load into a freshly built
    model: the checkpoint loads and the log-probabilities are identical.

    A model that has never run hides state made on the first forward pass (a buffer registered in
    ``forward``): its checkpoint holds tensors that a freshly built model lacks.
    """
    from app.core.checkpoints import load_checkpoint, save_checkpoint
    from app.core.registry import Registry

    ordering = random(shape[1], shape[2], 3) if spec.orderings != "fixed" else None
    model = build(spec, shape, k, ordering, hparams, seed)
    at_call = run_ordering(spec, ordering)
    x = random_images(3, shape, k, seed)
    cond = condition(model, 3, seed)
    loss = _train_one_step(model, x, cond, at_call)
    if not math.isfinite(loss):
        return CheckResult("roundtrip", False, f"the training step's loss is {loss} nats per image", {"loss": loss})
    registry = Registry(load_entry_points=False, env={})
    registry.models[spec.name] = spec
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        path = Path(tmp) / "roundtrip"
        save_checkpoint(model, path, {"dataset": "none"})
        try:
            loaded, _ = load_checkpoint(path.with_suffix(".safetensors"), registry)
        except CheckpointError as exc:
            message = " ".join(str(exc).split())
            hint = ""
            if "the model lacks" in message or "missing" in message:
                hint = ": make every parameter and buffer in __init__, not on the first forward pass"
            return CheckResult(
                "roundtrip", False,
                "after a forward pass and a training step, its checkpoint does not load into a freshly built "
                f"model ({message}){hint}",
            )
        before = model.log_prob(x, cond, at_call)
        after = loaded.log_prob(x, cond, at_call)
    if not torch.equal(before, after):
        diff = float((before - after).abs().max())
        return CheckResult(
            "roundtrip", False, f"log-probabilities changed by up to {diff:.2e} after save and load", {"difference": diff}
        )
    return CheckResult(
        "roundtrip", True,
        "after a forward pass and a training step, save → load into a freshly built model gives identical "
        "log-probabilities",
    )


def _train_one_step(model: ARModel, x: torch.Tensor, cond: torch.Tensor | None, ordering: Ordering | None) -> float:
    """One step of SGD in training mode, as ``train`` would take it; back in eval mode afterwards. Returns
    the loss, in nats per image (no step is taken on a loss that is not finite)."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    model.train()
    try:
        loss = model.loss(x, cond, ordering)
        if parameters and loss.requires_grad and bool(torch.isfinite(loss)):
            optimizer = torch.optim.SGD(parameters, lr=1e-2)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    finally:
        model.eval()
    return float(loss.detach())
