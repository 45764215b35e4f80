"""Checks and figures of fast sampling on a CUDA machine, without Qt. Each part prints one JSON line (or a
failure line) and the others go on.

Run from the repository root: ``python3 benchmarks/gpu_check.py [--quick] [--no-compile] [--deadline S]``.

1. correctness on CUDA (TF32 off, so that the naive network computes in float32): cached sampling (engines
   eager, graph, triton, compile) draws the naive images, for PixelCNN and Gated PixelCNN of the shipped size
   (random weights pushed away from the initialisation), and the live step-by-step loop agrees;
2. host synchronisation: how many synchronising calls one whole cached run makes (CUDA sync debug mode);
3. timings: naive against cached (each engine) at batch 1, 16 and 256, the first call (which captures the
   CUDA graph or compiles) apart from the steady state; scoring latency of one image;
4. with ``--bench``, the figures of ``ar-explorer bench`` for every model, if time is left.

Engines: ``eager`` (per-step PyTorch ops), ``graph`` (a CUDA graph per image row, replayed for every row),
``triton`` (Gated PixelCNN: one fused Triton kernel per step, in a CUDA graph per row), ``compile``
(torch.compile of the step, then a CUDA graph per row; compiling takes a minute).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from app.cli.bench_command import bench_model, cached_engine, time_scoring, timed  # noqa: E402
from app.core.registry import get_registry  # noqa: E402
from app.core.sampling import sample, sample_steps  # noqa: E402

START = time.perf_counter()
TARGETS = {"gated-pixelcnn": {"16": 0.05, "256": 0.25}}
#: Where the checks run; ``--cpu-smoke`` runs every part on the CPU at a tiny size (to test this script).
SETUP = {"device": "cuda", "shape": (1, 28, 28), "hparams": None}


def emit(part: str, **data) -> None:
    print(json.dumps({"part": part, "t": round(time.perf_counter() - START, 1), **data}), flush=True)


def guarded(part: str):
    def wrap(fn):
        def run(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # every part reports and lets the next one run
                emit(part, error=f"{type(exc).__name__}: {exc}")
                traceback.print_exc(limit=4)
                return None

        return run

    return wrap


def randomised(name: str, device: str | None = None):
    spec = get_registry().model(name)
    torch.manual_seed(0)
    model = spec.create(spec.make_config(SETUP["shape"], 2, SETUP["hparams"], tiny=SETUP["hparams"] is not None))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.to(device or SETUP["device"]).eval()


@guarded("correctness")
def check_correctness(name: str, engines: list[str], n: int = 4) -> None:
    model = randomised(name)
    for seed in (0, 1):
        naive = sample(model, n, seed=seed, mode="naive")
        result = {"model": name, "seed": seed, "n": n, "ones_fraction": round(float(naive.float().mean()), 3)}
        for engine in engines:
            try:
                with cached_engine(engine):
                    first = sample(model, n, seed=seed, mode="cached")
                    again = sample(model, n, seed=seed, mode="cached")  # a replay of the captured graph
                result[engine] = bool(torch.equal(naive, first) and torch.equal(naive, again))
                if not result[engine]:
                    result[f"{engine}_pixels_differing"] = int((naive != first).sum())
            except Exception as exc:
                result[engine] = f"{type(exc).__name__}: {exc}"
        steps = list(sample_steps(model, n, seed=seed, mode="cached", every=10_000))
        result["live_steps"] = bool((torch.as_tensor(steps[-1].image).to(naive.device) == naive).all())
        cpu = sample(randomised(name, "cpu"), n, seed=seed, mode="cached")  # the same weights, on the CPU
        result["cuda_cpu_same_pixels_fraction"] = float((cpu == naive.cpu()).float().mean())
        emit("correctness", **result)


@guarded("sync")
def check_syncs(name: str) -> None:
    """Synchronising calls in one whole cached run (one, the final NaN check, is expected)."""
    model = randomised(name)
    for engine in ("eager", "graph", "triton"):
        with cached_engine(engine):
            sample(model, 16, seed=0, mode="cached")  # capture outside the count
            torch.cuda.synchronize()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                torch.cuda.set_sync_debug_mode("warn")
                try:
                    sample(model, 16, seed=0, mode="cached")
                finally:
                    torch.cuda.set_sync_debug_mode("default")
        syncs = [str(w.message).splitlines()[0][:80] for w in caught if "synchroniz" in str(w.message).lower()]
        emit("sync", model=name, engine=engine, synchronising_calls=len(syncs), first=syncs[:3])


@guarded("profile")
def profile_step(name: str, n: int = 16) -> None:
    """Kernels per sampling step and their summed device time: the floor under a CUDA-graph replay."""
    from torch.profiler import ProfilerActivity, profile

    from plugins.fast_pixelcnn import build_program

    model = randomised(name)
    program = build_program(model, n)
    with torch.no_grad():
        program.reset(torch.zeros(n, *model.shape, device=model.device), None)
        program.uniforms.uniform_()
        program.run_row(1.0, False)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CUDA]) as prof:
            program.run_row(1.0, False)
            torch.cuda.synchronize()
    events = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    steps = program.steps_per_row
    device_us = sum(getattr(e, "device_time", None) or getattr(e, "cuda_time", 0.0) for e in events)
    emit("profile", model=name, n=n, kernels_per_step=round(len(events) / steps, 1),
         device_us_per_step=round(device_us / steps, 1))


def _median(fn, device, repeat: int = 3) -> float:
    return statistics.median(timed(fn, device) for _ in range(repeat))


@guarded("timing")
def time_model(name: str, engines: list[str], batches: list[int], deadline: float) -> None:
    registry = get_registry()
    if SETUP["hparams"] is None:
        model, source = bench_model(registry.model(name), registry, torch.device("cuda"))
    else:
        model, source = randomised(name), "tiny (smoke test)"
    device = model.device
    for n in batches:
        row = {"model": name, "source": source, "n": n}
        if n in (2, 16, 256):
            sample(model, n, seed=0, mode="naive")  # warm-up
            row["naive_s"] = round(_median(lambda n=n: sample(model, n, seed=1, mode="naive"), device, 1), 4)
        for engine in engines:
            if time.perf_counter() - START > deadline:
                row[engine] = "skipped: past the deadline"
                continue
            try:
                with cached_engine(engine):
                    first = timed(lambda n=n: sample(model, n, seed=0, mode="cached"), device)
                    steady = _median(lambda n=n: sample(model, n, seed=1, mode="cached"), device)
                row[f"{engine}_first_s"] = round(first, 4)
                row[f"{engine}_s"] = round(steady, 4)
            except Exception as exc:
                row[engine] = f"{type(exc).__name__}: {exc}"
        target = TARGETS.get(name, {}).get(str(n))
        if target is not None:
            row["target_s"] = target
        emit("timing", **row)
    row = {"model": name, "scoring_ms": round(time_scoring(model, 2.0), 3)}
    emit("scoring", **row)


@guarded("bench")
def run_bench(budget: float) -> None:
    from app.cli.main import main

    main(["bench", "--device", "cuda", "--json", "--budget", str(budget), "--batches", "1,16,256"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="correctness and one timing only")
    parser.add_argument("--no-compile", action="store_true", help="leave torch.compile out (it compiles for a minute)")
    parser.add_argument("--bench", action="store_true", help="end with ar-explorer bench over every model")
    parser.add_argument("--deadline", type=float, default=200.0, help="seconds after which optional parts are skipped")
    parser.add_argument("--cpu-smoke", action="store_true", help="run every part on the CPU, tiny (tests this script)")
    args = parser.parse_args()
    if args.cpu_smoke:
        SETUP.update(device="cpu", shape=(1, 6, 6), hparams={})
        return run_parts(args, [2])
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to check here (the CPU path is covered by the test suite)")
        return 1
    try:
        import triton

        triton_version = triton.__version__
    except ImportError:
        triton_version = None
    emit("environment", torch=torch.__version__, device=torch.cuda.get_device_name(0), triton=triton_version,
         cudnn_tf32=torch.backends.cudnn.allow_tf32, matmul_tf32=torch.backends.cuda.matmul.allow_tf32)
    return run_parts(args, [16] if args.quick else [1, 16, 256])


def run_parts(args: argparse.Namespace, batches: list[int]) -> int:
    engines = ["eager", "graph", "triton"]
    cuda = SETUP["device"] == "cuda"
    # Exactness needs the naive network in full float32: cuDNN convolutions use TF32 by default on this GPU.
    tf32 = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    for name in ("gated-pixelcnn", "pixelcnn"):
        check_correctness(name, engines if name == "gated-pixelcnn" else ["eager", "graph"])
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
    if cuda:
        check_syncs("gated-pixelcnn")
    time_model("gated-pixelcnn", engines, batches, args.deadline)
    time_model("pixelcnn", ["eager", "graph"], batches, args.deadline)
    for name in ("gated-pixelcnn", "pixelcnn"):
        if cuda:
            profile_step(name)
    if not args.no_compile and time.perf_counter() - START < args.deadline * 0.6:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        check_correctness("gated-pixelcnn", ["compile"])
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = tf32
        time_model("gated-pixelcnn", ["compile"], batches[-2:-1] or batches, args.deadline)
    if args.bench and time.perf_counter() - START < args.deadline * 0.75:
        run_bench(1.0)
    emit("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
