"""Checkpoints: ``NAME.safetensors`` (weights, with the model's config in its header) + ``NAME.json``.

The JSON file is the readable record: model, hyperparameters, ordering, dataset and binarization, training
history, wall time, device, library versions, and the test NLL that ``eval`` measured (``test_nll_nats``).
It names the SHA-256 of the weights it describes; if the two ever disagree, the weights' own header wins.

Nothing here ever unpickles: ``.pt``, ``.pth``, ``.ckpt``, ``.pkl`` and ``.bin`` files are refused unread.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from safetensors.torch import load as load_bytes
from safetensors.torch import safe_open as _safe_open  # noqa: F401  (kept for plugin authors)
from safetensors.torch import save_file

from app.core.allocation import BudgetExceeded, build_within, checkpoint_budget
from app.core.errors import CheckpointError, PluginError
from app.core.files import (
    NotARegularFile,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    describe_os_error,
    open_regular,
    read_limited,
)
from app.core.model import ARModel, ModelConfig, ModelSpec

if TYPE_CHECKING:
    from app.core.registry import Registry

FORMAT = "ar-explorer-checkpoint"
FORMAT_VERSION = 1
PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt", ".pkl", ".pickle", ".bin", ".tar", ".joblib"}
HEADER_LIMIT = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
#: Checkpoint files over this size are refused unread (the largest model of the lecture takes a few MB).
MAX_CHECKPOINT_BYTES = 4 * 2**30
#: A JSON sidecar over this size is ignored (the weights' own header holds the record).
MAX_SIDECAR_BYTES = 64 * 2**20
#: Bytes per value of each safetensors dtype.
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "U16": 2, "I16": 2, "F16": 2, "BF16": 2,
    "U32": 4, "I32": 4, "F32": 4, "U64": 8, "I64": 8, "F64": 8,
}
#: The safetensors name of each torch dtype a model may hold.
_TORCH_DTYPES = {
    torch.bool: "BOOL", torch.uint8: "U8", torch.int8: "I8", torch.int16: "I16", torch.int32: "I32",
    torch.int64: "I64", torch.float16: "F16", torch.bfloat16: "BF16", torch.float32: "F32", torch.float64: "F64",
}


def user_checkpoint_dir() -> Path:
    """The user's own checkpoint folder, where ``train`` and the Train view save.

    ``$AR_EXPLORER_CHECKPOINTS``, else ``$XDG_DATA_HOME/ar-explorer/checkpoints``, else
    ``~/.local/share/ar-explorer/checkpoints``. The folder is not created here.
    """
    env = os.environ.get("AR_EXPLORER_CHECKPOINTS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ar-explorer" / "checkpoints"


@dataclass
class CheckpointInfo:
    """A checkpoint found on disk, with its metadata (read without loading the weights)."""

    name: str
    weights: Path
    meta: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.meta.get("model", "?"))

    @property
    def dataset(self) -> str:
        return str(self.meta.get("dataset", "?"))

    @property
    def test_nll_nats(self) -> float | None:
        value = self.meta.get("test_nll_nats")
        return float(value) if value is not None else None

    @property
    def json_path(self) -> Path:
        return self.weights.with_suffix(".json")

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "model": self.model,
            "dataset": self.dataset,
            "binarization": self.meta.get("binarization"),
            "test_nll_nats": self.test_nll_nats,
            "test_bits_per_dim": self.meta.get("test_bits_per_dim"),
            "path": str(self.weights),
        }


def library_versions() -> dict[str, str]:
    import pluggy
    import safetensors

    from app import __version__

    return {
        "ar_explorer": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "safetensors": safetensors.__version__,
        "pluggy": pluggy.__version__,
        "python": platform.python_version(),
    }


def file_sha256(path: Path) -> str:
    """The SHA-256 of a whole file, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tensors_sha256(path: str | Path) -> str:
    """The identity of a checkpoint's weights: the SHA-256 of its tensors (their names, dtypes, shapes and
    bytes), not of the record in its header, which ``eval`` rewrites. What is made for these weights (a Fisher
    space) names them by it."""
    path = Path(path)
    header = read_header(path)
    entries = json.dumps({k: header[k] for k in sorted(file_tensors(header))}, sort_keys=True)
    digest = hashlib.sha256(entries.encode("utf-8"))
    with open_regular(path) as handle:
        length = int.from_bytes(handle.read(8), "little")
        handle.seek(8 + length)
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weights_path(path: str | Path) -> Path:
    """``NAME``, ``NAME.json`` or ``NAME.safetensors`` to the weights file's path."""
    path = Path(path)
    if path.suffix == ".json":
        return path.with_suffix(".safetensors")
    if path.suffix != ".safetensors":
        return path.with_name(path.name + ".safetensors")
    return path


def refuse_pickle(path: Path) -> None:
    if path.suffix.lower() in PICKLE_SUFFIXES:
        raise CheckpointError(
            f"{path.name} is a pickle-based file ({path.suffix}); AR Explorer never unpickles files, because "
            "loading a pickle can run arbitrary code. Convert it to safetensors where you trust it."
        )


def save_checkpoint(
    model: ARModel,
    path: str | Path,
    meta: dict[str, Any] | None = None,
    half: bool = False,
) -> CheckpointInfo:
    """Write ``NAME.safetensors`` then ``NAME.json``, each atomically. Returns the new checkpoint's info.

    ``half=True`` stores floating-point weights in float16 (they are loaded back as float32).
    """
    weights = weights_path(path)
    state = {}
    for key, tensor in model.state_dict().items():
        tensor = tensor.detach().to("cpu")
        if half and tensor.is_floating_point():
            tensor = tensor.half()
        state[key] = tensor.contiguous().clone()
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.spec.name,
        "config": model.config.to_dict(),
        "weights_dtype": "float16" if half else "float32",
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
        "versions": library_versions(),
    }
    record.update(meta or {})
    record.pop("weights_sha256", None)
    # One id names this save in both files: a JSON left over from an earlier save (a crash between the two
    # writes) is recognised as stale, and the record kept in the weights' own header is used instead.
    record["save_id"] = uuid.uuid4().hex
    header = {
        "ar_explorer": json.dumps({k: record[k] for k in ("format", "format_version", "model", "config", "save_id")}),
        "ar_explorer_record": json.dumps(record, default=_json_default),
    }
    with atomic_path(weights) as tmp:
        save_file(state, str(tmp), metadata=header)
    record["weights_sha256"] = file_sha256(weights)
    atomic_write_text(weights.with_suffix(".json"), json.dumps(record, indent=2, default=_json_default) + "\n")
    return CheckpointInfo(weights.stem, weights, record)


def update_metadata(info: CheckpointInfo, updates: dict[str, Any]) -> CheckpointInfo:
    """Add results (for example ``test_nll_nats`` from ``eval``) to a checkpoint's record, atomically: in the
    weights' own header first, so that a copy of the ``.safetensors`` file alone keeps them, then in its JSON."""
    meta = dict(info.meta)
    meta.update(updates)
    embed_record(info.weights, meta)  # without its hash: the header cannot name the hash of its own file
    meta["weights_sha256"] = file_sha256(info.weights)
    atomic_write_text(info.json_path, json.dumps(meta, indent=2, default=_json_default) + "\n")
    return CheckpointInfo(info.name, info.weights, meta)


def embed_record(weights: Path, record: dict[str, Any]) -> None:
    """Rewrite the record kept in a checkpoint's header (``ar_explorer_record``), the tensors' bytes unchanged."""
    read_header(weights)  # a file that is not a sound checkpoint is refused, not rewritten
    data = read_limited(weights, MAX_CHECKPOINT_BYTES)
    length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + length])
    metadata = header.setdefault("__metadata__", {})
    record = {k: v for k, v in record.items() if k != "weights_sha256"}
    metadata["ar_explorer_record"] = json.dumps(record, default=_json_default)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # safetensors pads its header to 8 bytes, so that the data stay aligned
    atomic_write_bytes(weights, len(raw).to_bytes(8, "little") + raw + data[8 + length :])


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


_PICKLE_OR_ZIP = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"PK\x03\x04")


def _looks_like_pickle(raw: bytes) -> bool:
    """The first bytes of a pickle (protocol 2-5) or of a zip archive (``torch.save``'s format)."""
    return raw.startswith(_PICKLE_OR_ZIP)


def read_header(weights: Path) -> dict[str, Any]:
    """Read the safetensors header (a JSON document) without loading any tensor, and check that it describes
    tensors lying inside the file."""
    refuse_pickle(weights)
    try:
        with open_regular(weights) as handle:
            raw_len = handle.read(8)
            # A safetensors header is JSON: its first byte is "{". Only a file that is not one is tested for the
            # pickle and zip signatures, which a header length can spell by chance (896 bytes is 80 03 00 ..).
            first = handle.read(1)
            handle.seek(8)
            if first != b"{" and _looks_like_pickle(raw_len):
                raise CheckpointError(
                    f"{weights.name} is a pickle or PyTorch file under a .safetensors name; AR Explorer never "
                    "unpickles files, because loading a pickle can run arbitrary code"
                )
            if len(raw_len) != 8:
                raise CheckpointError(f"{weights.name} is empty or truncated: not a safetensors file")
            length = int.from_bytes(raw_len, "little")
            if length <= 0 or length > HEADER_LIMIT:
                raise CheckpointError(f"{weights.name} is not a safetensors file (bad header length)")
            raw = handle.read(length)
            if len(raw) != length:
                raise CheckpointError(f"{weights.name} is truncated (its header is incomplete)")
            end = handle.seek(0, os.SEEK_END)
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {weights}") from None
    except NotARegularFile as exc:
        raise CheckpointError(f"{weights} is {exc.kind}, not a checkpoint") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {weights}: {describe_os_error(exc)}") from None
    if end > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{weights.name} is {end / 2**30:.1f} GB; checkpoints over "
                              f"{MAX_CHECKPOINT_BYTES // 2**30} GB are refused")
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise CheckpointError(f"{weights.name} is not a safetensors file (its header is not JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{weights.name} is not a safetensors file")
    _check_entries(weights.name, header, end - 8 - length)
    return header


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_entries(name: str, header: dict[str, Any], data_len: int) -> None:
    """Every tensor entry well formed and inside the data; the metadata a map of strings."""
    metadata = header.get("__metadata__")
    if metadata is not None and (
        not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values())
    ):
        raise CheckpointError(f"{name} is corrupt (its metadata is not a map of strings)")
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        shape = entry.get("shape") if isinstance(entry, dict) else None
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(v) for v in offsets)
            or not isinstance(shape, list)
            or not all(_is_count(v) for v in shape)
            or not isinstance(entry.get("dtype"), str)
        ):
            raise CheckpointError(f"{name} is corrupt (the entry of tensor {key[:60]!r} is malformed)")
        if offsets[0] > offsets[1] or offsets[1] > data_len:
            raise CheckpointError(f"{name} is truncated or corrupt (tensor {key[:60]!r} lies past its end)")
        size = DTYPE_BYTES.get(entry["dtype"])
        if size is None:
            raise CheckpointError(f"{name} is corrupt (tensor {key[:60]!r} has an unknown dtype {entry['dtype'][:20]!r})")
        # A shape that does not fill its bytes exactly is a header that lies (about the shape or the dtype).
        if math.prod(shape) * size != offsets[1] - offsets[0]:
            raise CheckpointError(
                f"{name} is corrupt (tensor {key[:60]!r}: {_short(shape)} values of {entry['dtype']} do not take "
                f"the {offsets[1] - offsets[0]} bytes it spans)"
            )


def _short(shape: list[int]) -> str:
    text = "x".join(str(v) for v in shape) or "1"
    return text if len(text) <= 40 else text[:37] + "..."


def file_tensors(header: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The tensor entries of a checkpoint's header (its metadata left out)."""
    return {k: v for k, v in header.items() if k != "__metadata__"}


def _describes(sidecar: dict[str, Any], embedded: dict[str, Any], weights: Path) -> bool:
    """Whether a JSON sidecar was written with these very weights (not left over from an earlier save)."""
    if sidecar.get("model") != embedded.get("model") or sidecar.get("config") != embedded.get("config"):
        return False
    if "save_id" in embedded:
        return sidecar.get("save_id") == embedded["save_id"]
    recorded = sidecar.get("weights_sha256")
    return recorded is None or recorded == file_sha256(weights)


def read_info(path: str | Path) -> CheckpointInfo:
    """The metadata of a checkpoint: the JSON sidecar where it was written with these weights, else the
    record kept in the weights' own header."""
    weights = weights_path(path)
    refuse_pickle(Path(path))
    header = read_header(weights)
    metadata = header.get("__metadata__") or {}
    embedded = metadata.get("ar_explorer")
    if embedded is None:
        raise CheckpointError(
            f"{weights.name} is a safetensors file but not an AR Explorer checkpoint (no model config in it)"
        )
    meta = _json_object(embedded)
    if meta is None or not isinstance(meta.get("model"), str) or not isinstance(meta.get("config"), dict):
        raise CheckpointError(f"{weights.name} has a corrupt model config in its header")
    record = _json_object(metadata.get("ar_explorer_record", "{}")) or {}
    base = {**record, **meta}
    sidecar = weights.with_suffix(".json")
    if sidecar.is_file():
        try:
            full = _json_object(read_limited(sidecar, MAX_SIDECAR_BYTES).decode("utf-8"))
        except (OSError, UnicodeDecodeError):
            full = None
        if full is not None and _describes(full, meta, weights):
            base = {**full, **meta}
    return CheckpointInfo(weights.stem, weights, base)


def _json_object(text: str) -> dict[str, Any] | None:
    """``text`` parsed as a JSON object, or None where it is not one."""
    try:
        value = json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def build_model(
    registry: Registry,
    meta: dict[str, Any],
    source: str = "checkpoint",
    header: dict[str, Any] | None = None,
) -> ARModel:
    """Build the model a checkpoint's metadata describes (weights not loaded); :class:`CheckpointError` if none.

    With the file's ``header``, the build is stopped as soon as it asks for far more memory than the file's
    tensors hold (:func:`app.core.allocation.checkpoint_budget`): a config that claims 2000 channels, or a
    million layers, is refused in a moment instead of allocating gigabytes.
    """
    spec, config = _spec_and_config(registry, meta, source)
    tensors = file_tensors(header) if header is not None else None
    file_values = sum(math.prod(v["shape"]) for v in tensors.values()) if tensors is not None else 0
    try:
        if tensors is None:
            return spec.create(config)
        return build_within(spec, config, *checkpoint_budget(file_values, len(tensors)))
    except BudgetExceeded as exc:
        raise CheckpointError(
            f"{source}: its config does not describe its weights: the {spec.title} it describes {exc}, where the "
            f"file holds {len(tensors)} tensors of {file_values} values in all"
        ) from None
    except Exception as exc:  # a plugin's constructor may raise anything
        raise CheckpointError(f"{source}: building {spec.title} from its config failed: {exc}") from None


def _spec_and_config(registry: Registry, meta: dict[str, Any], source: str) -> tuple[ModelSpec, ModelConfig]:
    model_name = meta.get("model")
    try:
        spec = registry.model(str(model_name))
    except PluginError:
        raise CheckpointError(
            f"{source} is a {model_name!r} model, and no loaded plugin provides it "
            f"(available: {', '.join(sorted(registry.models)) or 'none'})"
        ) from None
    return spec, _config(meta, source)


#: Bounds on a config read from a file: beyond them no model of this app is meant to go.
MAX_CONFIG_DIMS = 3 * 1024 * 1024
MAX_CONFIG_VALUES = 65536


def _config(meta: dict[str, Any], source: str) -> ModelConfig:
    try:
        config = ModelConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{source} has an invalid model config: {' '.join(str(exc).split())[:200]}") from None
    if config.num_dims > MAX_CONFIG_DIMS or not 2 <= config.num_values <= MAX_CONFIG_VALUES:
        raise CheckpointError(
            f"{source} has an implausible model config (shape {list(config.shape)}, {config.num_values} values)"
        )
    problem = implausible_number(config.hparams)
    if problem:
        raise CheckpointError(f"{source} has an implausible model config (hyperparameter {problem})")
    return config


#: No hyperparameter of any model is a number beyond this (a count of channels, layers, masks, ...), nor a list
#: longer than this (the sizes of hidden layers, say).
MAX_HPARAM_MAGNITUDE = 2**31
MAX_HPARAM_LIST = 4096


def implausible_number(value: Any, path: str = "") -> str:
    """The first value in ``value`` (a JSON-like tree of hyperparameters) that no model takes: a number that is
    NaN, infinite or beyond :data:`MAX_HPARAM_MAGNITUDE`, or a list longer than :data:`MAX_HPARAM_LIST`, as
    ``"KEY=VALUE"``; empty where there is none."""
    if isinstance(value, dict):
        for key, item in value.items():
            found = implausible_number(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
        return ""
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_HPARAM_LIST:
            return f"{path}=a list of {len(value)} items"
        for index, item in enumerate(value):
            found = implausible_number(item, f"{path}[{index}]")
            if found:
                return found
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    if isinstance(value, float) and not math.isfinite(value) or abs(value) > MAX_HPARAM_MAGNITUDE:
        text = str(value)
        return f"{path}={text if len(text) <= 24 else text[:21] + '...'}"
    return ""


def _shape_problems(expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]]) -> list[str]:
    """What differs between the tensors a model has and the tensors a file holds (empty where they fit)."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} tensor(s) ({', '.join(missing[:3])})")
    if unexpected:
        parts.append(f"{len(unexpected)} tensor(s) the model lacks ({', '.join(k[:60] for k in unexpected[:3])})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} of the wrong shape ({k}: {found[k]} in the file, {expected[k]} in the model)")
    return parts


def load_checkpoint(
    ref: str | Path,
    registry: Registry,
    device: str | torch.device = "cpu",
    expect_model: str | None = None,
) -> tuple[ARModel, CheckpointInfo]:
    """Load a checkpoint by shipped name or path; check that the weights fit the model exactly.

    Raises :class:`CheckpointError` with the reason for anything that is not a loadable checkpoint.
    """
    info = resolve_checkpoint(ref, registry)
    if expect_model is not None and info.model != expect_model:
        raise CheckpointError(f"{info.name} is a checkpoint of {info.model!r}, not of {expect_model!r}")
    source = info.weights.name
    # The header says what the file holds: the model is built within what it can need, and a mismatch of
    # names, shapes or dtypes is refused before any weight is read.
    header = read_header(info.weights)
    tensors = file_tensors(header)
    model = build_model(registry, info.meta, source, header)
    expected = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in expected.items()}
    _refuse_mismatch(info, _shape_problems(shapes, {k: tuple(v["shape"]) for k, v in tensors.items()}))
    _refuse_dtypes(info, expected, {k: v["dtype"] for k, v in tensors.items()})
    try:
        # Read as bytes, so that what is parsed is what was checked to be a regular file of bounded size.
        state = load_bytes(read_limited(info.weights, MAX_CHECKPOINT_BYTES))
    except OSError as exc:
        raise CheckpointError(f"cannot read {info.weights}: {describe_os_error(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types on a corrupt file
        raise CheckpointError(f"{source} is corrupt: {' '.join(str(exc).split())[:200]}") from None
    _refuse_mismatch(info, _shape_problems(shapes, {k: tuple(v.shape) for k, v in state.items()}))
    _refuse_dtypes(info, expected, {k: _TORCH_DTYPES.get(v.dtype, str(v.dtype)) for k, v in state.items()})
    state = {k: v.to(expected[k].dtype) for k, v in state.items()}
    for key, tensor in state.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise CheckpointError(f"{info.weights.name} holds NaN or infinite weights (in {key})")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # noqa: BLE001 - a plugin's own load hooks may refuse the weights
        raise CheckpointError(f"the weights in {source} do not load: {' '.join(str(exc).split())[:200]}") from None
    model.eval()
    return model.to(device), info


def carry_weights(model: ARModel, source: ARModel) -> tuple[list[str], list[str]]:
    """Copy into ``model`` every tensor of ``source`` with the same name and shape (a warm start).

    Returns the names carried over and the names of ``model`` left as built (new layers, such as the
    conditioning of a conditional model started from an unconditional one). Refuses a start that carries
    nothing: the two models then share no layer, and the start would be a silent fresh one.
    """
    target = model.state_dict()
    found = source.state_dict()
    carried = sorted(k for k, v in found.items() if k in target and tuple(target[k].shape) == tuple(v.shape))
    if not carried:
        raise CheckpointError(
            f"{source._title()} shares no layer of the same name and shape with {model._title()}: nothing to carry over"
        )
    with torch.no_grad():
        for key in carried:
            target[key].copy_(found[key].to(target[key].dtype))
    return carried, sorted(set(target) - set(carried))


def accepted_dtypes(model_dtype: torch.dtype, weights_dtype: object = None) -> set[str]:
    """The safetensors dtypes a tensor the model holds in ``model_dtype`` may be stored in: that dtype, or
    float16 for a floating tensor of a checkpoint saved in half precision (``weights_dtype`` as recorded)."""
    own = _TORCH_DTYPES.get(model_dtype, str(model_dtype))
    if not model_dtype.is_floating_point:
        return {own}
    if weights_dtype == "float16":
        return {"F16"}
    if weights_dtype == "float32":
        return {own}
    return {own, "F16"}


def _refuse_dtypes(info: CheckpointInfo, expected: dict[str, torch.Tensor], found: dict[str, str]) -> None:
    """Refuse a tensor stored in a dtype the model does not store: bytes of float16 relabelled bfloat16 would
    load as other numbers, and integers cast to floats would be blamed on the model later."""
    recorded = info.meta.get("weights_dtype")
    for key in sorted(found):
        if key not in expected:
            continue
        allowed = accepted_dtypes(expected[key].dtype, recorded)
        if found[key] not in allowed:
            raise CheckpointError(
                f"the weights in {info.weights.name} are stored as {found[key][:20]} (tensor {key[:60]}); "
                f"a {info.model!r} model stores {' or '.join(sorted(allowed))}"
                + (f" (its record says {recorded})" if isinstance(recorded, str) else "")
            )


def _refuse_mismatch(info: CheckpointInfo, problems: list[str]) -> None:
    if problems:
        raise CheckpointError(
            f"the weights in {info.weights.name} do not fit a {info.model!r} model with its config: "
            + "; ".join(problems)
        )


def list_checkpoints(registry: Registry) -> list[CheckpointInfo]:
    """Every loadable checkpoint in the folders the plugins provide (unreadable ones are skipped)."""
    found: dict[str, CheckpointInfo] = {}
    for folder in registry.checkpoint_dirs:
        if not folder.is_dir():
            continue
        for weights in sorted(folder.glob("*.safetensors")):
            if weights.name.endswith(".optim.safetensors") or weights.stem in found:
                continue
            try:
                found[weights.stem] = read_info(weights)
            except CheckpointError:
                continue
    return list(found.values())


def resolve_checkpoint(ref: str | Path, registry: Registry) -> CheckpointInfo:
    """A shipped checkpoint's name, or the path of a checkpoint file (``.safetensors`` or ``.json``)."""
    ref_path = Path(ref)
    refuse_pickle(ref_path)
    as_name = str(ref)
    if os.sep not in as_name and "/" not in as_name and not ref_path.suffix:
        for folder in registry.checkpoint_dirs:
            candidate = folder / f"{as_name}.safetensors"
            if candidate.is_file():
                return read_info(candidate)
    if ref_path.exists() or ref_path.suffix in (".safetensors", ".json"):
        return read_info(ref_path)
    if weights_path(ref_path).exists():
        return read_info(ref_path)
    names = sorted(info.name for info in list_checkpoints(registry))
    raise CheckpointError(f"no checkpoint named {as_name!r} and no such file; shipped: {', '.join(names) or 'none'}")


# optimizer state, for resuming training ---------------------------------------------------------------------


def save_optimizer(optimizer: torch.optim.Optimizer, path: Path, extra: dict[str, Any]) -> None:
    """Flatten an optimizer's state into safetensors (tensors) + its header (scalars): no pickle."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": state["param_groups"], "extra": extra, "state": {}}
    for index, entry in state["state"].items():
        for key, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}.{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars["state"].setdefault(str(index), {})[key] = value
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"optimizer": json.dumps(scalars, default=_json_default)})


def load_optimizer(optimizer: torch.optim.Optimizer, path: Path) -> dict[str, Any]:
    """Restore what :func:`save_optimizer` wrote; returns its ``extra`` dict."""
    header = read_header(path)
    scalars = json.loads((header.get("__metadata__") or {}).get("optimizer", "{}"))
    tensors = load_bytes(read_limited(path, MAX_CHECKPOINT_BYTES))
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    for index, entry in scalars.get("state", {}).items():
        state.setdefault(int(index), {}).update(entry)
    for entry in state.values():
        if "step" in entry and not isinstance(entry["step"], torch.Tensor):
            entry["step"] = torch.tensor(float(entry["step"]))
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})
    return scalars.get("extra", {})
