"""File > Save session and Open session: gather each view's part of a session, and bring a saved one back.

The format and its checks live in :mod:`app.core.session_file`; this module only asks the window and its
views. A view takes part by defining ``session_state() -> dict`` (fields of
:class:`~app.core.session_file.SessionState`, or ``{"views": {name: json-object}}`` for a view of its own)
and ``restore_session(state) -> list[str]`` (sentences for what it could not restore). What a session names
and this machine lacks is said in notices, one each, and the rest opens.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QFileDialog

from app.core.session_file import (
    SUFFIX,
    SessionError,
    SessionState,
    checkpoint_ref,
    load_session,
    missing_parts,
    resolve_checkpoint,
    save_session,
)
from app.ui.hints import open_session_command

if TYPE_CHECKING:
    from app.ui.qt_main_window import QtMainWindow

FILE_FILTER = f"AR Explorer sessions (*{SUFFIX});;All files (*)"
LAST_FOLDER_KEY = "session/folder"


def current_view_name(window: QtMainWindow) -> str | None:
    widget = window.tabs.currentWidget()
    return next((name for name, view in window.views.items() if view is widget), None)


def collect_session(window: QtMainWindow) -> SessionState:
    """The state on screen now: checkpoint, view, scale, and every view's own part."""
    context = window.context
    state = SessionState(view=current_view_name(window), scale=float(context.scale))
    loaded = context.loaded
    if loaded is not None:
        listed = {info.name: info.weights for info in context.checkpoints()}
        ref = loaded.name if listed.get(loaded.name) == loaded.info.weights else str(loaded.info.weights)
        state.checkpoint = checkpoint_ref(ref, loaded.info.meta, context.session.registry, loaded.model.spec.title)
    for name, widget in window.views.items():
        gather = getattr(widget, "session_state", None)
        if gather is None:
            continue
        try:
            part = gather() or {}
        except Exception as exc:  # noqa: BLE001 - one view's fault must not lose the rest of the session
            context.report(exc, f"the {name} view's state was left out of the session")
            continue
        for key, value in part.items():
            if key == "views":
                state.views.update(value)
            elif key in SessionState.__dataclass_fields__ and key != "notes":
                setattr(state, key, value)
    return state


def save_to(window: QtMainWindow, path: str | Path) -> bool:
    """Write the session on screen to ``path`` (``.arsession`` added when it has no suffix)."""
    path = Path(path)
    if not path.suffix:
        path = path.with_suffix(SUFFIX)
    try:
        save_session(collect_session(window), path)
    except SessionError as exc:
        window.context.notify(str(exc), "error", source="session")
        return False
    window.context.notify(f"saved the session to {path}: open it with {open_session_command(path)}", "info",
                          source="session")
    return True


def open_from(window: QtMainWindow, path: str | Path) -> bool:
    """Open a session file; a file that is not valid is one notice and changes nothing."""
    try:
        state = load_session(path)
    except SessionError as exc:
        window.context.notify(str(exc), "error", source="session")
        return False
    apply_session(window, state, Path(path).parent, Path(path).name)
    return True


def checkpoint_to_open(window: QtMainWindow, state: SessionState, base_dir: str | Path | None) -> str | None:
    """The checkpoint of ``state`` as this machine can open it, or None when it is not here."""
    if state.checkpoint is None:
        return None
    names = [info.name for info in window.context.checkpoints()]
    return resolve_checkpoint(state.checkpoint, names, base_dir)


def apply_session(window: QtMainWindow, state: SessionState, base_dir: str | Path | None = None,
                  label: str = "the session") -> list[str]:
    """Bring the window to ``state``: scale, checkpoint, each view's part, then the view. Returns (and shows
    as notices) what could not be restored."""
    context = window.context
    registry = context.session.registry
    names = [info.name for info in context.checkpoints()]
    notes = list(state.notes)
    notes += missing_parts(state, names, set(registry.models), set(registry.orderings), base_dir)
    if state.scale is not None:
        context.set_scale(state.scale)
    target = checkpoint_to_open(window, state, base_dir)
    if target is None and state.checkpoint is not None:
        current = context.loaded.name if context.loaded is not None else "no checkpoint"
        notes.append(f"the rest of the session opens on {current}, converted where it must be")
    if target is not None and not _is_loaded(window, target) and not context.load(target):
        notes.append(f"the checkpoint {target} did not open (see the notice above); the rest is restored on "
                     f"{context.loaded.name if context.loaded is not None else 'no checkpoint'}")
    for name, widget in window.views.items():
        restore = getattr(widget, "restore_session", None)
        if restore is None:
            continue
        try:
            notes += [f"{name}: {note}" for note in restore(state) or []]
        except Exception as exc:  # noqa: BLE001
            context.report(exc, f"restoring the {name} view")
    if state.view:
        if state.view in window.views:
            window.show_view(state.view)
        else:
            notes.append(f"the view {state.view!r} is not in this app (a plugin's view that is not installed?)")
    for note in notes:
        context.notify(f"{label}: {note}", "warning", source="session")
    context.notify(f"opened {label}" + ("; what it names and this machine lacks is in the notices" if notes else ""),
                   "info", source="session")
    return notes


def _is_loaded(window: QtMainWindow, target: str) -> bool:
    loaded = window.context.loaded
    return loaded is not None and target in (loaded.name, str(loaded.info.weights))


def _start_folder(window: QtMainWindow) -> str:
    folder = window.context.preferences.value(LAST_FOLDER_KEY)
    return str(folder) if folder and Path(str(folder)).is_dir() else str(Path.home())


def _suggested_name(window: QtMainWindow) -> str:
    loaded = window.context.loaded
    parts = [current_view_name(window) or "session", loaded.name if loaded is not None else ""]
    return "-".join(p for p in parts if p) + SUFFIX


def choose_and_save(window: QtMainWindow) -> bool:
    """File > Save session…: ask where, then save."""
    start = str(Path(_start_folder(window)) / _suggested_name(window))
    path, _ = QFileDialog.getSaveFileName(window, "Save the session", start, FILE_FILTER)
    if not path:
        return False
    window.context.preferences.set_value(LAST_FOLDER_KEY, str(Path(path).parent))
    return save_to(window, path)


def choose_and_open(window: QtMainWindow) -> bool:
    """File > Open session…: ask which, then open."""
    path, _ = QFileDialog.getOpenFileName(window, "Open a session", _start_folder(window), FILE_FILTER)
    if not path:
        return False
    window.context.preferences.set_value(LAST_FOLDER_KEY, str(Path(path).parent))
    return open_from(window, path)


__all__ = ["collect_session", "apply_session", "save_to", "open_from", "choose_and_save", "choose_and_open",
           "checkpoint_to_open", "current_view_name"]
