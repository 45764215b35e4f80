"""The model contract: what every autoregressive model plugin provides, whatever its family.

A model is a :class:`ARModel` (a ``torch.nn.Module``) built from a :class:`ModelConfig` by its
:class:`ModelSpec`. The core only ever uses the methods defined here:

* :meth:`ARModel.forward` returns head parameters for every dimension, given the image (teacher forcing);
* :meth:`ARModel.log_prob` (per dimension, ``(B, C, H, W)``) — scoring, training, Fisher scores;
* :meth:`ARModel.conditionals` — K-way probabilities of each dimension given those before it;
* :meth:`ARModel.sampling_plan` — groups of dimensions sampled together, in order;
* :meth:`ARModel.make_sampler` — an incremental sampler (naive re-evaluation unless the model caches);
* :meth:`ARModel.cache_program` — the network in the core's masked layers, for the cached sampler;
* :meth:`ARModel.own_sample` — a model's own whole-image sampler, offered as the sampler mode ``"own"``.

Images are float tensors ``(B, C, H, W)`` holding integer values ``0 .. K-1`` (so that gradients with respect
to the input exist: that is how receptive fields and the autoregressive check are computed). Dimension ``d``
of an image is ``x.reshape(B, -1)[:, d]``, i.e. ``d = c * H * W + row * W + col``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.cache_program import CacheProgram
from app.core.cached_sampling import make_cached_sampler
from app.core.errors import ARExplorerError, ModelError, OrderingError
from app.core.hparams import Hparams, refuse_unknown
from app.core.likelihoods import Likelihood
from app.core.orderings import Ordering, raster
from app.core.samplers import NaiveSampler, OwnSampler, Sampler
from app.core.stages import PriorStage, Stage, StageSources, whole_image_stage

OrderingCapability = Literal["fixed", "build", "any"]

#: The sampler mode of a model's own whole-image sampler (:meth:`ARModel.own_sample`), declared in
#: ``ModelSpec.sampler_modes`` like any other mode.
OWN_SAMPLER_MODE = "own"
ConditionKind = Literal["class", "image"]
DataKind = Literal["binary", "grey", "colour", "1d", "2d"]


@dataclass(frozen=True)
class ConditionSpec:
    """What a conditional model is given besides the image.

    ``kind="class"``: a label ``(B,)`` long in ``0 .. num_classes-1``. ``kind="image"``: a tensor
    ``(B, *shape)`` of integer values ``0 .. num_values-1`` (a 7x7 low-resolution image, a grey image, ...).
    ``derive`` names how the training loop makes it from a batch: ``"label"``, ``"downsample"``, ``"grey"``.
    """

    kind: ConditionKind
    num_classes: int = 0
    shape: tuple[int, ...] = ()
    num_values: int = 0
    derive: str = "label"
    description: str = ""

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "num_classes": self.num_classes,
            "shape": list(self.shape),
            "num_values": self.num_values,
            "derive": self.derive,
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: dict | None) -> ConditionSpec | None:
        if not data:
            return None
        return cls(
            kind=data["kind"],
            num_classes=int(data.get("num_classes", 0)),
            shape=tuple(int(v) for v in data.get("shape", ())),
            num_values=int(data.get("num_values", 0)),
            derive=str(data.get("derive", "label")),
            description=str(data.get("description", "")),
        )


@dataclass
class ModelConfig:
    """Everything needed to build a model: data shape, number of values, hyperparameters, ordering."""

    shape: tuple[int, int, int]
    num_values: int
    hparams: dict[str, Any] = field(default_factory=dict)
    ordering: Ordering | None = None
    condition: ConditionSpec | None = None

    @property
    def channels(self) -> int:
        return self.shape[0]

    @property
    def height(self) -> int:
        return self.shape[1]

    @property
    def width(self) -> int:
        return self.shape[2]

    @property
    def num_dims(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    def to_dict(self) -> dict:
        return {
            "shape": list(self.shape),
            "num_values": self.num_values,
            "hparams": copy.deepcopy(self.hparams),
            "ordering": self.ordering.to_dict() if self.ordering is not None else None,
            "condition": self.condition.to_dict() if self.condition is not None else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        shape = tuple(int(v) for v in data["shape"])
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"shape must be [channels, height, width], not {data['shape']!r}")
        ordering = data.get("ordering")
        return cls(
            shape=shape,  # type: ignore[arg-type]
            num_values=int(data["num_values"]),
            hparams=dict(data.get("hparams") or {}),
            ordering=Ordering.from_dict(ordering) if ordering else None,
            condition=ConditionSpec.from_dict(data.get("condition")),
        )


@dataclass(frozen=True)
class ModelSpec:
    """A model family as a plugin registers it.

    Parameters
    ----------
    name
        Unique identifier, used on the command line (``pixelcnn``).
    title
        Display name (``PixelCNN``).
    description
        One paragraph in the lecture's terms: what it is and what it illustrates.
    lecture_section
        Where it appears in CS294-158 Lecture 2.
    build
        ``build(config) -> ARModel``.
    orderings
        ``"fixed"`` (one ordering, e.g. raster), ``"build"`` (chosen when built) or ``"any"`` (given at run time).
    data_kinds
        The kinds of data it models: ``binary``, ``grey``, ``colour``, ``1d``, ``2d``.
    default_hparams
        Hyperparameters of the shipped size.
    tiny_hparams
        A small instance for the conformance kit (fast on a CPU).
    condition
        For conditional models, how the condition is made (see :class:`ConditionSpec`).
    sampler_modes
        The sampling modes it offers besides ``naive``, e.g. ``("cached",)``; ``"own"`` is the model's own
        whole-image sampler (:meth:`ARModel.own_sample`).
    hparam_keys
        Hyperparameters it takes besides those named in ``default_hparams`` and ``tiny_hparams`` (options such
        as a likelihood's name): a key outside all three is refused as a typo (:meth:`check_hparams`).
    hparams_class
        The family's typed hyperparameters (an :class:`~app.core.hparams.Hparams` dataclass), if it has one;
        by default the ``hparams_class`` attribute of ``build``. Its listed fields' defaults become
        ``default_hparams``, its other fields join ``hparam_keys``, and :meth:`check_hparams` checks every
        value's type and bounds. A spec without one takes plain dicts, checked for unknown keys only.
    paper_nll
        The published test NLL, shown beside the measured one (the model card, the README's table). A bare
        number (``"81.30"``) is read as nats per image on the standard binarized MNIST; anything else is shown
        as written, so name its unit and data (``"2.92 bits/dim on CIFAR-10"``). Empty where there is none.
    """

    name: str
    title: str
    description: str
    build: Callable[[ModelConfig], ARModel]
    orderings: OrderingCapability = "fixed"
    lecture_section: str = ""
    data_kinds: tuple[str, ...] = ("binary",)
    default_hparams: dict[str, Any] = field(default_factory=dict)
    tiny_hparams: dict[str, Any] = field(default_factory=dict)
    condition: ConditionSpec | None = None
    sampler_modes: tuple[str, ...] = ()
    paper_nll: str = ""
    hparam_keys: tuple[str, ...] = ()
    hparams_class: type[Hparams] | None = None

    def __post_init__(self) -> None:
        cls = self.hparams_class or getattr(self.build, "hparams_class", None)
        if cls is None:
            return
        if not (isinstance(cls, type) and issubclass(cls, Hparams)):
            raise TypeError(f"{self.name}: hparams_class must subclass app.core.hparams.Hparams, not {cls!r}")
        defaults = cls.defaults()
        if self.default_hparams and self.default_hparams != defaults:
            # Said twice and differently: which one the shipped checkpoints were trained with is unclear.
            raise ValueError(f"{self.name}: default_hparams differ from {cls.__name__}'s defaults; give one")
        object.__setattr__(self, "hparams_class", cls)
        object.__setattr__(self, "default_hparams", defaults)

    @property
    def known_hparams(self) -> list[str]:
        """Every hyperparameter key the model takes, sorted."""
        typed = self.hparams_class.names() if self.hparams_class is not None else ()
        return sorted({*self.default_hparams, *self.tiny_hparams, *self.hparam_keys, *typed})

    def check_hparams(self, hparams: dict[str, Any] | None) -> None:
        """Refuse keys the model does not take (``chanels`` for ``channels``), naming those it does take, and,
        for a spec with an ``hparams_class``, a value of the wrong type or out of bounds.

        Raises
        ------
        HyperparameterError
            With the unknown keys, the closest known ones, and the full list; or with the key, its value and
            what it takes.
        """
        refuse_unknown(hparams, self.known_hparams, self.title)
        if self.hparams_class is not None:
            self.hparams_class.check(hparams, self.title)

    def make_config(
        self,
        shape: Sequence[int],
        num_values: int,
        hparams: dict[str, Any] | None = None,
        ordering: Ordering | None = None,
        tiny: bool = False,
    ) -> ModelConfig:
        merged = dict(self.default_hparams)
        if tiny:
            merged.update(self.tiny_hparams)
        merged.update(hparams or {})
        condition = self.condition
        return ModelConfig(tuple(int(s) for s in shape), int(num_values), merged, ordering, condition)  # type: ignore[arg-type]

    def create(self, config: ModelConfig) -> ARModel:
        """Build a model from ``config`` and attach this spec to it (``model.spec``)."""
        model = self.build(config)
        if not isinstance(model, ARModel):
            raise TypeError(f"{self.name}: build() returned {type(model).__name__}, not an ARModel")
        model.spec = self
        return model


class ARModel(nn.Module):
    """Base class of every autoregressive model.

    Subclasses pass their likelihood head to ``__init__`` and implement :meth:`forward`. Models whose ordering
    is chosen at build time keep it in ``self.ordering``; models of capability ``"any"`` take an ordering at
    every call.

    Parameters
    ----------
    config
        What to build: shape, number of values, hyperparameters, ordering (``"build"`` models).
    likelihood
        The head that turns :meth:`forward`'s parameters into K-way conditionals.
    ordering
        The one ordering of a ``"fixed"`` model that is not raster (a wrapped model that generates column by
        column, say). ``config.ordering`` takes precedence: it is how ``"build"`` models get theirs.
    """

    spec: ModelSpec

    def __init__(self, config: ModelConfig, likelihood: Likelihood, ordering: Ordering | None = None) -> None:
        super().__init__()
        self.config = config
        self.likelihood = likelihood
        if likelihood.num_values != config.num_values:
            raise ValueError("the head's number of values differs from the config's")
        self.ordering = config.ordering or ordering or raster(config.height, config.width)
        if (config.height, config.width) != (self.ordering.height, self.ordering.width):
            raise OrderingError(
                f"the ordering is {self.ordering.height}x{self.ordering.width}, the data "
                f"{config.height}x{config.width}"
            )

    # -- what subclasses implement --------------------------------------------------------------------------
    def forward(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        """Head parameters ``(B, C, H, W, P)`` for every dimension, each computed only from the dimensions
        before it in the ordering (``ordering`` is given only to models of capability ``"any"``).

        A head with one parameter per dimension (``P = 1``) may be given ``(B, C, H, W)``. ``forward`` must be
        pure: in eval mode two calls on the same input return the same parameters, and the input is not
        changed.
        """
        raise NotImplementedError

    def own_sample(self, n: int, cond: Tensor | None = None) -> Tensor:
        """Draw ``n`` whole images ``(n, C, H, W)`` of values ``0 .. K-1`` with the model's own sampler.

        Implement it (and list ``"own"`` in ``ModelSpec.sampler_modes``) to offer a wrapped model's own
        ``sample()``. It draws from torch's global random generator, which the caller seeds; it is sampled
        at temperature 1 only, and must draw from the same distribution as :meth:`forward`'s conditionals
        (the conformance kit compares its frequencies with the exact marginals).
        """
        raise NotImplementedError(f"{self._title()} has no own sampler")

    def cache_program(self) -> CacheProgram | None:
        """The network as a :class:`~app.core.cache_program.CacheProgram` of the core's layers, or None.

        A model that returns one (and lists ``"cached"`` in ``ModelSpec.sampler_modes``) samples with the
        cached engine (:mod:`app.core.cached_engine`): every step computes only the new position of each
        layer from the cached activations below it, with no code of its own for caching. The promise is that
        :meth:`forward` is the program's output (:meth:`CacheProgram.evaluate
        <app.core.cache_program.CacheProgram.evaluate>` of the normalised image) reshaped to ``(B, C, H, W,
        P)``; the conformance kit's ``cache-program`` check holds the model to it. A subclass that changes
        :meth:`forward` must return None (or its own program). The default is None: naive sampling.
        """
        return None

    # -- derived, shared by every model --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        return self.config.shape

    @property
    def num_values(self) -> int:
        return self.config.num_values

    @property
    def capability(self) -> str:
        spec = getattr(self, "spec", None)
        return spec.orderings if spec is not None else "fixed"

    @property
    def device(self) -> torch.device:
        for p in self.parameters():
            return p.device
        for b in self.buffers():
            return b.device
        return torch.device("cpu")

    def normalize(self, x: Tensor) -> Tensor:
        """Map values ``0 .. K-1`` to ``[-1, 1]``, the input scale the networks are built for."""
        return x * (2.0 / (self.num_values - 1)) - 1.0

    def resolve_ordering(self, ordering: Ordering | None) -> Ordering:
        """The ordering a call runs under; refuses one that the model cannot honour."""
        if ordering is None:
            return self.ordering
        if (ordering.height, ordering.width) != (self.config.height, self.config.width):
            raise OrderingError(
                f"the ordering is {ordering.height}x{ordering.width}, the model's images "
                f"{self.config.height}x{self.config.width}"
            )
        if self.capability == "any" or ordering == self.ordering:
            return ordering
        fixed = "was built with" if self.capability == "build" else "only supports"
        raise OrderingError(
            f"{self._title()} {fixed} the "
            f"{self.ordering.name!r} ordering; use a model that takes any ordering, or train one with this ordering"
        )

    def params(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        """Call :meth:`forward` with the ordering resolved, and check what it returns."""
        ordering = self.resolve_ordering(ordering)
        try:
            out = self(x, cond, ordering if self.capability == "any" else None)
        except (ARExplorerError, torch.OutOfMemoryError):
            raise  # already a message for the user, or the device's OOM that callers fall back from
        except Exception as exc:  # a plugin's forward pass may raise anything
            if "out of memory" in str(exc).lower():
                raise
            raise ModelError(f"{self._title()} failed in its forward pass: {type(exc).__name__}: {exc}") from exc
        expected = (x.shape[0], *self.shape, self.likelihood.params_per_dim)
        if isinstance(out, Tensor) and expected[-1] == 1 and tuple(out.shape) == expected[:-1]:
            out = out.unsqueeze(-1)  # one parameter per dimension, given as (B, C, H, W)
        if not isinstance(out, Tensor) or tuple(out.shape) != expected:
            got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ModelError(f"{self._title()} returned parameters of shape {got}, expected {expected}")
        return out

    def log_prob(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        """``(B, C, H, W)``: log p(x_d | x_<d) in nats, for every dimension d."""
        x = x.to(self._dtype())
        return self.likelihood.log_prob(self.params(x, cond, ordering), x)

    def log_conditionals(
        self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None
    ) -> Tensor:
        """``(B, C, H, W, K)``: log p(x_d = k | x_<d) for every dimension d and value k."""
        x = x.to(self._dtype())
        return self.likelihood.log_probs_all(self.params(x, cond, ordering))

    def conditionals(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        return self.log_conditionals(x, cond, ordering).exp()

    def loss(self, x: Tensor, cond: Tensor | None = None, ordering: Ordering | None = None) -> Tensor:
        """Mean negative log-likelihood in nats per image: what training minimises."""
        return -self.log_prob(x, cond, ordering).flatten(1).sum(1).mean()

    def training_ordering(self, generator: torch.Generator | None = None) -> Ordering | None:
        """The ordering for one training batch: ``None`` (the model's own) unless the model is order-agnostic."""
        return None

    def sampling_plan(self, ordering: Ordering | None = None) -> list[np.ndarray]:
        """Groups of flat dimension indices, in the order they are sampled.

        The contract: the conditional of a dimension in group g depends only on dimensions of groups before
        g. The default is one dimension per step: each position in the ordering, its channels in turn.
        """
        ordering = self.resolve_ordering(ordering)
        hw = self.config.height * self.config.width
        return [
            np.array([c * hw + int(p)], dtype=np.int64) for p in ordering.flat for c in range(self.config.channels)
        ]

    def sampling_stages(self) -> list[Stage]:
        """The stages of :meth:`sampling_plan` that the Stages view shows side by side, in order.

        Their ``network_calls`` add up to the number of steps of the plan. The default is one stage, the
        whole image; a multiscale model returns its base grid and every finer grid (each with its stride).
        """
        return [whole_image_stage(self)]

    def prior_stage(self, sources: StageSources) -> PriorStage | None:
        """The model that draws this model's condition before it (a hierarchy's grey stage), or None.

        Found among ``sources.checkpoints`` and loaded with ``sources.load``; raise :class:`ModelError`
        with what to train when the model needs one and there is none.
        """
        return None

    def make_sampler(
        self,
        x: Tensor,
        cond: Tensor | None = None,
        ordering: Ordering | None = None,
        mode: str = "naive",
    ) -> Sampler:
        """An incremental sampler over the canvas ``x`` (modified in place). ``naive`` always works; ``own``
        wraps :meth:`own_sample` where the spec declares it; ``cached`` runs :meth:`cache_program` on the
        cached engine where the model declares one. Models with other faster samplers override this and fall
        back to it for the modes they do not handle."""
        if mode not in ("naive", "auto") and mode not in self.spec.sampler_modes:
            modes = ", ".join(("naive", *self.spec.sampler_modes))
            raise ModelError(f"{self._title()} has no {mode!r} sampler (it has: {modes})")
        if mode == OWN_SAMPLER_MODE:
            return OwnSampler(self, x, cond, ordering)
        if mode == "cached":
            return make_cached_sampler(self, x, cond, ordering)  # naive where the model declares no program
        return NaiveSampler(self, x, cond, ordering)

    def _dtype(self) -> torch.dtype:
        for p in self.parameters():
            if p.is_floating_point():
                return p.dtype
        return torch.float32

    def _title(self) -> str:
        spec = getattr(self, "spec", None)
        return spec.title if spec is not None else type(self).__name__


def differentiable_one_hot(x: Tensor, num_values: int) -> Tensor:
    """One-hot encoding ``(..., K)`` of the integer-valued float ``x`` that still passes a gradient to ``x``.

    The forward value is the exact one-hot; the backward pass sees ``x`` times a fixed ramp, so that the
    gradient test of the autoregressive property and receptive fields see every dependency on ``x``.
    """
    hard = F.one_hot(x.detach().round().long().clamp(0, num_values - 1), num_values).to(x.dtype)
    ramp = torch.linspace(-1.0, 1.0, num_values, device=x.device, dtype=x.dtype)
    soft = x.unsqueeze(-1) * ramp
    return hard + soft - soft.detach()
