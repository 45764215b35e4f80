"""``ar-explorer bench``: sampling (naive against cached), scoring and training speed of every model.

Each model is the shipped checkpoint where there is one, else a randomly initialised model of the shipped
size (the time a forward pass takes does not depend on the weights). Slow measurements are not run to the
end: a run that would take longer than ``--budget`` seconds is timed over its first steps and extrapolated,
and says so (``"extrapolated": true``, ``~`` in the table).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch

from app.cli import options as opt
from app.core.errors import ARExplorerError
from app.core.model import ARModel, ModelSpec

#: The image each data kind is benchmarked on: (channels, height, width), number of values.
#: The clock of every measurement: wall time, or (``--clock process``, for a shared CPU machine) the CPU time
#: of this process, which does not count the time other processes hold the cores.
CLOCK = {"now": time.perf_counter}
IMAGE_KINDS = {"binary": ((1, 28, 28), 2), "grey": ((1, 28, 28), 256), "colour": ((3, 28, 28), 4)}
ENGINE_VARIABLE = "AR_EXPLORER_CACHED_ENGINE"


def register(sub: argparse._SubParsersAction, add_common: Callable[[argparse.ArgumentParser], None]) -> None:
    p = sub.add_parser("bench", help="time sampling (naive vs cached), scoring and training of every model")
    add_common(p)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of a table")
    p.add_argument("--model", action="append", help="only this model (repeatable; default: every model)")
    p.add_argument("--batches", type=opt.whole_list(1, 4096), default=[1, 16, 256],
                   help="sampling batch sizes, comma-separated (each 1 to 4096)")
    p.add_argument("--budget", type=opt.real(0, 3600, above_low=True, unit="seconds"), default=4.0, metavar="SECONDS",
                   help="longest single measurement; longer runs are extrapolated from their first steps")
    p.add_argument("--engines", default="auto",
                   help="cached-sampling engines to time, comma-separated: auto, eager, graph, compile")
    p.add_argument("--clock", choices=("wall", "process"), default="wall",
                   help="wall time, or this process's CPU time (CPU only, one thread: a fair figure on a busy machine)")
    p.add_argument("--skip", action="append", choices=("sampling", "scoring", "training"), default=[],
                   help="leave a part out (repeatable)")
    p.set_defaults(handler=cmd_bench)


# -- timing helpers ----------------------------------------------------------------------------------------


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn: Callable[[], Any], device: torch.device) -> float:
    """Wall-clock seconds of ``fn()``, with the device's queue drained before and after."""
    synchronize(device)
    start = CLOCK["now"]()
    fn()
    synchronize(device)
    return CLOCK["now"]() - start


@contextlib.contextmanager
def cached_engine(engine: str) -> Iterator[None]:
    """Select the cached samplers' engine (``AR_EXPLORER_CACHED_ENGINE``) for the duration of a block."""
    before = os.environ.get(ENGINE_VARIABLE)
    os.environ[ENGINE_VARIABLE] = engine
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(ENGINE_VARIABLE, None)
        else:
            os.environ[ENGINE_VARIABLE] = before


# -- models --------------------------------------------------------------------------------------------------


def bench_model(spec: ModelSpec, registry, device: torch.device) -> tuple[ARModel | None, str]:
    """The shipped checkpoint of ``spec`` on ``device``, else a random model of the shipped size."""
    from app.core.checkpoints import list_checkpoints, load_checkpoint

    for info in list_checkpoints(registry):
        if info.model == spec.name:
            model, _ = load_checkpoint(info.weights, registry, device)
            return model.eval(), f"checkpoint {info.name}"
    kind = next((k for k in spec.data_kinds if k in IMAGE_KINDS), None)
    if kind is None:
        return None, f"not an image model ({', '.join(spec.data_kinds)})"
    shape, k = IMAGE_KINDS[kind]
    torch.manual_seed(0)
    model = spec.create(spec.make_config(shape, k))
    return model.to(device).eval(), f"random init, shipped size ({kind})"


def condition_for(model: ARModel, n: int) -> torch.Tensor | None:
    """A condition of the right kind for ``n`` images (class 0, or one derived from a random image)."""
    from app.core.conditions import derive_condition

    spec = model.config.condition
    if spec is None:
        return None
    generator = torch.Generator().manual_seed(0)
    if spec.kind == "class":
        return torch.zeros(n, dtype=torch.long, device=model.device)
    images = torch.randint(0, model.num_values, (n, *model.shape), generator=generator).float()
    labels = torch.zeros(n, dtype=torch.long)
    return derive_condition(spec, images, labels, model.num_values).to(model.device)


# -- the measurements ----------------------------------------------------------------------------------------


def time_steps(model: ARModel, n: int, mode: str, cond, budget: float) -> tuple[float, int, int]:
    """Seconds per step over the first steps of a run (at most ``budget`` seconds); (per step, steps, total)."""
    from app.core.sampling import prepare_run

    device = model.device
    with torch.no_grad():
        run = prepare_run(model, n, seed=0, mode=mode, cond=cond)
        run.step(0)  # warm-up (and any one-off set-up)
        synchronize(device)
        start = CLOCK["now"]()
        done = 0
        for index in range(1, run.total):
            run.step(index)
            done += 1
            if done >= 4 and CLOCK["now"]() - start > budget / 4:
                break
        synchronize(device)
    return (CLOCK["now"]() - start) / max(done, 1), done, run.total


def time_sampling(model: ARModel, n: int, mode: str, budget: float, repeat: int = 2) -> dict[str, Any]:
    """Seconds to sample ``n`` images to the end: measured where it fits in ``budget``, else extrapolated."""
    from app.core.sampling import sample

    cond = condition_for(model, n)
    per_step, steps, total = time_steps(model, n, mode, cond, budget)
    estimate = per_step * total
    if estimate > budget:
        return {"seconds": estimate, "extrapolated": True, "from_steps": steps}
    device = model.device
    first = timed(lambda: sample(model, n, seed=0, mode=mode, cond=cond), device)
    runs = [timed(lambda: sample(model, n, seed=1, mode=mode, cond=cond), device) for _ in range(repeat)]
    return {"seconds": statistics.median(runs), "first_seconds": first, "extrapolated": False}


def time_scoring(model: ARModel, budget: float) -> float:
    """Milliseconds to score one image (log p(x) in nats, copied back to the host), median of repeats."""
    from app.core.scoring import score

    x = torch.randint(0, model.num_values, (1, *model.shape)).float()
    cond = condition_for(model, 1)
    device = model.device
    score(model, x, cond)  # warm-up
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 30 and (len(times) < 3 or time.perf_counter() < deadline):
        times.append(timed(lambda: score(model, x, cond), device))
    return 1000 * statistics.median(times)


def time_training(model: ARModel, batch: int, budget: float) -> float:
    """Training images per second (forward, backward, AdamW step) on a copy of ``model``."""
    trained = copy.deepcopy(model).train()
    optimizer = torch.optim.AdamW(trained.parameters(), lr=1e-4)
    x = torch.randint(0, model.num_values, (batch, *model.shape), device=model.device).float()
    cond = condition_for(model, batch)
    ordering = trained.training_ordering(torch.Generator().manual_seed(0))

    def step() -> None:
        loss = trained.loss(x, cond, ordering)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    device = model.device
    times: list[float] = []
    deadline = time.perf_counter() + budget
    while len(times) < 10 and (len(times) < 2 or time.perf_counter() < deadline):
        times.append(timed(step, device))
    return batch / statistics.median(times)


# -- the command ---------------------------------------------------------------------------------------------


def _engines(model: ARModel, names: str) -> list[str]:
    """The cached engines that differ on this device (all but eager collapse to eager off CUDA)."""
    wanted = [e.strip() for e in names.split(",") if e.strip()]
    if model.device.type != "cuda":
        return ["eager"] if wanted else []
    return wanted


def bench_sampling(model: ARModel, batches: list[int], budget: float, engines: str) -> dict[str, Any]:
    out: dict[str, Any] = {"naive": {}}
    for n in batches:
        out["naive"][str(n)] = time_sampling(model, n, "naive", budget)
    if "cached" in model.spec.sampler_modes:
        for engine in _engines(model, engines):
            key = "cached" if engine in ("auto", "eager") and model.device.type != "cuda" else f"cached-{engine}"
            with cached_engine(engine):
                out[key] = {str(n): time_sampling(model, n, "cached", budget) for n in batches}
    else:
        for mode in model.spec.sampler_modes:
            out[mode] = {str(n): time_sampling(model, n, mode, budget) for n in batches}
    return out


def bench_one(spec: ModelSpec, registry, device: torch.device, args: argparse.Namespace) -> dict[str, Any]:
    row: dict[str, Any] = {"model": spec.name, "title": spec.title}
    model, source = bench_model(spec, registry, device)
    row["source"] = source
    if model is None:
        return row
    row.update(shape=list(model.shape), num_values=model.num_values, parameters=sum(p.numel() for p in model.parameters()))
    batches = list(args.batches)
    parts = {  # the key in the report, the name --skip knows it by, the measurement
        "sampling": ("sampling", lambda: bench_sampling(model, batches, args.budget, args.engines)),
        "scoring_ms": ("scoring", lambda: time_scoring(model, args.budget)),
        "train_images_per_s": (
            "training", lambda: time_training(model, 128 if device.type == "cuda" else 32, args.budget)
        ),
    }
    for key, (part, measure) in parts.items():
        if part in args.skip:
            continue
        try:
            row[key] = measure()
        except Exception as exc:  # one failing part must not hide the others
            row[key] = {"error": f"{type(exc).__name__}: {exc}"}
    return row


def cmd_bench(args: argparse.Namespace) -> int:
    from app.core.devices import describe_device, resolve_device
    from app.core.registry import get_registry

    registry = get_registry(strict=args.strict_plugins)
    device = resolve_device(args.device)
    if args.clock == "process":
        if device.type != "cpu":
            raise ARExplorerError("--clock process measures CPU time: use it with --device cpu")
        torch.set_num_threads(1)
    CLOCK["now"] = time.process_time if args.clock == "process" else time.perf_counter
    names = args.model or sorted(registry.models)
    report: dict[str, Any] = {
        "device": describe_device(device),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "budget_s": args.budget,
        "clock": "process CPU time (one thread)" if args.clock == "process" else "wall time",
        "units": {"sampling": "seconds per batch of 28x28 images", "scoring_ms": "milliseconds per image",
                  "train_images_per_s": "images per second"},
        "models": [],
    }
    for name in names:
        spec = registry.model(name)
        if not args.json:
            print(f"... {name}", file=sys.stderr, flush=True)
        with torch.inference_mode(False):
            report["models"].append(bench_one(spec, registry, device, args))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_table(report))
    return 0


def _seconds(entry: Any) -> str:
    if not isinstance(entry, dict) or "seconds" not in entry:
        return "-"
    mark = "~" if entry.get("extrapolated") else ""
    value = entry["seconds"]
    return f"{mark}{value:.3g}s" if value < 100 else f"{mark}{value:.0f}s"


def format_table(report: dict[str, Any]) -> str:
    """The report as a plain-text table: one line per model and sampling mode."""
    lines = [f"{report['device']}, torch {report['torch']}, {report['threads']} threads, {report.get('clock', 'wall time')} "
             "(~ = extrapolated from the first steps of the run)"]
    batches: list[str] = []
    for row in report["models"]:
        for modes in ([row["sampling"]] if isinstance(row.get("sampling"), dict) else []):
            for per_batch in modes.values():
                if isinstance(per_batch, dict):
                    batches = [b for b in per_batch if b != "error"] or batches
    width = max([len("model"), *(len(row["model"]) for row in report["models"])]) + 1
    header = f"{'model':<{width}} {'sampling':<15}" + "".join(f"{'n=' + b:>10}" for b in batches)
    lines.append(header + f"{'score 1 img':>13}{'train img/s':>13}")
    for row in report["models"]:
        sampling = row.get("sampling")
        score = row.get("scoring_ms")
        train = row.get("train_images_per_s")
        tail = f"{score:>11.2f}ms" if isinstance(score, float) else f"{'-':>13}"
        tail += f"{train:>13.0f}" if isinstance(train, float) else f"{'-':>13}"
        if not isinstance(sampling, dict) or "error" in sampling:
            note = sampling["error"] if isinstance(sampling, dict) else row.get("source", "")
            lines.append(f"{row['model']:<{width}} {'-':<15}" + " " * (10 * len(batches)) + tail + f"  {note}")
            continue
        for i, (mode, per_batch) in enumerate(sampling.items()):
            cells = "".join(f"{_seconds(per_batch.get(b)):>10}" for b in batches)
            lines.append(f"{row['model'] if i == 0 else '':<{width}} {mode:<15}{cells}" + (tail if i == 0 else ""))
    return "\n".join(lines)
