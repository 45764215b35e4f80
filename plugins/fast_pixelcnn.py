"""Fast sampling by caching activations (Ramachandran et al., 2017, "Fast Generation for Convolutional
Autoregressive Models"; the idea of Fast WaveNet) for PixelCNN and Gated PixelCNN.

Naive sampling re-runs the whole network for every pixel: 784 forward passes over the whole 28x28 image. But
in raster order, every layer's activation at a position depends only on pixels before it, so once the pixels
before position p are drawn, every layer's activation *at p* is final and never changes again. The cached
samplers keep every layer's activations and, at each step, compute only the new position:

* **PixelCNN** (masked convolutions): for each layer, one output position from the layer below's cached
  activations in the visible half of the kernel (a matrix-vector product per layer and step).
* **Gated PixelCNN** (the row-wise scheme of Fast PixelCNN): the vertical stack at row r sees rows up to r,
  so it is computed a whole row at a time, once that row is complete; the horizontal stack is computed one
  position per step from the current row and the vertical stack's row above.

The conditionals are those of the naive sampler up to float rounding, so with the same seed (one uniform per
dimension, drawn by the inverse CDF) both draw the same images.

Every position-dependent index is a small tensor on the model's device, advanced by the step itself, so the
per-step update has no host synchronisation and no Python integer that changes from step to step. Engines
(``AR_EXPLORER_CACHED_ENGINE``, default ``auto``):

* ``eager``: the update as PyTorch operations, one by one (the CPU and MPS always use it);
* ``graph`` (``auto`` on CUDA): a whole image row of steps captured once as a CUDA graph per model and batch
  size, then replayed for every row;
* ``compile``: the step and the row update compiled by ``torch.compile`` (fused element-wise kernels), then
  captured as ``graph``;
* ``triton`` (Gated PixelCNN, binary): all of a step in one fused Triton kernel
  (:mod:`plugins.fast_gated_triton`), captured as ``graph``; other models fall back to ``graph``.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from app.core.errors import ModelError
from app.core.likelihoods import apply_temperature
from app.core.model import ARModel
from app.core.orderings import Ordering
from app.core.sampling import NaiveSampler, Sampler, draw, draw_dtype

ENGINES = ("auto", "eager", "graph", "compile", "triton")
ENGINE_VARIABLE = "AR_EXPLORER_CACHED_ENGINE"


def default_engine() -> str:
    """The engine named by ``AR_EXPLORER_CACHED_ENGINE`` (``auto`` unless set)."""
    name = os.environ.get(ENGINE_VARIABLE, "auto").strip().lower() or "auto"
    if name not in ENGINES:
        raise ModelError(f"{ENGINE_VARIABLE}={name!r}: choose one of {', '.join(ENGINES)}")
    return name


def resolve_engine(engine: str, device: torch.device) -> str:
    """``auto`` is ``graph`` on CUDA and ``eager`` elsewhere; graph engines fall back to eager off CUDA."""
    if engine not in ENGINES:
        raise ModelError(f"unknown cached-sampling engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if device.type != "cuda":
        return "eager"
    return "graph" if engine == "auto" else engine


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


class PixelCNNProgram(CachedProgram):
    """Cached masked convolutions: per step, each layer computes its output at one position only.

    The caches hold, for every layer, ``relu(hidden)`` at every position, channel-last on a zero-padded
    grid; a layer's output at position p is a matrix product of the visible half of its kernel (rows above,
    and the centre row up to the centre) with the cached positions under it.
    """

    def __init__(self, model: ARModel, batch: int, canvas: Tensor | None = None) -> None:
        super().__init__(model, batch, canvas)
        self.convs = [model.first, *model.layers]
        pad = max(conv.kernel_size[0] // 2 for conv in self.convs)
        self.pad = pad
        self.grid_w = self.width + 2 * pad
        grid = (self.height + pad) * self.grid_w
        c, w = self.channels, self.width
        steps = np.arange(self.total)
        position, channel = steps // c, steps % c
        rows, cols = position // w, position % w
        centre = (rows + pad) * self.grid_w + cols + pad
        self._step_fields.update(centre=centre, image=centre * c + channel, channel=channel)
        self.windows: dict[int, list[tuple[int, int]]] = {}
        for conv in self.convs:
            k = conv.kernel_size[0]
            if k not in self.windows:
                offsets = [(dy, dx) for dy in range(k // 2 + 1) for dx in range(k) if dy < k // 2 or dx <= k // 2]
                table = np.stack([centre + (dy - k // 2) * self.grid_w + (dx - k // 2) for dy, dx in offsets], 1)
                self.windows[k] = offsets
                self._step_fields[f"window{k}"] = table
        self._pack_steps()
        ch = model.first.out_channels
        self.image = torch.zeros(batch, grid, c, device=self.device, dtype=self.dtype)
        self.caches = [torch.zeros(batch, grid, ch, device=self.device, dtype=self.dtype) for _ in model.layers]
        self.weights = [torch.zeros(0, device=self.device, dtype=self.dtype) for _ in range(len(self.convs) + 2)]
        self.biases = [torch.zeros(batch, conv.out_channels, device=self.device, dtype=self.dtype) for conv in self.convs]
        self.head_biases = [torch.zeros(0, device=self.device, dtype=self.dtype) for _ in range(2)]

    def _window_weight(self, conv) -> Tensor:
        """``(window * in, out)``: the masked kernel at the visible offsets, in the order of the gather."""
        offsets = self.windows[conv.kernel_size[0]]
        masked = conv.weight * conv.mask
        stacked = torch.stack([masked[:, :, dy, dx] for dy, dx in offsets], 1)  # (out, window, in)
        return stacked.reshape(conv.out_channels, -1).t().contiguous()

    def refresh(self, cond: Tensor | None) -> None:
        model = self.model
        with torch.no_grad():
            fresh = [self._window_weight(conv) for conv in self.convs]
            fresh += [(head.weight * head.mask)[:, :, 0, 0].t().contiguous() for head in (model.head1, model.head2)]
            self.weights = [_refill(old, new) for old, new in zip(self.weights, fresh, strict=True)]
            self.head_biases = [_refill(old, head.bias) for old, head in zip(self.head_biases, (model.head1, model.head2), strict=True)]
            for i, conv in enumerate(self.convs):
                bias = conv.bias.expand(self.batch, -1)
                if model.class_bias is not None and cond is not None:
                    bias = bias + model.class_bias[i](cond)[:, :, 0, 0]
                self.biases[i].copy_(bias)
            self.image.zero_()
            flat = self.normalize(self.canvas).reshape(self.batch, self.channels, -1).transpose(1, 2)
            interior = self.image.view(self.batch, self.height + self.pad, self.grid_w, self.channels)
            interior[:, self.pad :, self.pad : self.pad + self.width].copy_(
                flat.reshape(self.batch, self.height, self.width, self.channels)
            )
            for cache in self.caches:
                cache.zero_()

    def _conv_at(self, i: int, source: Tensor, ix: dict[str, Tensor]) -> Tensor:
        window = source.index_select(1, ix[f"window{self.convs[i].kernel_size[0]}"])
        return torch.addmm(self.biases[i], window.view(self.batch, -1), self.weights[i])

    def compute(self, ix: dict[str, Tensor] | None = None) -> Tensor:
        ix = ix if ix is not None else self.indices()
        centre = ix["centre"]
        hidden = self._conv_at(0, self.image, ix)
        for i, cache in enumerate(self.caches):
            cache.index_copy_(1, centre, F.relu(hidden).unsqueeze(1))
            hidden = hidden + self._conv_at(i + 1, cache, ix)
        out = torch.addmm(self.head_biases[0], F.relu(hidden), self.weights[-2])
        out = torch.addmm(self.head_biases[1], F.relu(out), self.weights[-1])
        params = out.view(self.batch, self.channels, -1)
        if self.channels > 1:
            params = params.index_select(1, ix["channel"])
        return self.likelihood.probs(params)

    def _write_input(self, values: Tensor, ix: dict[str, Tensor]) -> None:
        self.image.view(self.batch, -1).index_copy_(1, ix["image"], self.normalize(values))


class GatedPixelCNNProgram(CachedProgram):
    """Cached Gated PixelCNN: the vertical stack a row at a time, the horizontal stack a position at a time.

    ``vertical[l]`` is the input of layer l's vertical convolution (the image for l = 0) on a zero-padded
    grid; once row r-1 of the image is drawn, :meth:`row_update` computes every layer's vertical stack at row
    r-1 (which the horizontal stack of row r sees through the one-row shift) and keeps ``v_to_h`` of it, plus
    the biases, in ``row_bias[l]``. ``rows[l]`` holds the horizontal stack's input of layer l on the current row.
    """

    spatial_conditions = True

    def __init__(self, model: ARModel, batch: int, canvas: Tensor | None = None) -> None:
        super().__init__(model, batch, canvas)
        if self.channels != 1:
            raise ModelError("the cached Gated PixelCNN sampler models single-channel images")
        dev, dt, h, w = self.device, self.dtype, self.height, self.width
        self.layers = list(model.layers)
        self.halves = [layer.v_conv.kernel // 2 for layer in self.layers]
        pad = max(self.halves) + 1
        self.pad = pad
        self.top = pad + 1  # grid row of image row 0; a scratch row at the bottom takes row -1's writes
        self.grid_h, self.grid_w = self.top + h + 1, w + 2 * pad
        ch = self.layers[0].h_out.out_channels
        self.hidden = ch
        steps = np.arange(self.total)
        rows, cols = steps // w, steps % w
        r = np.arange(h)
        self.tab_row = _index(rows, dev)
        self._step_fields.update(col=cols, col_grid=cols + pad, image=(rows + self.top) * self.grid_w + cols + pad)
        self.tab_above = [_index(np.stack([r - 1 - p + j + self.top for j in range(p + 1)], 1), dev) for p in self.halves]
        self.tab_write = _index(np.where(r > 0, r - 1 + self.top, self.grid_h - 1), dev)
        self.tab_above_row = _index(np.maximum(r - 1, 0), dev)  # row 0 has no row above: its result is dropped
        self.tab_has_above = torch.as_tensor((r > 0).astype(np.float32), device=dev).to(dt)
        p0 = self.halves[0]
        # Layer 0's horizontal input is the image itself, one column to the left (mask A), read from the grid.
        self._step_fields["first"] = np.stack(
            [(rows + self.top) * self.grid_w + cols - 1 - p0 + j + pad for j in range(p0 + 1)], 1
        )
        if len(set(self.halves[1:])) > 1:
            raise ModelError("the cached Gated PixelCNN sampler needs one kernel size for every layer after the first")
        self.half = self.halves[-1]  # of every layer after the first
        # Layers after the first read the previous columns of their input row (this one comes from the layer below).
        self._step_fields["previous"] = np.stack([cols - self.half + j + pad for j in range(self.half)] or [cols], 1)
        self._pack_steps()
        self.vertical = [
            torch.zeros(batch, layer.v_conv.conv.in_channels, self.grid_h, self.grid_w, device=dev, dtype=dt)
            for layer in self.layers
        ]
        # Stacked over layers (what the fused Triton step reads), used a layer at a time here.
        self.rows_all = torch.zeros(len(self.layers), batch, self.grid_w, ch, device=dev, dtype=dt)
        self.row_bias_all = torch.zeros(len(self.layers), batch, w, 2 * ch, device=dev, dtype=dt)
        self.rows = list(self.rows_all.unbind(0))
        self.row_bias = list(self.row_bias_all.unbind(0))
        self.class_bias = [torch.zeros(batch, 2 * ch, 1, 1, device=dev, dtype=dt) for _ in self.layers]
        self.column_bias = [torch.zeros(0, device=dev, dtype=dt) for _ in self.layers]
        self.h_weights = [torch.zeros(0, device=dev, dtype=dt) for _ in self.layers]
        self.previous_weights = torch.zeros(0, device=dev, dtype=dt)  # (L - 1, half * ch, 2ch)
        self.out_weights = [torch.zeros(0, device=dev, dtype=dt) for _ in self.layers]
        self.skip_weight = torch.zeros(0, device=dev, dtype=dt)
        self.skip_bias = torch.zeros(0, device=dev, dtype=dt)
        self.head_weights = [torch.zeros(0, device=dev, dtype=dt) for _ in range(2)]
        self.head_biases = [torch.zeros(0, device=dev, dtype=dt) for _ in range(2)]

    def refresh(self, cond: Tensor | None) -> None:
        model, w = self.model, self.width
        with torch.no_grad():
            features = cond
            if cond is not None and hasattr(model, "condition_features"):
                features = model.condition_features(cond, (self.height, self.width))
            for i, layer in enumerate(self.layers):
                weight = layer.h_conv.conv.weight[:, :, 0, :]  # (2ch, in, p + 1)
                self.h_weights[i] = _refill(self.h_weights[i], weight.permute(0, 2, 1).reshape(weight.shape[0], -1).t())
                self.out_weights[i] = _refill(self.out_weights[i], layer.h_out.weight[:, :, 0, 0].t())
                column = layer.h_conv.conv.bias[:, None].expand(-1, w).clone()
                if layer.first:
                    column[:, 0] = 0  # the shifted first layer sees nothing at column 0, not even its bias
                self.column_bias[i] = _refill(self.column_bias[i], column.t())
                bias = torch.zeros_like(self.class_bias[i])
                if layer.class_bias is not None and features is not None:
                    bias = bias + layer.class_bias(features)  # (B, 2ch, 1, 1), or (B, 2ch, H, W) if spatial
                if bias.shape[2:] != self.class_bias[i].shape[2:]:
                    self.graphs.clear()  # captured graphs read the old bias tensors: capture again
                self.class_bias[i] = _refill(self.class_bias[i], bias.expand(self.batch, -1, -1, -1))
            if len(self.layers) > 1:
                previous = torch.stack([w[: self.half * self.hidden] for w in self.h_weights[1:]])
                self.previous_weights = _refill(self.previous_weights, previous)
            skips = torch.cat([layer.skip.weight[:, :, 0, 0] for layer in self.layers], 1)
            self.skip_weight = _refill(self.skip_weight, skips.t())
            self.skip_bias = _refill(self.skip_bias, sum(layer.skip.bias for layer in self.layers))
            for i, head in enumerate((model.head1, model.head2)):
                self.head_weights[i] = _refill(self.head_weights[i], head.weight[:, :, 0, 0].t())
                self.head_biases[i] = _refill(self.head_biases[i], head.bias)
            for buffer in (*self.vertical, self.rows_all):
                buffer.zero_()
            top, pad = self.top, self.pad
            self.vertical[0][:, :, top : top + self.height, pad : pad + w].copy_(self.normalize(self.canvas))

    def row_update(self) -> None:
        row = self.tab_row.index_select(0, self.step)
        has_above = self.tab_has_above.index_select(0, row)
        write = self.tab_write.index_select(0, row)
        above = self.tab_above_row.index_select(0, row)
        pad, w = self.pad, self.width
        for i, layer in enumerate(self.layers):
            p = self.halves[i]
            window = self.vertical[i].index_select(2, _pick(self.tab_above[i], row))[:, :, :, pad - p : pad + w + p]
            v_pre = F.conv2d(window, layer.v_conv.conv.weight, layer.v_conv.conv.bias)  # (B, 2ch, 1, W)
            bias = self.class_bias[i]
            spatial = bias.shape[2] > 1  # a bias per position (an image condition), else one per image
            to_h = layer.v_to_h(v_pre * has_above) + (bias.index_select(2, row) if spatial else bias)
            self.row_bias[i].copy_(to_h[:, :, 0, :].transpose(1, 2) + self.column_bias[i])
            if i + 1 < len(self.layers):
                a, b = (v_pre + (bias.index_select(2, above) if spatial else bias)).chunk(2, 1)
                self.vertical[i + 1][:, :, :, pad : pad + w].index_copy_(2, write, torch.tanh(a) * torch.sigmoid(b))

    def compute(self, ix: dict[str, Tensor] | None = None) -> Tensor:
        ix = ix if ix is not None else self.indices()
        last = len(self.layers) - 1
        row_bias = self.row_bias_all.index_select(2, ix["col"])[:, :, 0]  # (L, B, 2ch): every layer's at once
        window = self.vertical[0].view(self.batch, -1).index_select(1, ix["first"])
        pre = torch.addmm(row_bias[0], window, self.h_weights[0])
        if last:
            # Every later layer's taps on the previous columns at once; its current column is added in the loop.
            before = row_bias[1:]
            if self.half:
                previous = self.rows_all[1:].index_select(2, ix["previous"]).view(last, self.batch, -1)
                before = torch.baddbmm(before, previous, self.previous_weights)
        current, gates, outputs = self.half * self.hidden, [], []
        h = window  # unused by layer 0
        for i, layer in enumerate(self.layers):
            if i:
                pre = torch.addmm(before[i - 1], h, self.h_weights[i][current:])
            pre[:, : self.hidden].tanh_()
            gated = F.glu(pre, 1)  # tanh(a) * sigmoid(b) in two kernels instead of three, the same bits
            gates.append(gated)
            if i < last:
                h_out = torch.addmm(layer.h_out.bias, gated, self.out_weights[i])
                h = h_out if layer.first else h_out + h  # the residual: this layer's input at this column
                outputs.append(h)
        if outputs:
            self.rows_all[1:].index_copy_(2, ix["col_grid"], torch.stack(outputs).unsqueeze(2))
        skip = torch.addmm(self.skip_bias, torch.cat(gates, 1), self.skip_weight)
        out = torch.addmm(self.head_biases[0], F.relu(skip), self.head_weights[0])
        out = torch.addmm(self.head_biases[1], F.relu(out), self.head_weights[1])
        return self.likelihood.probs(out.view(self.batch, 1, -1))

    def _write_input(self, values: Tensor, ix: dict[str, Tensor]) -> None:
        self.vertical[0].view(self.batch, -1).index_copy_(1, ix["image"], self.normalize(values))


def _refill(old: Tensor, new: Tensor) -> Tensor:
    """Copy ``new`` into ``old`` in place when the shapes agree (CUDA graphs keep their addresses)."""
    new = new.detach()
    if old.shape == new.shape:
        return old.copy_(new)
    return new.contiguous().clone()


#: The families the cached programs know, each a model class and the program that runs it, in the order they
#: registered. Each family's own module registers it (:func:`register_family`), so that this engine never
#: imports the models it serves.
_FAMILIES: list[tuple[type[ARModel], type[CachedProgram]]] = []


def register_family(family: type[ARModel], program: type[CachedProgram]) -> None:
    """Run the models of ``family`` (and its subclasses that keep its forward pass) with ``program``."""
    if all(known is not family for known, _ in _FAMILIES):
        _FAMILIES.append((family, program))


def _family_of(model: ARModel) -> tuple[type[ARModel], type[CachedProgram]] | None:
    # The most derived family first, should one family subclass another.
    matches = [(family, program) for family, program in _FAMILIES if isinstance(model, family)]
    return max(matches, key=lambda match: len(match[0].__mro__), default=None)


def build_program(model: ARModel, batch: int, canvas: Tensor | None = None) -> CachedProgram:
    """The cached program of a PixelCNN or Gated PixelCNN for ``batch`` images (on ``canvas``, if given)."""
    found = _family_of(model)
    if found is None:
        raise ModelError(f"no cached sampler for {type(model).__name__}")
    with torch.inference_mode(False), torch.no_grad():
        return found[1](model, batch, canvas)


def supports_cached(model: ARModel) -> bool:
    """Whether ``model`` is one of the families the cached samplers know, with their own forward pass.

    A subclass that changes ``forward`` (another conditioning, another layer) is not: it samples naively.
    A Gated PixelCNN subclass may still opt in by defining ``condition_features(cond, (H, W))``, with the
    promise that its forward pass is the Gated PixelCNN's given those features as the condition (each layer's
    ``class_bias`` maps them to a bias, per image or per position: an image condition, super-resolution).
    """
    found = _family_of(model)
    if found is None:
        return False
    family, program = found
    spatial = program.spatial_conditions and callable(getattr(model, "condition_features", None))
    return type(model).forward is family.forward or spatial


# -- engines: how the per-row update is run ----------------------------------------------------------------------

_SHARED: weakref.WeakKeyDictionary[ARModel, OrderedDict[tuple, CachedProgram]] = weakref.WeakKeyDictionary()
_SHARED_LOCK = threading.Lock()
#: How many programs (batch sizes) a model keeps, and captured graphs (temperatures) a program keeps: each
#: holds device memory, and a temperature slider or a changing batch size must not pile them up.
KEEP_PROGRAMS = 4
KEEP_GRAPHS = 4


def shared_program(model: ARModel, batch: int) -> CachedProgram:
    """The program kept with ``model`` for ``batch`` images (CUDA graphs are captured once, then replayed)."""
    key = (batch, str(model.device), model._dtype())
    with _SHARED_LOCK:
        programs = _SHARED.setdefault(model, OrderedDict())
        if key not in programs:
            programs[key] = build_program(model, batch)
            while len(programs) > KEEP_PROGRAMS:
                programs.popitem(last=False)
        programs.move_to_end(key)
        return programs[key]


def _row_function(program: CachedProgram, engine: str, temperature: float, with_known: bool) -> Callable[[], None]:
    """The function that runs one row: eager, or replaying a CUDA graph captured on first use."""
    if engine == "eager":
        return lambda: program.run_row(temperature, with_known)
    if engine == "triton" and (with_known or not _fused_supported(program)):
        engine = "graph"  # what the fused step does not cover
    key = (engine, temperature, with_known)
    graph = program.graphs.get(key)
    if graph is not None:
        program.graphs.move_to_end(key)
    else:
        if engine == "compile":
            row = _compiled_row(program, temperature, with_known)
        elif engine == "triton":
            from plugins.fast_gated_triton import fused_row

            row = fused_row(program, temperature)
        else:
            row = lambda: program.run_row(temperature, with_known)  # noqa: E731
        graph = _capture(program, row)
        program.graphs[key] = graph
        while len(program.graphs) > KEEP_GRAPHS:
            program.graphs.popitem(last=False)
    return graph.replay


def _fused_supported(program: CachedProgram) -> bool:
    if not isinstance(program, GatedPixelCNNProgram):
        return False
    from plugins import fast_gated_triton

    return fast_gated_triton.supports(program)


def _compiled_row(program: CachedProgram, temperature: float, with_known: bool) -> Callable[[], None]:
    """A row whose step and row update are compiled by ``torch.compile`` (fused kernels, no graph breaks)."""
    step = torch.compile(lambda: program.draw_step(temperature, with_known), dynamic=False, fullgraph=True)
    update = torch.compile(program.row_update, dynamic=False, fullgraph=True)

    def row() -> None:
        update()
        for _ in range(program.steps_per_row):
            step()

    return row


def _capture(program: CachedProgram, row: Callable[[], None]) -> torch.cuda.CUDAGraph:
    """Warm ``row`` up on a side stream (compiling it if needed), then capture it as a CUDA graph.

    The warm-up runs two rows: the caller resets the program afterwards.
    """
    stream = torch.cuda.Stream(device=program.device)
    stream.wait_stream(torch.cuda.current_stream(program.device))
    with torch.cuda.stream(stream):
        for _ in range(2):
            row()
    torch.cuda.current_stream(program.device).wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        row()
    return graph


# -- the sampler -----------------------------------------------------------------------------------------------


class CachedSampler(Sampler):
    """The cached sampler of a PixelCNN or Gated PixelCNN (see the module's docstring).

    Step by step (:meth:`probs`, :meth:`commit`: the live view) it runs eagerly on its own caches.
    :meth:`sample_to_end` (headless sampling) runs whole rows with ``engine``: ``eager``, or on CUDA
    ``graph`` (a CUDA graph per row, captured once per model and batch size) or ``compile``.
    """

    def __init__(
        self,
        model: ARModel,
        x: Tensor,
        cond: Tensor | None = None,
        ordering: Ordering | None = None,
        engine: str | None = None,
    ) -> None:
        super().__init__(model, x, cond, ordering)
        if not self.ordering.is_raster():
            raise ModelError("cached sampling follows the raster order")
        self.engine = resolve_engine(engine or default_engine(), model.device)
        self._program: CachedProgram | None = None
        self._next = 0  # the first step whose activations are not computed yet

    def _own_program(self) -> CachedProgram:
        if self._program is None:
            self._program = build_program(self.model, self.x.shape[0], self.x)
            self._program.reset(self.x, self.cond)
        return self._program

    def probs(self, step: int) -> Tensor:
        program = self._own_program()
        if step + 1 < self._next:
            raise ModelError("the cached sampler only goes forward; start a new run to go back")
        for index in range(min(self._next, step), step + 1):
            program.step.fill_(index)
            if index % program.steps_per_row == 0:
                program.row_update()
            probs = program.compute()
        self._next = step + 1
        self.network_calls += 1
        return probs

    def commit(self, step: int, values: Tensor) -> None:
        program = self._own_program()
        program.step.fill_(step)
        program.commit(values.reshape(values.shape[0], 1))

    def sample_to_end(
        self, uniforms: Tensor, temperature: float, known: Tensor | None = None, known_values: Tensor | None = None
    ) -> None:
        """Draw every step with ``uniforms`` ``(B, D)`` (one per dimension, inverse CDF), writing ``self.x``.

        Equivalent to running :meth:`probs`, the draw and :meth:`commit` for every step, with no host
        synchronisation until the end (where non-finite probabilities raise :class:`ModelError`).
        """
        shared = self.engine != "eager"
        program = shared_program(self.model, self.x.shape[0]) if shared else self._own_program()
        with_known = known is not None
        with program.lock:
            program.reset(self.x, self.cond)
            if shared:
                _row_function(program, self.engine, float(temperature), with_known)  # captured once, then kept
                program.reset(self.x, self.cond)
            program.uniforms.copy_(uniforms)
            if with_known:
                program.known.copy_(known.to(torch.bool))
                program.known_values.copy_(known_values)
            row = _row_function(program, self.engine, float(temperature), with_known)
            for _ in range(program.height):
                row()
            self.x.copy_(program.canvas)
            finite = bool(program.finite & (program.nonfinite == 0).all())
        self._next = len(self.plan)
        self.network_calls += len(self.plan)
        if not finite:
            raise ModelError(f"{self.model.spec.title} returned NaN or infinite probabilities while sampling")


def make_cached_sampler(
    model: ARModel,
    x: Tensor,
    cond: Tensor | None = None,
    ordering: Ordering | None = None,
    engine: str | None = None,
) -> Sampler:
    """The cached sampler of ``model`` (naive re-evaluation for a subclass that changes the forward pass)."""
    if not supports_cached(model):
        return NaiveSampler(model, x, cond, ordering)
    return CachedSampler(model, x, cond, ordering, engine)
