"""Conditional PixelCNNs (van den Oord et al., 2016): a class label or a low-resolution image enters every layer.

A conditional model gives p(x | h) = prod_i p(x_i | x_<i, h). The condition h is not part of the image, so
every layer may see all of it: only the image itself must stay masked.

* **Class-conditional Gated PixelCNN**: the one-hot label picks a learned bias for every gated layer
  (``ClassBias`` in :mod:`plugins.layers`). Sample any digit on demand with ``--label``.
* **Super-resolution Gated PixelCNN**: the condition is a 7x7 image that counts the on-pixels (0-16) of every
  4x4 block of a binary 28x28 image. A small convolutional encoder lifts it to 28x28 features, and a 1x1
  convolution of those features gives each gated layer a spatial bias, so that the conditional of every pixel
  knows which blocks are dense and which are empty.

:class:`ImageConditionEncoder` and :func:`attach_spatial_bias` are shared with the grayscale hierarchy
(:mod:`plugins.hierarchy`), whose colour stage is conditioned on a grey image the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor, nn

from app.core import hookimpl
from app.core.hparams import hparam
from app.core.model import ConditionSpec, ModelConfig, ModelSpec
from plugins.gated_pixelcnn import GatedPixelCNN, GatedPixelCNNHparams

#: The super-resolution condition: 7x7 block counts. ``derive="downsample"`` average-pools a binary 28x28 image
#: to 7x7 and quantises the block means to 17 levels, which for 4x4 blocks of 0/1 pixels is exactly the count.
SUPERRES_CONDITION = ConditionSpec(
    kind="image",
    shape=(1, 7, 7),
    num_values=17,
    derive="downsample",
    description="a 7x7 image: how many pixels (0-16) of each 4x4 block of the 28x28 image are on",
)

CLASS_CONDITION = ConditionSpec(
    kind="class",
    num_classes=10,
    derive="label",
    description="the digit's class label (0-9), from a dataset with labels",
)


class ImageConditionEncoder(nn.Module):
    """A condition image ``(B, Cc, h, w)`` of values ``0 .. V-1`` to features ``(B, F, H, W)`` at the model's size.

    A 3x3 convolution at the condition's own resolution, a nearest-neighbour resize to the image's size and a
    second 3x3 convolution there. Nothing here is masked: the condition is given, not generated.
    """

    def __init__(self, in_channels: int, num_values: int, features: int) -> None:
        super().__init__()
        self.num_values = max(2, int(num_values))
        self.low = nn.Conv2d(in_channels, features, 3, padding=1)
        self.high = nn.Conv2d(features, features, 3, padding=1)

    def forward(self, cond: Tensor, size: tuple[int, int]) -> Tensor:
        scaled = cond.float() * (2.0 / (self.num_values - 1)) - 1.0
        hidden = F.relu(self.low(scaled))
        if tuple(hidden.shape[-2:]) != tuple(size):
            hidden = F.interpolate(hidden, size=size, mode="nearest")
        return F.relu(self.high(hidden))


def condition_channels(spec: ConditionSpec) -> int:
    """The number of channels of an image condition (its shape is ``(C, h, w)`` or ``(h, w)``)."""
    return int(spec.shape[0]) if len(spec.shape) == 3 else 1


@dataclass(frozen=True)
class ConditionalGatedHparams(GatedPixelCNNHparams):
    """The conditional Gated PixelCNNs' size: smaller than the unconditional one's, for the same data."""

    owner = "Class-conditional Gated PixelCNN"

    channels: int = hparam(48, ge=1)
    layers: int = hparam(8, ge=1)
    head_channels: int = hparam(96, ge=1)


@dataclass(frozen=True)
class SuperResolutionHparams(ConditionalGatedHparams):
    """The super-resolution model's size, with the features the 7x7 condition is lifted to."""

    owner = "Super-resolution Gated PixelCNN"

    cond_channels: int = hparam(32, ge=1)


class ClassConditionalGatedPixelCNN(GatedPixelCNN):
    """A Gated PixelCNN whose every layer adds a bias chosen by the label (the base class does the work)."""

    hparams_class = ConditionalGatedHparams


class SpatialConditionGatedPixelCNN(GatedPixelCNN):
    """A Gated PixelCNN whose every gated layer gets a spatial bias computed from an image condition."""

    hparams_class = SuperResolutionHparams

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        cond = config.condition
        if cond is None or cond.kind != "image":
            raise ValueError("this model needs an image condition")
        features, channels = self.hp.cond_channels, self.hp.channels
        self.encoder = ImageConditionEncoder(condition_channels(cond), cond.num_values, features)
        for layer in self.layers:
            # The gated layer adds ``class_bias(cond)`` to both stacks' pre-activations (2 * channels of them).
            # Zero at first, as the class-conditional model's label biases: the condition starts neutral, so
            # weights carried over from an unconditional Gated PixelCNN (``train --init-from``) start exactly
            # where that model was, and only the conditioning has to be learned.
            layer.class_bias = nn.Conv2d(features, 2 * channels, 1)
            nn.init.zeros_(layer.class_bias.weight)
            nn.init.zeros_(layer.class_bias.bias)

    def condition_features(self, cond: Tensor, size: tuple[int, int]) -> Tensor:
        """``(B, F, H, W)``: what the gated layers' biases are computed from (the cached sampler uses it too)."""
        return self.encoder(cond.to(self.device), size)

    def forward(self, x: Tensor, cond: Tensor | None = None, ordering=None) -> Tensor:
        if cond is None:
            raise ValueError("this model is conditioned on an image: give one")
        return super().forward(x, self.condition_features(cond, (x.shape[2], x.shape[3])))


_GATED_TINY = {
    "channels": 8, "layers": 3, "kernel": 3, "first_kernel": 3, "head_channels": 8,
    "kit_shape": (1, 4, 4), "kit_norm_shape": (1, 3, 3),
}

CLASS_CONDITIONAL = ModelSpec(
    name="conditional-gated-pixelcnn",
    title="Class-conditional Gated PixelCNN",
    description=(
        "p(x | class) = prod_i p(x_i | x_<i, class): a Gated PixelCNN whose every layer adds a learned bias "
        "chosen by the one-hot label, so one network draws any digit on demand. It needs a dataset with labels "
        "(binarized-mnist-labelled, mnist-threshold, mnist, synthetic-digits); the standard binarized MNIST has "
        "none, and binarized-mnist-labelled binarizes MNIST the same stochastic way, keeping its labels."
    ),
    build=ClassConditionalGatedPixelCNN,
    orderings="fixed",
    lecture_section="Lecture 2, Conditional PixelCNN (class-conditional generation)",
    data_kinds=("binary", "grey"),
    tiny_hparams=dict(_GATED_TINY),
    condition=CLASS_CONDITION,
    sampler_modes=("cached",),
)

SUPER_RESOLUTION = ModelSpec(
    name="superres-gated-pixelcnn",
    title="Super-resolution Gated PixelCNN (from 7x7)",
    description=(
        "p(x | low) = prod_i p(x_i | x_<i, low), where low is a 7x7 image counting the on-pixels of each 4x4 "
        "block (0-16). The 7x7 image is lifted to 28x28 features that bias every gated layer, so the model fills "
        "in a sharp 28x28 digit that agrees with the coarse one: super-resolution as conditional generation."
    ),
    build=SpatialConditionGatedPixelCNN,
    orderings="fixed",
    lecture_section="Lecture 2, Conditional PixelCNN (super-resolution from a low-resolution image)",
    data_kinds=("binary",),
    tiny_hparams={**_GATED_TINY, "cond_channels": 6},
    condition=SUPERRES_CONDITION,
    sampler_modes=("cached",),
)


@hookimpl
def ar_explorer_models():
    return [CLASS_CONDITIONAL, SUPER_RESOLUTION]
