"""Does distillation pay? ``python benchmarks/distillation.py [--student CHECKPOINT] [--steps N] [options]``.

From the same weights (a shipped checkpoint, or a fresh model of ``--model``), trains two copies for the same
number of steps on the same batches: one on the pixels alone (the NLL), one on the pixels and the teacher's
per-pixel conditionals (``train --distill-from``, weight ``--weight``). Prints, for each, the validation NLL
(nats per image and bits/dim, on the first ``--valid`` validation images of the student's dataset) before and
after, the training images per second, and the teacher's own NLL on the same images. The teacher's
conditionals over the training set come from the cache that ``train --distill-from`` fills (computed first if
absent: several minutes for the Gated PixelCNN on one core).

Run on demand; it trains for minutes. ``--json`` prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.distillation import cached_teacher_conditionals, check_teacher  # noqa: E402
from app.core.scoring import LN2  # noqa: E402
from app.core.session import Session  # noqa: E402
from app.core.training import TrainConfig, train, validation_nll  # noqa: E402


def run(model, train_split, valid_split, soft, args) -> dict:
    cfg = TrainConfig(epochs=args.steps * args.batch_size / len(train_split), batch_size=args.batch_size, lr=args.lr,
                      schedule="constant", warmup_steps=0, log_every=10**9, precision=args.precision, seed=args.seed,
                      distill_weight=args.weight if soft is not None else 0.0)
    start = time.perf_counter()
    for _ in train(model, train_split, None, cfg, None, soft_targets=soft):
        pass
    seconds = time.perf_counter() - start
    nll = validation_nll(model, valid_split)
    return {"valid_nll_nats": nll, "images_per_s": args.steps * args.batch_size / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", default="wavenet-binarized-mnist", help="the weights both copies start from")
    parser.add_argument("--teacher", default="gated-pixelcnn-binarized-mnist")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--weight", type=float, default=0.7)
    parser.add_argument("--valid", type=int, default=2000)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="bf16")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    session = Session(device="cpu", data_dir=args.data_dir)
    student = session.load(args.student)
    teacher = session.load(args.teacher)
    check_teacher(student.model, teacher.model, teacher.name)
    dataset = student.dataset
    train_split = session.split(dataset, "train")
    valid_split = session.split(dataset, "valid", args.valid)
    soft, path, hit = cached_teacher_conditionals(teacher.model, teacher.info.meta.get("weights_sha256") or teacher.name,
                                                  train_split, precision=args.precision)
    teacher_nll = validation_nll(teacher.model, valid_split)
    before = validation_nll(student.model, valid_split)
    initial = copy.deepcopy(student.model.state_dict())
    rows = {}
    for name, targets in (("pixels only", None), (f"distilled (weight {args.weight:g})", soft)):
        student.model.load_state_dict(initial)
        torch.manual_seed(args.seed)
        rows[name] = run(student.model, train_split, valid_split, targets, args)
    dims = int(np.prod(student.model.shape))
    result = {"student": student.name, "teacher": teacher.name, "dataset": dataset.name, "steps": args.steps,
              "batch_size": args.batch_size, "lr": args.lr, "valid_images": len(valid_split),
              "teacher_valid_nll_nats": teacher_nll, "start_valid_nll_nats": before, "runs": rows,
              "teacher_cache": str(path), "cache_hit": hit}
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(f"{student.name} from its weights, {args.steps} steps of {args.batch_size} at lr {args.lr:g} ({args.precision}),"
          f" validation NLL on the first {len(valid_split)} {dataset.name} validation images [{dataset.binarization}]")
    print(f"  teacher {teacher.name}: {teacher_nll:.2f} nats/image ({teacher_nll / (dims * LN2):.4f} bits/dim)")
    print(f"  start: {before:.2f} nats/image")
    for name, row in rows.items():
        nll = row["valid_nll_nats"]
        print(f"  {name:>24}: {nll:.2f} nats/image ({nll / (dims * LN2):.4f} bits/dim), change {nll - before:+.2f}, "
              f"{row['images_per_s']:.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
