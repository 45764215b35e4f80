"""One training path: what to train (:class:`TrainPlan`) and its running (:func:`run_plan`), for every front end.

``ar-explorer train`` and the app's Train view turn their arguments or their form into a plan, then turn the
:class:`~app.core.training.TrainEvent` s that :func:`run_plan` yields into a progress bar or live curves. The
steps between are the same for both and live here: choose and claim the output, read the data, build (or
resume, warm-start or continue) the model, compute a distillation teacher's targets, run
:func:`app.core.training.train`, and measure the test NLL of the checkpoint kept.

What the run has to say besides its events (where it writes, what it resumed, a teacher's progress) goes to
the callbacks of its :class:`TrainRun`, on rank 0 only under ``torchrun``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from app.core import training
from app.core.errors import ARExplorerError, Cancelled, DataError, ModelError
from app.core.model import ARModel, ModelSpec
from app.core.orderings import Ordering
from app.core.training import TrainConfig, TrainEvent, claim_output, output_files


class DataKindError(ARExplorerError):
    """The model does not list the kind of the dataset it was asked to train on."""


class OutputTaken(ARExplorerError):
    """The output asked for already holds a checkpoint, or another run is writing it."""


@dataclass
class TrainPlan:
    """Everything one training run needs, as the user chose it (the defaults are ``ar-explorer train``'s).

    ``out`` is the checkpoint to write (``None``: the default one in the user's checkpoint folder, a run
    afresh writing beside an existing one as ``NAME-2``); an ``out`` given that already holds a checkpoint is
    refused unless ``resume``. ``start_model`` (a copy of the checkpoint ``start_from``) is continued into a
    new ``out``; ``init_from`` carries over another checkpoint's tensors that fit. NLL figures are nats per
    image.
    """

    model: str
    dataset: str
    hparams: dict[str, Any] = field(default_factory=dict)
    out: Path | None = None
    ordering: str | None = None  # a preset or an ordering file, for models of capability "build"
    epochs: float = 10.0
    batch_size: int = 128
    lr: float = 1e-3
    minutes: float | None = None  # wall-time budget (None or 0: none)
    start_from: str | None = None
    start_model: ARModel | None = None
    measure_test: bool = True
    valid_images: int = 0  # validate on at most this many (0: all)
    limit: int = 0  # train on at most this many images (0: all)
    eval_every: int = 0  # steps between validations (0: each epoch), unless curve_points_per_epoch says
    log_every: int = 20
    curve_points_per_epoch: int = 0  # > 0: validate (and log) this often per epoch, for live curves
    curve_points_per_run: int = 0  # > 0: and at least this often over the time budget, however slow
    seed: int = 0
    precision: str = "fp32"
    resume: bool = False
    init_from: str | None = None
    distill_from: str | None = None
    distill_weight: float = 0.5
    force: bool = False  # train even on a kind of data the model does not list


def _ignore(*_: Any) -> None:
    return None


@dataclass
class TrainRun:
    """What a run reports besides its events: its phase, where it writes, and the test NLL at the end.

    ``on_message(text)`` gets each line for the user (what was kept, resumed or carried over);
    ``on_teacher(name, done, total)`` the progress of a teacher's conditionals. Both are called on rank 0 only.
    """

    events: list[TrainEvent] = field(default_factory=list)
    phase: str = "preparing"
    out: Path | None = None
    test: dict[str, Any] | None = None
    test_error: str = ""
    distilling: bool = False
    rank: int = 0
    world: int = 1
    on_message: Callable[[str], None] = _ignore
    on_teacher: Callable[[str, int, int], None] = _ignore

    @property
    def last(self) -> TrainEvent | None:
        """The latest event, ``None`` before the first."""
        return self.events[-1] if self.events else None

    def say(self, text: str) -> None:
        if self.rank == 0:
            self.on_message(text)


def default_output(model: str, dataset: str, ordering: str | None) -> Path:
    """The checkpoint a run writes when no output is given: ``MODEL-DATASET[-ORDERING]`` in the user's folder."""
    from app.core.checkpoints import user_checkpoint_dir

    suffix = f"-{ordering}" if ordering else ""
    return user_checkpoint_dir() / f"{model}-{dataset}{suffix}.safetensors"


def fresh_output(out: Path, explicit: bool) -> Path:
    """Where a run afresh (no resume) writes: never over an existing checkpoint or one being written.

    An explicit output that exists is refused; the default output is kept and the run writes beside it
    (``NAME-2``, ``NAME-3``, ...)."""
    from app.core.files import is_locked

    def taken(path: Path) -> bool:
        return is_locked(path) or any(f.exists() or f.is_symlink() for f in output_files(path))

    if not taken(out):
        return out
    if explicit and is_locked(out):
        raise OutputTaken(f"--out {out} is being written by another training run; wait for it to end, or choose "
                          "another --out")
    if explicit:
        raise OutputTaken(
            f"--out {out} already holds a checkpoint: --resume continues it, or choose another --out to train "
            "afresh (nothing is replaced)"
        )
    n = 2
    while taken(out.with_name(f"{out.stem}-{n}.safetensors")):
        n += 1
    return out.with_name(f"{out.stem}-{n}.safetensors")


def check_resume_matches(out: Path, dataset: str, hparams: dict[str, Any], ordering: str | None) -> None:
    """A resume continues the checkpoint as it is: a dataset, hyperparameter or ordering asked for that differs
    from it would be silently ignored, so it is an error instead."""
    from app.core.checkpoints import read_info

    meta = read_info(out).meta
    config = meta.get("config") or {}
    saved_hparams = config.get("hparams") or {}
    conflicts = []
    if meta.get("dataset") and meta["dataset"] != dataset:
        conflicts.append(f"dataset {meta['dataset']} (asked: {dataset})")
    for key, value in hparams.items():
        if key in saved_hparams and saved_hparams[key] != value:
            conflicts.append(f"{key}={json.dumps(saved_hparams[key])} (asked: {json.dumps(value)})")
    saved_ordering = (config.get("ordering") or {}).get("name")
    if ordering and saved_ordering and saved_ordering != ordering:
        conflicts.append(f"ordering {saved_ordering} (asked: {ordering})")
    if conflicts:
        raise ARExplorerError(
            f"--resume continues {out.name} as it was trained: {'; '.join(conflicts)}. "
            "Leave out --resume (or choose another --out) to train afresh with these settings"
        )


def run_plan(session, plan: TrainPlan, run: TrainRun | None = None,
             should_stop: Callable[[], bool] = lambda: False) -> Iterator[TrainEvent]:
    """Run ``plan`` with ``session`` (its registry, device and data folder), yielding the training's events;
    every event also goes into ``run.events``.

    Everything the plan asks for is checked before any minute goes into loading or building. Under
    ``torchrun`` (a process group initialised), rank 0 alone chooses, claims and writes the output, and the
    other ranks end after the last step.

    Raises
    ------
    ARExplorerError
        A plan that cannot run, with the reason (:class:`DataKindError`, :class:`OutputTaken`, a
        :class:`~app.core.errors.HyperparameterError`, ...); nothing is written.
    """
    run = run if run is not None else TrainRun()
    run.rank, run.world = _world()
    spec = session.registry.model(plan.model)
    spec.check_hparams(plan.hparams)
    dataset = session.dataset(plan.dataset)
    if dataset.kind not in spec.data_kinds and not plan.force:
        raise DataKindError(f"{spec.title} models {', '.join(spec.data_kinds)} data; {dataset.name} is {dataset.kind}")
    ordering = _ordering(session, spec, plan, dataset.shape)
    out = plan.out or default_output(spec.name, dataset.name, plan.ordering and ordering.name)
    resuming = plan.resume and out.exists()
    if not resuming:
        out = _choose_output(run, out, explicit=plan.out is not None)
    run.say(f"training {spec.title} on {dataset.title} [{dataset.binarization}] on {session.device}"
            f"{f' x{run.world} processes' if run.world > 1 else ''} -> {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    run.out = out
    # Claimed before anything is read: a second run on the same output is refused at once.
    lock = claim_output(out) if run.rank == 0 else None
    try:
        if resuming:
            check_resume_matches(out, dataset.name, plan.hparams, plan.ordering and ordering.name)
        yield from _train_into(session, plan, run, spec, dataset, ordering, out, resuming, should_stop)
    finally:
        if lock is not None:
            lock.release()


def _world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _ordering(session, spec: ModelSpec, plan: TrainPlan, shape) -> Ordering | None:
    if not plan.ordering:
        return None
    if spec.orderings == "fixed":
        raise ARExplorerError(f"{spec.title} has a fixed ordering; --ordering applies to models of capability build")
    return session.registry.ordering(plan.ordering, shape[1], shape[2], plan.seed)


def _choose_output(run: TrainRun, out: Path, explicit: bool) -> Path:
    """Rank 0 alone chooses (and then claims) the output; the others take its choice, since they would see
    its lock and refuse."""
    chosen, refusal = None, None
    if run.rank == 0:
        try:
            chosen = fresh_output(out, explicit)
        except OutputTaken as exc:
            refusal = str(exc)
    if run.world > 1:
        import torch.distributed as dist

        box = [str(chosen) if chosen is not None else None, refusal]
        dist.broadcast_object_list(box, src=0)
        chosen, refusal = (Path(box[0]) if box[0] else None), box[1]
    if refusal is not None:
        raise OutputTaken(refusal)
    if chosen != out:
        run.say(f"{out.name} exists and is kept: this run writes {chosen.name} beside it "
                "(--resume continues the existing one)")
    return chosen


def _train_into(session, plan: TrainPlan, run: TrainRun, spec: ModelSpec, dataset, ordering, out: Path,
                resuming: bool, should_stop: Callable[[], bool]) -> Iterator[TrainEvent]:
    # The data first: a missing dataset is reported before minutes go into building or loading a model.
    run.phase = "loading the data"
    train_split = session.split(dataset, "train", plan.limit)
    valid_split = session.split(dataset, "valid", plan.valid_images) if "valid" in dataset.splits else None
    run.phase = "building the model"
    model, meta, resumed = _model(session, plan, run, spec, dataset, ordering, out, resuming)
    soft = None
    if plan.distill_from:
        soft, meta["distilled_from"] = _teacher_targets(session, plan, run, model, train_split)
    elif resumed is not None and "distilled_from" in resumed:
        meta["distilled_from"] = resumed["distilled_from"]  # how the weights resumed from were trained
    run.distilling = soft is not None
    run.phase = "training"
    # Looked up on the module at each run, so that a test may stand in for the loop.
    for event in training.train(model, train_split, valid_split, train_config(plan, len(train_split)), out, meta,
                       should_stop=should_stop, resume=plan.resume, claim=False, soft_targets=soft):
        run.events.append(event)
        yield event
    if run.world > 1:
        import torch.distributed as dist

        dist.barrier()
        if run.rank != 0:
            return
    last = run.last
    if plan.measure_test and out.exists() and not (last is not None and last.diverged) and not should_stop():
        _measure_test(session, run, out, should_stop)
    else:
        run.phase = "done"


def train_config(plan: TrainPlan, train_images: int) -> TrainConfig:
    """The loop's settings for ``plan`` on ``train_images`` images (the live curves' schedule, if asked)."""
    eval_every, log_every, eval_seconds = plan.eval_every, plan.log_every, 0.0
    if plan.curve_points_per_epoch:
        steps_per_epoch = max(1, train_images // max(1, plan.batch_size))
        eval_every = max(1, steps_per_epoch // plan.curve_points_per_epoch)
        log_every = max(1, min(20, steps_per_epoch // 20))
    if plan.curve_points_per_run and plan.minutes:
        eval_seconds = max(5.0, 60.0 * plan.minutes / plan.curve_points_per_run)
    return TrainConfig(
        epochs=plan.epochs, batch_size=plan.batch_size, lr=plan.lr, max_minutes=plan.minutes or None,
        eval_every=eval_every, eval_seconds=eval_seconds, valid_limit=plan.valid_images, seed=plan.seed,
        precision=plan.precision, log_every=log_every,
        distill_weight=plan.distill_weight if plan.distill_from else 0.0,
    )


def _model(session, plan: TrainPlan, run: TrainRun, spec: ModelSpec, dataset, ordering, out: Path,
           resuming: bool) -> tuple[ARModel, dict[str, Any], dict[str, Any] | None]:
    """The model to train, the record to start its checkpoint's JSON from, and the record resumed (or None)."""
    from app.core.checkpoints import load_checkpoint

    if resuming:
        model, info = load_checkpoint(out, session.registry, session.device, expect_model=spec.name)
        meta = {k: info.meta[k] for k in ("dataset", "binarization", "images_seen") if k in info.meta}
        run.say(f"resuming from {out.name}: {info.meta.get('epochs', 0):.2f} epochs done, "
                f"best validation {info.meta.get('valid_nll_nats', float('nan')):.2f} nats")
        return model, meta, info.meta
    meta = {"dataset": dataset.name, "binarization": dataset.binarization}
    if plan.start_model is not None:
        source = plan.start_model
        if source.spec.name != spec.name or tuple(source.shape) != tuple(dataset.shape) \
                or source.num_values != dataset.num_values:
            raise ARExplorerError(f"{plan.start_from} is a {source.spec.title} of {tuple(source.shape)} images "
                                  f"with {source.num_values} values: it cannot continue on {dataset.title}")
        if plan.start_from:
            meta["trained_from"] = plan.start_from
        return source.float().to(session.device), meta, None
    if plan.resume:
        run.say(f"nothing to resume at {out}; starting afresh")
    model = _build(session, spec, dataset, plan, ordering)
    if plan.init_from:
        meta["init_from"] = _warm_start(session, run, model, plan.init_from)
    return model, meta, None


def _build(session, spec: ModelSpec, dataset, plan: TrainPlan, ordering) -> ARModel:
    from app.core.allocation import MAX_MODEL_VALUES, BudgetExceeded, build_within

    torch.manual_seed(plan.seed)
    config = spec.make_config(dataset.shape, dataset.num_values, plan.hparams, ordering)
    try:
        return build_within(spec, config, MAX_MODEL_VALUES).to(session.device)
    except BudgetExceeded as exc:
        raise ModelError(
            f"{spec.title} with these hyperparameters {exc} (the limit is "
            f"{MAX_MODEL_VALUES / 1e6:.0f} million, far beyond the lecture's models); check --hparam"
        ) from None
    except ARExplorerError:
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin's constructor may raise anything on bad hparams
        raise ModelError(
            f"building {spec.title} with these hyperparameters failed: {type(exc).__name__}: {exc}"
        ) from None


def _teacher_targets(session, plan: TrainPlan, run: TrainRun, model: ARModel, train_split):
    """The teacher's conditionals on the training images (cached), and what to record of it."""
    from app.core.checkpoints import load_checkpoint
    from app.core.distillation import cached_teacher_conditionals, check_teacher

    teacher, info = load_checkpoint(plan.distill_from, session.registry, session.device)
    check_teacher(model, teacher, info.name)
    sha = info.meta.get("weights_sha256") or info.name

    def progress(done: int, total: int) -> None:
        if run.rank == 0:
            run.on_teacher(info.name, done, total)

    soft, path, hit = cached_teacher_conditionals(teacher, sha, train_split, precision=plan.precision,
                                                  progress=progress)
    run.say(f"distilling from {info.name} (weight {plan.distill_weight:g}): its conditionals "
            f"{'read from' if hit else 'written to'} {path}")
    del teacher
    return soft, {"checkpoint": info.name, "weights_sha256": info.meta.get("weights_sha256"),
                  "test_nll_nats": info.meta.get("test_nll_nats"), "weight": plan.distill_weight}


def _warm_start(session, run: TrainRun, model: ARModel, ref: str) -> dict[str, Any]:
    """The tensors of another checkpoint that fit, the rest as built; what was done, for the JSON."""
    from app.core.checkpoints import carry_weights, load_checkpoint

    source, info = load_checkpoint(ref, session.registry, "cpu")
    carried, left = carry_weights(model, source)
    run.say(f"warm start from {info.name}: {len(carried)} tensors carried over, {len(left)} left as built"
            f"{' (' + ', '.join(left[:4]) + (', ...' if len(left) > 4 else '') + ')' if left else ''}")
    return {"checkpoint": info.name, "model": info.model, "dataset": info.meta.get("dataset"),
            "test_nll_nats": info.meta.get("test_nll_nats"), "tensors_carried": len(carried),
            "tensors_left_as_built": left}


def _measure_test(session, run: TrainRun, out: Path, should_stop: Callable[[], bool]) -> None:
    """The test NLL of the checkpoint kept, into ``run.test`` (recorded in its JSON for the picker)."""
    run.phase = "measuring the test NLL"
    loaded = session.load(out)
    try:
        run.test = session.evaluate(loaded, split="test", should_stop=should_stop)
    except Cancelled:
        run.phase = "stopped before the test NLL was measured"
        return
    except DataError as exc:
        run.test_error = str(exc)
    run.phase = "done"


__all__ = ["TrainPlan", "TrainRun", "run_plan", "train_config", "default_output", "fresh_output",
           "check_resume_matches", "DataKindError", "OutputTaken"]
