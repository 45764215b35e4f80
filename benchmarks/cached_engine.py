"""Naive against cached sampling for a plugin composed of the core's layers: ``python benchmarks/cached_engine.py``.

The model is the test suite's third-party plugin (``tests/example_plugins/masked_convnet.py``: a 5x5 mask-A
convolution, residual mask-B blocks, a 1x1 head), untrained, on 28x28 binary images. It has no caching code:
the cached sampler is the core's engine running its declared program. Prints pixels (dimensions) drawn per
second by each sampler, for each batch size, timed on one thread by this process's CPU time (``--clock
wall`` for the wall clock); naive runs longer than ``--budget`` seconds are timed over their first steps and
extrapolated. ``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import torch  # noqa: E402
from example_plugins.masked_convnet import SPEC  # noqa: E402

from app.core.sampling import prepare_run, sample  # noqa: E402


def _clock(kind: str):
    return time.process_time if kind == "process" else time.perf_counter


def time_naive(model, batch: int, budget: float, clock) -> tuple[float, bool]:
    """Seconds for a whole naive run of ``batch`` images, extrapolated from the first steps past ``budget``."""
    run = prepare_run(model, batch, seed=0, mode="naive")
    start = clock()
    with torch.no_grad():
        for index in range(run.total):
            run.step(index)
            spent = clock() - start
            if spent > budget and index + 1 < run.total:
                return spent * run.total / (index + 1), True
    return clock() - start, False


def time_cached(model, batch: int, clock) -> float:
    sample(model, batch, seed=0, mode="cached")  # warm up (program built, first allocations)
    start = clock()
    sample(model, batch, seed=1, mode="cached")
    return clock() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", default="1,16", help="batch sizes, comma-separated (default 1,16)")
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--size", type=int, default=28, help="image side in pixels (default 28)")
    parser.add_argument("--budget", type=float, default=10.0, help="seconds of naive sampling before extrapolating")
    parser.add_argument("--clock", choices=("process", "wall"), default="process")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(0)
    hparams = {"channels": args.channels, "blocks": args.blocks, "kernel": 3}
    model = SPEC.create(SPEC.make_config((1, args.size, args.size), 2, hparams)).eval()
    clock = _clock(args.clock)
    pixels = args.size * args.size
    rows = []
    for batch in (int(b) for b in args.batches.split(",")):
        naive, extrapolated = time_naive(model, batch, args.budget, clock)
        cached = time_cached(model, batch, clock)
        rows.append({"batch": batch, "naive_pixels_per_s": batch * pixels / naive, "naive_extrapolated": extrapolated,
                     "cached_pixels_per_s": batch * pixels / cached, "speedup": naive / cached})
    setting = {"model": f"masked-convnet ({args.channels} ch, {args.blocks} residual blocks, 3x3)",
               "data": f"{args.size}x{args.size} binary (untrained weights)", "threads": 1, "clock": args.clock,
               "device": "cpu", "torch": torch.__version__}
    if args.json:
        print(json.dumps({**setting, "rows": rows}, indent=2))
        return 0
    print(f"{setting['model']} on {setting['data']}, CPU, 1 thread, {args.clock} time; pixels drawn per second")
    print(f"{'batch':>5}  {'naive px/s':>12}  {'cached px/s':>12}  {'speed-up':>8}")
    for row in rows:
        mark = "~" if row["naive_extrapolated"] else " "
        print(f"{row['batch']:>5}  {mark}{row['naive_pixels_per_s']:>11.0f}  {row['cached_pixels_per_s']:>12.0f}  "
              f"{row['speedup']:>7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
