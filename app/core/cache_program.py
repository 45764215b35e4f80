"""A model's network declared as a program of the core's masked layers, which the cached sampler runs.

A convolutional model in raster order has a property that makes sampling fast (Ramachandran et al., 2017):
each layer's activation at a position depends only on what comes before it, so once that position's pixel is
drawn its activations are final. A model that declares its network as a :class:`CacheProgram` (from
:meth:`ARModel.cache_program <app.core.model.ARModel.cache_program>`) gets the cached sampler of
:mod:`app.core.cached_engine` for free: per step, every layer computes only the new position.

A program is a sequence of operations over named values. ``"input"`` (:data:`INPUT`) is the normalised image
``(B, C, H, W)`` (:meth:`ARModel.normalize`); every operation writes one new value from earlier ones:

* :class:`Conv`: a :class:`~app.core.layers.MaskedConv2d` (mask A or B, any odd kernel) or a 1x1
  ``nn.Conv2d``, optionally plus a per-image bias from the condition (a :class:`~app.core.layers.ClassBias`);
* :class:`Activation`: ``relu``, ``tanh``, ``sigmoid``, ``elu`` or ``gate`` (tanh * sigmoid of the halves);
* :class:`Add`: the sum of two values (a residual connection).

The value named ``output`` holds the head's parameters as ``(B, C * P, H, W)``, colour channel g's ``P``
parameters in channel group g: ``forward`` must return it as ``out.reshape(B, C, P, H, W)`` moved to
``(B, C, H, W, P)``. :meth:`CacheProgram.evaluate` runs the program over whole images, which is how the
conformance kit checks that it is the model's forward pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.errors import ModelError
from app.core.layers import Gate, MaskedConv2d, Residual, gate, raster_mask

#: The name of the program's input: the normalised image.
INPUT = "input"

#: The pointwise activations a program may use; each acts on channel dimension 1 of ``(B, C)`` or
#: ``(B, C, H, W)`` alike, which is what lets the engine apply it to one position.
ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "relu": F.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "elu": F.elu,
    "gate": gate,
}


@dataclass(frozen=True)
class Conv:
    """``dst = module(src) + condition(cond)``: a masked convolution, or a 1x1 ``nn.Conv2d``.

    ``condition`` maps the sampler's condition to a per-image bias ``(B, out_channels, 1, 1)`` (a
    :class:`~app.core.layers.ClassBias`), or is None.
    """

    module: nn.Conv2d
    src: str
    dst: str
    condition: nn.Module | None = None

    @property
    def kernel(self) -> int:
        return int(self.module.kernel_size[0])


@dataclass(frozen=True)
class Activation:
    """``dst = ACTIVATIONS[kind](src)``, position by position."""

    kind: str
    src: str
    dst: str


@dataclass(frozen=True)
class Add:
    """``dst = a + b``: a residual connection."""

    a: str
    b: str
    dst: str


Op = Conv | Activation | Add


@dataclass(frozen=True)
class CacheProgram:
    """A network as a sequence of :data:`Op` over named values, ending in the value ``output``."""

    ops: tuple[Op, ...]
    output: str

    @classmethod
    def sequential(cls, net: nn.Sequential) -> CacheProgram:
        """The program of ``net``: masked and 1x1 convolutions, activation modules (``nn.ReLU``, ``nn.Tanh``,
        ``nn.Sigmoid``, ``nn.ELU``, :class:`~app.core.layers.Gate`), :class:`~app.core.layers.Residual`
        blocks and nested ``nn.Sequential``, in the order ``net`` runs them on the normalised image."""
        ops: list[Op] = []

        def fresh() -> str:
            return f"v{len(ops)}"

        def walk(modules, src: str) -> str:
            for module in modules:
                if isinstance(module, Residual):
                    body = walk(module.body, src)
                    dst = fresh()
                    ops.append(Add(src, body, dst))
                elif isinstance(module, nn.Sequential):
                    dst = walk(module, src)
                elif isinstance(module, nn.Conv2d):
                    dst = fresh()
                    ops.append(Conv(module, src, dst))
                elif isinstance(module, nn.Identity):
                    dst = src
                else:
                    kind = _activation_kind(module)
                    dst = fresh()
                    ops.append(Activation(kind, src, dst))
                src = dst
            return src

        output = walk(net, INPUT)
        return cls(tuple(ops), output)

    # -- what the engine and the conformance kit use --------------------------------------------------------
    def convs(self) -> list[Conv]:
        return [op for op in self.ops if isinstance(op, Conv)]

    def evaluate(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The program over whole images: ``x`` the normalised image, returns the value ``output``."""
        values = {INPUT: x}
        for op in self.ops:
            if isinstance(op, Conv):
                out = op.module(values[op.src])
                if op.condition is not None:
                    out = out + op.condition(cond)
            elif isinstance(op, Activation):
                out = ACTIVATIONS[op.kind](values[op.src])
            else:
                out = values[op.a] + values[op.b]
            values[op.dst] = out
        return values[self.output]

    def channels(self, image_channels: int) -> dict[str, int]:
        """The number of channels of every value, refusing a program the engine cannot run."""
        sizes = {INPUT: image_channels}
        for index, op in enumerate(self.ops):
            where = f"operation {index} ({type(op).__name__} to {op.dst!r})"
            if op.dst in sizes:
                raise ModelError(f"cache program: {where} writes {op.dst!r} a second time")
            for name in _sources(op):
                if name not in sizes:
                    raise ModelError(f"cache program: {where} reads {name!r} before any operation writes it")
            if isinstance(op, Conv):
                _check_conv(op, sizes[op.src], image_channels, where)
                sizes[op.dst] = op.module.out_channels
            elif isinstance(op, Activation):
                if op.kind not in ACTIVATIONS:
                    raise ModelError(f"cache program: {where}: no activation {op.kind!r}; "
                                     f"choose one of {', '.join(ACTIVATIONS)}")
                if op.kind == "gate" and image_channels > 1:
                    raise ModelError(f"cache program: {where}: a gate pairs channels of different colour groups")
                if op.kind == "gate" and sizes[op.src] % 2:
                    raise ModelError(f"cache program: {where}: a gate needs an even number of channels")
                sizes[op.dst] = sizes[op.src] // 2 if op.kind == "gate" else sizes[op.src]
            else:
                if sizes[op.a] != sizes[op.b]:
                    raise ModelError(f"cache program: {where} adds {sizes[op.a]} channels to {sizes[op.b]}")
                sizes[op.dst] = sizes[op.a]
        if self.output not in sizes:
            raise ModelError(f"cache program: no operation writes its output {self.output!r}")
        return sizes

    def validate(self, image_channels: int, params_per_dim: int) -> dict[str, int]:
        """Refuse what the engine cannot run exactly: unknown layers, the wrong output size, a path from
        the input to the output without a mask-A convolution (the output would see the pixel it predicts).

        Returns the channels of every value (:meth:`channels`).
        """
        sizes = self.channels(image_channels)
        expected = image_channels * params_per_dim
        if sizes[self.output] != expected:
            raise ModelError(f"cache program: its output has {sizes[self.output]} channels, the head needs "
                             f"{expected} ({image_channels} image channels x {params_per_dim} parameters)")
        if not self._strict()[self.output]:
            raise ModelError("cache program: a path from the input to the output has no mask-A convolution, so "
                             "the output sees the pixel it predicts")
        return sizes

    def _strict(self) -> dict[str, bool]:
        """Whether each value is blind to the current pixel: behind a mask-A convolution on every path."""
        strict = {INPUT: False}
        for op in self.ops:
            if isinstance(op, Conv):
                masked_a = isinstance(op.module, MaskedConv2d) and op.module.mask_type == "A"
                strict[op.dst] = masked_a or strict[op.src]
            elif isinstance(op, Activation):
                strict[op.dst] = strict[op.src]
            else:
                strict[op.dst] = strict[op.a] and strict[op.b]
        return strict


def _sources(op: Op) -> tuple[str, ...]:
    return (op.a, op.b) if isinstance(op, Add) else (op.src,)


_ACTIVATION_MODULES: dict[type[nn.Module], str] = {
    nn.ReLU: "relu",
    nn.Tanh: "tanh",
    nn.Sigmoid: "sigmoid",
    Gate: "gate",
}


def _activation_kind(module: nn.Module) -> str:
    if type(module) is nn.ELU and module.alpha == 1.0:
        return "elu"
    kind = _ACTIVATION_MODULES.get(type(module))
    if kind is None:
        raise ModelError(
            f"cache program: the cached engine does not know the layer {type(module).__name__}; use the core's "
            "masked convolutions, 1x1 convolutions, Residual, Gate, ReLU, Tanh, Sigmoid or ELU"
        )
    return kind


def _check_conv(op: Conv, in_channels: int, image_channels: int, where: str) -> None:
    """A convolution the engine computes exactly: stride 1, no dilation, 'same' padding, masked if wider
    than 1x1, and (for colour) masked by the image's channel groups."""
    module = op.module
    if module.in_channels != in_channels:
        raise ModelError(f"cache program: {where} takes {module.in_channels} channels, {op.src!r} has {in_channels}")
    k = op.kernel
    plain = (module.stride, module.dilation, module.groups) == ((1, 1), (1, 1), 1)
    if not plain or module.kernel_size != (k, k) or module.padding != (k // 2, k // 2) or k % 2 == 0:
        raise ModelError(f"cache program: {where} must be a square odd kernel, stride 1, 'same' padding")
    if isinstance(module, MaskedConv2d):
        expected = raster_mask(k, module.in_channels, module.out_channels, module.mask_type, image_channels)
        if not torch.equal(module.mask.cpu(), expected):
            raise ModelError(f"cache program: {where}'s mask is not raster order over the image's "
                             f"{image_channels} channel groups")
    elif k != 1:
        raise ModelError(f"cache program: {where} is a {k}x{k} convolution without a mask: only 1x1 ones may be")
    elif image_channels > 1:
        raise ModelError(f"cache program: {where} is an unmasked 1x1 convolution, which mixes the colour "
                         "channels: use a MaskedConv2d of kernel 1 and mask B")
