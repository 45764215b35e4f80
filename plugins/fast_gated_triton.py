"""One fused Triton kernel per sampling step of the cached Gated PixelCNN (engine ``triton``).

Eagerly, or replayed from a CUDA graph, a cached step is still some ninety small kernels (ten gated layers of
matrix products, gates, residuals and writes, then the head, the draw and the commit), and on a GPU their
launches, not their arithmetic, set the pace. Here the whole horizontal stack of a step (every layer), the
head, the inverse-CDF draw and the commit of the drawn value are one kernel: each program takes a block of
images through the layers with its activations in registers, reading only the previous columns of each
layer's row from memory. The vertical stack stays a row-wise update (:meth:`GatedPixelCNNProgram.row_update`).

Covers binary images with a Bernoulli head, without completion; anything else uses the ``graph`` engine.
Matrix products run in full float32 (``input_precision="ieee"``), as the naive network does with TF32 off.
"""

from __future__ import annotations

import torch

try:  # Triton is optional: without it (or without CUDA) the other engines serve.
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - depends on the installation
    triton = None
    tl = None


def available() -> bool:
    return triton is not None


def supports(program) -> bool:
    """Whether the fused step covers this program (binary, Bernoulli head, power-of-two widths)."""
    from app.core.likelihoods import Bernoulli

    def power_of_two(n: int) -> bool:
        return n >= 16 and n & (n - 1) == 0

    layers = program.layers
    return (
        available()
        and isinstance(program.likelihood, Bernoulli)
        and len(layers) >= 2
        and len({half for half in program.halves[1:]}) == 1
        and power_of_two(program.hidden)
        and power_of_two(program.model.head1.out_channels)
    )


if triton is not None:

    @triton.jit
    def _gated_step(
        step_ptr, canvas_ptr, image_ptr, uniforms_ptr, rows_ptr, row_bias_ptr, nonfinite_ptr,
        w0_ptr, wh_ptr, wo_ptr, bo_ptr, ws_ptr, bs_ptr, h1_ptr, b1_ptr, h2_ptr, b2_ptr,
        batch, inv_temperature, greedy,
        W: tl.constexpr, L: tl.constexpr, CH: tl.constexpr, HD: tl.constexpr, P0: tl.constexpr,
        P: tl.constexpr, PAD: tl.constexpr, TOP: tl.constexpr, GRID_W: tl.constexpr, GRID_H: tl.constexpr,
        D: tl.constexpr, BLOCK_B: tl.constexpr,
    ):
        pid = tl.program_id(0)
        b = pid * BLOCK_B + tl.arange(0, BLOCK_B)
        live = b < batch
        s = tl.load(step_ptr)
        r = s // W
        c = s % W
        k = tl.arange(0, CH)
        kk = tl.arange(0, CH)[:, None]
        n = tl.arange(0, CH)[None, :]
        both = live[:, None] & (k[None, :] < CH)
        # Row biases (v_to_h of the row above, class and column biases): (L, B, W, 2CH).
        rb = row_bias_ptr + (b[:, None] * W + c) * (2 * CH) + k[None, :]
        # Layer 0: the image, one column to the left (mask A), P0 + 1 taps, one input channel.
        acc_a = tl.load(rb, mask=both, other=0.0)
        acc_b = tl.load(rb + CH, mask=both, other=0.0)
        image_row = image_ptr + b * (GRID_H * GRID_W) + (r + TOP) * GRID_W
        for j in tl.static_range(P0 + 1):
            x = tl.load(image_row + c - 1 - P0 + j + PAD, mask=live, other=0.0)
            acc_a += x[:, None] * tl.load(w0_ptr + j * 2 * CH + k)[None, :]
            acc_b += x[:, None] * tl.load(w0_ptr + j * 2 * CH + CH + k)[None, :]
        gated = (2.0 * tl.sigmoid(2.0 * acc_a) - 1.0) * tl.sigmoid(acc_b)
        skip = tl.dot(gated, tl.load(ws_ptr + kk * CH + n), input_precision="ieee")
        h = tl.dot(gated, tl.load(wo_ptr + kk * CH + n), input_precision="ieee") + tl.load(bo_ptr + k)[None, :]
        rows_cell = (b[:, None] * GRID_W + c + PAD) * CH + k[None, :]
        tl.store(rows_ptr + 1 * (batch * GRID_W * CH) + rows_cell, h, mask=both)
        for i in tl.static_range(1, L):
            layer_rb = rb + i * (batch * W * 2 * CH)
            acc_a = tl.load(layer_rb, mask=both, other=0.0)
            acc_b = tl.load(layer_rb + CH, mask=both, other=0.0)
            weights = wh_ptr + (i - 1) * ((P + 1) * CH * 2 * CH)
            for j in tl.static_range(P):  # the previous columns of this layer's input row
                cell = (b[:, None] * GRID_W + c - P + j + PAD) * CH + k[None, :]
                x = tl.load(rows_ptr + i * (batch * GRID_W * CH) + cell, mask=both, other=0.0)
                tap = weights + j * (CH * 2 * CH) + kk * (2 * CH) + n
                acc_a += tl.dot(x, tl.load(tap), input_precision="ieee")
                acc_b += tl.dot(x, tl.load(tap + CH), input_precision="ieee")
            tap = weights + P * (CH * 2 * CH) + kk * (2 * CH) + n  # the current column: still in registers
            acc_a += tl.dot(h, tl.load(tap), input_precision="ieee")
            acc_b += tl.dot(h, tl.load(tap + CH), input_precision="ieee")
            gated = (2.0 * tl.sigmoid(2.0 * acc_a) - 1.0) * tl.sigmoid(acc_b)
            skip += tl.dot(gated, tl.load(ws_ptr + i * CH * CH + kk * CH + n), input_precision="ieee")
            if i < L - 1:
                out = tl.dot(gated, tl.load(wo_ptr + i * CH * CH + kk * CH + n), input_precision="ieee")
                h = h + out + tl.load(bo_ptr + i * CH + k)[None, :]
                tl.store(rows_ptr + (i + 1) * (batch * GRID_W * CH) + rows_cell, h, mask=both)
        skip = tl.maximum(skip + tl.load(bs_ptr + k)[None, :], 0.0)
        m = tl.arange(0, HD)
        hidden = tl.dot(skip, tl.load(h1_ptr + kk * HD + m[None, :]), input_precision="ieee")
        hidden = tl.maximum(hidden + tl.load(b1_ptr + m)[None, :], 0.0)
        logit = tl.sum(hidden * tl.load(h2_ptr + m)[None, :], axis=1) + tl.load(b2_ptr)
        bad = live & ((logit != logit) | (tl.abs(logit) == float("inf")))
        tl.store(nonfinite_ptr + b * 0, tl.full([BLOCK_B], 1, tl.int32), mask=bad)
        # The draw of app.core.sampling.draw for K = 2: value 1 where u > p0 / (p0 + p1), in float64.
        p1 = tl.sigmoid(logit * inv_temperature).to(tl.float64)
        p0 = tl.sigmoid(-logit * inv_temperature).to(tl.float64)
        u = tl.load(uniforms_ptr + b * D + s, mask=live, other=0.0)
        drawn = tl.where(greedy != 0, (logit > 0.0).to(tl.float32), (p0 / (p0 + p1) < u).to(tl.float32))
        tl.store(canvas_ptr + b * D + s, drawn, mask=live)
        tl.store(image_row + c + PAD, 2.0 * drawn - 1.0, mask=live)


class FusedGatedStep:
    """The packed weights of a :class:`GatedPixelCNNProgram` and the launch of its fused step."""

    def __init__(self, program) -> None:
        self.program = program
        self.block = 16
        self.pack()

    def pack(self) -> None:
        """(Re)pack the weights from the program, in place: a captured CUDA graph keeps their addresses."""
        p = self.program
        ch, layers = p.hidden, len(p.layers)
        fresh = {
            "w0": p.h_weights[0],  # (P0 + 1, 2CH)
            "wh": torch.stack([w.view(-1, ch, 2 * ch) for w in p.h_weights[1:]]),
            "wo": torch.stack(p.out_weights[: layers - 1]),
            "bo": torch.stack([layer.h_out.bias for layer in p.layers[: layers - 1]]),
            "ws": p.skip_weight.view(layers, ch, ch),
            "h2": p.head_weights[1].reshape(-1),
        }
        with torch.no_grad():
            for name, value in fresh.items():
                old = getattr(self, name, None)
                if old is not None and old.shape == value.shape:
                    old.copy_(value)
                else:
                    setattr(self, name, value.detach().contiguous().clone())

    def launch(self, temperature: float) -> None:
        p = self.program
        greedy = temperature <= 0
        inv_t = 1.0 if greedy else 1.0 / temperature
        grid = (triton.cdiv(p.batch, self.block),)
        _gated_step[grid](
            p.step, p.canvas, p.vertical[0], p.uniforms, p.rows_all, p.row_bias_all, p.nonfinite,
            self.w0, self.wh, self.wo, self.bo, self.ws, p.skip_bias, p.head_weights[0], p.head_biases[0],
            self.h2, p.head_biases[1], p.batch, inv_t, int(greedy),
            W=p.width, L=len(p.layers), CH=p.hidden, HD=p.head_weights[0].shape[1], P0=p.halves[0],
            P=p.halves[1], PAD=p.pad, TOP=p.top, GRID_W=p.grid_w, GRID_H=p.grid_h, D=p.total, BLOCK_B=self.block,
        )


def fused_row(program, temperature: float):
    """One row as the ``triton`` engine runs it: the vertical update, then one fused kernel per step."""
    if program.fused is None:
        program.fused = FusedGatedStep(program)
    step = program.fused

    def row() -> None:
        program.row_update()
        for _ in range(program.steps_per_row):
            step.launch(temperature)
            program.step.add_(1)

    return row
