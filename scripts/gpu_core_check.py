"""CUDA checks of the core, without Qt: device agreement, the step generator, and naive timings.

Run from the repository root on a CUDA machine: ``python3 scripts/gpu_core_check.py [--data-dir DATA]``.
Each part prints one line (or a failure line) and the others go on.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from app.core.sampling import sample, sample_steps  # noqa: E402
from app.core.session import Session  # noqa: E402


def timed(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("checkpoints", nargs="*", default=["pixelcnn-binarized-mnist", "gated-pixelcnn-binarized-mnist", "made-binarized-mnist"])
    args = parser.parse_args()
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0)}")
    session = Session(device="cuda", data_dir=args.data_dir)
    results = {}
    test = session.split("binarized-mnist", "test", limit=256)
    x = torch.as_tensor(test.images).float()
    for name in args.checkpoints:
        row = {}
        try:
            gpu = session.load(name).model
            cpu = session.load(name, device="cpu").model
            with torch.no_grad():
                a = gpu.log_prob(x.cuda()).cpu()
                b = cpu.log_prob(x)
            row["logprob_max_abs_diff_cuda_vs_cpu"] = float((a - b).abs().max())
            steps = sample_steps(gpu, 4, seed=1, every=100)
            last = None
            for step in steps:
                last = step
            row["generator_steps_ok"] = bool(last is not None and last.done and last.image.shape == (4, 1, 28, 28))
            img_gpu = sample(gpu, 4, seed=3).cpu()
            img_cpu = sample(cpu, 4, seed=3)
            row["cuda_cpu_same_pixels_fraction"] = float((img_gpu == img_cpu).float().mean())
            row["naive_sample_16_s"] = round(timed(lambda m=gpu: sample(m, 16, seed=0), 2), 3)
            row["naive_sample_256_s"] = round(timed(lambda m=gpu: sample(m, 256, seed=0), 2), 3)
            one = x[:1].cuda()

            def score_one(m=gpu, one=one):
                with torch.no_grad():
                    m.log_prob(one)

            for _ in range(10):
                score_one()
            row["score_one_image_ms"] = round(1000 * timed(score_one, 50), 3)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            traceback.print_exc()
        results[name] = row
        print(name, json.dumps(row), flush=True)
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
