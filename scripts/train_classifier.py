"""Train the digit classifier that ``ar-explorer lessons`` measures with, and record its test accuracy.

Usage (from the repository root, no Qt needed; a few minutes on one CPU core)::

    python3 scripts/train_classifier.py --data-dir DATA [--epochs 4] [--out checkpoints/measuring/mnist-digit-classifier]

It trains on all 60,000 MNIST training images and reports accuracy on the 10,000 test images in each form the
models see (grey, thresholded, stochastically binarized). It refuses to write a classifier below 98.5 %.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.core.classifier import SHIPPED_CLASSIFIER, accuracy_by_form, save_classifier, train_classifier  # noqa: E402
from plugins.datasets import _mnist_arrays  # noqa: E402

MIN_ACCURACY = 0.985


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--epochs", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(SHIPPED_CLASSIFIER))
    args = parser.parse_args()
    arrays = _mnist_arrays(Path(args.data_dir))
    images, labels = arrays["train-images-idx3-ubyte"], arrays["train-labels-idx1-ubyte"].astype(np.int64)
    test_images, test_labels = arrays["t10k-images-idx3-ubyte"], arrays["t10k-labels-idx1-ubyte"].astype(np.int64)

    def progress(fraction: float, loss: float) -> None:
        print(f"\r{100 * fraction:5.1f}%  loss {loss:.4f}", end="", file=sys.stderr, flush=True)

    model, record = train_classifier(images, labels, epochs=args.epochs, seed=args.seed, on_progress=progress)
    print(file=sys.stderr)
    accuracy = accuracy_by_form(model, test_images, test_labels, seed=args.seed)
    print("MNIST test accuracy: " + ", ".join(f"{k} {100 * v:.2f}%" for k, v in accuracy.items()))
    if min(accuracy.values()) < MIN_ACCURACY:
        print(f"below {100 * MIN_ACCURACY:.1f}% in some form: not written", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    save_classifier(model, args.out, {**record, "data": "MNIST (LeCun & Cortes), 60,000 training images",
                                      "test_accuracy": accuracy, "test_images": int(len(test_labels))})
    print(f"written: {args.out}.safetensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
