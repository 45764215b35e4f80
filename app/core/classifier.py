"""An MNIST digit classifier used only for measuring: does a sample read as a digit, and as which one?

It is not an autoregressive model and never appears among the checkpoints: the ``lessons`` command uses it to
check that a class-conditional model draws the digit asked for, that super-resolution keeps the digit of its
7x7 condition, and that samples read as digits with confidence; the Sample view uses it to label samples.

It is trained on MNIST in the three forms the app's models see (256 grey levels, thresholded at 0.5 and
binarized stochastically), so that one network reads samples of any of them. Images of another size (the
56x56 multiscale data) are average-pooled to 28x28 first.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from app.core.errors import CheckpointError
from app.core.files import atomic_path

#: Where the shipped classifier lives: beside the checkpoints, in a folder the checkpoint list never reads.
SHIPPED_CLASSIFIER = Path(__file__).resolve().parents[2] / "checkpoints" / "measuring" / "mnist-digit-classifier"
FORMAT = "ar-explorer-digit-classifier"


class DigitClassifier(nn.Module):
    """Two 5x5 convolutions with max-pooling, then two dense layers: about 0.2 M parameters."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        self.conv1 = nn.Conv2d(1, width, 5, padding=2)
        self.conv2 = nn.Conv2d(width, 2 * width, 5, padding=2)
        self.fc1 = nn.Linear(2 * width * 49, 128)
        self.fc2 = nn.Linear(128, 10)
        self.dropout = nn.Dropout(0.25)

    def forward(self, x: Tensor) -> Tensor:
        """Logits ``(N, 10)`` of images ``(N, 1, 28, 28)`` with values in [0, 1] (1 = ink)."""
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)
        h = self.dropout(F.relu(self.fc1(h.flatten(1))))
        return self.fc2(h)


@dataclass
class Classification:
    """What the classifier reads in each image: its label, the probability of that label, all ten."""

    labels: np.ndarray  # (N,) int
    confidence: np.ndarray  # (N,) float, the probability of the label read
    probs: np.ndarray  # (N, 10)


def as_classifier_input(images: np.ndarray | Tensor, num_values: int) -> Tensor:
    """Images ``(N, 1, H, W)`` (or ``(N, H, W)``) of values ``0 .. K-1`` to the classifier's 28x28 in [0, 1].

    Colour images (3 channels) are read by their brightest channel; sizes that are a multiple of 28 are
    average-pooled to 28x28.
    """
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images).float()
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), not shape {tuple(x.shape)}")
    x = x / max(1, num_values - 1)
    if x.shape[1] != 1:
        x = x.amax(dim=1, keepdim=True)
    h, w = x.shape[-2:]
    if (h, w) != (28, 28):
        if h % 28 or w % 28 or h != w:
            raise ValueError(f"the digit classifier reads 28x28 images (or multiples), not {h}x{w}")
        x = F.avg_pool2d(x, h // 28)
    return x.clamp(0, 1)


def classify(model: DigitClassifier, images: np.ndarray | Tensor, num_values: int, batch_size: int = 500) -> Classification:
    """Read every image; the classifier runs on the CPU in float32 with autograd off."""
    x = as_classifier_input(images, num_values)
    model.eval()
    probs = []
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            probs.append(F.softmax(model(x[start : start + batch_size]), dim=1))
    p = torch.cat(probs).numpy() if probs else np.zeros((0, 10), np.float32)
    labels = p.argmax(1) if len(p) else np.zeros(0, np.int64)
    return Classification(labels, p[np.arange(len(p)), labels] if len(p) else np.zeros(0), p)


def save_classifier(model: DigitClassifier, path: str | Path, meta: dict) -> None:
    """Weights as safetensors and a JSON record beside them, each written atomically."""
    path = Path(path)
    weights, record = path.with_suffix(".safetensors"), path.with_suffix(".json")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    full = {"format": FORMAT, "width": model.width, **meta}
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata={"ar_explorer": json.dumps(full)})
    with atomic_path(record) as tmp:
        Path(tmp).write_text(json.dumps(full, indent=1) + "\n")


def load_classifier(path: str | Path | None = None) -> tuple[DigitClassifier, dict]:
    """The shipped classifier (or the one at ``path``) and its record; a clear error if there is none."""
    path = Path(path) if path is not None else SHIPPED_CLASSIFIER
    weights, record = path.with_suffix(".safetensors"), path.with_suffix(".json")
    if not weights.is_file() or not record.is_file():
        raise CheckpointError(f"no digit classifier at {weights} (train one with scripts/train_classifier.py)")
    try:
        meta = json.loads(record.read_text())
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r}")
        model = DigitClassifier(int(meta["width"]))
        model.load_state_dict(load_file(str(weights)), strict=True)
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: one message
        raise CheckpointError(f"{weights.name} is not a digit classifier this app can read: {exc}") from None
    model.eval()
    return model, meta


def _binarize(x: Tensor, generator: torch.Generator) -> Tensor:
    """One of the three forms, chosen per image: grey, thresholded at 0.5, stochastically binarized."""
    kind = torch.randint(0, 3, (x.shape[0], 1, 1, 1), generator=generator)
    threshold = (x > 0.5).float()
    stochastic = (torch.rand(x.shape, generator=generator) < x).float()
    return torch.where(kind == 0, x, torch.where(kind == 1, threshold, stochastic))


def train_classifier(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    epochs: float = 4.0,
    batch_size: int = 128,
    lr: float = 2e-3,
    seed: int = 0,
    width: int = 32,
    on_progress: Callable[[float, float], None] | None = None,
) -> tuple[DigitClassifier, dict]:
    """Train on grey MNIST ``(N, 28, 28)`` uint8 with labels, each batch in a random mix of the three forms,
    with small random shifts (up to 2 pixels). Returns the model and a record of the run."""
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = DigitClassifier(width)
    images = torch.as_tensor(train_images).float()[:, None] / 255.0
    labels = torch.as_tensor(train_labels).long()
    n = images.shape[0]
    steps = int(math.ceil(epochs * n / batch_size))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    start = time.perf_counter()
    perm, position = torch.randperm(n, generator=generator), 0
    model.train()
    for step in range(steps):
        if position + batch_size > n:
            perm, position = torch.randperm(n, generator=generator), 0
        index = perm[position : position + batch_size]
        position += batch_size
        x = _binarize(images[index], generator)
        dx, dy = (int(v) for v in torch.randint(-2, 3, (2,), generator=generator))
        x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = F.cross_entropy(model(x), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if on_progress is not None and step % 50 == 0:
            on_progress(step / steps, float(loss.detach()))
    model.eval()
    record = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "train_images": int(n), "wall_time_s": time.perf_counter() - start}
    return model, record


def accuracy_by_form(model: DigitClassifier, images: np.ndarray, labels: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Accuracy on grey MNIST ``(N, 28, 28)`` uint8 in each of the three forms."""
    grey = images.astype(np.float32) / 255.0
    rng = np.random.default_rng(seed)
    forms = {
        "grey": (grey, 1.0),
        "threshold": ((grey > 0.5).astype(np.float32), 1.0),
        "stochastic": ((rng.random(grey.shape) < grey).astype(np.float32), 1.0),
    }
    out = {}
    for name, (x, scale) in forms.items():
        got = classify(model, x[:, None] * scale, 2).labels
        out[name] = float((got == labels).mean())
    return out
