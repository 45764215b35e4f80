"""Normalization: every conditional sums to 1, and so do the probabilities of all K^D images."""

from __future__ import annotations

import math

import numpy as np
import torch

from app.core.model import ModelSpec
from app.testing.instances import Shape, all_images, build, condition, describe_dim, expand, norm_shape, random_images
from app.testing.report import CheckResult

#: |log sum| of one conditional, and of all images' probabilities.
CONDITIONAL_TOLERANCE = 1e-4
TOTAL_TOLERANCE = 1e-3


def check_normalization(spec: ModelSpec, shape: Shape, k: int, hparams: dict | None = None, seed: int = 0) -> CheckResult:
    """Every conditional of a few random images sums to 1; on an instance small enough to enumerate, the
    probabilities of all its images sum to 1."""
    failure = _conditionals_sum_to_one(spec, shape, k, hparams, seed)
    if failure is not None:
        return failure
    small = norm_shape(spec, shape, k)
    model = build(spec, small, k, None, hparams, seed)
    images = all_images(small, k)
    cond = condition(model, 1, seed)
    totals = []
    with torch.no_grad():
        for start in range(0, images.shape[0], 4096):
            xb = images[start : start + 4096]
            totals.append(model.log_prob(xb, expand(cond, xb.shape[0])).flatten(1).sum(1).double())
    log_total = float(torch.logsumexp(torch.cat(totals), 0))
    n = images.shape[0]
    if not (math.isfinite(log_total) and abs(log_total) <= TOTAL_TOLERANCE):
        return CheckResult(
            "normalization", False,
            f"the probabilities of all {n} images of shape {small} sum to {math.exp(log_total):.6f}, not 1",
            {"log_total": log_total},
        )
    return CheckResult(
        "normalization", True,
        f"every conditional sums to 1; all {n} images of shape {small} sum to {math.exp(log_total):.6f}",
        {"log_total": log_total},
    )


def _conditionals_sum_to_one(spec: ModelSpec, shape: Shape, k: int, hparams: dict | None, seed: int) -> CheckResult | None:
    model = build(spec, shape, k, None, hparams, seed)
    x = random_images(4, shape, k, seed)
    with torch.no_grad():
        logc = model.log_conditionals(x, condition(model, 4, seed))
    log_sums = torch.logsumexp(logc.double(), -1).reshape(4, -1)  # (B, D)
    deviation = torch.where(torch.isfinite(log_sums), log_sums.abs(), torch.inf)
    worst = float(deviation.max())
    if worst <= CONDITIONAL_TOLERANCE:
        return None
    image, d = np.unravel_index(int(deviation.argmax()), tuple(deviation.shape))
    value = float(log_sums[image, d])
    total = f"sums to {math.exp(value):.6g}" if math.isfinite(value) else "is NaN or infinite"
    return CheckResult(
        "normalization", False,
        f"the conditional of {describe_dim(int(d), shape)} {total}, not 1 (image {int(image)} of 4)",
        {"dim": int(d), "log_sum": value},
    )
