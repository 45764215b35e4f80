"""The headless commands: models, check, train, sample, score, eval."""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.cli import options as opt
from app.cli.outputs import OutputError, check_outputs, checkpoint_files, file_argument, writing
from app.core.errors import ARExplorerError, ModelError


def _session(args: argparse.Namespace, device: str | None = None):
    from app.core.registry import get_registry
    from app.core.session import Session

    registry = get_registry(strict=getattr(args, "strict_plugins", False))
    _report_plugin_problems(registry)
    return Session(registry, device or getattr(args, "device", None) or "auto", getattr(args, "data_dir", None))


def _report_plugin_problems(registry) -> None:
    for status in registry.problems():
        print(f"warning: plugin {status.name}: {status.error}", file=sys.stderr)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _parse_hparams(items: list[str] | None) -> dict[str, Any]:
    """``--hparam KEY=VALUE`` options to a dict (each value JSON where it parses, else a string); NaN, infinite
    and overflowing numbers are refused here, unknown keys by the model's spec (:meth:`ModelSpec.check_hparams`)."""
    from app.core.checkpoints import implausible_number

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ARExplorerError(f"--hparam takes KEY=VALUE, not {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key.strip()] = json.loads(value)
        except (json.JSONDecodeError, RecursionError):
            out[key.strip()] = value
            with contextlib.suppress(ValueError):
                if not math.isfinite(float(value)):  # "nan", "inf": numbers that JSON does not spell
                    out[key.strip()] = float(value)
        except ValueError:  # an integer of more digits than Python converts
            raise ARExplorerError(f"--hparam {key.strip()}: the number is too large") from None
        problem = implausible_number({key.strip(): out[key.strip()]})
        if problem:
            raise ARExplorerError(f"--hparam {problem}: no model takes it (a number must be finite and at most "
                                  "2^31 in size, a list at most 4096 items long)")
    return out


# models ----------------------------------------------------------------------------------------------------------


def cmd_models(args: argparse.Namespace) -> int:
    from app.core.checkpoints import list_checkpoints
    from app.core.registry import get_registry

    registry = get_registry(strict=args.strict_plugins)
    checkpoints = list_checkpoints(registry)
    data = {
        "plugins": [s.to_dict() for s in registry.statuses.values()],
        "models": [
            {
                "name": s.name,
                "title": s.title,
                "orderings": s.orderings,
                "data_kinds": list(s.data_kinds),
                "condition": s.condition.kind if s.condition else None,
                "sampler_modes": ["naive", *s.sampler_modes],
                "lecture_section": s.lecture_section,
                "description": s.description,
            }
            for s in registry.models.values()
        ],
        "datasets": [
            {"name": d.name, "title": d.title, "kind": d.kind, "shape": list(d.shape), "num_values": d.num_values,
             "binarization": d.binarization, "offline": d.offline}
            for d in registry.datasets.values()
        ],
        "orderings": [{"name": o.name, "description": o.description} for o in registry.orderings.values()],
        "checkpoints": [c.to_dict() for c in checkpoints],
    }
    if args.json:
        _print_json(data)
        return 0
    print("Plugins:")
    for p in data["plugins"]:
        mark = "ok" if p["status"] == "ok" else p["status"].upper()
        print(f"  {p['name']:<22} {mark:<8} {p['error'] or ''}")
    print("\nModels (orderings: fixed = one built in, build = chosen when trained, any = given at run time):")
    for m in data["models"]:
        cond = f", conditioned on {m['condition']}" if m["condition"] else ""
        print(f"  {m['name']:<22} {m['orderings']:<6} {', '.join(m['data_kinds'])}{cond}")
    print("\nDatasets:")
    for d in data["datasets"]:
        print(f"  {d['name']:<22} {d['binarization']}")
    print("\nOrderings: " + ", ".join(o["name"] for o in data["orderings"]))
    print("\nCheckpoints (test NLL on the dataset they were trained on):")
    for c in data["checkpoints"]:
        nll = f"{c['test_nll_nats']:.2f} nats ({c['test_bits_per_dim']:.4f} bits/dim)" if c["test_nll_nats"] else "not evaluated"
        print(f"  {c['name']:<36} {c['model']:<18} {c['dataset']:<18} {nll}")
    return 0


# check -----------------------------------------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace) -> int:
    from app.core.registry import get_registry
    from app.testing import check_model

    registry = get_registry(strict=args.strict_plugins)
    _report_plugin_problems(registry)
    names = args.model or sorted(registry.models)
    failed = 0
    reports = []
    for name in names:
        report = check_model(registry.model(name))
        reports.append(report)
        failed += not report.passed
        if not args.json:
            print(report)
    if args.json:
        _print_json([{"model": r.model, "passed": r.passed,
                      "checks": [{"name": c.name, "passed": c.passed, "message": c.message} for c in r.results]}
                     for r in reports])
    return 1 if failed else 0


# train -----------------------------------------------------------------------------------------------------------


def _init_distributed(device_arg: str) -> tuple[int, int, str]:
    """Under torchrun (WORLD_SIZE > 1): join the process group; returns (rank, world, device)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1, device_arg
    import torch.distributed as dist

    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and device_arg in ("auto", "cuda")
    if not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(local)
        return dist.get_rank(), world, f"cuda:{local}"
    return dist.get_rank(), world, "cpu"


def cmd_train(args: argparse.Namespace) -> int:
    from app.core.train_plan import DataKindError, OutputTaken, TrainPlan, TrainRun, run_plan

    rank, world, device = _init_distributed(args.device or "auto")
    session = _session(args, device)
    plan = TrainPlan(
        args.model, args.dataset, _parse_hparams(args.hparam), _out_argument(args.out), args.ordering,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, minutes=args.max_minutes,
        measure_test=not args.no_test, valid_images=args.valid_limit, limit=args.limit, eval_every=args.eval_every,
        log_every=args.log_every, seed=args.seed, precision=args.precision, resume=args.resume,
        init_from=args.init_from, distill_from=args.distill_from, distill_weight=args.distill_weight,
        force=args.force,
    )
    view = _TrainView(rank, args.model)
    run = TrainRun(on_message=view.message, on_teacher=view.teacher)
    try:
        for event in _writing_checkpoints(run_plan(session, plan, run), run):
            view.event(event, run.distilling)
    except DataKindError as exc:
        raise ARExplorerError(f"{exc} (--force to try)") from None
    except OutputTaken as exc:
        raise OutputError(str(exc)) from None
    finally:
        view.close()
    try:
        return _report_run(run, session, plan)
    finally:
        if world > 1:
            import torch.distributed as dist

            dist.destroy_process_group()


def _out_argument(out: str | None) -> Path | None:
    from app.core.checkpoints import weights_path

    return weights_path(Path(out)) if out else None


def _writing_checkpoints(events, run):
    """The run's events, a failure to write its checkpoint (a full disk while saving) turned into one line; the
    last good checkpoint is intact."""
    from app.core.files import describe_os_error

    while True:
        try:
            event = next(events)
        except StopIteration:
            return
        except OSError as exc:
            if run.phase != "training":
                raise
            raise OutputError(f"cannot write {run.out}: {describe_os_error(exc)}") from None
        yield event


class _TrainView:
    """The terminal's view of a run: its lines on stderr, a progress bar of the steps, one of a teacher's."""

    def __init__(self, rank: int, label: str) -> None:
        self.rank, self.label = rank, label
        self.bar = None
        self.teacher_bar = None

    def message(self, text: str) -> None:
        self._close_teacher()
        print(text, file=sys.stderr)

    def teacher(self, name: str, done: int, total: int) -> None:
        from app.cli.progress import ProgressBar

        if self.teacher_bar is None:
            self.teacher_bar = ProgressBar(total, f"teacher {name}")
        self.teacher_bar.update(done, "conditionals of the training images (computed once, then cached)")

    def event(self, event, distilling: bool) -> None:
        from app.cli.progress import ProgressBar

        if self.rank != 0:
            return
        if self.bar is None:
            self.bar = ProgressBar(1, self.label)
        self.bar.total = event.total_steps
        if event.kind == "note":
            print(f"note: {event.message}", file=sys.stderr)
        elif event.kind == "step":
            what = "train loss" if distilling else "train"
            self.bar.update(event.step, f"{what} {event.train_nll:.2f} nats/img, {event.images_per_s:.0f} img/s")
        elif event.kind == "eval":
            self.bar.update(event.step, f"valid {event.valid_nll:.2f} nats (best {event.best_valid_nll:.2f})")

    def close(self) -> None:
        self._close_teacher()
        if self.bar is not None:
            self.bar.close()

    def _close_teacher(self) -> None:
        if self.teacher_bar is not None:
            self.teacher_bar.close()
            self.teacher_bar = None


def _report_run(run, session, plan) -> int:
    """The end of a run on the terminal: why it stopped, the test NLL, the checkpoint; an error where it failed."""
    if run.rank != 0:
        return 0
    last, out = run.last, run.out
    if last is not None and last.diverged:
        kept = f"the best checkpoint so far is kept: {out}" if out.exists() else "no checkpoint was written"
        raise ModelError(f"{last.message}; {kept}")
    if last is not None and last.kind == "stopped" and last.message:
        print(f"stopped: {last.message}", file=sys.stderr)
    if not out.exists():
        raise ARExplorerError("training ended before any checkpoint was written")
    if run.test is not None:
        dataset = session.dataset(plan.dataset)
        stats = run.test
        print(f"test NLL: {stats['nll_nats']:.2f} ± {stats['nll_nats_stderr']:.2f} nats/image "
              f"({stats['bits_per_dim']:.4f} bits/dim) on {dataset.title} [{dataset.binarization}]")
    elif run.test_error:
        print(f"no test evaluation: {run.test_error}", file=sys.stderr)
    print(f"checkpoint: {out}")
    return 0


# sample ----------------------------------------------------------------------------------------------------------


def _load_condition_image(path: str | None, loaded, n: int = 1) -> np.ndarray | None:
    if not path:
        return None
    if str(path).lower().endswith(".npy"):
        return _load_condition_array(Path(path), loaded, n)
    from app.core.images import load_image

    spec = loaded.model.config.condition
    shape = tuple(spec.shape) if spec is not None and len(spec.shape) == 3 else tuple(loaded.model.shape)
    k = spec.num_values if spec is not None and spec.num_values else loaded.model.num_values
    converted = load_image(path, shape, k)  # type: ignore[arg-type]
    return converted.values


def _load_condition_array(path: Path, loaded, n: int) -> np.ndarray:
    """Exact condition values from a ``.npy`` file (as ``sample --npy`` writes them): ``(C, H, W)``, or
    ``(1 or n, C, H, W)`` for one condition per sample; the condition's own shape or the model's image shape."""
    import io

    from app.core.files import NotARegularFile, describe_os_error, read_limited

    try:
        array = np.load(io.BytesIO(read_limited(path, 256 * 2**20)), allow_pickle=False)
    except FileNotFoundError:
        raise ARExplorerError(f"no condition file at {path}") from None
    except NotARegularFile as exc:
        raise ARExplorerError(f"{path} is {exc.kind}, not a .npy file") from None
    except OSError as exc:
        if exc.errno is not None:
            raise ARExplorerError(f"cannot read {path}: {describe_os_error(exc)}") from None
        raise ARExplorerError(f"{path.name} is not a readable .npy array ({exc})") from None
    except ValueError as exc:
        raise ARExplorerError(f"{path.name} is not a readable .npy array ({exc})") from None
    array = array[None] if array.ndim == 3 else array
    model, spec = loaded.model, loaded.model.config.condition
    shapes = {tuple(model.shape): model.num_values}
    if spec is not None and len(spec.shape) == 3:
        shapes[tuple(spec.shape)] = spec.num_values
    expected = " or ".join("x".join(map(str, s)) for s in shapes)
    if array.ndim != 4 or tuple(array.shape[1:]) not in shapes or array.shape[0] not in (1, n):
        raise ARExplorerError(f"{path.name} holds an array of shape {array.shape}; the condition is {expected}, "
                              f"one for all samples or one per sample ({n})")
    k = shapes[tuple(array.shape[1:])]
    if not np.issubdtype(array.dtype, np.number) or not np.all((array >= 0) & (array < k) & (array == np.round(array))):
        raise ARExplorerError(f"{path.name} must hold whole numbers from 0 to {k - 1}")
    return array


def cmd_sample(args: argparse.Namespace) -> int:
    import time

    from app.core.images import grid_image, save_png
    from app.core.sampling import resolve_mode, sample

    outputs = {"--out": args.out, "--npy": args.npy}
    session = _session(args)
    loaded = session.load(args.checkpoint)
    for note in loaded.notes:
        print(f"note: {note}", file=sys.stderr)
    model = loaded.model
    opt.check_batch(args.n, tuple(model.shape))
    opt.check_canvas(args.n, tuple(model.shape), args.scale, "--n or --scale")
    check_outputs(outputs, [*checkpoint_files(loaded.info), file_argument(args.ordering), args.condition],
                  force=args.force)
    ordering = session.ordering(args.ordering, model, args.seed)
    cond = session.condition(model, args.n, args.label, _load_condition_image(args.condition, loaded, args.n))
    start = time.perf_counter()
    images = sample(model, args.n, temperature=args.temperature, seed=args.seed, ordering=ordering, cond=cond, mode=args.mode)
    if model.device.type == "cuda":
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    array = images.cpu().numpy().astype(np.uint8)
    with writing(args.out):
        save_png(grid_image(array, model.num_values, scale=args.scale), args.out)
    if args.npy:
        from app.core.files import atomic_path

        with writing(args.npy), atomic_path(args.npy) as tmp, open(tmp, "wb") as handle:
            np.save(handle, array, allow_pickle=False)
    mode = resolve_mode(model, args.mode)
    print(f"{args.n} samples from {loaded.name} ({model.spec.title}, {mode} sampling, T={args.temperature}, "
          f"seed {args.seed}, ordering {ordering.name if ordering else model.ordering.name}) on {model.device} "
          f"in {elapsed:.2f} s -> {args.out}")
    return 0


# score -----------------------------------------------------------------------------------------------------------


def cmd_score(args: argparse.Namespace) -> int:
    from app.core.images import load_image
    from app.core.scoring import bits_per_dim, ensemble_nll, percentile_rank, random_orderings, score

    session = _session(args)
    loaded = session.load(args.checkpoint)
    model = loaded.model
    if args.ensemble and (args.ordering or args.per_pixel):
        raise ARExplorerError("--ensemble is a mixture over its own orderings: it takes no --ordering and has no "
                              "--per-pixel map")
    if args.ensemble and model.spec.orderings != "any":
        raise ARExplorerError(f"--ensemble needs a model that takes any ordering at run time; {loaded.name} "
                              f"({model.spec.title}) has one")
    ordering = session.ordering(args.ordering, model, args.seed)
    members = random_orderings(args.ensemble, model.config.height, model.config.width, session.registry)
    # The recorded test quantiles are those of the model's own ordering: an ensemble is not ranked against them.
    quantiles = None if members else loaded.info.meta.get("test_nll_quantiles")
    results = []
    for path in args.images:
        converted = load_image(path, tuple(model.shape), model.num_values, invert=args.invert)
        cond = session.condition(model, 1, args.label, _load_condition_image(args.condition, loaded))
        if members:
            nats = float(ensemble_nll(model, converted.values[None], members, cond)[0])
            nll, bpd = nats, float(bits_per_dim(nats, int(np.prod(model.shape))))
        else:
            result = score(model, converted.values[None], cond, ordering)
            nll, bpd = float(result.nll_nats[0]), float(result.bits_per_dim[0])
        entry: dict[str, Any] = {
            "image": str(path),
            "checkpoint": loaded.name,
            "model": model.spec.name,
            "dataset": loaded.info.meta.get("dataset"),
            "binarization": loaded.info.meta.get("binarization"),
            "ordering": (f"an ensemble of {args.ensemble} random orderings (seeds 0-{args.ensemble - 1})" if members
                         else ordering.name if ordering else model.ordering.name),
            "nll_nats": nll,
            "bits_per_dim": bpd,
            "conversion": converted.notes,
        }
        if quantiles:
            entry["test_percentile"] = percentile_rank(entry["nll_nats"], np.asarray(quantiles))
        if args.per_pixel:
            entry["per_pixel_nll"] = result.per_pixel_nll[0].round(6).tolist()
        results.append(entry)
        if not args.json:
            pct = f", more surprising than {entry['test_percentile']:.0f}% of test images" if quantiles else ""
            print(f"{path}: {entry['nll_nats']:.2f} nats/image, {entry['bits_per_dim']:.4f} bits/dim under "
                  f"{loaded.name} [{entry['binarization']}]{pct}"
                  + (f", {entry['ordering']}" if members else ""))
            print(f"  converted: {converted.describe()}")
    if args.json:
        _print_json(results if len(results) != 1 else results[0])
    return 0


# eval ------------------------------------------------------------------------------------------------------------


def cmd_eval(args: argparse.Namespace) -> int:
    session = _session(args)
    loaded = session.load(args.checkpoint)
    if args.ensemble and args.ordering:
        raise ARExplorerError("--ensemble draws its own orderings: give --ensemble or --ordering, not both")
    if args.ensemble and loaded.model.spec.orderings != "any":
        raise ARExplorerError(f"--ensemble needs a model that takes any ordering at run time; {loaded.name} "
                              f"({loaded.model.spec.title}) has one")
    ordering = session.ordering(args.ordering, loaded.model, args.seed)
    stats = session.evaluate(loaded, args.dataset, args.split, args.limit, ordering, record=not args.no_record,
                             subset=args.subset, ensemble=args.ensemble)
    stats["checkpoint"] = loaded.name
    if args.json:
        _print_json(stats)
    else:
        under = stats["ordering"] if args.ensemble else f"ordering {stats['ordering']}"
        print(f"{loaded.name} on {stats['dataset']} {stats['split']} [{stats['binarization']}], {under}: {stats['nll_nats']:.2f} ± {stats['nll_nats_stderr']:.2f} nats/image, "
              f"{stats['bits_per_dim']:.4f} ± {stats['bits_per_dim_stderr']:.4f} bits/dim ({stats['images']} "
              f"{stats['num_images']} images)")
    if stats.get("record_error"):
        # The figure is printed first: measuring took minutes, and only recording it failed.
        sys.stdout.flush()
        raise OutputError(f"the result above was not recorded in {loaded.info.json_path.name}: "
                          f"{stats['record_error']} (--no-record leaves the checkpoint as it is)")
    return 0


# registration ------------------------------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction, add_common) -> None:
    def common(parser: argparse.ArgumentParser, device: bool = True, data: bool = False) -> None:
        add_common(parser)
        if device:
            parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
        if data:
            parser.add_argument("--data-dir", default=None, help="data folder (else $AR_EXPLORER_DATA, else the cache)")

    p = sub.add_parser("models", help="list plugins, models, datasets, orderings and checkpoints")
    common(p, device=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_models)

    p = sub.add_parser("check", help="run the conformance kit on models (all by default)")
    common(p, device=False)
    p.add_argument("model", nargs="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_check)

    p = sub.add_parser("train", help="train a model on a dataset, keeping the best checkpoint by validation NLL")
    common(p, data=True)
    p.add_argument("--model", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--epochs", type=opt.real(0, 1e6, above_low=True), default=10.0, help="may be fractional")
    p.add_argument("--batch-size", type=opt.whole(1, 65536), default=128)
    p.add_argument("--lr", type=opt.real(0, 10, above_low=True), default=1e-3, help="peak learning rate")
    p.add_argument("--max-minutes", type=opt.real(0, 1e6, above_low=True), default=None,
                   help="stop after this much wall time")
    p.add_argument("--eval-every", type=opt.whole(0, 10**9), default=0,
                   help="steps between validations (default 0: each epoch)")
    p.add_argument("--log-every", type=opt.whole(1, 10**9), default=20)
    p.add_argument("--limit", type=opt.count_or_all, default=0, help="train on at most this many images (0 = all)")
    p.add_argument("--valid-limit", type=opt.count_or_all, default=0,
                   help="validate on at most this many images (0 = all)")
    p.add_argument("--ordering", default=None, help="for models whose ordering is chosen at build: a preset or JSON file")
    p.add_argument("--hparam", action="append", metavar="KEY=VALUE", help="hyperparameter (JSON value), repeatable")
    p.add_argument("--out", default=None,
                   help="checkpoint path (default: the user checkpoint folder); an existing one is never replaced")
    p.add_argument("--resume", action="store_true", help="continue from --out if it exists")
    p.add_argument("--init-from", default=None, metavar="CHECKPOINT",
                   help="start from another checkpoint's weights wherever a layer has the same name and shape")
    p.add_argument("--distill-from", default=None, metavar="CHECKPOINT",
                   help="learn also from this teacher's per-pixel conditionals (same data and ordering)")
    p.add_argument("--distill-weight", type=opt.real(0, 1), default=0.5,
                   help="with --distill-from: the weight of the teacher's conditionals against the pixels (0 to 1)")
    opt.add_seed(p)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--no-test", action="store_true", help="skip the test-set evaluation at the end")
    p.add_argument("--force", action="store_true", help="train even where the model does not list the data kind")
    p.set_defaults(handler=cmd_train)

    p = sub.add_parser("sample", help="sample images from a checkpoint into a PNG grid")
    common(p)
    p.add_argument("--checkpoint", required=True, help="a shipped checkpoint's name or a .safetensors path")
    p.add_argument("--n", type=opt.whole(1, 4096), default=16, help="number of samples (1 to 4096)")
    p.add_argument("--out", default="samples.png")
    p.add_argument("--npy", default=None, help="also save the raw values as .npy")
    p.add_argument("--force", action="store_true", help="replace --out and --npy where they exist")
    p.add_argument("--ordering", default=None, help="a preset name or an ordering JSON file")
    p.add_argument("--temperature", type=opt.temperature, default=1.0, help="0 to 100 (1: the model itself)")
    opt.add_seed(p)
    p.add_argument("--mode", default="auto", help="naive, cached or auto")
    p.add_argument("--label", type=opt.label, default=None, help="class label, for class-conditional models")
    p.add_argument("--condition", default=None,
                   help="condition image (PNG, ...) or exact values (.npy, as --npy writes), for image-conditional models")
    p.add_argument("--scale", type=opt.png_scale, default=4, help="pixel size in the PNG (1 to 64)")
    p.set_defaults(handler=cmd_sample)

    p = sub.add_parser("score", help="NLL of image files under a checkpoint")
    common(p)
    p.add_argument("images", nargs="+")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--ordering", default=None)
    opt.add_seed(p, "seed of a random ordering")
    p.add_argument("--json", action="store_true")
    p.add_argument("--per-pixel", action="store_true", help="add per_pixel_nll: H x W of -log p(x_i | x_<i) in nats")
    p.add_argument("--ensemble", type=opt.whole(0, 1024), default=0, metavar="K",
                   help="the mixture over K seeded random orderings, for models that take any ordering")
    p.add_argument("--invert", choices=("auto", "yes", "no"), default="auto")
    p.add_argument("--label", type=opt.label, default=None)
    p.add_argument("--condition", default=None)
    p.set_defaults(handler=cmd_score)

    p = sub.add_parser("eval", help="mean NLL of a checkpoint on a dataset split, with its standard error")
    common(p, data=True)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--dataset", default=None, help="default: the checkpoint's own dataset")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=opt.count_or_all, default=0, help="the first N images of the split (0 = all)")
    p.add_argument("--subset", type=opt.count_or_all, default=0,
                   help="a seeded random sample of N images of the split (0 = all)")
    p.add_argument("--ordering", default=None)
    opt.add_seed(p, "seed of a random ordering")
    p.add_argument("--json", action="store_true")
    p.add_argument("--no-record", action="store_true", help="do not write the result into the checkpoint's record")
    p.add_argument("--ensemble", type=opt.whole(0, 1024), default=0, metavar="K",
                   help="the mixture over K seeded random orderings, for models that take any ordering "
                        "(never recorded)")
    p.set_defaults(handler=cmd_eval)
