"""Session files: the whole state of a demo (checkpoint, view, ordering, seed, drawing, Fisher pair, scale) in
one small JSON file that the app saves, reopens and hands to someone else.

A lecturer prepares each demo the night before and double-clicks its file in class; a student mails one to a
friend. The file names its checkpoint by name (or path) together with the model, the plugin that provides it
and the dataset, so that a machine without them can say exactly what is missing and open the rest.

The format (``"format": "ar-explorer-session"``, ``"version": 1``) keeps images readable: each image row is a
string of hexadecimal digits, one per pixel (two where there are more than 16 levels), so a drawn binary
digit shows as a picture of 0s and 1s in any text editor. Orderings use the ordering file's own
``{"height", "width", "order"}`` object. A file that is not valid is refused with a one-line
:class:`SessionError`; a file that is valid but names something absent loads, and :func:`missing_parts`
lists what is absent.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.core.errors import ARExplorerError, OrderingError
from app.core.files import atomic_write_text
from app.core.orderings import Ordering
from app.core.registry import Registry

FORMAT = "ar-explorer-session"
VERSION = 1
SUFFIX = ".arsession"
MIME_TYPE = "application/x-ar-explorer-session"
MAX_FILE_BYTES = 16 * 1024 * 1024  # far above any real session (a 28x28 one is a few kB)
MAX_IMAGE_SIDE = 1024
MAX_LEVELS = 256
SCALE_RANGE = (0.5, 4.0)
RUN_STATES = ("idle", "paused", "playing", "done")


class SessionError(ARExplorerError):
    """A session file cannot be read, or is not a session file; the message says which field is wrong."""


# -- the parts of a session ------------------------------------------------------------------------------------
@dataclass
class SessionImage:
    """An image as a model sees it: ``values`` ``(C, H, W)`` uint8 in ``0 .. num_values - 1``.

    ``source`` says where it came from ("your drawing", "test image #7 (a 3)"); ``label`` is the class asked
    of a class-conditional model, if any.
    """

    values: np.ndarray
    num_values: int
    source: str = ""
    label: int | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.values.shape)


@dataclass
class SamplingSettings:
    """The Sample view: seed, temperature, number of images, sampler (``compare``: naive and cached side by
    side), class label, where the run was (``run`` one of :data:`RUN_STATES`, ``step`` steps drawn) and its
    speed (``speed``: pixels per second, ``"max"`` for as fast as the device goes, ``None`` to keep the app's)."""

    seed: int = 0
    temperature: float = 1.0
    images: int = 16
    mode: str = "auto"
    label: int | None = None
    run: str = "idle"
    step: int = 0
    speed: float | str | None = None


@dataclass
class OrderingChoice:
    """The ordering being edited; ``preset`` names the preset it is (to rebuild it at another size)."""

    ordering: Ordering
    preset: str | None = None


@dataclass
class FisherPair:
    """The two ends of a Fisher-score interpolation and its number of steps."""

    a: SessionImage
    b: SessionImage
    steps: int = 8


@dataclass
class CheckpointRef:
    """The checkpoint a session was saved on: ``ref`` as the app opened it (a name or a path), with what is
    needed to say what is missing on another machine."""

    ref: str
    model: str | None = None
    plugin: str | None = None
    module: str | None = None
    dataset: str | None = None
    title: str | None = None


@dataclass
class SessionState:
    """Everything a session file holds. Each part is optional: a view restores what is there."""

    checkpoint: CheckpointRef | None = None
    view: str | None = None
    scale: float | None = None
    sampling: SamplingSettings | None = None
    ordering: OrderingChoice | None = None
    drawing: SessionImage | None = None
    fisher: FisherPair | None = None
    views: dict[str, dict] = field(default_factory=dict)  # other views' own JSON state, by view name
    notes: list[str] = field(default_factory=list)  # said while reading the file (not saved)


# -- images as rows of hex digits --------------------------------------------------------------------------------
def _digits(num_values: int) -> int:
    return 1 if num_values <= 16 else 2


def image_to_dict(image: SessionImage) -> dict:
    c, h, w = image.shape
    digits = _digits(image.num_values)
    flat = np.asarray(image.values, dtype=np.int64).reshape(c * h, w)
    rows = ["".join(f"{int(v):0{digits}x}" for v in row) for row in flat]
    data: dict[str, Any] = {"shape": [c, h, w], "levels": int(image.num_values), "rows": rows}
    if image.source:
        data["source"] = image.source
    if image.label is not None:
        data["label"] = int(image.label)
    return data


def image_from_dict(data: object, where: str) -> SessionImage:
    """Read an image written by :func:`image_to_dict`; :class:`SessionError` names ``where`` and the fault."""
    data = _object(data, where)
    shape = data.get("shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(_is_int(v) and 1 <= v <= MAX_IMAGE_SIDE for v in shape)):
        raise SessionError(f"{where}.shape must be [channels, height, width] of positive integers, not {_short(shape)}")
    levels = data.get("levels")
    if not _is_int(levels) or not 2 <= levels <= MAX_LEVELS:
        raise SessionError(f"{where}.levels must be an integer from 2 to {MAX_LEVELS}, not {_short(levels)}")
    c, h, w = shape
    rows, digits = data.get("rows"), _digits(levels)
    if not isinstance(rows, list) or len(rows) != c * h:
        raise SessionError(f"{where}.rows must be a list of {c * h} strings (one per row of each channel)")
    values = np.zeros((c * h, w), dtype=np.uint8)
    for i, row in enumerate(rows):
        if not isinstance(row, str) or len(row) != w * digits:
            raise SessionError(f"{where}.rows[{i}] must be a string of {w * digits} hex digits, not {_short(row)}")
        try:
            parsed = [int(row[j:j + digits], 16) for j in range(0, len(row), digits)]
        except ValueError:
            raise SessionError(f"{where}.rows[{i}] holds a character that is not a hex digit") from None
        if max(parsed) >= levels:
            raise SessionError(f"{where}.rows[{i}] holds the value {max(parsed)}; the image has {levels} levels")
        values[i] = parsed
    label = data.get("label")
    if label is not None and (not _is_int(label) or label < 0):
        raise SessionError(f"{where}.label must be a class number (0, 1, ...), not {_short(label)}")
    source = data.get("source", "")
    return SessionImage(values.reshape(c, h, w), int(levels), str(source) if source else "", label)


def fit_image(image: SessionImage, shape: tuple[int, int, int], num_values: int) -> tuple[np.ndarray | None, str]:
    """The image in the values of a model of ``shape`` and ``num_values`` levels, and a note.

    Levels are converted (a binary stroke becomes full intensity; grey thresholds at half, as the lecture's
    binarization does); a different size or number of channels cannot be, and gives ``None`` with the reason.
    """
    if image.shape != tuple(shape):
        return None, (f"the image is {_shape_text(image.shape)}; the model takes {_shape_text(tuple(shape))}")
    if image.num_values == num_values:
        return image.values.copy(), ""
    scaled = np.rint(image.values.astype(np.float64) * (num_values - 1) / (image.num_values - 1))
    note = f"converted from {image.num_values} to {num_values} levels"
    return np.clip(scaled, 0, num_values - 1).astype(np.uint8), note


def _shape_text(shape: tuple[int, ...]) -> str:
    c, h, w = shape
    return f"{h}x{w}" + (f" with {c} channels" if c != 1 else "")


# -- the whole file --------------------------------------------------------------------------------------------
def session_to_dict(state: SessionState) -> dict:
    """The JSON object of a session file (parts that are ``None`` are left out)."""
    data: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if state.checkpoint is not None:
        data["checkpoint"] = {k: v for k, v in vars(state.checkpoint).items() if v is not None}
    if state.view:
        data["view"] = state.view
    if state.scale is not None:
        data["scale"] = float(state.scale)
    if state.sampling is not None:
        data["sampling"] = dict(vars(state.sampling))
    if state.ordering is not None:
        ordering = state.ordering.ordering.to_dict()
        if state.ordering.preset:
            ordering["preset"] = state.ordering.preset
        data["ordering"] = ordering
    if state.drawing is not None:
        data["drawing"] = image_to_dict(state.drawing)
    if state.fisher is not None:
        pair = state.fisher
        data["fisher"] = {"a": image_to_dict(pair.a), "b": image_to_dict(pair.b), "steps": int(pair.steps)}
    if state.views:
        data["views"] = state.views
    return data


def session_from_dict(data: object) -> SessionState:
    """Read a session object; :class:`SessionError` says which field is wrong and how."""
    data = _object(data, "the session")
    if data.get("format") != FORMAT:
        raise SessionError(f"not an AR Explorer session (its \"format\" is {_short(data.get('format'))}, "
                           f"expected {FORMAT!r})")
    version = data.get("version")
    if not _is_int(version) or version < 1:
        raise SessionError(f"the session's version must be a positive integer, not {_short(version)}")
    state = SessionState()
    if version > VERSION:
        state.notes.append(f"the session was written by a newer AR Explorer (format version {version}); "
                           "what this version does not know is left out")
    state.checkpoint = _checkpoint(data.get("checkpoint"))
    view = data.get("view")
    if view is not None and not (isinstance(view, str) and view):
        raise SessionError(f"view must be the name of a view (sample, score, ...), not {_short(view)}")
    state.view = view
    state.scale = _scale(data.get("scale"))
    state.sampling = _sampling(data.get("sampling"))
    state.ordering = _ordering(data.get("ordering"))
    if data.get("drawing") is not None:
        state.drawing = image_from_dict(data["drawing"], "drawing")
    state.fisher = _fisher(data.get("fisher"))
    views = data.get("views", {})
    if not isinstance(views, dict) or not all(isinstance(v, dict) for v in views.values()):
        raise SessionError("views must map view names to objects")
    state.views = views
    return state


def save_session(state: SessionState, path: str | Path) -> Path:
    """Write ``state`` to ``path`` atomically (a crash never leaves half a file); returns the path."""
    path = Path(path)
    text = _pretty(session_to_dict(state))
    try:
        atomic_write_text(path, text + "\n")
    except OSError as exc:
        raise SessionError(f"cannot write the session {path.name}: {' '.join(str(exc).split())}") from None
    return path


def _pretty(value: Any, indent: str = "") -> str:
    """JSON laid out for people: an object's keys one per line, image rows one per line (so a drawing reads
    as a picture), and any other list (an ordering's 784 pairs) on one line, so the file stays small."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {_pretty(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return "[\n" + ",\n".join(inner + json.dumps(v, ensure_ascii=False) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":") if isinstance(value, list) else (", ", ": "))


def load_session(path: str | Path) -> SessionState:
    """Read a session file; :class:`SessionError` (one line) if it cannot be read or is not valid."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise SessionError(f"{path.name} is {size / 2**20:.0f} MB; a session file is a few kB (refused)")
        text = path.read_text(encoding="utf-8-sig")  # utf-8-sig: Windows editors may add a byte-order mark
    except FileNotFoundError:
        raise SessionError(f"no session file at {path}") from None
    except IsADirectoryError:
        raise SessionError(f"{path} is a folder, not a session file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SessionError(f"cannot read the session {path.name}: {' '.join(str(exc).split())}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SessionError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except RecursionError:
        raise SessionError(f"{path.name} is not a session: its JSON is nested too deeply") from None
    try:
        return session_from_dict(data)
    except SessionError as exc:
        raise SessionError(f"{path.name}: {exc}") from None


# -- what a machine lacks -----------------------------------------------------------------------------------------
def checkpoint_ref(ref: str, meta: dict, registry: Registry, title: str | None = None) -> CheckpointRef:
    """A :class:`CheckpointRef` for the checkpoint opened as ``ref`` (its metadata ``meta``), naming the plugin
    that provides its model, so that another machine can say which plugin it lacks."""
    model = meta.get("model")
    plugin = module = None
    for status in registry.statuses.values():
        if model in status.provides.get("models", []):
            plugin, module = status.name, status.module or None
            break
    dataset = meta.get("dataset")
    return CheckpointRef(str(ref), str(model) if model else None, plugin, module,
                         str(dataset) if dataset else None, title)


def resolve_checkpoint(ref: CheckpointRef, names: list[str], base_dir: str | Path | None = None) -> str | None:
    """What to open for ``ref`` here: a listed checkpoint's name, an existing path (relative paths are tried
    beside the session file first), or ``None`` when it is not on this machine."""
    if ref.ref in names:
        return ref.ref
    path = Path(ref.ref).expanduser()
    candidates = [path] if path.is_absolute() else [Path(base_dir) / path, path] if base_dir else [path]
    for candidate in candidates:
        for option in (candidate, candidate.with_suffix(".safetensors")):
            if option.is_file():
                return str(option)
    if base_dir is not None and path.is_absolute():  # sent together: the checkpoint beside the session file
        for option in (Path(base_dir) / path.name, (Path(base_dir) / path.name).with_suffix(".safetensors")):
            if option.is_file():
                return str(option)
    stem = path.name.removesuffix(".safetensors").removesuffix(".json")
    return stem if stem in names else None


def missing_parts(state: SessionState, checkpoint_names: list[str], models: set[str], orderings: set[str],
                  base_dir: str | Path | None = None) -> list[str]:
    """One sentence per thing the session names that this machine does not have (checkpoint, plugin,
    ordering preset); an empty list when everything is here."""
    missing = []
    ref = state.checkpoint
    if ref is not None:
        found = resolve_checkpoint(ref, checkpoint_names, base_dir)
        if found is None:
            what = ", ".join(p for p in (ref.title, f"trained on {ref.dataset}" if ref.dataset else None) if p)
            missing.append(f"the checkpoint {ref.ref}{f' ({what})' if what else ''} is not on this machine")
        if ref.model and ref.model not in models:
            plugin = ref.plugin or "a plugin"
            where = f" (module {ref.module})" if ref.module and ref.module != ref.plugin else ""
            missing.append(f"the model {ref.model!r} comes from plugin {plugin}{where}, which is not loaded here: "
                           "install it, or name its module in AR_EXPLORER_PLUGINS")
    choice = state.ordering
    if choice is not None and choice.preset and choice.preset not in orderings:
        missing.append(f"the ordering preset {choice.preset!r} is not available here; its "
                       f"{choice.ordering.height}x{choice.ordering.width} order, saved in the session, is used")
    return missing


# -- reading parts ----------------------------------------------------------------------------------------------
def _checkpoint(data: object) -> CheckpointRef | None:
    if data is None:
        return None
    if isinstance(data, str):  # hand-written sessions may name just the checkpoint
        data = {"ref": data}
    data = _object(data, "checkpoint")
    ref = data.get("ref")
    if not isinstance(ref, str) or not ref:
        raise SessionError(f"checkpoint.ref must be a checkpoint name or path, not {_short(ref)}")
    fields = {}
    for key in ("model", "plugin", "module", "dataset", "title"):
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            raise SessionError(f"checkpoint.{key} must be text, not {_short(value)}")
        fields[key] = value
    return CheckpointRef(ref, **fields)


def _scale(value: object) -> float | None:
    if value is None:
        return None
    low, high = SCALE_RANGE
    if not _is_number(value) or not low <= float(value) <= high:
        raise SessionError(f"scale must be a number from {low} to {high} (1.0 is 100%), not {_short(value)}")
    return float(value)


def _sampling(data: object) -> SamplingSettings | None:
    if data is None:
        return None
    data = _object(data, "sampling")
    settings = SamplingSettings()
    checks = {
        "seed": (lambda v: _is_int(v) and 0 <= v < 2**31, "an integer from 0 to 2147483647"),
        "temperature": (lambda v: _is_number(v) and 0 <= float(v) <= 10, "a number from 0 to 10"),
        "images": (lambda v: _is_int(v) and 1 <= v <= 1024, "an integer from 1 to 1024"),
        "mode": (lambda v: isinstance(v, str) and bool(v), "a sampler name (auto, naive, cached, compare)"),
        "label": (lambda v: v is None or (_is_int(v) and v >= 0), "a class number (0, 1, ...) or null"),
        "run": (lambda v: v in RUN_STATES, " or ".join(RUN_STATES)),
        "step": (lambda v: _is_int(v) and v >= 0, "a number of steps (0 or more)"),
        "speed": (lambda v: v is None or v == "max" or (_is_number(v) and 0 < float(v) <= 1e6),
                  "pixels per second (a positive number) or \"max\""),
    }
    for key, (ok, expected) in checks.items():
        if key in data:
            if not ok(data[key]):
                raise SessionError(f"sampling.{key} must be {expected}, not {_short(data[key])}")
            setattr(settings, key, float(data[key]) if key == "temperature" else data[key])
    return settings


def _ordering(data: object) -> OrderingChoice | None:
    if data is None:
        return None
    data = _object(data, "ordering")
    try:
        ordering = Ordering.from_dict(data)
    except OrderingError as exc:
        raise SessionError(f"ordering: {exc}") from None
    preset = data.get("preset")
    if preset is not None and not isinstance(preset, str):
        raise SessionError(f"ordering.preset must be a preset name, not {_short(preset)}")
    return OrderingChoice(ordering, preset or None)


def _fisher(data: object) -> FisherPair | None:
    if data is None:
        return None
    data = _object(data, "fisher")
    a, b = image_from_dict(data.get("a"), "fisher.a"), image_from_dict(data.get("b"), "fisher.b")
    if a.shape != b.shape or a.num_values != b.num_values:
        raise SessionError("fisher.a and fisher.b must have the same shape and levels")
    steps = data.get("steps", 8)
    if not _is_int(steps) or not 2 <= steps <= 64:
        raise SessionError(f"fisher.steps must be an integer from 2 to 64, not {_short(steps)}")
    return FisherPair(a, b, steps)


def _object(data: object, where: str) -> dict:
    if not isinstance(data, dict):
        raise SessionError(f"{where} must be a JSON object, not {_short(data)}")
    return data


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _short(value: object, limit: int = 50) -> str:
    """``repr`` of a value from an untrusted file, cut to fit in a one-line message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__ = [
    "SessionState", "SessionImage", "SamplingSettings", "OrderingChoice", "FisherPair", "CheckpointRef",
    "SessionError", "save_session", "load_session", "session_to_dict", "session_from_dict", "missing_parts",
    "resolve_checkpoint", "checkpoint_ref", "fit_image", "image_to_dict", "image_from_dict", "FORMAT", "VERSION", "SUFFIX",
    "MIME_TYPE", "RUN_STATES",
]
