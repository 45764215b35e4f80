"""A session: the registry, a device and a data folder, with the operations the CLI and the UI share.

The CLI, the desktop app and the tests all go through these functions, so that a checkpoint, an ordering,
a dataset or a condition means the same thing everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from app.core.checkpoints import CheckpointInfo, list_checkpoints, load_checkpoint, update_metadata
from app.core.conditions import derive_condition
from app.core.datasets import DatasetSpec, DataSplit, resolve_data_dir
from app.core.devices import is_out_of_memory, resolve_device
from app.core.errors import ARExplorerError, Cancelled, DataError, ModelError, PluginError
from app.core.files import describe_os_error
from app.core.model import ARModel
from app.core.orderings import Ordering
from app.core.registry import Registry, get_registry
from app.core.scoring import evaluate

#: The checkpoint the app opens on when none is named, in order of preference.
EVAL_CHUNK = 500  # images scored between two looks at a stop request

DEFAULT_CHECKPOINTS = ("gated-pixelcnn-binarized-mnist", "pixelcnn-binarized-mnist", "made-binarized-mnist")


@dataclass
class LoadedModel:
    """A model loaded from a checkpoint, with its metadata and the dataset it was trained on."""

    model: ARModel
    info: CheckpointInfo
    dataset: DatasetSpec | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.info.name

    @property
    def title(self) -> str:
        return self.model.spec.title

    def data_label(self) -> str:
        """The dataset and binarization, for every number shown to a user."""
        if self.dataset is not None:
            return f"{self.dataset.title}, test split"
        return str(self.info.meta.get("dataset", "unknown dataset"))


class Session:
    """Registry + device + data folder."""

    def __init__(self, registry: Registry | None = None, device: str | None = "auto", data_dir: str | Path | None = None):
        self.registry = registry or get_registry()
        self.device = resolve_device(device)
        self.data_dir = resolve_data_dir(data_dir)

    # checkpoints ----------------------------------------------------------------------------------------------
    def checkpoints(self) -> list[CheckpointInfo]:
        return list_checkpoints(self.registry)

    def default_checkpoint(self) -> str | None:
        names = [c.name for c in self.checkpoints()]
        for name in DEFAULT_CHECKPOINTS:
            if name in names:
                return name
        return names[0] if names else None

    def load(self, ref: str | Path, device: str | torch.device | None = None) -> LoadedModel:
        """Load a checkpoint on the session's device; on CUDA out of memory, fall back to the CPU with a note."""
        target = torch.device(device) if device is not None else self.device
        notes = []
        try:
            model, info = load_checkpoint(ref, self.registry, target)
        except RuntimeError as exc:
            if target.type == "cpu" or not is_out_of_memory(exc):
                raise
            model, info = load_checkpoint(ref, self.registry, "cpu")
            notes.append(f"{target} ran out of memory; the model runs on the CPU")
        dataset = self.registry.datasets.get(str(info.meta.get("dataset")))
        return LoadedModel(model, info, dataset, notes)

    # data -------------------------------------------------------------------------------------------------------
    def dataset(self, name: str) -> DatasetSpec:
        return self.registry.dataset(name)

    def split(self, dataset: str | DatasetSpec, split: str = "test", limit: int = 0) -> DataSplit:
        spec = self.dataset(dataset) if isinstance(dataset, str) else dataset
        data = spec.load(split, self.data_dir)
        return data.subset(limit) if limit else data

    def has_data(self, dataset: str | DatasetSpec | None) -> bool:
        if dataset is None:
            return False
        try:
            self.split(dataset, "test", limit=1)
        except (DataError, PluginError):
            return False
        return True

    # orderings ------------------------------------------------------------------------------------------------
    def ordering(self, name_or_file: str | None, model: ARModel, seed: int | None = None) -> Ordering | None:
        """A preset name or a JSON file, at the model's size; ``None`` means the model's own ordering."""
        if not name_or_file:
            return None
        ordering = self.registry.ordering(name_or_file, model.config.height, model.config.width, seed)
        model.resolve_ordering(ordering)  # refuse what the model cannot honour, with the reason
        return ordering

    # conditions ------------------------------------------------------------------------------------------------
    def condition(
        self,
        model: ARModel,
        n: int,
        label: int | None = None,
        image: np.ndarray | None = None,
        labels: np.ndarray | None = None,
    ) -> torch.Tensor | None:
        """The condition for ``n`` samples: a class label, or a condition derived from ``image`` (C, H, W)."""
        spec = model.config.condition
        if spec is None:
            return None
        if spec.kind == "class":
            if labels is not None:
                return torch.as_tensor(labels, dtype=torch.long, device=model.device)
            if label is None:
                raise ModelError(f"{model.spec.title} is conditioned on a class: give a label (0-{spec.num_classes - 1})")
            if not 0 <= int(label) < spec.num_classes:
                raise ModelError(f"the label must be between 0 and {spec.num_classes - 1}, not {label}")
            return torch.full((n,), int(label), dtype=torch.long, device=model.device)
        if image is None:
            raise ModelError(f"{model.spec.title} is conditioned on an image ({spec.description or spec.derive}): give one")
        x = torch.as_tensor(np.asarray(image), dtype=torch.float32, device=model.device)
        if x.dim() == 3:
            x = x.unsqueeze(0)
        if tuple(x.shape[1:]) == tuple(model.shape):
            cond = derive_condition(spec, x, None, model.num_values)
        elif tuple(x.shape[1:]) == tuple(spec.shape):
            cond = x
        else:
            raise ModelError(
                f"the condition image is {tuple(x.shape[1:])}; {model.spec.title} takes {tuple(spec.shape)} "
                f"or a full image {tuple(model.shape)} to derive it from"
            )
        return cond.expand(n, *cond.shape[1:]) if cond.shape[0] == 1 else cond

    # evaluation ------------------------------------------------------------------------------------------------
    def evaluate(
        self,
        loaded: LoadedModel,
        dataset: str | None = None,
        split: str = "test",
        limit: int = 0,
        ordering: Ordering | None = None,
        record: bool = True,
        subset: int = 0,
        should_stop: Callable[[], bool] | None = None,
        ensemble: int = 0,
    ) -> dict:
        """Mean NLL with its standard error; on the checkpoint's own full test set, record it in its record
        (``"recorded"``; where the files cannot be written, ``"record_error"`` says why).

        ``limit`` takes the first images of the split; ``subset`` a seeded random sample of that many (the
        binarized MNIST test set is sorted by digit, so its first images are all zeros). ``ensemble`` K > 0
        measures the mixture over K seeded random orderings (a model that takes any ordering), never recorded.
        """
        spec = self.dataset(dataset) if dataset else loaded.dataset
        if spec is None:
            raise DataError(f"{loaded.name} does not name a known dataset; give one with --dataset")
        model = loaded.model
        if (spec.shape, spec.num_values) != (tuple(model.shape), model.num_values):
            raise ARExplorerError(
                f"{spec.name} holds {spec.shape} images with {spec.num_values} values; {loaded.name} models "
                f"{tuple(model.shape)} with {model.num_values}"
            )
        full = self.split(spec, split)  # loaded once: the count tells whether a limit takes only part of it
        data = full.subset(limit) if limit else full
        selection = "the first" if limit and limit < len(full) else "all"
        if subset and subset < len(data):
            pick = np.sort(np.random.default_rng(0).choice(len(data), subset, replace=False))
            data = DataSplit(data.images[pick], None if data.labels is None else data.labels[pick])
            selection = "a seeded random subset of"
        cond = None
        if model.config.condition is not None:
            x = torch.as_tensor(data.images, dtype=torch.float32)
            labels = torch.as_tensor(data.labels) if data.labels is not None else None
            cond = derive_condition(model.config.condition, x, labels, model.num_values)
        from app.core.scoring import ensemble_nll, random_orderings, score

        members = random_orderings(ensemble, model.config.height, model.config.width, self.registry) if ensemble else []

        def measure(images, part):
            if members:
                return ensemble_nll(model, images, members, part)
            return score(model, images, part, ordering).nll_nats

        if should_stop is None:
            nats = measure(data.images, cond)
        else:  # in chunks, so that a stop request is heard between two of them
            chunks = []
            for start in range(0, len(data.images), EVAL_CHUNK):
                if should_stop():
                    raise Cancelled("the evaluation was stopped before its end; nothing was recorded")
                part = None if cond is None else cond[start:start + EVAL_CHUNK]
                chunks.append(measure(data.images[start:start + EVAL_CHUNK], part))
            nats = np.concatenate(chunks)
        stats = _stats(nats, int(np.prod(model.shape)))
        stats.update({"dataset": spec.name, "binarization": spec.binarization, "split": split, "images": selection,
                      "ordering": ordering.name if ordering is not None else model.ordering.name})
        if members:
            stats["ordering"] = f"an ensemble of {ensemble} random orderings (seeds 0-{ensemble - 1})"
        if record and not members and split == "test" and not limit and not subset and spec.name == loaded.info.meta.get("dataset") and ordering is None:
            quantiles = np.quantile(nats, np.linspace(0, 1, 101)).tolist()
            try:
                loaded.info = update_metadata(loaded.info, {
                    "test_nll_nats": stats["nll_nats"],
                    "test_nll_stderr": stats["nll_nats_stderr"],
                    "test_bits_per_dim": stats["bits_per_dim"],
                    "test_num_images": stats["num_images"],
                    "test_nll_quantiles": quantiles,
                })
                stats["recorded"] = True
            except OSError as exc:  # a read-only folder, a full disk: the figure stands, the record says why not
                stats["recorded"] = False
                stats["record_error"] = describe_os_error(exc)
        return stats


def _stats(nats: np.ndarray, num_dims: int) -> dict:
    from app.core.scoring import bits_per_dim

    n = len(nats)
    mean = float(np.mean(nats))
    se = float(np.std(nats, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return {
        "nll_nats": mean,
        "nll_nats_stderr": se,
        "bits_per_dim": float(bits_per_dim(mean, num_dims)),
        "bits_per_dim_stderr": float(bits_per_dim(se, num_dims)),
        "num_images": n,
    }


__all__ = ["Session", "LoadedModel", "DEFAULT_CHECKPOINTS", "evaluate"]
