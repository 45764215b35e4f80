"""The conformance kit: checks that any model plugin keeps the model contract.

Run it on a :class:`~app.core.model.ModelSpec`::

    from app.testing import check_model
    report = check_model(MY_SPEC)
    print(report)            # one line per check, with what was wrong, where, and under which ordering
    assert report.passed

or from the shell: ``ar-explorer check MODEL_NAME``. The checks, in the order they run (each on a small
instance built from the spec's ``tiny_hparams`` unless it says otherwise):

``purity``
    In eval mode, two calls of ``forward`` on the same input agree exactly, the input is left untouched, the
    output is finite and fits the likelihood head, and no image depends on the others of its batch.
``autoregressive``
    The gradient of every dimension's head parameters with respect to the input is exactly zero at every
    dimension that is not sampled before it (by the model's sampling plan), under several orderings where the
    model supports them. A mask bug shows as "position 17 (row 3, col 2) sees position 18 ...".
``autoregressive-real-size``
    The same property at the image size of the model's data (28x28, or ``kit_real_shape``), by perturbation:
    one batch changes every dimension once, and no conditional at or before the changed one may move.
``normalization``
    Every conditional sums to 1, and on an instance small enough to enumerate (all K^D images) the
    probabilities of all images sum to 1.
``sampler``
    Each sampler's step-by-step conditionals equal the model's conditionals of the finished image; exact
    samplers give naive's images for the same seed, the model's own sampler the same images for a seed
    twice; sample frequencies match the exact marginals (within 5 standard errors).
``cache-program``
    A model that declares a cache program (:meth:`ARModel.cache_program`) lists the mode ``cached``, its
    program is one the cached engine runs and is the forward pass, and the cached sampler draws naive's
    images for the same seed without calling ``forward``. A model with no program passes once its
    ``forward`` gives finite parameters.
``roundtrip``
    After a forward pass and a training step, save to safetensors + JSON and load into a freshly built
    model: identical log-probabilities.

A check that fails because an earlier one did (the sampler of a model that sees ahead) says so. No check
passes on a NaN.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from app.core.model import ModelSpec
from app.testing.autoregressive import check_autoregressive, check_autoregressive_real_size
from app.testing.cache_program_check import check_cache_program
from app.testing.instances import default_shape, norm_shape
from app.testing.normalization import check_normalization
from app.testing.purity import check_purity
from app.testing.report import CheckResult, ConformanceReport
from app.testing.roundtrip import check_roundtrip
from app.testing.sampler_check import check_sampler

CHECKS: dict[str, Callable[..., CheckResult]] = {
    "purity": check_purity,
    "autoregressive": check_autoregressive,
    "autoregressive-real-size": check_autoregressive_real_size,
    "normalization": check_normalization,
    "sampler": check_sampler,
    "cache-program": check_cache_program,
    "roundtrip": check_roundtrip,
}
ALL_CHECKS = tuple(CHECKS)

#: The checks whose failure makes a later one fail too, and why: a later failure names the first of them.
KNOCK_ON: dict[str, tuple[tuple[str, str], ...]] = {
    "autoregressive": (("purity", "a forward pass that changes between calls changes every gradient"),),
    "autoregressive-real-size": (
        ("purity", "a forward pass that changes between calls changes every conditional"),
        ("autoregressive", "likely the same leak, at the real size"),
    ),
    "normalization": (("purity", "a forward pass that changes between calls changes every probability"),),
    "sampler": (
        ("purity", "a forward pass that changes between calls gives other conditionals at every step"),
        ("autoregressive", "a model whose conditionals see later dimensions gives other conditionals once those "
                           "are drawn"),
        ("autoregressive-real-size", "a model whose conditionals see later dimensions gives other conditionals "
                                     "once those are drawn"),
        ("normalization", "frequencies cannot match probabilities that do not sum to 1"),
    ),
    "cache-program": (
        ("purity", "a forward pass that changes between calls cannot equal a program"),
        ("autoregressive", "a model whose conditionals see later dimensions cannot be sampled from a cache"),
    ),
    "roundtrip": (("purity", "a forward pass that changes between calls cannot give identical log-probabilities"),),
}

__all__ = [
    "ALL_CHECKS",
    "CHECKS",
    "CheckResult",
    "ConformanceReport",
    "assert_conforms",
    "check_autoregressive",
    "check_autoregressive_real_size",
    "check_cache_program",
    "check_model",
    "check_normalization",
    "check_purity",
    "check_roundtrip",
    "check_sampler",
    "default_shape",
    "norm_shape",
]


def check_model(
    spec: ModelSpec,
    checks: Sequence[str] = ALL_CHECKS,
    shape: tuple[int, int, int] | None = None,
    num_values: int | None = None,
    hparams: dict | None = None,
    seed: int = 0,
) -> ConformanceReport:
    """Run the conformance checks on ``spec``; every failure (even an exception) becomes a failed check.

    Parameters
    ----------
    spec
        The model to check.
    checks
        Names from :data:`ALL_CHECKS`, run in the order given.
    shape, num_values
        The small instance (default: ``kit_shape`` and ``kit_num_values`` of ``tiny_hparams``, else 1x5x5
        with K = 2 for binary data and 4 otherwise, 3x3x3 for colour).
    hparams
        Hyperparameters on top of ``tiny_hparams``, for every check.
    seed
        Seeds every instance, input and sample of the run.
    """
    unknown = [name for name in checks if name not in CHECKS]
    if unknown:
        raise ValueError(f"no check named {unknown[0]!r}; the checks are {', '.join(ALL_CHECKS)}")
    default, k = default_shape(spec)
    shape = tuple(shape or default)  # type: ignore[assignment]
    k = num_values or k
    report = ConformanceReport(spec.name)
    for name in checks:
        try:
            result = CHECKS[name](spec, shape, k, hparams=hparams, seed=seed)
        except Exception as exc:  # noqa: BLE001 - a plugin may raise anything: report it as a failure
            result = CheckResult(name, False, f"raised {type(exc).__name__}: {' '.join(str(exc).split())}")
        report.results.append(_knock_on(_refuse_nan(result), report))
    return report


def _refuse_nan(result: CheckResult) -> CheckResult:
    """A check that measured NaN has measured nothing: it fails, whatever its own comparison said."""
    key = result.non_finite_measure()
    if result.passed and key is not None:
        return CheckResult(result.name, False, f"measured {key} = {result.details[key]}: {result.message}", result.details)
    return result


def _knock_on(result: CheckResult, report: ConformanceReport) -> CheckResult:
    """Name the earlier failure that a failure follows from, so that the author fixes that one first."""
    if result.passed:
        return result
    failed = {r.name for r in report.results if not r.passed}
    for earlier, why in KNOCK_ON.get(result.name, ()):
        if earlier in failed:
            result.message += f" (this follows from the {earlier} failure above: {why})"
            result.details["follows_from"] = earlier
            break
    return result


def assert_conforms(spec: ModelSpec, **kwargs: Any) -> ConformanceReport:
    """Run :func:`check_model` and raise ``AssertionError`` with the report if any check fails."""
    report = check_model(spec, **kwargs)
    if not report.passed:
        raise AssertionError(str(report))
    return report
