"""Which digit a sample shows, read by the shipped MNIST classifier (:mod:`app.core.classifier`).

The Sample view labels finished samples with it; for a class-conditional model it says how many read as the
label asked for, and for super-resolution how many keep the digit of their 7x7 condition. It reads only
one-channel digit images (28x28, or 56x56 pooled to 28x28) of MNIST-like data: for anything else (colour,
1-D and 2-D toys, other datasets) :func:`can_read` is False and nothing is labelled.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.classifier import SHIPPED_CLASSIFIER, Classification, DigitClassifier, classify, load_classifier

#: The confidence above which a reading is called confident (the ``lessons`` report uses the same bar).
CONFIDENT = 0.9

_lock = threading.Lock()
_loaded: dict[Path, tuple[DigitClassifier, dict]] = {}


def can_read(shape: tuple[int, ...], dataset_name: str | None) -> bool:
    """True for one-channel 28x28 (or 56x56) images of an MNIST dataset, which the classifier was trained on."""
    if len(shape) != 3 or shape[0] != 1 or shape[1] != shape[2] or shape[1] not in (28, 56):
        return False
    return dataset_name is None or "mnist" in dataset_name.lower()


def shipped_classifier() -> tuple[DigitClassifier, dict] | None:
    """The shipped classifier and its record, loaded once per process; None where the file is absent."""
    path = SHIPPED_CLASSIFIER
    with _lock:
        if path not in _loaded:
            if not path.with_suffix(".safetensors").is_file():
                return None
            _loaded[path] = load_classifier(path)
        return _loaded[path]


@dataclass(frozen=True)
class DigitReading:
    """The classifier's reading of a batch, and how it compares with what was asked for (when anything was)."""

    classification: Classification
    expected: np.ndarray | None  # (N,) the digit each sample should show, or None
    accuracy_note: str  # what the classifier scores on MNIST test, for the caption

    @property
    def agree(self) -> int | None:
        """How many samples read as the digit they should show (None when nothing was asked for)."""
        if self.expected is None:
            return None
        return int((self.classification.labels == self.expected).sum())

    @property
    def confident(self) -> int:
        """How many samples read as some digit with probability at least :data:`CONFIDENT`."""
        return int((self.classification.confidence >= CONFIDENT).sum())


def read_digits(images: np.ndarray, num_values: int, expected: np.ndarray | None = None) -> DigitReading | None:
    """Read ``images`` ``(N, 1, H, W)`` of values ``0 .. num_values-1``; None without a shipped classifier."""
    found = shipped_classifier()
    if found is None:
        return None
    model, meta = found
    result = classify(model, images, num_values)
    accuracy = meta.get("test_accuracy", {})
    grey = accuracy.get("grey") if isinstance(accuracy, dict) else None
    note = f"{100 * grey:.1f}% right on the MNIST test set" if isinstance(grey, (int, float)) else ""
    if expected is not None:
        expected = np.asarray(expected, dtype=np.int64).reshape(-1)
        if expected.shape[0] != result.labels.shape[0]:
            expected = None
    return DigitReading(result, expected, note)


__all__ = ["CONFIDENT", "DigitReading", "can_read", "read_digits", "shipped_classifier"]
