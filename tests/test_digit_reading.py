"""Reading digits in samples: what the classifier may read, and how agreement is counted."""

from __future__ import annotations

import numpy as np

from app.core.digit_reading import CONFIDENT, can_read, read_digits


def test_only_one_channel_mnist_digits_are_read():
    assert can_read((1, 28, 28), "binarized-mnist") and can_read((1, 56, 56), "mnist-56")
    assert can_read((1, 28, 28), None)  # a model whose data is unknown, at the digits' size
    assert not can_read((3, 28, 28), "mnist")  # colour
    assert not can_read((1, 8, 8), "binarized-mnist")
    assert not can_read((1, 28, 28), "cifar-grey")
    assert not can_read((1, 1, 2), "toy-2d")


def test_agreement_counts_the_samples_that_read_as_asked():
    rng = np.random.default_rng(0)
    images = (rng.random((6, 1, 28, 28)) < 0.2).astype(np.uint8)
    free = read_digits(images, 2)
    assert free.expected is None and free.agree is None
    expected = free.classification.labels.copy()
    expected[:2] = (expected[:2] + 1) % 10  # two of six asked for another digit
    asked = read_digits(images, 2, expected)
    assert asked.agree == 4
    assert asked.confident == int((asked.classification.confidence >= CONFIDENT).sum())
    assert read_digits(images, 2, np.zeros(5)).expected is None  # a label per image, or none at all
