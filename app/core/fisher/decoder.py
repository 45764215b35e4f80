"""Decoders: from a point of an embedding space back to an image, trained on the embeddings of training images.

:class:`EmbeddingDecoder` is an MLP whose output is the mean intensity of every pixel: a straight line between
two embeddings becomes a strip of images by decoding its points. Its reconstruction error is the binary
cross-entropy of the images under those means, in nats per image (the NLL of a factorised Bernoulli decoder).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from app.core.fisher.errors import FisherError
from app.core.fisher.progress import EmbedProgress


class EmbeddingDecoder(nn.Module):
    """An MLP from an embedding to the mean intensity (in [0, 1]) of every dimension of an image."""

    def __init__(self, in_dim: int, shape: tuple[int, int, int], hidden: int = 256, dropout: float = 0.0) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.dropout = float(dropout)  # of the embedding's numbers, while training
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, int(np.prod(shape))),
        )

    @property
    def in_dim(self) -> int:
        return self.net[0].in_features

    @property
    def hidden(self) -> int:
        return self.net[0].out_features

    def forward(self, z: Tensor) -> Tensor:
        """Logits ``(B, C, H, W)``; ``sigmoid`` of them is the decoded image."""
        z = F.dropout(z, self.dropout, self.training) if self.dropout else z
        return self.net(z).reshape(z.shape[0], *self.shape)

    def decode(self, z: np.ndarray | Tensor) -> np.ndarray:
        """``(B, C, H, W)`` float32 intensities in [0, 1]."""
        device = next(self.parameters()).device
        with torch.no_grad():
            return torch.sigmoid(self(torch.as_tensor(np.asarray(z), dtype=torch.float32, device=device))).cpu().numpy()


def intensity_targets(images: np.ndarray, num_values: int) -> Tensor:
    """Images of values ``0 .. K-1`` as float32 intensities in [0, 1]."""
    return torch.as_tensor(np.asarray(images), dtype=torch.float32) / (num_values - 1)


def reconstruction_nats(decoder: EmbeddingDecoder, z: Tensor, targets: Tensor) -> float:
    """Mean binary cross-entropy of the decoder's reconstructions, in nats per image."""
    with torch.no_grad():
        loss = F.binary_cross_entropy_with_logits(decoder(z), targets, reduction="sum")
    return float(loss) / max(1, z.shape[0])


@dataclass
class DecoderTraining:
    """How a decoder is trained: its size, the optimiser, the share of pairs held out to choose the best epoch."""

    hidden: int = 256
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    dropout: float = 0.2
    valid_fraction: float = 0.1
    seed: int = 0


def train_decoder_steps(
    embeddings: np.ndarray,
    images: np.ndarray,
    num_values: int,
    cfg: DecoderTraining,
    stage: str = "decoder",
    should_stop: Callable[[], bool] = lambda: False,
    device: torch.device | str = "cpu",
) -> Iterator[EmbedProgress]:
    """Train an :class:`EmbeddingDecoder` from standardised ``embeddings`` to ``images``, one event per epoch.

    A ``valid_fraction`` of the pairs is held out; the decoder with the best held-out reconstruction (nats per
    image) is kept. The last event's ``result`` is ``(decoder, history)``.
    """
    torch.manual_seed(cfg.seed)
    z = torch.as_tensor(np.asarray(embeddings), dtype=torch.float32, device=device)
    y = intensity_targets(images, num_values).to(device)
    n = z.shape[0]
    if n < 2:
        raise FisherError("a decoder needs at least two training images")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).to(device)
    n_valid = max(1, int(round(n * cfg.valid_fraction)))
    valid, train = order[:n_valid], order[n_valid:]
    decoder = EmbeddingDecoder(z.shape[1], tuple(images.shape[1:]), cfg.hidden, cfg.dropout).to(device)
    optimizer = torch.optim.AdamW(decoder.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    best, best_state, history, start = math.inf, None, [], time.perf_counter()
    shuffler = torch.Generator().manual_seed(cfg.seed + 1)
    for epoch in range(cfg.epochs):
        if should_stop():
            break
        decoder.train()
        shuffled = train[torch.randperm(train.numel(), generator=shuffler).to(device)]
        for begin in range(0, shuffled.numel(), cfg.batch_size):
            index = shuffled[begin : begin + cfg.batch_size]
            loss = F.binary_cross_entropy_with_logits(decoder(z[index]), y[index], reduction="sum") / index.numel()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        decoder.eval()
        held_out = reconstruction_nats(decoder, z[valid], y[valid])
        history.append({"epoch": epoch + 1, "valid_nats": held_out, "train_nats": float(loss.detach())})
        if held_out < best:
            best, best_state = held_out, {k: v.clone() for k, v in decoder.state_dict().items()}
        yield EmbedProgress(stage, epoch + 1, cfg.epochs, f"held-out reconstruction {held_out:.1f} nats/image",
                            time.perf_counter() - start)
    if best_state is not None:
        decoder.load_state_dict(best_state)
    decoder = decoder.cpu().eval()
    yield EmbedProgress(stage, cfg.epochs, cfg.epochs, "done", time.perf_counter() - start, (decoder, history))


__all__ = ["DecoderTraining", "EmbeddingDecoder", "intensity_targets", "reconstruction_nats", "train_decoder_steps"]
