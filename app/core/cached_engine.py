"""The cached-sampling engine: programs that keep every layer's activations and compute one position a step.

:class:`CachedProgram` is what every cached program keeps on the device (canvas, uniforms, the index tables
of the steps) and the step itself (conditionals, inverse-CDF draw, commit). :class:`LayerProgram` runs any
network declared as a :class:`~app.core.cache_program.CacheProgram` of the core's masked layers: the
caches hold, for every value that a convolution wider than 1x1 reads, its activations at every position,
channel-last on a zero-padded grid; at each step, each convolution's output at the new position is a matrix
product of the visible half of its kernel (rows above, and the centre row up to the centre) with the
cached positions under it, and every other operation acts on that one position's vector.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from app.core.cache_program import ACTIVATIONS, INPUT, Activation, Add, CacheProgram, Conv
from app.core.errors import ModelError
from app.core.likelihoods import apply_temperature
from app.core.samplers import draw, draw_dtype

if TYPE_CHECKING:
    from app.core.model import ARModel


def _index(values, device: torch.device) -> Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.int64), device=device)


def _pick(table: Tensor, index: Tensor) -> Tensor:
    """Row ``index`` (a one-element device tensor) of ``table``, flattened: a gather with no host sync."""
    return table.index_select(0, index).view(-1)


# -- the programs: buffers, index tables and the per-step update of one model at one batch size ----------------


class CachedProgram:
    """Everything a cached run of ``model`` over ``batch`` images keeps on the device.

    Subclasses build their caches and implement :meth:`compute` (the conditionals at the current step),
    :meth:`row_update` (work done once per image row) and :meth:`_write_input` (the input caches of a drawn
    value). ``self.step`` is the current step, a one-element long tensor on the device.
    ``spatial_conditions``: whether a subclass of the family that defines ``condition_features`` (a condition
    given as features at every position) may still run on this program.
    """

    spatial_conditions = False

    def __init__(self, model: ARModel, batch: int, canvas: Tensor | None = None) -> None:
        # A weak reference: programs kept with a model (see shared_program) must not keep it alive.
        self._model = weakref.ref(model)
        self.likelihood = model.likelihood
        self.batch = batch
        self.device = model.device
        self.dtype = model._dtype()
        self.channels, self.height, self.width = model.shape
        self.num_values = model.num_values
        self.total = self.channels * self.height * self.width
        self.steps_per_row = self.channels * self.width
        hw = self.height * self.width
        steps = np.arange(self.total)
        position, channel = steps // self.channels, steps % self.channels
        self._step_fields: dict[str, np.ndarray] = {"dim": channel * hw + position}
        self.step = torch.zeros(1, dtype=torch.long, device=self.device)
        self.finite = torch.ones((), dtype=torch.bool, device=self.device)
        self.nonfinite = torch.zeros(1, dtype=torch.int32, device=self.device)  # set by fused kernels
        self.fused = None  # the fused step of the triton engine, once used
        if canvas is None:
            canvas = torch.zeros(batch, self.channels, self.height, self.width, device=self.device, dtype=self.dtype)
        self.canvas = canvas  # the program's own, or (stepping) the sampler's canvas itself
        self.uniforms = torch.zeros(batch, self.total, device=self.device, dtype=draw_dtype(self.device))
        self.known = torch.zeros(self.total, device=self.device, dtype=torch.bool)
        self.known_values = torch.zeros(batch, self.total, device=self.device, dtype=self.dtype)
        self.lock = threading.Lock()
        # Captured CUDA graphs by (engine, temperature, completion), the most recently used last.
        self.graphs: OrderedDict[tuple, torch.cuda.CUDAGraph] = OrderedDict()

    @property
    def model(self) -> ARModel:
        model = self._model()
        if model is None:
            raise ModelError("the model of this cached sampler no longer exists")
        return model

    # what subclasses implement --------------------------------------------------------------------------
    def refresh(self, cond: Tensor | None) -> None:
        """Derive weights from the model's parameters and the per-run biases of ``cond``; zero the caches."""
        raise NotImplementedError

    def compute(self, ix: dict[str, Tensor] | None = None) -> Tensor:
        """``(B, 1, K)``: the conditionals of the current step, updating the activation caches at its position.

        ``ix`` are the step's :meth:`indices` (gathered here if not given)."""
        raise NotImplementedError

    def row_update(self) -> None:
        """Work done once at the start of every image row (the current step is its first)."""

    def _write_input(self, values: Tensor, ix: dict[str, Tensor]) -> None:
        raise NotImplementedError

    def fused_supported(self) -> bool:
        """Whether :meth:`fused_row` can run this program (the ``triton`` engine; ``graph`` otherwise)."""
        return False

    def fused_row(self, temperature: float) -> Callable[[], None]:
        """One image row of steps, each a single fused kernel: what the ``triton`` engine captures."""
        raise NotImplementedError

    # shared ------------------------------------------------------------------------------------------------
    def _pack_steps(self) -> None:
        """One row of indices per step (``self._step_fields``), so that a step gathers all of them at once."""
        columns, self.fields, at = [], {}, 0
        for name, values in self._step_fields.items():
            values = np.asarray(values).reshape(self.total, -1)
            self.fields[name] = slice(at, at + values.shape[1])
            at += values.shape[1]
            columns.append(values)
        self.tab_step = _index(np.concatenate(columns, 1), self.device)

    def indices(self) -> dict[str, Tensor]:
        """The indices of the current step, by name: views of one gathered row (one kernel, no host sync)."""
        row = self.tab_step.index_select(0, self.step)[0]
        return {name: row[where] for name, where in self.fields.items()}

    def reset(self, canvas: Tensor, cond: Tensor | None) -> None:
        """Start a run over ``canvas`` (its values are the initial image)."""
        self.canvas.copy_(canvas)
        self.step.zero_()
        self.finite.fill_(True)
        self.nonfinite.zero_()
        self.refresh(cond)
        if self.fused is not None:
            self.fused.pack()

    def normalize(self, values: Tensor) -> Tensor:
        return values.to(self.dtype) * (2.0 / (self.num_values - 1)) - 1.0

    def commit(self, values: Tensor, ix: dict[str, Tensor] | None = None) -> None:
        """Write ``values`` ``(B, 1)`` for the current step into the canvas and the input caches."""
        ix = ix if ix is not None else self.indices()
        self.canvas.view(self.batch, -1).index_copy_(1, ix["dim"], values.to(self.dtype))
        self._write_input(values, ix)

    def draw_step(self, temperature: float, with_known: bool) -> None:
        """One whole step: conditionals, draw by the inverse CDF, commit, advance."""
        ix = self.indices()
        probs = self.compute(ix)
        self.finite.logical_and_(torch.isfinite(probs).all())
        tempered = apply_temperature(probs, temperature)
        dim = ix["dim"]
        values = draw(tempered.to(self.uniforms.dtype), self.uniforms.index_select(1, dim))
        if with_known:
            keep = self.known.index_select(0, dim)
            values = torch.where(keep, self.known_values.index_select(1, dim).long(), values)
        self.commit(values, ix)
        self.step.add_(1)

    def run_row(self, temperature: float, with_known: bool) -> None:
        """One image row of steps: what a CUDA graph captures once and replays for every row."""
        self.row_update()
        for _ in range(self.steps_per_row):
            self.draw_step(temperature, with_known)



def _refill(old: Tensor, new: Tensor) -> Tensor:
    """Copy ``new`` into ``old`` in place when the shapes agree (CUDA graphs keep their addresses)."""
    new = new.detach()
    if old.shape == new.shape:
        return old.copy_(new)
    return new.contiguous().clone()




class LayerProgram(CachedProgram):
    """A declared :class:`~app.core.cache_program.CacheProgram`, one position per step (see the module).

    Per step, every operation of the program runs once, on the new position only: a convolution wider than
    1x1 (or one that reads the image) gathers the visible half of its window from the cache of its input, a
    1x1 convolution, an activation or a sum acts on the new position's vector. A value that some wider
    convolution reads is written into its cache at the new position. With several colour channels, each of
    a position's steps recomputes the position (its channel groups see the channels drawn so far), and the
    head's parameters of the step's channel are picked.
    """

    def __init__(self, model: ARModel, batch: int, canvas: Tensor | None, program: CacheProgram) -> None:
        super().__init__(model, batch, canvas)
        self.program = program
        self.sizes = program.validate(self.channels, model.likelihood.params_per_dim)
        self.convs = program.convs()
        # Which convolutions gather a window from a cache: every one that reads the image (which only
        # ever lives in its cache) and every one wider than 1x1.
        self.gathers = [op.src == INPUT or op.kernel > 1 for op in self.convs]
        self.cached = {INPUT} | {op.src for op, gathers in zip(self.convs, self.gathers, strict=True) if gathers}
        # An operation other than a convolution may read the image at the new position.
        self.reads_input = any(op.src == INPUT for op in program.ops if isinstance(op, Activation)) or any(
            INPUT in (op.a, op.b) for op in program.ops if isinstance(op, Add)
        )
        pad = max((op.kernel // 2 for op in self.convs), default=0)
        self.pad, self.grid_w = pad, self.width + 2 * pad
        grid = (self.height + pad) * self.grid_w
        c, w = self.channels, self.width
        steps = np.arange(self.total)
        position, channel = steps // c, steps % c
        rows, cols = position // w, position % w
        centre = (rows + pad) * self.grid_w + cols + pad
        self._step_fields.update(centre=centre, image=centre * c + channel, channel=channel)
        self.windows: dict[int, list[tuple[int, int]]] = {}
        for op, gathers in zip(self.convs, self.gathers, strict=True):
            k = op.kernel
            if gathers and k not in self.windows:
                offsets = [(dy, dx) for dy in range(k // 2 + 1) for dx in range(k) if dy < k // 2 or dx <= k // 2]
                table = np.stack([centre + (dy - k // 2) * self.grid_w + (dx - k // 2) for dy, dx in offsets], 1)
                self.windows[k] = offsets
                self._step_fields[f"window{k}"] = table
        self._pack_steps()
        dev, dt = self.device, self.dtype
        self.grids = {name: torch.zeros(batch, grid, self.sizes[name], device=dev, dtype=dt) for name in self.cached}
        self.weights = [torch.zeros(0, device=dev, dtype=dt) for _ in self.convs]
        self.biases = [torch.zeros(batch, op.module.out_channels, device=dev, dtype=dt) for op in self.convs]

    def _weight(self, op: Conv, gathers: bool) -> Tensor:
        """``(window * in, out)``: the masked kernel at the visible offsets, in the order of the gather."""
        module = op.module
        masked = module.weight * module.mask if hasattr(module, "mask") else module.weight
        if not gathers:
            return masked[:, :, 0, 0].t().contiguous()
        stacked = torch.stack([masked[:, :, dy, dx] for dy, dx in self.windows[op.kernel]], 1)  # (out, window, in)
        return stacked.reshape(module.out_channels, -1).t().contiguous()

    def refresh(self, cond: Tensor | None) -> None:
        with torch.no_grad():
            fresh = [self._weight(op, gathers) for op, gathers in zip(self.convs, self.gathers, strict=True)]
            self.weights = [_refill(old, new) for old, new in zip(self.weights, fresh, strict=True)]
            for op, bias in zip(self.convs, self.biases, strict=True):
                bias.copy_(self._bias(op, cond))
            for cache in self.grids.values():
                cache.zero_()
            flat = self.normalize(self.canvas).reshape(self.batch, self.channels, -1).transpose(1, 2)
            interior = self.grids[INPUT].view(self.batch, self.height + self.pad, self.grid_w, self.channels)
            interior[:, self.pad :, self.pad : self.pad + self.width].copy_(
                flat.reshape(self.batch, self.height, self.width, self.channels)
            )

    def _bias(self, op: Conv, cond: Tensor | None) -> Tensor:
        """``(B, out)``: the convolution's bias plus the per-image bias of the condition."""
        out = op.module.out_channels
        bias = op.module.bias if op.module.bias is not None else torch.zeros(out, device=self.device)
        bias = bias.to(self.dtype).expand(self.batch, -1)
        if op.condition is None:
            return bias
        extra = op.condition(cond)
        if not isinstance(extra, Tensor) or tuple(extra.shape) not in ((self.batch, out, 1, 1), (1, out, 1, 1)):
            got = tuple(extra.shape) if isinstance(extra, Tensor) else type(extra).__name__
            raise ModelError(f"cache program: the condition of the convolution to {op.dst!r} gave a bias of shape "
                             f"{got}; the cached engine takes one per image, ({self.batch}, {out}, 1, 1)")
        return bias + extra[:, :, 0, 0].to(self.dtype)

    def compute(self, ix: dict[str, Tensor] | None = None) -> Tensor:
        ix = ix if ix is not None else self.indices()
        centre, b = ix["centre"], self.batch
        values: dict[str, Tensor] = {}
        if self.reads_input:
            values[INPUT] = self.grids[INPUT].index_select(1, centre).view(b, self.channels)
        conv = 0
        for op in self.program.ops:
            if isinstance(op, Conv):
                if self.gathers[conv]:
                    window = self.grids[op.src].index_select(1, ix[f"window{op.kernel}"]).view(b, -1)
                else:
                    window = values[op.src]
                out = torch.addmm(self.biases[conv], window, self.weights[conv])
                conv += 1
            elif isinstance(op, Activation):
                out = ACTIVATIONS[op.kind](values[op.src])
            else:
                out = values[op.a] + values[op.b]
            values[op.dst] = out
            if op.dst in self.grids:
                self.grids[op.dst].index_copy_(1, centre, out.unsqueeze(1))
        params = values[self.program.output].view(b, self.channels, -1)
        if self.channels > 1:
            params = params.index_select(1, ix["channel"])
        return self.likelihood.probs(params)

    def _write_input(self, values: Tensor, ix: dict[str, Tensor]) -> None:
        self.grids[INPUT].view(self.batch, -1).index_copy_(1, ix["image"], self.normalize(values))
