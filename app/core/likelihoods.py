"""Likelihood heads: how a network's outputs for one dimension become a distribution over its K values.

Every head maps a parameter vector of ``params_per_dim`` numbers (the last axis of a model's output) to
log-probabilities over the ``num_values`` values of that dimension. Sampling, the inspector and temperature
all work on those K probabilities, so they treat every head alike.

:class:`Bernoulli` and :class:`Categorical` take logits by default and probabilities with
``inputs="probs"`` (a wrapped model that ends in a sigmoid or a softmax, as NADE does).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor


class Likelihood:
    """Base class of the heads. Subclasses define ``params_per_dim`` and :meth:`log_probs_all`."""

    name: str = "likelihood"
    num_values: int
    params_per_dim: int

    def log_probs_all(self, params: Tensor) -> Tensor:
        """``(..., P)`` parameters to ``(..., K)`` log-probabilities over every value."""
        raise NotImplementedError

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        """Log-probability of the integer values ``x`` (shape ``(...)``) under ``params`` (``(..., P)``)."""
        return self.log_probs_all(params).gather(-1, x.long().unsqueeze(-1)).squeeze(-1)

    def probs(self, params: Tensor) -> Tensor:
        return self.log_probs_all(params).exp()

    def describe(self) -> dict:
        return {"name": self.name, "num_values": self.num_values, "params_per_dim": self.params_per_dim}

    def validate(self, params: Tensor) -> str | None:
        """What is wrong with ``params`` for this head (one line), or None. The conformance kit calls it on
        a model's output; heads whose parameters have a range (probabilities) check it here."""
        return None


HeadInputs = Literal["logits", "probs"]


def _check_inputs(inputs: str) -> None:
    if inputs not in ("logits", "probs"):
        raise ValueError(f"inputs must be 'logits' or 'probs', not {inputs!r}")


def _probability_problem(p: Tensor, what: str) -> str | None:
    """One line naming the first value of ``p`` outside [0, 1] (or not finite), or None."""
    bad = ~(torch.isfinite(p) & (p >= 0) & (p <= 1))
    if not bool(bad.any()):
        return None
    value = float(p.reshape(-1)[int(bad.reshape(-1).nonzero()[0])])
    return f"{what} is {value:g}, outside [0, 1] (the head takes probabilities: inputs='probs')"


class Bernoulli(Likelihood):
    """Binary pixels: one parameter per dimension, p(x = 1) = sigmoid(logit).

    Parameters
    ----------
    num_values
        Must be 2.
    inputs
        ``"logits"`` (the default) or ``"probs"``: the parameter is p(x = 1) itself, in [0, 1]. Probabilities
        are clamped to [eps, 1 - eps] of their dtype, so that a saturated sigmoid gives a finite log-likelihood.
    """

    name = "bernoulli"

    def __init__(self, num_values: int = 2, inputs: HeadInputs = "logits") -> None:
        if num_values != 2:
            raise ValueError("a Bernoulli head has exactly 2 values")
        _check_inputs(inputs)
        self.num_values = 2
        self.params_per_dim = 1
        self.inputs = inputs

    def describe(self) -> dict:
        return {**super().describe(), "inputs": self.inputs}

    def _clamped(self, params: Tensor) -> Tensor:
        eps = torch.finfo(params.dtype).eps
        return params[..., 0].clamp(eps, 1.0 - eps)

    def log_probs_all(self, params: Tensor) -> Tensor:
        if self.inputs == "probs":
            p = self._clamped(params)
            return torch.stack([torch.log1p(-p), torch.log(p)], dim=-1)
        logit = params[..., 0]
        return torch.stack([F.logsigmoid(-logit), F.logsigmoid(logit)], dim=-1)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        if self.inputs == "probs":
            p = self._clamped(params)
            return torch.where(x.to(torch.bool), torch.log(p), torch.log1p(-p))
        # -BCE-with-logits is the numerically stable form of log p(x).
        return -F.binary_cross_entropy_with_logits(params[..., 0], x.to(params.dtype), reduction="none")

    def validate(self, params: Tensor) -> str | None:
        if self.inputs == "probs":
            return _probability_problem(params[..., 0], "p(x = 1)")
        return None


class Categorical(Likelihood):
    """K-way distribution per dimension (2-bit colour, 256 grey levels, 1-D histograms).

    Parameters
    ----------
    num_values
        K, at least 2.
    inputs
        ``"logits"`` (the default: a softmax over the K parameters) or ``"probs"``: the K parameters are the
        probabilities themselves. They are renormalised over K (a float32 softmax sums to 1 only up to
        rounding); the kit refuses values outside [0, 1] or sums far from 1.
    """

    name = "categorical"

    def __init__(self, num_values: int, inputs: HeadInputs = "logits") -> None:
        if num_values < 2:
            raise ValueError("a categorical head needs at least 2 values")
        _check_inputs(inputs)
        self.num_values = num_values
        self.params_per_dim = num_values
        self.inputs = inputs

    def describe(self) -> dict:
        return {**super().describe(), "inputs": self.inputs}

    def log_probs_all(self, params: Tensor) -> Tensor:
        if self.inputs == "probs":
            logp = torch.log(params.clamp(min=torch.finfo(params.dtype).tiny))
            return logp - torch.logsumexp(logp, dim=-1, keepdim=True)
        return F.log_softmax(params, dim=-1)

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        if self.inputs == "probs":
            return super().log_prob(params, x)
        shape = x.shape
        flat = -F.cross_entropy(params.reshape(-1, self.num_values), x.long().reshape(-1), reduction="none")
        return flat.reshape(shape)

    def validate(self, params: Tensor) -> str | None:
        if self.inputs != "probs":
            return None
        problem = _probability_problem(params, "a probability")
        if problem is not None:
            return problem
        sums = params.double().sum(-1).reshape(-1)
        if sums.numel() == 0:
            return None
        worst = sums[int((sums - 1).abs().argmax())]
        if abs(float(worst) - 1) > 1e-3:
            return f"the {self.num_values} probabilities of a dimension sum to {float(worst):.6g}, not 1"
        return None


class DiscretizedLogisticMixture(Likelihood):
    """Discretized mixture of logistics (PixelCNN++): M components over K bins of [-1, 1].

    Parameters per dimension: M mixture logits, M means, M log-scales. Value k occupies the bin centred at
    ``2k/(K-1) - 1``; the first and last bins extend to -inf and +inf, so every value has mass even where the
    training data never shows it.

    The mass of a bin, sigmoid(b) - sigmoid(a) with a = (lower edge - mean) / scale and b = (upper edge -
    mean) / scale, is computed in log space as ``logsigmoid(b) + logsigmoid(-a) + log(1 - exp(a - b))``: an
    exact identity whose three terms have no cancellation, so it is accurate in both tails and for bins far
    narrower than the scale, where the difference of two CDFs in float32 would lose every digit.
    """

    name = "discretized-logistic-mixture"
    #: log-scales are clamped to this range: below, a component is a point mass on one bin already (for
    #: K = 256 the bin is 8.7 scales wide); above, it is flat over [-1, 1] and exp(-log_scale) would underflow.
    LOG_SCALE_RANGE = (-7.0, 7.0)

    def __init__(self, num_values: int, num_mixtures: int = 5) -> None:
        if num_values < 2:
            raise ValueError("a discretized logistic mixture needs at least 2 values")
        self.num_values = num_values
        self.num_mixtures = num_mixtures
        self.params_per_dim = 3 * num_mixtures

    def describe(self) -> dict:
        return {**super().describe(), "num_mixtures": self.num_mixtures}

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if params.dtype in (torch.float16, torch.bfloat16):  # the tails need float32 (e.g. under autocast)
            params = params.float()
        m = self.num_mixtures
        logits, means, log_scales = params[..., :m], params[..., m : 2 * m], params[..., 2 * m : 3 * m]
        return logits, means, log_scales.clamp(*self.LOG_SCALE_RANGE)

    def _component_log_probs(self, means: Tensor, log_scales: Tensor, x: Tensor) -> Tensor:
        """log P(bin of value x | component) for x of shape (..., 1) or (..., K, 1) broadcast over M."""
        k = self.num_values
        half = 1.0 / (k - 1)
        centre = x.to(means.dtype) * (2.0 / (k - 1)) - 1.0
        inv_s = torch.exp(-log_scales)
        upper = inv_s * (centre - means + half)
        lower = inv_s * (centre - means - half)
        log_cdf_upper = F.logsigmoid(upper)  # the lowest bin: P(X < upper edge)
        log_survival_lower = F.logsigmoid(-lower)  # the highest bin: P(X > lower edge)
        log_bin = log_cdf_upper + log_survival_lower + _log1mexp(2.0 * half * inv_s)
        low = x <= 0
        high = x >= k - 1
        return torch.where(low, log_cdf_upper, torch.where(high, log_survival_lower, log_bin))

    def log_prob(self, params: Tensor, x: Tensor) -> Tensor:
        logits, means, log_scales = self._split(params)
        comp = self._component_log_probs(means, log_scales, x.unsqueeze(-1))
        return torch.logsumexp(comp + F.log_softmax(logits, dim=-1), dim=-1)

    def log_probs_all(self, params: Tensor) -> Tensor:
        logits, means, log_scales = self._split(params)
        values = torch.arange(self.num_values, device=params.device)
        shape = (1,) * (params.dim() - 1) + (self.num_values, 1)
        comp = self._component_log_probs(means.unsqueeze(-2), log_scales.unsqueeze(-2), values.view(shape))
        out = torch.logsumexp(comp + F.log_softmax(logits, dim=-1).unsqueeze(-2), dim=-1)
        # The bins sum to 1 up to float rounding (~1e-7); renormalise so that samplers see exactly 1.
        return out - torch.logsumexp(out, dim=-1, keepdim=True)


def _log1mexp(x: Tensor) -> Tensor:
    """log(1 - exp(-x)) for x > 0, accurate for small and large x (Maechler 2012)."""
    return torch.where(x < math.log(2.0), torch.log(-torch.expm1(-x)), torch.log1p(-torch.exp(-x)))


def make_likelihood(name: str, num_values: int, **kwargs) -> Likelihood:
    """Build a head by name: ``bernoulli``, ``categorical`` or ``discretized-logistic-mixture``."""
    if name == "bernoulli":
        return Bernoulli(num_values, **kwargs)
    if name == "categorical":
        return Categorical(num_values, **kwargs)
    if name in ("discretized-logistic-mixture", "dmol"):
        return DiscretizedLogisticMixture(num_values, **kwargs)
    raise ValueError(f"unknown likelihood {name!r}")


def default_likelihood(num_values: int) -> Likelihood:
    """Bernoulli for binary data, a categorical softmax otherwise."""
    return Bernoulli() if num_values == 2 else Categorical(num_values)


def apply_temperature(probs: Tensor, temperature: float) -> Tensor:
    """Reshape K-way probabilities: ``p^(1/T)`` renormalised. T < 1 sharpens, T > 1 flattens.

    T = 0 is the argmax (greedy) limit.
    """
    if temperature == 1.0:
        return probs
    if temperature <= 0:
        out = torch.zeros_like(probs)
        return out.scatter_(-1, probs.argmax(-1, keepdim=True), 1.0)
    logp = torch.log(probs.clamp(min=1e-30)) / temperature
    return torch.softmax(logp, dim=-1)
