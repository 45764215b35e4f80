"""``ar-explorer`` with no command: build the app, open the window, or take a screenshot and exit."""

from __future__ import annotations

import argparse
import signal
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from app.core.errors import ARExplorerError
from app.core.registry import get_registry
from app.core.session import Session
from app.core.session_file import SessionError, SessionState, load_session
from app.ui import session_io, theme
from app.ui.context import AppContext
from app.ui.preferences import Preferences
from app.ui.qt_main_window import QtMainWindow
from app.ui.workers import leave_if_busy


def application() -> QApplication:
    """The QApplication, created once, with the app's look."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("AR Explorer")
        app.setOrganizationName("ar-explorer")
        app.setWindowIcon(theme.app_icon())
        theme.remember_base_font(app)
        theme.apply_palette(app)
    theme.configure_pyqtgraph()
    return app


def make_session(device: str | None, strict: bool) -> tuple[Session, list[str]]:
    """A session on ``device``; an unavailable device falls back to ``auto`` with a note."""
    registry = get_registry(strict=strict)
    notes = []
    try:
        session = Session(registry, device or "auto")
    except ARExplorerError as exc:
        notes.append(f"{exc}; using the best available device instead")
        session = Session(registry, "auto")
    return session, notes


def build(args: argparse.Namespace, preferences: Preferences | None = None) -> tuple[QtMainWindow, AppContext]:
    """The window and its context, opened on ``--checkpoint``, the last one used, or the default."""
    application()
    screenshot = bool(getattr(args, "screenshot", None))
    if preferences is None:
        # A screenshot neither reads nor changes the user's settings: it shows the defaults.
        preferences = Preferences.scratch() if screenshot else Preferences()
    device = getattr(args, "device", None) or preferences.device
    session, notes = make_session(device, bool(getattr(args, "strict_plugins", False)))
    scale = getattr(args, "scale", None) or preferences.scale
    context = AppContext(session, preferences, scale)
    for note in notes:
        context.notify(note, "warning")
    for status in session.registry.problems():
        context.notify(f"plugin {status.name}: {status.error}", "warning", "\n".join(status.details),
                       source="plugins")
    window = QtMainWindow(context)
    state, base = read_session_arg(args, context)
    requested = getattr(args, "checkpoint", None)
    if requested is None and state is not None:
        requested = session_io.checkpoint_to_open(window, state, base)  # one load, not the default's first
    open_first_checkpoint(context, requested)
    window.opened_session = state
    if state is not None:
        session_io.apply_session(window, state, base, Path(args.session).name)
    return window, context


def read_session_arg(args: argparse.Namespace, context: AppContext) -> tuple[SessionState | None, Path | None]:
    """The session of ``--session FILE``, with what the command line names itself taken out of it (the
    command line wins); a file that is not valid is one line on stderr and a notice, and the app opens as
    usual."""
    path = getattr(args, "session", None)
    if not path:
        return None, None
    try:
        state = load_session(path)
    except SessionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        context.notify(str(exc), "error", source="session")
        return None, None
    if getattr(args, "checkpoint", None):
        state.checkpoint = None
    if getattr(args, "scale", None):
        state.scale = None
    if getattr(args, "view", None):
        state.view = None
    return state, Path(path).parent


def open_first_checkpoint(context: AppContext, requested: str | None) -> bool:
    names = [info.name for info in context.checkpoints()]
    default = context.session.default_checkpoint()
    candidates = [requested] if requested else [context.preferences.checkpoint, default]
    for name in candidates:
        if not name:
            continue
        if (name in names or Path(name).exists() or requested) and context.load(name):
            return True
    if default is not None and default not in candidates:
        return context.load(default)
    return False


def install_exception_hook(context: AppContext):
    """Turn any exception that reaches the event loop into a notice (the app never dies on an error).

    Returns a function that puts the previous hook back.
    """
    previous = sys.excepthook

    def hook(kind, value, tb) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, value, tb)
            return
        details = "".join(traceback.format_exception(kind, value, tb))
        context.notify(f"unexpected {kind.__name__}: {value}", "error", details)

    sys.excepthook = hook
    return lambda: setattr(sys, "excepthook", previous)


def _close_on_ctrl_c(window: QtMainWindow) -> None:
    """Ctrl+C in the terminal closes the window (joining its threads) instead of being ignored while Qt waits:
    a timer lets Python look at its signals a few times a second."""
    signal.signal(signal.SIGINT, lambda *_: window.close())
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)


def launch(args: argparse.Namespace) -> int:
    """Open the app (or, with ``--screenshot``, save a PNG of it and exit)."""
    size = None
    if getattr(args, "screenshot", None):
        from app.ui.screenshot import parse_size

        try:
            size = parse_size(getattr(args, "size", None))
        except ARExplorerError as exc:  # refused before any window opens
            print(f"error: {exc}", file=sys.stderr)
            return 2
    app = application()
    window, context = build(args)
    restore = install_exception_hook(context)
    try:
        if getattr(args, "screenshot", None):
            from app.ui.screenshot import take_screenshot

            state = window.opened_session
            view = args.view or (state.view if state is not None else None) or "sample"
            # A session brings its own state (a run included): a view's default action would replace it.
            code = take_screenshot(app, window, args.screenshot, view, float(args.after), size,
                                   run_default=state is None)
        else:
            if args.view:
                window.show_view(args.view)
            window.show()
            _close_on_ctrl_c(window)
            code = int(app.exec())
    finally:
        restore()
        window.shutdown()
    # A worker held by one long call into a library outlived the window: leave now, with the app's own status.
    leave_if_busy(code)
    return code


__all__ = ["launch", "build", "application", "make_session", "open_first_checkpoint", "install_exception_hook"]
