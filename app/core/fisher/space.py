"""A stored Fisher space: everything learned for one checkpoint, beside it, tied to its weights.

``NAME.fisher-decoder.safetensors`` holds both decoders (float16), each space's coordinates (statistics and
principal directions), the normalisation of the scores, and the reference test images with their classes and
Fisher coordinates; ``NAME.fisher-decoder.json`` repeats the metadata (settings, how it was made, what it
measured) for people and tools. No pickle anywhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from app.core.files import atomic_path, atomic_write_text
from app.core.fisher.components import Coordinates
from app.core.fisher.decoder import EmbeddingDecoder
from app.core.fisher.errors import FisherError
from app.core.fisher.normalisation import ScoreScaling
from app.core.fisher.pairs import read_labels
from app.core.fisher.settings import FisherSettings

DECODER_SUFFIX = ".fisher-decoder"
FORMAT = "ar-explorer-fisher-space"
FORMAT_VERSION = 2


@dataclass
class EmbeddingSpace:
    """One space: the coordinates its decoder reads, and the decoder."""

    coordinates: Coordinates
    decoder: EmbeddingDecoder

    def standardise(self, raw: np.ndarray) -> np.ndarray:
        """Raw embeddings ``(N, D)`` to this space's decoder coordinates ``(N, k)``."""
        return self.coordinates.transform(raw)


@dataclass
class FisherSpace:
    """Everything learned for one checkpoint: both spaces, the score normalisation, the reference test images.

    ``reference_fisher`` ``(R, k)`` are the reference images' Fisher coordinates; ``reference_labels`` their
    classes (``-1``: unknown) and ``reference_indices`` their indices in the test split (``-1``: unknown).
    """

    settings: FisherSettings
    fisher: EmbeddingSpace
    activation: EmbeddingSpace
    reference_images: np.ndarray  # (R, C, H, W) uint8
    reference_fisher: np.ndarray
    num_values: int
    meta: dict[str, Any] = field(default_factory=dict)
    scaling: ScoreScaling = field(default_factory=ScoreScaling.identity)
    reference_labels: np.ndarray | None = None
    reference_indices: np.ndarray | None = None

    def __post_init__(self) -> None:
        count = len(self.reference_images)
        if self.reference_labels is None:
            self.reference_labels = np.full(count, -1, np.int64)
        if self.reference_indices is None:
            self.reference_indices = np.full(count, -1, np.int64)

    @property
    def reference_description(self) -> str:
        """What the reference images are, in words (for every figure that names a nearest image)."""
        return self.meta.get("reference_set") or f"{len(self.reference_images)} test images"

    # storage ------------------------------------------------------------------------------------------------
    def _tensors(self) -> dict[str, Tensor]:
        tensors: dict[str, Tensor] = {}
        for name, space in (("fisher", self.fisher), ("activation", self.activation)):
            for key, value in space.decoder.state_dict().items():
                tensors[f"{name}.decoder.{key}"] = value.detach().cpu().half().contiguous()
            tensors[f"{name}.mean"] = torch.as_tensor(space.coordinates.mean, dtype=torch.float32)
            tensors[f"{name}.std"] = torch.as_tensor(space.coordinates.std, dtype=torch.float32)
            if space.coordinates.basis is not None:
                tensors[f"{name}.basis"] = torch.as_tensor(space.coordinates.basis).half().contiguous()
        if self.scaling.kind != "none":
            tensors["fisher.scaling"] = torch.as_tensor(self.scaling.group_scales, dtype=torch.float32)
        packed = self.num_values == 2
        images = np.packbits(self.reference_images.astype(np.uint8), axis=None) if packed else self.reference_images
        tensors["reference.images"] = torch.as_tensor(np.ascontiguousarray(images), dtype=torch.uint8)
        tensors["reference.fisher"] = torch.as_tensor(self.reference_fisher).half().contiguous()
        tensors["reference.labels"] = torch.as_tensor(np.asarray(self.reference_labels, dtype=np.int64))
        tensors["reference.indices"] = torch.as_tensor(np.asarray(self.reference_indices, dtype=np.int64))
        return tensors

    def record(self) -> dict[str, Any]:
        """The metadata written beside the tensors (and into their header)."""
        return {
            **self.meta,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "settings": asdict(self.settings),
            "num_values": self.num_values,
            "shape": list(self.reference_images.shape[1:]),
            "num_reference": int(self.reference_images.shape[0]),
            "reference_packed_bits": self.num_values == 2,
            "normalisation": self.scaling.kind,
            "decoder_hidden": self.fisher.decoder.hidden,
            "fisher_decoder_in": self.fisher.decoder.in_dim,
            "activation_decoder_in": self.activation.decoder.in_dim,
        }

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.safetensors``) and its ``.json`` sidecar, each atomically."""
        path = Path(path)
        record = self.record()
        with atomic_path(path) as tmp:
            save_file(self._tensors(), str(tmp), metadata={"ar_explorer_fisher": json.dumps(record)})
        atomic_write_text(path.with_suffix(".json"), json.dumps(record, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> FisherSpace:
        """Read a space written by :meth:`save` (or by an earlier version of the app)."""
        path = Path(path)
        try:
            with open(path, "rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(length))
            record = json.loads(header["__metadata__"]["ar_explorer_fisher"])
            tensors = load_file(str(path))
            return cls._from(record, tensors)
        except FileNotFoundError:
            raise FisherError(f"no Fisher space at {path}") from None
        except (OSError, KeyError, TypeError, ValueError, RuntimeError, SafetensorError) as exc:
            raise FisherError(f"{path.name} is not a readable Fisher space ({exc})") from None

    @classmethod
    def _from(cls, record: dict[str, Any], tensors: dict[str, Tensor]) -> FisherSpace:
        if record.get("format") != FORMAT:
            raise ValueError(f"format {record.get('format')!r}")
        settings = FisherSettings.from_record(record["settings"])
        shape = tuple(record["shape"])
        spaces = {}
        for name in ("fisher", "activation"):
            prefix = f"{name}.decoder."
            state = {k[len(prefix):]: v.float() for k, v in tensors.items() if k.startswith(prefix)}
            in_dim = int(record.get(f"{name}_decoder_in") or state["net.0.weight"].shape[1])
            decoder = EmbeddingDecoder(in_dim, shape, int(record["decoder_hidden"]))
            decoder.load_state_dict(state)
            decoder.eval()
            basis = tensors[f"{name}.basis"].float().numpy() if f"{name}.basis" in tensors else None
            coordinates = Coordinates(tensors[f"{name}.mean"].numpy(), tensors[f"{name}.std"].numpy(), basis)
            spaces[name] = EmbeddingSpace(coordinates, decoder)
        count = int(record["num_reference"])
        images = tensors["reference.images"].numpy()
        if record.get("reference_packed_bits"):
            images = np.unpackbits(images)[: count * int(np.prod(shape))]
        images = images.reshape(count, *shape)
        num_values = int(record["num_values"])
        meta = {k: v for k, v in record.items() if k != "settings"}
        if "reference.labels" in tensors:
            labels = tensors["reference.labels"].numpy()
        else:  # written before reference sets had classes: read them now
            read = read_labels(images, None, num_values)
            labels, meta["reference_labels_source"] = read.values, read.source
        kind = str(record.get("normalisation", "none"))
        scaling = (ScoreScaling(kind, tensors["fisher.scaling"].numpy()) if "fisher.scaling" in tensors
                   else ScoreScaling.identity())
        indices = tensors["reference.indices"].numpy() if "reference.indices" in tensors else None
        return cls(settings, spaces["fisher"], spaces["activation"], images,
                   tensors["reference.fisher"].float().numpy(), num_values, meta, scaling, labels, indices)


def weights_sha256(weights: Path) -> str:
    """The identity of a checkpoint's weights (:func:`app.core.checkpoints.tensors_sha256`), which a Fisher space
    records to refuse other weights: unchanged when ``eval`` records a result in the checkpoint's header. A file
    that is no checkpoint is named by its bytes."""
    from app.core.checkpoints import tensors_sha256
    from app.core.errors import CheckpointError

    try:
        return tensors_sha256(weights)
    except CheckpointError:
        return _file_sha256(weights)


def _file_sha256(weights: Path) -> str:
    """The SHA-256 of the whole file, by which Fisher spaces made before named their checkpoint."""
    from app.core.checkpoints import file_sha256

    return file_sha256(weights)


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


__all__ = [
    "DECODER_SUFFIX",
    "FORMAT",
    "EmbeddingSpace",
    "FisherSpace",
    "find_space",
    "load_space_for",
    "space_path",
    "weights_sha256",
]
