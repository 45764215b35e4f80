"""Fisher scores: an embedding space for an autoregressive model (Yan, Ho & Abbeel, 2019).

An autoregressive model has no latent space, but every image ``x`` has a Fisher score, the gradient of its
log-likelihood with respect to the parameters, ``grad_theta log p_theta(x)``: how the model would change to make
``x`` more likely. Images that look alike to the model have similar scores. Here:

1. per-example scores are computed with ``torch.func`` (``vmap`` of ``grad``; a loop where that is faster or not
   supported), reduced by a very sparse random projection (Li, Hastie & Church, 2006) to ``dim`` numbers and
   standardised with the mean and standard deviation of the training set;
2. the paper's baseline embeds an image by the network's mean hidden activations (each layer's output averaged
   over positions), projected and standardised the same way;
3. a small decoder per space (an MLP, trained on the embeddings of training images to reconstruct them) maps any
   point of the space back to an image, so that a straight line between two embeddings becomes a strip of
   images; pixel space (a cross-fade) is the third strip, and the nearest reference test images of each point
   in Fisher space show what it resembles.

Everything learned is stored beside the checkpoint as ``NAME.fisher-decoder.safetensors`` + ``.json`` (weights,
statistics, reference embeddings and images; no pickle), tied to the SHA-256 of the checkpoint's weights.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from app.core.errors import ARExplorerError, CheckpointError
from app.core.files import atomic_path, atomic_write_text
from app.core.model import ARModel

DECODER_SUFFIX = ".fisher-decoder"
FORMAT = "ar-explorer-fisher-space"


class FisherError(ARExplorerError):
    """Fisher scores cannot be computed for this model, or a stored Fisher space does not fit it."""


@dataclass(frozen=True)
class FisherSettings:
    """How embeddings are computed.

    ``dim``: size of the random projection (both spaces); ``seed``: the projection's seed; ``method``:
    per-example gradients by ``"vmap"``, ``"loop"`` or ``"auto"`` (vmap on a GPU, a loop on the CPU, where it
    measured faster); ``batch_size``: images per chunk.
    """

    dim: int = 256
    seed: int = 0
    method: str = "auto"
    batch_size: int = 32


# -- projection -----------------------------------------------------------------------------------------------


class SparseProjection:
    """A very sparse random projection from ``num_inputs`` to ``dim`` numbers, rebuilt from its seed.

    Each output sums about ``sqrt(num_inputs)`` randomly chosen inputs with random signs, scaled so that
    squared norms are preserved on average (Johnson-Lindenstrauss): the full ``dim x num_inputs`` matrix is never
    stored, only its ``dim * sqrt(num_inputs)`` non-zeros.
    """

    def __init__(self, num_inputs: int, dim: int, seed: int = 0, device: torch.device | str = "cpu") -> None:
        if num_inputs < 1 or dim < 1:
            raise FisherError(f"a projection needs at least one input and one output, not {num_inputs} -> {dim}")
        self.num_inputs, self.dim = int(num_inputs), int(dim)
        per_row = max(1, int(math.ceil(math.sqrt(num_inputs))))
        generator = torch.Generator().manual_seed(int(seed))
        columns = torch.randint(num_inputs, (dim, per_row), generator=generator)
        signs = torch.randint(0, 2, (dim, per_row), generator=generator).float() * 2 - 1
        rows = torch.arange(dim).unsqueeze(1).expand(-1, per_row)
        scale = math.sqrt(num_inputs / (per_row * dim))
        indices = torch.stack([rows.reshape(-1), columns.reshape(-1)])
        matrix = torch.sparse_coo_tensor(indices, signs.reshape(-1) * scale, (dim, num_inputs), check_invariants=True).coalesce()
        self.matrix = matrix.to(device)

    def __call__(self, vectors: Tensor) -> Tensor:
        """``(B, num_inputs)`` to ``(B, dim)``."""
        if vectors.shape[-1] != self.num_inputs:
            raise FisherError(f"the projection takes {self.num_inputs} numbers, not {vectors.shape[-1]}")
        matrix = self.matrix if self.matrix.device == vectors.device else self.matrix.to(vectors.device)
        return torch.sparse.mm(matrix, vectors.float().T).T


# -- per-example Fisher scores ------------------------------------------------------------------------------------


def trainable_parameters(model: ARModel) -> list[tuple[str, nn.Parameter]]:
    return [(name, p) for name, p in model.named_parameters() if p.requires_grad]


def num_parameters(model: ARModel) -> int:
    return sum(p.numel() for _, p in trainable_parameters(model))


def _check_model(model: ARModel) -> None:
    if model.config.condition is not None:
        raise FisherError(f"{model.spec.title} here is conditional; Fisher scores use unconditional models")
    if not trainable_parameters(model):
        raise FisherError(f"{model.spec.title} has no parameters to take a Fisher score over")


def _as_batch(model: ARModel, images: np.ndarray | Tensor) -> Tensor:
    x = torch.as_tensor(np.asarray(images) if not isinstance(images, Tensor) else images)
    if x.dim() == 3:
        x = x.unsqueeze(0)
    if tuple(x.shape[1:]) != tuple(model.shape):
        raise FisherError(f"images of shape {tuple(x.shape[1:])} do not fit a model of shape {tuple(model.shape)}")
    return x.to(device=model.device, dtype=torch.float32)


def _gradients_loop(model: ARModel, x: Tensor) -> Tensor:
    names_params = trainable_parameters(model)
    params = [p for _, p in names_params]
    rows = []
    for i in range(x.shape[0]):
        with torch.enable_grad():
            total = model.log_prob(x[i : i + 1]).sum()
            grads = torch.autograd.grad(total, params, allow_unused=True)
        rows.append(torch.cat([
            (g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)
        ]))
    return torch.stack(rows)


def _gradients_vmap(model: ARModel, x: Tensor) -> Tensor:
    from torch.func import functional_call, grad, vmap

    names = [name for name, _ in trainable_parameters(model)]
    params = {name: p.detach() for name, p in model.named_parameters()}
    buffers = dict(model.named_buffers())

    def log_likelihood(p: dict[str, Tensor], xi: Tensor) -> Tensor:
        batch = xi.unsqueeze(0)
        out = functional_call(model, (p, buffers), (batch,))
        return model.likelihood.log_prob(out, batch).sum()

    with torch.enable_grad():
        grads = vmap(grad(log_likelihood), in_dims=(None, 0))(params, x)
    return torch.cat([grads[name].reshape(x.shape[0], -1) for name in names], dim=1)


def per_example_gradients(model: ARModel, images: np.ndarray | Tensor, method: str = "auto") -> Tensor:
    """``(B, P)``: ``grad_theta log p_theta(x_b)`` (nats) for each image, over every trainable parameter."""
    _check_model(model)
    x = _as_batch(model, images)
    model.eval()
    if method == "auto":
        method = "vmap" if model.device.type == "cuda" else "loop"
    if method == "vmap":
        try:
            return _gradients_vmap(model, x)
        except (RuntimeError, NotImplementedError, ValueError):  # an op without a batching rule
            return _gradients_loop(model, x)
    if method != "loop":
        raise FisherError(f"the gradient method must be auto, vmap or loop, not {method!r}")
    return _gradients_loop(model, x)


# -- mean hidden activations (the baseline) -----------------------------------------------------------------------


def _layers(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs count as hidden activations: the entries of the model's layer lists, else
    every leaf module that holds parameters."""
    layers = [child for module in model.modules() if isinstance(module, nn.ModuleList) for child in module]
    if layers:
        return layers
    return [m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))]


def _pool(tensor: Tensor) -> Tensor:
    """One layer output ``(B, ...)`` to ``(B, F)``: averaged over positions.

    ``(B, C, H, W)``: the mean of each channel; ``(B, A, L)`` (sequence-first or channel-first alike): both
    marginal means; ``(B, F)``: as it is.
    """
    if tensor.dim() == 2:
        return tensor
    if tensor.dim() == 3:
        return torch.cat([tensor.mean(1), tensor.mean(2)], dim=1)
    return tensor.flatten(2).mean(2)


def activation_features(model: ARModel, images: np.ndarray | Tensor) -> Tensor:
    """``(B, F)``: the mean hidden activations of every layer, concatenated."""
    _check_model(model)
    x = _as_batch(model, images)
    outputs: list[Tensor] = []
    owner = threading.get_ident()

    def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if threading.get_ident() != owner:  # another thread (a view sampling) runs the same model meanwhile
            return
        for item in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(item, Tensor) and item.is_floating_point() and item.dim() >= 2:
                outputs.append(_pool(item.detach().float()).reshape(item.shape[0], -1))

    handles = [layer.register_forward_hook(keep) for layer in _layers(model)]
    try:
        with torch.no_grad():
            model.log_prob(x)
    finally:
        for handle in handles:
            handle.remove()
    if not outputs:
        raise FisherError(f"{model.spec.title} exposes no hidden layers to take activations from")
    return torch.cat(outputs, dim=1)


# -- embedders ------------------------------------------------------------------------------------------------------


def final_event(events: Iterator[Any]) -> Any:
    """Run a generator of progress events to its end; its last event (``None`` if it yielded none)."""
    tail = deque(events, maxlen=1)
    return tail[0] if tail else None


@dataclass
class EmbedProgress:
    """Progress of a long computation, as plain data: ``stage``, ``done`` of ``total``, and a message."""

    stage: str
    done: int
    total: int
    message: str = ""
    elapsed_s: float = 0.0
    result: Any = None


class Embedder:
    """Raw (projected, not yet standardised) embeddings of images in one space: ``"fisher"`` or ``"activation"``."""

    def __init__(self, model: ARModel, space: str, settings: FisherSettings) -> None:
        if space not in ("fisher", "activation"):
            raise FisherError(f"the space must be 'fisher' or 'activation', not {space!r}")
        _check_model(model)
        self.model, self.space, self.settings = model, space, settings
        size = num_parameters(model) if space == "fisher" else self._activation_size()
        self.projection = SparseProjection(size, settings.dim, settings.seed + (0 if space == "fisher" else 1),
                                           model.device)

    def _activation_size(self) -> int:
        probe = torch.zeros(1, *self.model.shape)
        return int(activation_features(self.model, probe).shape[1])

    def features(self, x: Tensor) -> Tensor:
        if self.space == "fisher":
            return per_example_gradients(self.model, x, self.settings.method)
        return activation_features(self.model, x)

    def steps(
        self, images: np.ndarray | Tensor, should_stop: Callable[[], bool] = lambda: False
    ) -> Iterator[EmbedProgress]:
        """Embed ``images`` chunk by chunk, yielding progress; the last event's ``result`` is ``(N, dim)``."""
        x = _as_batch(self.model, images)
        n, chunks, start = x.shape[0], [], time.perf_counter()
        for begin in range(0, n, self.settings.batch_size):
            if should_stop():
                return
            chunks.append(self.projection(self.features(x[begin : begin + self.settings.batch_size])).cpu())
            done = min(n, begin + self.settings.batch_size)
            elapsed = time.perf_counter() - start
            yield EmbedProgress(self.space, done, n, f"{elapsed / done * 1000:.0f} ms per image", elapsed)
        result = torch.cat(chunks).numpy() if chunks else np.zeros((0, self.settings.dim), np.float32)
        yield EmbedProgress(self.space, n, n, "done", time.perf_counter() - start, result)

    def embed(self, images: np.ndarray | Tensor) -> np.ndarray:
        """``(N, dim)`` float32 raw embeddings."""
        last = final_event(self.steps(images))
        return last.result if last is not None else np.zeros((0, self.settings.dim), np.float32)


# -- decoder ------------------------------------------------------------------------------------------------------------


class EmbeddingDecoder(nn.Module):
    """An MLP from an embedding to the mean intensity (in [0, 1]) of every dimension of an image."""

    def __init__(self, in_dim: int, shape: tuple[int, int, int], hidden: int = 256) -> None:
        super().__init__()
        self.shape = tuple(shape)
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
            nn.Linear(hidden, int(np.prod(shape))),
        )

    def forward(self, z: Tensor) -> Tensor:
        """Logits ``(B, C, H, W)``; ``sigmoid`` of them is the decoded image."""
        return self.net(z).reshape(z.shape[0], *self.shape)

    def decode(self, z: np.ndarray | Tensor) -> np.ndarray:
        """``(B, C, H, W)`` float32 intensities in [0, 1]."""
        device = next(self.parameters()).device
        with torch.no_grad():
            return torch.sigmoid(self(torch.as_tensor(np.asarray(z), dtype=torch.float32, device=device))).cpu().numpy()


def _targets(images: np.ndarray, num_values: int) -> Tensor:
    return torch.as_tensor(np.asarray(images), dtype=torch.float32) / (num_values - 1)


def reconstruction_nats(decoder: EmbeddingDecoder, z: Tensor, targets: Tensor) -> float:
    """Mean binary cross-entropy of the decoder's reconstructions, in nats per image."""
    with torch.no_grad():
        loss = F.binary_cross_entropy_with_logits(decoder(z), targets, reduction="sum")
    return float(loss) / max(1, z.shape[0])


@dataclass
class DecoderTraining:
    hidden: int = 256
    epochs: int = 30
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
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
    y = _targets(images, num_values).to(device)
    n = z.shape[0]
    if n < 2:
        raise FisherError("a decoder needs at least two training images")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(cfg.seed)).to(device)
    n_valid = max(1, int(round(n * cfg.valid_fraction)))
    valid, train = order[:n_valid], order[n_valid:]
    decoder = EmbeddingDecoder(z.shape[1], tuple(images.shape[1:]), cfg.hidden).to(device)
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


# -- the stored space --------------------------------------------------------------------------------------------------


@dataclass
class EmbeddingSpace:
    """One space: its standardisation and its decoder."""

    mean: np.ndarray
    std: np.ndarray
    decoder: EmbeddingDecoder

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        return ((np.asarray(raw) - self.mean) / self.std).astype(np.float32)


@dataclass
class FisherSpace:
    """Everything learned for one checkpoint: both spaces, reference test images and their Fisher embeddings."""

    settings: FisherSettings
    fisher: EmbeddingSpace
    activation: EmbeddingSpace
    reference_images: np.ndarray  # (R, C, H, W) uint8
    reference_fisher: np.ndarray  # (R, dim), standardised
    num_values: int
    meta: dict[str, Any] = field(default_factory=dict)

    # storage ------------------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.safetensors``, float16 decoders) and its ``.json`` sidecar, atomically."""
        path = Path(path)
        tensors: dict[str, Tensor] = {}
        for name, space in (("fisher", self.fisher), ("activation", self.activation)):
            for key, value in space.decoder.state_dict().items():
                tensors[f"{name}.decoder.{key}"] = value.detach().cpu().half().contiguous()
            tensors[f"{name}.mean"] = torch.as_tensor(space.mean, dtype=torch.float32)
            tensors[f"{name}.std"] = torch.as_tensor(space.std, dtype=torch.float32)
        packed = self.num_values == 2
        images = np.packbits(self.reference_images.astype(np.uint8), axis=None) if packed else self.reference_images
        tensors["reference.images"] = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.uint8)
        tensors["reference.fisher"] = torch.as_tensor(self.reference_fisher).half()
        record = {
            "format": FORMAT,
            "settings": asdict(self.settings),
            "num_values": self.num_values,
            "shape": list(self.reference_images.shape[1:]),
            "num_reference": int(self.reference_images.shape[0]),
            "reference_packed_bits": packed,
            "decoder_hidden": self.fisher.decoder.net[0].out_features,
            "activation_decoder_in": self.activation.decoder.net[0].in_features,
            **self.meta,
        }
        header = {"ar_explorer_fisher": json.dumps(record)}
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata=header)
        atomic_write_text(path.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FisherSpace:
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(length))
            record = json.loads(header["__metadata__"]["ar_explorer_fisher"])
            tensors = load_file(str(path))
        except FileNotFoundError:
            raise FisherError(f"no Fisher space at {path}") from None
        except (OSError, KeyError, TypeError, ValueError, SafetensorError) as exc:
            raise FisherError(f"{path.name} is not a readable Fisher space ({exc})") from None
        settings = FisherSettings(**record["settings"])
        shape = tuple(record["shape"])
        spaces = {}
        for name in ("fisher", "activation"):
            decoder = EmbeddingDecoder(settings.dim, shape, int(record["decoder_hidden"]))
            prefix = f"{name}.decoder."
            decoder.load_state_dict({k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)})
            decoder.eval()
            spaces[name] = EmbeddingSpace(tensors[f"{name}.mean"].numpy(), tensors[f"{name}.std"].numpy(), decoder)
        images = tensors["reference.images"].numpy()
        count = int(record["num_reference"])
        if record.get("reference_packed_bits"):
            images = np.unpackbits(images)[: count * int(np.prod(shape))]
        images = images.reshape(count, *shape)
        meta = {k: v for k, v in record.items() if k not in ("settings",)}
        return cls(settings, spaces["fisher"], spaces["activation"], images,
                   tensors["reference.fisher"].float().numpy(), int(record["num_values"]), meta)


def weights_sha256(weights: Path) -> str:
    """The identity of a checkpoint's weights (:func:`app.core.checkpoints.tensors_sha256`): unchanged when
    ``eval`` records a result in the checkpoint's header. A file that is no checkpoint is named by its bytes."""
    from app.core.checkpoints import tensors_sha256

    try:
        return tensors_sha256(weights)
    except CheckpointError:
        return _file_sha256(weights)


def _file_sha256(weights: Path) -> str:
    """The SHA-256 of the whole file, by which Fisher spaces made before named their checkpoint."""
    digest = hashlib.sha256()
    with open(weights, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def space_path(weights: Path) -> Path:
    """Where the Fisher space of the checkpoint ``weights`` lives: ``NAME.fisher-decoder.safetensors`` beside it."""
    return weights.with_name(weights.stem + DECODER_SUFFIX + ".safetensors")


def find_space(weights: Path, user_dir: Path | None = None) -> Path | None:
    """The stored Fisher space for a checkpoint: beside it, else in the user's checkpoint folder."""
    for candidate in (space_path(weights), *([user_dir / space_path(weights).name] if user_dir else [])):
        if candidate.is_file():
            return candidate
    return None


def load_space_for(weights: Path, user_dir: Path | None = None) -> FisherSpace:
    """Load the Fisher space of a checkpoint, refusing one that was made for other weights."""
    found = find_space(weights, user_dir)
    if found is None:
        raise FisherError(
            f"no Fisher decoder for {weights.stem} yet; make one with: ar-explorer fisher-decoder --checkpoint "
            f"{weights.stem} (a GPU takes minutes; on a CPU use --images 2000)"
        )
    space = FisherSpace.load(found)
    expected = space.meta.get("checkpoint_sha256")
    if expected and expected not in (weights_sha256(weights), _file_sha256(weights)):
        raise FisherError(
            f"{found.name} was made for other weights of {weights.stem}; make it again with ar-explorer "
            f"fisher-decoder --checkpoint {weights.stem}"
        )
    return space


# -- building a space ---------------------------------------------------------------------------------------------------


def build_space_steps(
    model: ARModel,
    train_images: np.ndarray,
    reference_images: np.ndarray,
    settings: FisherSettings = FisherSettings(),
    training: DecoderTraining = DecoderTraining(),
    meta: dict[str, Any] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> Iterator[EmbedProgress]:
    """Embed the training images in both spaces, train both decoders, embed the reference images.

    Yields :class:`EmbedProgress` for every chunk and epoch (stages ``fisher``, ``activation``,
    ``fisher-decoder``, ``activation-decoder``, ``reference``); the last event (stage ``done``) carries the
    :class:`FisherSpace`. Returns early, with no ``done`` event, when ``should_stop()`` becomes true.
    """
    timings: dict[str, float] = {}
    raw: dict[str, np.ndarray] = {}
    spaces: dict[str, EmbeddingSpace] = {}
    embedders = {name: Embedder(model, name, settings) for name in ("fisher", "activation")}
    for name, embedder in embedders.items():
        last = None
        for last in embedder.steps(train_images, should_stop):
            yield last
        if last is None or last.result is None:
            return
        raw[name], timings[f"{name}_seconds_per_image"] = last.result, last.elapsed_s / max(1, len(train_images))
        mean, std = raw[name].mean(0), raw[name].std(0) + 1e-6
        last = None
        standardised = (raw[name] - mean) / std
        for last in train_decoder_steps(standardised, train_images, model.num_values, training,
                                        f"{name}-decoder", should_stop, model.device):
            yield last
        if last is None or last.result is None:
            return
        decoder, history = last.result
        spaces[name] = EmbeddingSpace(mean.astype(np.float32), std.astype(np.float32), decoder)
        timings[f"{name}_decoder_valid_nats"] = history[-1]["valid_nats"] if history else math.nan
        timings[f"{name}_decoder_best_valid_nats"] = min(h["valid_nats"] for h in history) if history else math.nan
    last = None
    for last in embedders["fisher"].steps(reference_images, should_stop):
        yield EmbedProgress("reference", last.done, last.total, last.message, last.elapsed_s, last.result)
    if last is None or last.result is None:
        return
    reference = spaces["fisher"].standardise(last.result)
    record = {**(meta or {}), **timings, "num_train_images": int(len(train_images)),
              "num_parameters": num_parameters(model), "decoder_training": asdict(training)}
    space = FisherSpace(settings, spaces["fisher"], spaces["activation"],
                        np.asarray(reference_images, dtype=np.uint8), reference, model.num_values, record)
    yield EmbedProgress("done", 1, 1, "done", 0.0, space)


# -- interpolation -------------------------------------------------------------------------------------------------------


@dataclass
class Interpolation:
    """Three strips between images A and B, each ``(S, C, H, W)`` intensities in [0, 1], at ``alphas`` ``(S,)``.

    ``pixel`` is the cross-fade; ``activation`` and ``fisher`` decode points on the straight line between the
    two embeddings. ``nearest`` ``(S, k)`` indexes ``reference_images`` by distance in Fisher space.
    """

    alphas: np.ndarray
    image_a: np.ndarray
    image_b: np.ndarray
    pixel: np.ndarray
    activation: np.ndarray
    fisher: np.ndarray
    nearest: np.ndarray
    nearest_distances: np.ndarray
    nearest_images: np.ndarray


def embed_pair(model: ARModel, space: FisherSpace, images: np.ndarray) -> dict[str, np.ndarray]:
    """Standardised embeddings of a few images ``(N, C, H, W)`` in both spaces."""
    return {
        name: getattr(space, name).standardise(Embedder(model, name, space.settings).embed(images))
        for name in ("fisher", "activation")
    }


def nearest_references(space: FisherSpace, points: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(S, k)`` and distances of the reference images nearest to each point of Fisher space."""
    if space.reference_fisher.shape[0] == 0:
        return np.zeros((len(points), 0), np.int64), np.zeros((len(points), 0))
    d = ((points[:, None, :] - space.reference_fisher[None]) ** 2).sum(-1)
    k = min(k, d.shape[1])
    index = np.argsort(d, axis=1)[:, :k]
    return index, np.sqrt(np.take_along_axis(d, index, axis=1))


def interpolate(
    model: ARModel, space: FisherSpace, image_a: np.ndarray, image_b: np.ndarray, steps: int = 8, neighbours: int = 1
) -> Interpolation:
    """Interpolate from ``image_a`` to ``image_b`` ``(C, H, W)`` in pixel, activation and Fisher space."""
    if steps < 2:
        raise FisherError("an interpolation needs at least 2 steps (the two ends)")
    if tuple(space.reference_images.shape[1:]) != tuple(model.shape) or space.num_values != model.num_values:
        raise FisherError("this Fisher space was made for a model of another shape")
    pair = np.stack([np.asarray(image_a), np.asarray(image_b)]).astype(np.float32)
    alphas = np.linspace(0.0, 1.0, steps).astype(np.float32)
    weights = alphas[:, None]
    embedded = embed_pair(model, space, pair)
    lines = {name: (1 - weights) * z[0] + weights * z[1] for name, z in embedded.items()}
    fades = pair / (model.num_values - 1)
    pixel = (1 - weights[:, :, None, None]) * fades[0] + weights[:, :, None, None] * fades[1]
    nearest, distances = nearest_references(space, lines["fisher"], neighbours)
    return Interpolation(
        alphas, pair[0], pair[1], pixel.astype(np.float32),
        space.activation.decoder.decode(lines["activation"]), space.fisher.decoder.decode(lines["fisher"]),
        nearest, distances, space.reference_images[nearest] if nearest.size else np.zeros((steps, 0, *model.shape)),
    )


# -- figure ----------------------------------------------------------------------------------------------------------------

ROW_TITLES = {
    "pixel": "pixels (cross-fade)",
    "activation": "mean activations",
    "fisher": "Fisher scores",
    "nearest": "nearest test image",
}


def _intensity_tile(values: np.ndarray, scale: int) -> np.ndarray:
    """``(C, H, W)`` intensities in [0, 1] to an ``(H*scale, W*scale, 3)`` uint8 tile."""
    array = np.clip(np.asarray(values, dtype=np.float32), 0.0, 1.0)
    rgb = np.repeat(array[0][..., None], 3, axis=2) if array.shape[0] == 1 else array.transpose(1, 2, 0)
    return (rgb * 255).round().astype(np.uint8).repeat(scale, axis=0).repeat(scale, axis=1)


def interpolation_figure(result: Interpolation, num_values: int, scale: int = 3) -> Image.Image:
    """A labelled figure: one row per space (A, the decoded points, B), then the nearest test images."""
    from PIL import ImageDraw

    steps = len(result.alphas)
    _, h, w = result.image_a.shape
    tile_h, tile_w, pad, label_w = h * scale, w * scale, 4, 150
    columns = steps + 2
    rows = ["pixel", "activation", "fisher"] + (["nearest"] if result.nearest.size else [])
    width = label_w + columns * (tile_w + pad) + 2 * pad
    height = len(rows) * (tile_h + pad) + pad
    canvas = np.full((height, width, 3), 40, dtype=np.uint8)
    ends = (result.image_a / (num_values - 1), result.image_b / (num_values - 1))
    for r, row in enumerate(rows):
        y = pad + r * (tile_h + pad)
        if row == "nearest":
            strip = result.nearest_images[:, 0] / (num_values - 1)
            tiles = [None, *strip, None]
        else:
            tiles = [ends[0], *getattr(result, row), ends[1]]
        for c, tile in enumerate(tiles):
            if tile is None:
                continue
            x = label_w + pad + c * (tile_w + pad) + (pad if c == columns - 1 else 0) - (pad if c == 0 else 0)
            canvas[y : y + tile_h, x : x + tile_w] = _intensity_tile(tile, scale)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for r, row in enumerate(rows):
        draw.text((6, pad + r * (tile_h + pad) + tile_h // 2 - 6), ROW_TITLES[row], fill=(230, 230, 230))
    return image
