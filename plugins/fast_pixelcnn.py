"""Gated PixelCNN's cached program (the row-wise scheme of Fast PixelCNN), and the cached-sampling names
that plugins import from here.

The engine, the sampler and the programs of networks declared in the core's masked layers live in the core
(:mod:`app.core.cached_sampling`, :mod:`app.core.cached_engine`); PixelCNN runs on it. Gated PixelCNN's
vertical stack sees the whole row it is on (its shifted convolutions are no masked layer of the engine), so
its program is written by hand:

* the vertical stack at row r sees rows up to r, so it is computed a whole row at a time, once that row is
  complete (:meth:`GatedPixelCNNProgram.row_update`);
* the horizontal stack is computed one position per step from the current row and the vertical stack's row
  above.

On CUDA, the binary model's step may run as one fused Triton kernel (:mod:`plugins.fast_gated_triton`).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from app.core.cached_engine import CachedProgram, _index, _pick, _refill
from app.core.cached_sampling import (  # noqa: F401 - the names plugins and scripts import from here
    _SHARED,
    ENGINE_VARIABLE,
    ENGINES,
    KEEP_GRAPHS,
    KEEP_PROGRAMS,
    CachedSampler,
    build_program,
    default_engine,
    make_cached_sampler,
    register_family,
    resolve_engine,
    shared_program,
    supports_cached,
)
from app.core.errors import ModelError
from app.core.model import ARModel


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

    def fused_supported(self) -> bool:
        from plugins import fast_gated_triton

        return fast_gated_triton.supports(self)

    def fused_row(self, temperature: float):
        from plugins.fast_gated_triton import fused_row

        return fused_row(self, temperature)
