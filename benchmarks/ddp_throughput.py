"""Training throughput with DistributedDataParallel: 1 process against N under torchrun (gloo on the CPU,
NCCL on CUDA).

``python benchmarks/ddp_throughput.py [--procs 1,2] [--model pixelcnn] [--steps 30] [--batch 64]``

Each run trains the model (shipped size, random binary 28x28 data) for ``--steps`` steps at a global batch of
``--batch`` images (split across the processes) through :func:`app.core.training.train`, and reports the
images per second of all processes together. On a machine with fewer cores than processes x threads the
processes compete for the same cores: the figure then says more about the machine than about DDP.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def worker(args: argparse.Namespace) -> None:
    import numpy as np
    import torch

    from app.cli.commands import _init_distributed
    from app.core.datasets import DataSplit
    from app.core.registry import get_registry
    from app.core.training import TrainConfig, train

    rank, world, device = _init_distributed(args.device)
    spec = get_registry().model(args.model)
    torch.manual_seed(0)
    model = spec.create(spec.make_config((1, 28, 28), 2)).to(device)
    images = (np.random.default_rng(0).random((args.batch * (args.steps + 1), 1, 28, 28)) < 0.2).astype(np.uint8)
    cfg = TrainConfig(epochs=1.0, batch_size=args.batch, log_every=1, warmup_steps=1)
    start = end = None
    first = last = 0
    for event in train(model, DataSplit(images), None, cfg, None):
        if event.kind != "step":
            continue
        if start is None:  # the first step (set-up, allocation) is not timed
            start, first = time.perf_counter(), event.step
        end, last = time.perf_counter(), event.step
    elapsed = (end - start) if start is not None and end is not None else 0.0
    if rank == 0:
        timed_images = (last - first) * args.batch
        print(json.dumps({"processes": world, "device": str(device), "steps": last - first,
                          "images_per_s": timed_images / max(elapsed, 1e-9)}), flush=True)
    if world > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


def launch(args: argparse.Namespace) -> int:
    results = []
    for procs in [int(p) for p in args.procs.split(",")]:
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(procs),
                   __file__, "--worker", "--model", args.model, "--steps", str(args.steps),
                   "--batch", str(args.batch), "--device", args.device]
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode or not lines:
            print(f"{procs} process(es): failed\n{done.stderr[-2000:]}", file=sys.stderr)
            continue
        results.append(json.loads(lines[-1]))
    base = results[0]["images_per_s"] if results else None
    for row in results:
        row["speed_up"] = row["images_per_s"] / base if base else None
    report = {"model": args.model, "global_batch": args.batch, "threads_per_process": args.threads,
              "cpu_cores": os.cpu_count(), "runs": results}
    print(json.dumps(report, indent=2))
    for row in results:
        print(f"{row['processes']} process(es) on {row['device']}: {row['images_per_s']:.0f} images/s "
              f"(x{row['speed_up']:.2f})", file=sys.stderr)
    return 0 if results else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--procs", default="1,2")
    parser.add_argument("--model", default="pixelcnn")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch", type=int, default=64, help="global batch (all processes together)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return 0
    return launch(args)


if __name__ == "__main__":
    sys.exit(main())
