"""Distillation: a student learns from a teacher's per-pixel conditionals, not only from the binary pixels.

A training image tells the student which value each pixel took; a teacher tells it the whole conditional
p_T(x_d = k | x_<d) at every pixel of the same image, a far richer signal per image. Training then minimises

    (1 - w) * NLL(x)  +  w * sum_d CE(p_T(. | x_<d), p_S(. | x_<d))

in nats per image, where ``w`` is the distillation weight. Both terms are measured on the training image's own
context, so the teacher must generate the pixels in the same order as the student, on the same grid and values.

The teacher's conditionals over the training set are computed once and cached (``.npy``, float16, read back
without pickle), keyed by the teacher's weights and the data, so that every student of a teacher reuses them.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from app.core.conditions import derive_condition
from app.core.datasets import DataSplit, default_data_dir
from app.core.errors import ARExplorerError
from app.core.files import atomic_write_with
from app.core.model import ARModel

#: The most bytes of teacher conditionals kept for one training set (in memory and in the cache).
MAX_TEACHER_BYTES = 2 * 2**30


class DistillationError(ARExplorerError):
    """The teacher cannot teach this student (another ordering, shape or number of values)."""


def check_teacher(student: ARModel, teacher: ARModel, teacher_name: str = "the teacher") -> None:
    """Refuse, with the reason, a teacher whose conditionals are not the student's on the same context."""
    if tuple(teacher.shape) != tuple(student.shape) or teacher.num_values != student.num_values:
        raise DistillationError(
            f"{teacher_name} models {teacher.shape} images of {teacher.num_values} values; the student models "
            f"{student.shape} of {student.num_values}: a teacher must model the same data"
        )
    if "any" in (teacher.capability, student.capability):
        raise DistillationError(
            "distillation needs one fixed ordering for teacher and student; an order-agnostic model has none "
            "(train it with its own loss)"
        )
    if teacher.ordering != student.ordering:
        raise DistillationError(
            f"{teacher_name} generates in the {teacher.ordering.name!r} ordering and the student in "
            f"{student.ordering.name!r}: their conditionals condition on different pixels"
        )
    if type(student).loss is not ARModel.loss:
        raise DistillationError(
            f"{type(student).__name__} trains with a loss of its own, which distillation would replace"
        )
    t_cond, s_cond = teacher.config.condition, student.config.condition
    if t_cond is not None and (s_cond is None or t_cond.to_dict() != s_cond.to_dict()):
        raise DistillationError(f"{teacher_name} is conditioned on {t_cond.kind}; the student must be conditioned alike")


def cache_dir() -> Path:
    """Beside the downloaded data, in the user's cache folder."""
    return default_data_dir().parent / "teacher"


def cache_key(teacher_sha256: str, data: DataSplit) -> str:
    """A name for the teacher's conditionals over ``data``: its weights' hash and the data's."""
    digest = hashlib.sha256(teacher_sha256.encode("ascii"))
    digest.update(np.ascontiguousarray(data.images).tobytes())
    if data.labels is not None:
        digest.update(np.ascontiguousarray(data.labels).tobytes())
    return digest.hexdigest()[:24]


def teacher_conditionals(
    teacher: ARModel,
    data: DataSplit,
    batch_size: int = 100,
    precision: str = "fp32",
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """``(N, C, H, W, K)`` float16: the teacher's p(x_d = k | x_<d) on every image of ``data``."""
    n = len(data)
    k = teacher.num_values
    need = n * int(np.prod(teacher.shape)) * k * 2
    if need > MAX_TEACHER_BYTES:
        raise DistillationError(
            f"the teacher's conditionals over {n} images would take {need / 2**30:.1f} GiB (more than "
            f"{MAX_TEACHER_BYTES / 2**30:.0f}); distil on fewer images (--limit)"
        )
    out = np.empty((n, *teacher.shape, k), dtype=np.float16)
    device = teacher.device
    autocast = precision == "bf16" and device.type in ("cuda", "cpu")
    teacher.eval()
    with torch.no_grad():
        for start in range(0, n, batch_size):
            x = torch.as_tensor(data.images[start : start + batch_size], device=device).float()
            y = None if data.labels is None else torch.as_tensor(data.labels[start : start + batch_size], device=device)
            cond = derive_condition(teacher.config.condition, x, y, teacher.num_values)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                probs = teacher.log_conditionals(x, cond).float().exp()
            out[start : start + x.shape[0]] = probs.cpu().numpy().astype(np.float16)
            if progress is not None:
                progress(min(n, start + batch_size), n)
    return out


def cached_teacher_conditionals(
    teacher: ARModel,
    teacher_sha256: str,
    data: DataSplit,
    folder: Path | None = None,
    **kwargs,
) -> tuple[np.ndarray, Path, bool]:
    """The teacher's conditionals over ``data`` from the cache, or computed and cached; ``(array, path, hit)``."""
    folder = folder or cache_dir()
    path = folder / f"{cache_key(teacher_sha256, data)}.npy"
    expected = (len(data), *teacher.shape, teacher.num_values)
    if path.exists():
        try:
            with open(path, "rb") as f:
                array = np.load(io.BytesIO(f.read()), allow_pickle=False)
            if array.shape == expected and array.dtype == np.float16:
                return array, path, True
        except (OSError, ValueError):
            pass  # a damaged cache file is computed again
    array = teacher_conditionals(teacher, data, **kwargs)
    folder.mkdir(parents=True, exist_ok=True)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)

    atomic_write_with(path, write)
    return array, path, False


def distillation_loss(student: ARModel, x: Tensor, cond: Tensor | None, soft: Tensor, weight: float) -> Tensor:
    """Mean over the batch, in nats per image, of ``(1 - weight) * NLL + weight * cross-entropy to ``soft``.

    ``soft`` is ``(B, C, H, W, K)``: the teacher's conditionals for the images ``x``."""
    log_q = student.log_conditionals(x, cond).float()  # (B, C, H, W, K)
    index = x.long().clamp(0, student.num_values - 1).unsqueeze(-1)
    nll = -log_q.gather(-1, index).squeeze(-1).flatten(1).sum(1)
    cross = -(soft.float() * log_q).sum(-1).flatten(1).sum(1)
    return ((1.0 - weight) * nll + weight * cross).mean()


__all__ = [
    "DistillationError",
    "check_teacher",
    "teacher_conditionals",
    "cached_teacher_conditionals",
    "distillation_loss",
    "cache_key",
    "MAX_TEACHER_BYTES",
]
