"""``ar-explorer``: the desktop app with no arguments, headless commands otherwise.

Every command runs without Qt. Errors are one line on stderr and a non-zero exit status, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

from app.core.errors import ARExplorerError
from app.core.extensions import CommandSpec, resolve
from app.core.registry import Registry, get_registry

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + 15


class Terminated(BaseException):
    """SIGTERM (``kill``, a scheduler's time limit) arrived: unwound like Ctrl-C, so that temporary files and
    locks are removed on the way out."""


@contextlib.contextmanager
def _terminate_cleanly() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGTERM"):
        yield
        return

    def terminate(signum, frame) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _add_common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand that is not given the flag must not reset it to False when it came before the
    # subcommand (``ar-explorer --strict-plugins models``); the top-level parser holds the defaults.
    parser.add_argument(
        "--strict-plugins", action="store_true", default=argparse.SUPPRESS,
        help="make any plugin failure fatal (for plugin authors)",
    )
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def build_parser(registry: Registry | None = None) -> argparse.ArgumentParser:
    """The parser of every command the plugins register (``ar_explorer_commands``; the built-in ones too)."""
    from app.cli import options as opt

    parser = opt.ArgumentParser(
        prog="ar-explorer",
        description="See inside autoregressive likelihood models of images. With no command, opens the app.",
    )
    _add_common(parser)
    parser.set_defaults(strict_plugins=False, debug=False)
    parser.add_argument("--screenshot", metavar="PATH", help="open the app, run a view's default action, save a PNG, exit")
    parser.add_argument("--view", default=None, help="the view to open (sample, score, inspect, ...)")
    parser.add_argument("--after", type=opt.real(0, 3600, unit="seconds"), default=3.0, metavar="SECONDS",
                        help="seconds before the screenshot")
    parser.add_argument("--size", default=None, metavar="WxH", help="the screenshot's window size (1440x900)")
    parser.add_argument("--session", metavar="FILE", default=None,
                        help="open the app on a session file (File > Save session); other options override it")
    parser.add_argument("--checkpoint", default=None, help="the checkpoint to open the app on")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    parser.add_argument("--scale", type=opt.real(0.5, 4), default=None,
                        help="UI scale (1.0 normal, 1.5-2.0 for projectors; 0.5 to 4)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for spec in (registry or get_registry()).commands.values():
        _register_commands(sub, spec)
    return parser


def _register_commands(sub: argparse._SubParsersAction, spec: CommandSpec) -> None:
    """Add one plugin's commands; one that fails to add them is a warning, and the other commands work."""
    try:
        resolve(spec.register)(sub, _add_common)
    except Exception as exc:  # noqa: BLE001 - a plugin's register function may raise anything
        print(f"warning: the commands {spec.name!r} ({spec.description or spec.register}) were not added: "
              f"{type(exc).__name__}: {_one_line(str(exc))}", file=sys.stderr)


GuiLauncher = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None, gui: GuiLauncher | None = None) -> int:
    """Run a command; with none, start the desktop app through ``gui``, which :mod:`app.main` passes (without
    it, no command is an error: the CLI cannot reach the UI)."""
    parser = build_parser()
    argv = session_shorthand(list(sys.argv[1:] if argv is None else argv), _command_names(parser))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a refused option (one line already printed): its status
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    debug = getattr(args, "debug", False) or bool(os.environ.get("AR_EXPLORER_DEBUG"))
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    try:
        if handler is None:
            if gui is None:
                # The CLI never imports the UI: only the entry point above both (app.main) can open the app.
                print("error: no command given; the desktop app opens from the ar-explorer command (app.main), "
                      "and the commands are listed by ar-explorer --help", file=sys.stderr)
                return EXIT_ERROR
            return int(gui(args) or 0)
        with _terminate_cleanly():
            return int(handler(args) or 0)
    except Terminated:
        print("terminated: files on disk are as they were or complete", file=sys.stderr)
        return EXIT_TERMINATED
    except ARExplorerError as exc:
        if debug:
            raise
        print(f"error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted: files on disk are as they were or complete", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except OSError as exc:
        # The machine's refusal (a full disk, a read-only folder, a file that is not there), not a bug.
        if debug:
            raise
        from app.core.files import describe_os_error

        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{describe_os_error(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (run with --debug for details)", file=sys.stderr)
        return 1


def session_shorthand(argv: list[str], commands: set[str] = frozenset()) -> list[str]:
    """``ar-explorer FILE.arsession`` means ``ar-explorer --session FILE.arsession``: what a file manager runs
    when a session file is double-clicked (the desktop entry's ``%f`` comes last). A command's own arguments
    are left alone."""
    from app.core.session_file import SUFFIX

    last = argv[-1] if argv else ""
    if (last.lower().endswith(SUFFIX) and not last.startswith("-") and argv[-2:-1] != ["--session"]
            and not commands & set(argv[:-1])):
        return [*argv[:-1], "--session", last]
    return argv


def _command_names(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
    return set(actions[0].choices) if actions else set()


def _one_line(message: str) -> str:
    """Messages may quote a decoder or a plugin that spans lines: the user gets one line."""
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
