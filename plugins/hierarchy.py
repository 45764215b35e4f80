"""The grayscale hierarchy: first a binary grey image, then its colours given it.

    p(colour) = p(grey(colour)) * p(colour | grey(colour))

Two models, each an ordinary autoregressive model that keeps the model contract on its own data:

* the **grey stage**: any binary model (a Gated PixelCNN, say) trained on the grey images of the colour data
  (dataset ``colour-mnist-grey``);
* the **colour stage** (this plugin's ``colour-given-grey-pixelcnn``): a colour PixelCNN, R before G before B at
  every pixel, conditioned on the whole grey image, which enters every layer as a spatial bias.

Why the sum is an exact log-likelihood. ``grey`` is a deterministic function of the colour image (the mean of
the channels, rounded to 2 levels). If the colour stage could put mass on colour images whose grey differs
from the one it is given, the hierarchy p(g) p(c | g) would spread probability over pairs (g, c) that never
occur, and log p(grey(c)) + log p(c | grey(c)) would only be a lower bound on log p(c) (the sampled colour
image's grey might not even be the grey that was sampled first). So the colour stage is *constrained*: at
every pixel and channel, the values that no choice of the remaining channels can turn into the given grey
level get probability zero (a fixed -10,000 on their logits). Then p(c | g) = 0 unless grey(c) = g, every
sampled colour image has exactly the sampled grey image, and the sum of the two stages' log-likelihoods *is*
log p(c): the two numbers add up to nats per colour image. The constraint reads the channels before the current
one at the same pixel, which the colour PixelCNN may see anyway; the conformance kit checks it like any mask.

:class:`GrayscaleHierarchy` pairs two loaded models, samples both stages in turn (yielding every step of each,
for a view) and scores colour images as the sum of the two stages.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from app.core import hookimpl
from app.core.conditions import derive_condition
from app.core.errors import ModelError
from app.core.hparams import hparam
from app.core.likelihoods import Categorical
from app.core.model import ARModel, ConditionSpec, ModelConfig, ModelSpec, differentiable_one_hot
from app.core.sampling import SampleStep, sample_steps
from app.core.sampling_stages import mode_for_stage
from app.core.scoring import bits_per_dim, score
from app.core.stages import PriorStage, Stage, StageSources, whole_image_stage
from plugins.colour_datasets import GREY_CONDITION, GREY_STAGE_DATASET
from plugins.conditional import ImageConditionEncoder, condition_channels
from plugins.pixelcnn import PixelCNN, PixelCNNHparams

#: Added to the logit of every value that cannot reach the given grey level: probability exp(-10,000) = 0.
IMPOSSIBLE = -1.0e4


def feasibility_table(spec: ConditionSpec, channels: int, num_values: int) -> Tensor:
    """``(C, K^(C-1), K, G)``: 1 where value v of channel j, after the channels before it took the values
    numbered p (base K, first channel most significant), can still end in grey level g.

    Built by enumerating all K^C colours of one pixel through the very derivation the data uses.
    """
    k, c = num_values, channels
    colours = torch.tensor(list(itertools.product(range(k), repeat=c)), dtype=torch.float32)  # (K^C, C)
    grey = derive_condition(spec, colours.view(-1, c, 1, 1), None, k).view(-1).long()
    levels = max(int(spec.num_values), int(grey.max()) + 1)
    table = torch.zeros(c, k ** max(c - 1, 0), k, levels)
    for colour, g in zip(colours.long().tolist(), grey.tolist(), strict=True):
        for j in range(c):
            prefix = 0
            for value in colour[:j]:
                prefix = prefix * k + value
            table[j, prefix, colour[j], g] = 1.0
    return table


@dataclass(frozen=True)
class ColourStageHparams(PixelCNNHparams):
    """The colour stage's size, the features of its grey condition, and its categorical head (whose logits
    the constraint acts on)."""

    owner = "The colour stage"

    channels: int = hparam(48, ge=1)
    head_channels: int = hparam(96, ge=1)
    likelihood: str | None = hparam("categorical", absent="categorical")
    cond_channels: int = hparam(32, ge=1)


class ColourGivenGreyPixelCNN(PixelCNN):
    """A colour PixelCNN conditioned on a grey image, constrained to colours whose grey is that image."""

    hparams_class = ColourStageHparams

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        cond = config.condition
        if cond is None or cond.kind != "image":
            raise ValueError("the colour stage needs a grey image condition")
        # The grey image has the colour image's size, whatever size this instance models.
        cond = config.condition = dataclasses.replace(cond, shape=(1, config.height, config.width))
        if not isinstance(self.likelihood, Categorical):
            raise ValueError("the colour stage needs a categorical head (its constraint acts on logits)")
        features = self.hp.cond_channels
        channels = self.first.out_channels
        self.encoder = ImageConditionEncoder(condition_channels(cond), cond.num_values, features)
        # PixelCNN adds ``class_bias[i](cond)`` after the first layer and every residual layer.
        self.class_bias = nn.ModuleList(nn.Conv2d(features, channels, 1) for _ in range(len(self.layers) + 1))
        table = feasibility_table(cond, config.channels, config.num_values)
        self.register_buffer("feasible", table, persistent=False)

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        if cond is None:
            raise ValueError("the colour stage is conditioned on a grey image: give one")
        cond = cond.to(x.device)
        features = self.encoder(cond, (x.shape[2], x.shape[3]))
        logits = super().forward(x, features)
        allowed = self.allowed_values(x, cond)
        return logits + (1.0 - allowed).to(logits.dtype) * IMPOSSIBLE

    def sampling_stages(self) -> list[Stage]:
        return [whole_image_stage(self, "colour stage", "colour given the whole grey image: R, G, B of each pixel in turn")]

    def prior_stage(self, sources: StageSources) -> PriorStage:
        """The grey stage: the best unconditional checkpoint trained on the grey images of this one's data."""
        if sources.info is None:
            raise ModelError(f"{self.spec.title} is no saved checkpoint, so it has no grey stage to find")
        info = find_grey_stage(sources.checkpoints, sources.info)
        grey = sources.load(str(info.weights))
        GrayscaleHierarchy(grey, self)  # refuses a grey stage of another size or number of values
        stage = whole_image_stage(grey, "grey stage", f"{grey.spec.title}: the binary grey image, one pixel per "
                                  "network call")
        return PriorStage(grey, (stage,), "Condition: the grey image",
                          f"drawn first by {grey.spec.title}, then coloured: no colour image can disagree with its "
                          "grey image.")

    def allowed_values(self, x: Tensor, cond: Tensor) -> Tensor:
        """``(B, C, H, W, K)``: 1 for the values that can still reach the grey level given at each pixel.

        The prefix of channel j is the one-hot of the values of channels 0..j-1 at the same pixel (with a
        gradient, so that receptive fields and the conformance kit see this dependency too).
        """
        b, c, h, w = x.shape
        k = self.num_values
        size = self.feasible.shape[1]
        one_hot = differentiable_one_hot(x, k)  # (B, C, H, W, K)
        prefix = x.new_ones(b, h, w, 1)
        prefixes = []
        for j in range(c):
            prefixes.append(nn.functional.pad(prefix, (0, size - prefix.shape[-1])))
            prefix = (prefix.unsqueeze(-1) * one_hot[:, j].unsqueeze(-2)).reshape(b, h, w, -1)
        prefixes_t = torch.stack(prefixes, 1)  # (B, C, H, W, K^(C-1))
        levels = self.feasible.shape[-1]
        grey = nn.functional.one_hot(cond[:, 0].round().long().clamp(0, levels - 1), levels).to(x.dtype)
        return torch.einsum("bchwp,bhwg,cpvg->bchwv", prefixes_t, grey, self.feasible.to(x.dtype))


COLOUR_STAGE = ModelSpec(
    name="colour-given-grey-pixelcnn",
    title="Grayscale hierarchy: colour given grey (PixelCNN)",
    description=(
        "The second stage of the grayscale hierarchy: p(colour | grey), a colour PixelCNN (R, then G, then B "
        "at each pixel) that sees the whole binary grey image in every layer. Values that cannot produce the "
        "given grey get probability zero, so log p(grey) + log p(colour | grey) is the exact log-likelihood "
        "of the colour image. Pair it with a binary model trained on the grey images (colour-mnist-grey)."
    ),
    build=ColourGivenGreyPixelCNN,
    orderings="fixed",
    lecture_section="Lecture 2, grayscale hierarchy (binary image first, then colour given it)",
    data_kinds=("colour",),
    tiny_hparams={
        "channels": 12, "layers": 2, "kernel": 3, "first_kernel": 3, "head_channels": 12, "cond_channels": 6,
    },
    condition=GREY_CONDITION,
)


@hookimpl
def ar_explorer_models():
    return [COLOUR_STAGE]


# The pipeline ------------------------------------------------------------------------------------------------


@dataclass
class StageStep:
    """One step of hierarchical sampling: which stage (``"grey"`` or ``"colour"``) and its sampling step.

    ``grey`` is the grey stage's finished image ``(B, 1, H, W)`` once the colour stage runs (else None);
    ``network_calls`` counts the calls of both stages so far.
    """

    stage: str
    step: SampleStep
    grey: np.ndarray | None
    network_calls: int


@dataclass
class HierarchyScore:
    """Scores of colour images under the hierarchy, in nats per colour image (``bits_per_dim`` over C*H*W)."""

    grey_nats: np.ndarray
    colour_nats: np.ndarray

    @property
    def total_nats(self) -> np.ndarray:
        return self.grey_nats + self.colour_nats


class GrayscaleHierarchy:
    """A grey-stage model and a colour-stage model, sampled and scored as one model of colour images."""

    def __init__(self, grey: ARModel, colour: ARModel) -> None:
        spec = colour.config.condition
        if spec is None or spec.derive != "grey":
            raise ModelError(f"{colour.spec.title} is not conditioned on a grey image, so it is no colour stage")
        c, h, w = colour.shape
        expected = (1, h, w)
        if tuple(grey.shape) != expected or grey.num_values != spec.num_values:
            raise ModelError(
                f"the grey stage models {tuple(grey.shape)} images with {grey.num_values} values; the colour stage "
                f"is conditioned on {expected} grey images with {spec.num_values}"
            )
        if grey.config.condition is not None:
            raise ModelError("the grey stage must be unconditional")
        self.grey = grey
        self.colour = colour

    @property
    def num_dims(self) -> int:
        return int(np.prod(self.colour.shape))

    def grey_of(self, colour_images: Tensor) -> Tensor:
        """The grey images ``(B, 1, H, W)`` of colour images, by the colour stage's own derivation."""
        return derive_condition(self.colour.config.condition, colour_images.float(), None, self.colour.num_values)

    def sample_steps(
        self, n: int = 16, *, seed: int = 0, temperature: float = 1.0, every: int = 1, mode: str = "auto"
    ) -> Iterator[StageStep]:
        """Sample the grey stage to the end, then the colour stage given it: every step of both."""
        grey_image: np.ndarray | None = None
        calls = 0
        grey_mode, colour_mode = mode_for_stage(self.grey, mode), mode_for_stage(self.colour, mode)
        for step in sample_steps(self.grey, n, every=every, seed=seed, temperature=temperature, mode=grey_mode):
            yield StageStep("grey", step, None, step.network_calls)
            if step.done:
                grey_image, calls = step.image, step.network_calls
        assert grey_image is not None
        cond = torch.as_tensor(grey_image, dtype=torch.float32, device=self.colour.device)
        for step in sample_steps(
            self.colour, n, every=every, seed=seed + 1, temperature=temperature, cond=cond, mode=colour_mode
        ):
            yield StageStep("colour", step, grey_image, calls + step.network_calls)

    def sample(self, n: int = 16, *, seed: int = 0, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """``(grey (n, 1, H, W), colour (n, C, H, W))`` uint8 arrays."""
        steps = list(self.sample_steps(n, seed=seed, temperature=temperature, every=10**9))
        last = steps[-1]
        assert last.grey is not None
        return last.grey, last.step.image

    def score(self, colour_images: np.ndarray | Tensor) -> HierarchyScore:
        """-log p(grey(c)) and -log p(c | grey(c)) for colour images ``(B, C, H, W)``, in nats per image."""
        x = torch.as_tensor(np.asarray(colour_images) if not isinstance(colour_images, Tensor) else colour_images)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        grey = self.grey_of(x)
        grey_result = score(self.grey, grey)
        colour_result = score(self.colour, x, grey)
        return HierarchyScore(grey_result.nll_nats, colour_result.nll_nats)

    def evaluate(self, colour_images: np.ndarray) -> dict:
        """Mean NLL of colour images: the grey stage, the colour stage and their sum (nats per colour image)."""
        result = self.score(colour_images)
        total = result.total_nats
        n = len(total)
        return {
            "grey_nll_nats": float(result.grey_nats.mean()),
            "colour_nll_nats": float(result.colour_nats.mean()),
            "nll_nats": float(total.mean()),
            "nll_nats_stderr": float(total.std(ddof=1) / np.sqrt(n)) if n > 1 else float("nan"),
            "bits_per_dim": float(bits_per_dim(float(total.mean()), self.num_dims)),
            "num_images": n,
        }


def grey_stage_dataset(colour_dataset: str) -> str | None:
    """The dataset of grey images that pairs with ``colour_dataset`` (``colour-mnist`` -> ``colour-mnist-grey``)."""
    return GREY_STAGE_DATASET.get(colour_dataset)


def find_grey_stage(checkpoints, colour_info):
    """The grey-stage checkpoint for a colour-stage checkpoint: among ``checkpoints`` (``CheckpointInfo`` s), the
    unconditional one trained on the matching grey dataset with the best test NLL; ModelError if there is none."""
    dataset = grey_stage_dataset(str(colour_info.meta.get("dataset")))
    candidates = [
        info for info in checkpoints
        if dataset is not None and info.dataset == dataset and not (info.meta.get("config") or {}).get("condition")
    ]
    if not candidates:
        raise ModelError(
            f"no grey-stage checkpoint for {colour_info.name}: train a binary model on {dataset or 'its grey images'} "
            f"(for example: ar-explorer train --model gated-pixelcnn --dataset {dataset or 'DATASET-grey'})"
        )
    return min(candidates, key=lambda info: info.test_nll_nats if info.test_nll_nats is not None else float("inf"))


def load_hierarchy(session, colour_ref: str, grey_ref: str | None = None) -> GrayscaleHierarchy:
    """Load a colour-stage checkpoint and its grey stage (by default found by :func:`find_grey_stage`)."""
    colour = session.load(colour_ref)
    if grey_ref is None:
        grey_ref = str(find_grey_stage(session.checkpoints(), colour.info).weights)
    grey = session.load(grey_ref)
    return GrayscaleHierarchy(grey.model, colour.model)
