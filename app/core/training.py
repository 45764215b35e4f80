"""Training: a loop that yields progress events, stops when asked, keeps the best checkpoint by validation NLL,
and resumes from a checkpoint. Runs alone or under ``torchrun`` (DistributedDataParallel).

Every file it writes is written atomically: an interrupted run leaves the last good checkpoint intact. One run
at a time writes an output (a lock file beside it); a run whose loss turns NaN or infinite stops at once.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

from app.core.checkpoints import load_optimizer, save_checkpoint, save_optimizer, weights_path
from app.core.conditions import derive_condition
from app.core.datasets import DataSplit
from app.core.devices import describe_device
from app.core.distillation import distillation_loss
from app.core.errors import ARExplorerError
from app.core.files import OutputBusy, OutputLock, remove_orphans
from app.core.model import ARModel
from app.core.scoring import LN2


class OutputInUse(ARExplorerError):
    """Another training run is writing the same checkpoint."""


def optimizer_path(out: str | Path) -> Path:
    """Where the optimizer state of the checkpoint ``out`` is kept (``NAME.optim.safetensors``)."""
    weights = weights_path(out)
    return weights.with_name(weights.stem + ".optim.safetensors")


def output_files(out: str | Path) -> list[Path]:
    """Every file a run writes for the checkpoint ``out``: the weights, their JSON and the optimizer state."""
    weights = weights_path(out)
    return [weights, weights.with_suffix(".json"), optimizer_path(weights)]


def claim_output(out: str | Path) -> OutputLock:
    """Take the lock of the checkpoint ``out`` (released by the caller), or refuse with :class:`OutputInUse`;
    temporary files that a killed run left beside its files are removed."""
    weights = weights_path(out)
    try:
        lock = OutputLock(weights).acquire()
    except OutputBusy as exc:
        raise OutputInUse(
            f"{weights.name} is being written by another training run ({exc.owner}); wait for it to end, or "
            "choose another output"
        ) from None
    for path in output_files(weights):
        remove_orphans(path)
    return lock


@dataclass
class TrainConfig:
    """How to train. ``epochs`` may be fractional; ``max_minutes`` stops early by wall time."""

    epochs: float = 10.0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    schedule: str = "cosine"  # cosine | constant
    warmup_steps: int = 100
    max_minutes: float | None = None
    eval_every: int = 0  # steps between validations; 0 = once per epoch
    eval_seconds: float = 0.0  # also validate when this long (and 3x the last validation's time) has passed since
    # the last validation; one process only
    valid_limit: int = 0  # validate on at most this many images (0 = all)
    log_every: int = 20
    seed: int = 0
    precision: str = "fp32"  # fp32 | bf16 (autocast, on CUDA and on CPUs with bf16 arithmetic)
    half_checkpoint: bool = True  # store weights in float16 where it changes no measured NLL
    distill_weight: float = 0.0  # with a teacher's conditionals (``train(soft_targets=...)``): the weight of the
    # cross-entropy to them, against 1 - this for the NLL of the pixels (:mod:`app.core.distillation`)


@dataclass
class TrainEvent:
    """Progress of a run, for a progress bar or a live curve. NLL figures are in nats per image."""

    kind: str  # "step" | "eval" | "checkpoint" | "note" | "done" | "stopped"
    step: int
    epoch: float
    images_seen: int
    elapsed_s: float
    train_nll: float | None = None  # "step": the mean training loss over the steps since the last "step" event
    valid_nll: float | None = None
    best_valid_nll: float | None = None
    images_per_s: float | None = None
    lr: float | None = None
    total_steps: int = 0
    message: str = ""
    history: list[dict[str, float]] = field(default_factory=list)
    diverged: bool = False  # a "stopped" run whose loss turned NaN or infinite

    @property
    def fraction(self) -> float:
        return min(1.0, self.step / self.total_steps) if self.total_steps else 0.0


class _LossModule(nn.Module):
    """Wraps a model so that DistributedDataParallel sees the loss as its forward pass."""

    def __init__(self, model: ARModel, distill_weight: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.distill_weight = distill_weight

    def forward(self, x: Tensor, cond: Tensor | None, ordering: Any, soft: Tensor | None = None) -> Tensor:
        if soft is not None:
            return distillation_loss(self.model, x, cond, soft, self.distill_weight)
        return self.model.loss(x, cond, ordering)


def _world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _diverged(loss: Tensor, world: int, device: torch.device) -> bool:
    """Whether the loss is NaN or infinite (on any rank: all of them must stop at the same step)."""
    bad = (~torch.isfinite(loss.detach())).float().reshape(1)
    if world > 1:
        bad = bad.to(device if device.type == "cuda" else "cpu")
        dist.all_reduce(bad)
    return bool(bad.item() > 0)


def validation_nll(model: ARModel, data: DataSplit, batch_size: int = 500, limit: int = 0,
                   should_stop: Callable[[], bool] | None = None) -> float:
    """Mean NLL (nats per image) of ``data`` under ``model``, in float32 with autograd off; NaN when
    ``should_stop()`` turns true between two batches."""
    model.eval()
    device = model.device
    images = data.images if not limit else data.images[:limit]
    labels = data.labels if data.labels is None or not limit else data.labels[:limit]
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            if should_stop is not None and should_stop():
                model.train()
                return math.nan
            x = torch.as_tensor(images[start : start + batch_size], device=device).float()
            y = torch.as_tensor(labels[start : start + batch_size], device=device) if labels is not None else None
            cond = derive_condition(model.config.condition, x, y, model.num_values)
            nll = -model.log_prob(x, cond).flatten(1).sum(1)
            total += float(nll.double().sum())
            count += x.shape[0]
    model.train()
    return total / max(count, 1)


def _lr_factor(cfg: TrainConfig, step: int, total_steps: int, elapsed: float) -> float:
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    if cfg.schedule == "constant":
        return warm
    progress = step / max(1, total_steps)
    if cfg.max_minutes:
        progress = max(progress, elapsed / (cfg.max_minutes * 60.0))
    return warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def train(
    model: ARModel,
    train_data: DataSplit,
    valid_data: DataSplit | None,
    cfg: TrainConfig,
    out: str | Path | None,
    meta: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    resume: bool = False,
    claim: bool = True,
    soft_targets: np.ndarray | None = None,
) -> Iterator[TrainEvent]:
    """Train ``model`` (already on its device), yielding :class:`TrainEvent` s.

    The checkpoint at ``out`` is written whenever the validation NLL improves (on rank 0 only, atomically),
    with the optimizer state beside it (``NAME.optim.safetensors``) so that ``resume=True`` continues the run.
    The run holds the output's lock (:func:`claim_output`) while it lasts, unless ``claim=False`` says that the
    caller holds it. A loss that turns NaN or infinite stops the run at once (a ``"stopped"`` event with
    ``diverged``); the weights never take the step that diverged.

    ``soft_targets``, a teacher's ``(N, C, H, W, K)`` conditionals on ``train_data``
    (:func:`app.core.distillation.cached_teacher_conditionals`), make it a distillation run with the weight
    ``cfg.distill_weight``. Validation always measures the plain NLL.
    """
    if soft_targets is not None and tuple(soft_targets.shape) != (len(train_data), *model.shape, model.num_values):
        raise ValueError(f"soft targets of shape {tuple(soft_targets.shape)} do not fit {len(train_data)} images "
                         f"of {model.shape} with {model.num_values} values")
    rank, world = _world()
    out_path = weights_path(out) if out is not None else None
    # Rank 0 alone writes, so it alone holds the output; the lock is released however the run ends.
    lock = claim_output(out_path) if claim and out_path is not None and rank == 0 else None
    try:
        yield from _train(model, train_data, valid_data, cfg, out_path, meta, should_stop, resume, soft_targets)
    finally:
        if lock is not None:
            lock.release()


def _resume_optimizer(optimizer: torch.optim.Optimizer, optim_path: Path, save_id: object, lr: float) -> str:
    """Load the optimizer state saved with the checkpoint being resumed; returns a note where it cannot be
    used (then the optimizer starts afresh, and the weights are kept)."""
    if not optim_path.exists():
        return f"no optimizer state beside the checkpoint ({optim_path.name}): the optimizer starts afresh"
    try:
        extra = load_optimizer(optimizer, optim_path)
    except Exception:  # noqa: BLE001 - an optimizer state that does not fit: start it afresh, keep the weights
        return f"the optimizer state in {optim_path.name} does not fit the model: the optimizer starts afresh"
    # A run killed between saving the weights and saving the optimizer leaves the state of an earlier save.
    if save_id is not None and extra.get("save_id") != save_id:
        return (f"the optimizer state in {optim_path.name} is from an earlier save (step {extra.get('steps', '?')}) "
                "than the weights (a run stopped between the two writes): the optimizer starts afresh")
    for group in optimizer.param_groups:
        group["lr"] = lr
    return ""


def _train(
    model: ARModel,
    train_data: DataSplit,
    valid_data: DataSplit | None,
    cfg: TrainConfig,
    out_path: Path | None,
    meta: dict[str, Any] | None,
    should_stop: Callable[[], bool],
    resume: bool,
    soft_targets: np.ndarray | None = None,
) -> Iterator[TrainEvent]:
    rank, world = _world()
    device = model.device
    torch.manual_seed(cfg.seed + rank)
    meta = dict(meta or {})
    optim_path = optimizer_path(out_path) if out_path else None

    def fresh_optimizer() -> torch.optim.Optimizer:
        return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

    optimizer = fresh_optimizer()
    start_step, start_epoch, best, history, wall_before = 0, 0.0, math.inf, [], 0.0
    if resume and out_path is not None and out_path.exists():
        from app.core.checkpoints import read_info

        info = read_info(out_path)
        start_step = int(info.meta.get("steps", 0))
        start_epoch = float(info.meta.get("epochs", 0.0))
        best = float(info.meta.get("valid_nll_nats", math.inf))
        history = list(info.meta.get("history", []))
        wall_before = float(info.meta.get("wall_time_s", 0.0))
        note = _resume_optimizer(optimizer, optim_path, info.meta.get("save_id"), cfg.lr)
        if note:
            optimizer = fresh_optimizer()
            yield TrainEvent("note", start_step, start_epoch, 0, 0.0, message=note)

    images = torch.as_tensor(train_data.images, device=device)
    labels = torch.as_tensor(train_data.labels, device=device) if train_data.labels is not None else None
    n = images.shape[0]
    per_rank_batch = max(1, cfg.batch_size // world)
    steps_per_epoch = max(1, n // (per_rank_batch * world))
    total_steps = int(math.ceil(cfg.epochs * steps_per_epoch))
    eval_every = cfg.eval_every or steps_per_epoch
    soft = torch.as_tensor(soft_targets, device=device) if soft_targets is not None else None
    wrapped: nn.Module = _LossModule(model, cfg.distill_weight)
    if world > 1:
        wrapped = nn.parallel.DistributedDataParallel(
            wrapped, device_ids=[device.index] if device.type == "cuda" else None
        )
    # A resumed run shuffles afresh (seeded by the step it starts from): with the first run's seed it would
    # begin again with the images that run began with, and a run shorter than an epoch would see only those.
    generator = torch.Generator().manual_seed(cfg.seed + start_step)
    order_generator = torch.Generator().manual_seed(cfg.seed + 1000 + rank + start_step)
    autocast = cfg.precision == "bf16" and device.type in ("cuda", "cpu")
    start = time.perf_counter()
    last_eval, last_eval_step, eval_cost = start, 0, 0.0
    # One process may stop within a validation (in batches of 100); ranks of several must validate alike.
    stoppable = {"should_stop": should_stop, "batch_size": 100} if world == 1 else {}
    # The loss summed over the steps since the last "step" event, kept on the device: reading it every step
    # would wait for the device every step.
    step, seen, window_loss, window_steps, window_start = 0, 0, torch.zeros((), device=device), 0, start
    model.train()
    perm = torch.randperm(n, generator=generator)
    position = 0

    def save(valid_nll: float) -> None:
        if out_path is None or rank != 0:
            return
        elapsed = time.perf_counter() - start
        record = {
            **meta,
            "epochs": start_epoch + step / steps_per_epoch,
            "steps": start_step + step,
            "images_seen": int(meta.get("images_seen", 0)) + seen * world,
            "wall_time_s": wall_before + elapsed,
            "device": describe_device(device),
            "world_size": world,
            "train_config": asdict(cfg),
            "valid_nll_nats": valid_nll,
            "valid_bits_per_dim": valid_nll / (np.prod(model.shape) * LN2),
            "history": history,
        }
        info = save_checkpoint(model, out_path, record, half=False)
        # The save's id goes with the optimizer state: a resume tells a state left from an earlier save.
        save_optimizer(optimizer, optim_path, {"steps": start_step + step, "save_id": info.meta["save_id"]})

    stop_reason, diverged = "", False
    while step < total_steps:
        elapsed = time.perf_counter() - start
        over_time = bool(cfg.max_minutes) and elapsed > cfg.max_minutes * 60
        stop = over_time or should_stop()
        if world > 1 and step % 10 == 0:
            # Ranks must agree to stop at the same step, or the next all-reduce would hang.
            flag = torch.tensor([1.0 if stop else 0.0], device=device if device.type == "cuda" else "cpu")
            dist.all_reduce(flag)
            stop = float(flag) > 0
        elif world > 1:
            stop = False
        if stop:
            stop_reason = "time budget reached" if over_time else "stopped"
            break
        if position + per_rank_batch * world > n:
            perm = torch.randperm(n, generator=generator)
            position = 0
        index = perm[position + rank * per_rank_batch : position + (rank + 1) * per_rank_batch].to(device)
        position += per_rank_batch * world
        x = images[index].float()
        y = labels[index] if labels is not None else None
        cond = derive_condition(model.config.condition, x, y, model.num_values)
        ordering = model.training_ordering(order_generator)
        for group in optimizer.param_groups:
            group["lr"] = cfg.lr * _lr_factor(cfg, start_step + step, start_step + total_steps, elapsed)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            loss = wrapped(x, cond, ordering, soft[index] if soft is not None else None)
        # Checked before the step, so that the weights (and the checkpoint kept) never take a NaN in.
        if _diverged(loss, world, device):
            stop_reason = (f"the training loss became {float(loss.detach())} at step {start_step + step + 1} "
                           f"(learning rate {optimizer.param_groups[0]['lr']:.3g}): training stopped; try a lower "
                           "learning rate")
            diverged = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip:
            nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        step += 1
        seen += x.shape[0]
        window_loss += loss.detach().float()
        window_steps += 1
        if step % cfg.log_every == 0:
            now = time.perf_counter()
            rate = cfg.log_every * per_rank_batch * world / max(now - window_start, 1e-9)
            window_start = now
            yield TrainEvent(
                "step", start_step + step, start_epoch + step / steps_per_epoch, seen * world, now - start,
                train_nll=float(window_loss) / window_steps, best_valid_nll=best if best < math.inf else None,
                images_per_s=rate, lr=optimizer.param_groups[0]["lr"], total_steps=start_step + total_steps,
            )
            window_loss, window_steps = torch.zeros((), device=device), 0
        # By the clock, validation takes at most a quarter of the time, however slow it is.
        interval = max(cfg.eval_seconds, 3.0 * eval_cost)
        timely = world == 1 and cfg.eval_seconds > 0 and time.perf_counter() - last_eval >= interval
        if valid_data is not None and (step % eval_every == 0 or step == total_steps or timely):
            began = time.perf_counter()
            valid = validation_nll(model, valid_data, limit=cfg.valid_limit, **stoppable) if rank == 0 else math.nan
            last_eval, last_eval_step = time.perf_counter(), step  # the next timely one counts from here
            eval_cost = last_eval - began
            history.append(
                {"step": start_step + step, "epoch": start_epoch + step / steps_per_epoch, "valid_nll": valid,
                 "train_nll": float(loss.detach()), "elapsed_s": time.perf_counter() - start}
            )
            yield TrainEvent(
                "eval", start_step + step, start_epoch + step / steps_per_epoch, seen * world,
                time.perf_counter() - start, valid_nll=valid, best_valid_nll=min(best, valid),
                total_steps=start_step + total_steps, history=list(history),
            )
            if rank == 0 and valid < best:
                best = valid
                save(valid)
                yield TrainEvent(
                    "checkpoint", start_step + step, start_epoch + step / steps_per_epoch, seen * world,
                    time.perf_counter() - start, valid_nll=valid, best_valid_nll=best,
                    total_steps=start_step + total_steps, message=str(out_path) if out_path else "",
                )
            if world > 1:
                dist.barrier()
    if stop_reason == "time budget reached" and valid_data is not None and step > 0 and step != last_eval_step:
        # A run cut by its time budget still ends with a validated checkpoint.
        valid = validation_nll(model, valid_data, limit=cfg.valid_limit) if rank == 0 else math.nan
        history.append({"step": start_step + step, "epoch": start_epoch + step / steps_per_epoch,
                        "valid_nll": valid, "elapsed_s": time.perf_counter() - start})
        if rank == 0 and valid < best:
            best = valid
            save(valid)
        if world > 1:
            dist.barrier()
    if valid_data is None and out_path is not None and rank == 0 and step > 0:
        save(math.nan)
    model.eval()
    yield TrainEvent(
        "stopped" if stop_reason else "done", start_step + step, start_epoch + step / steps_per_epoch, seen * world,
        time.perf_counter() - start, best_valid_nll=best if best < math.inf else None,
        total_steps=start_step + total_steps, message=stop_reason, history=list(history),
        diverged=diverged,
    )
