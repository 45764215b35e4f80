"""``ar-explorer``: the desktop app with no arguments, headless commands otherwise.

Every command runs without Qt. Errors are one line on stderr and a non-zero exit status, never a traceback
(``--debug`` shows it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from app.core.errors import ARExplorerError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _add_common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a subcommand that is not given the flag must not reset it to False when it came before the
    # subcommand (``ar-explorer --strict-plugins models``); the top-level parser holds the defaults.
    parser.add_argument(
        "--strict-plugins", action="store_true", default=argparse.SUPPRESS,
        help="make any plugin failure fatal (for plugin authors)",
    )
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    from app.cli import commands, data_commands

    parser = argparse.ArgumentParser(
        prog="ar-explorer",
        description="See inside autoregressive likelihood models of images. With no command, opens the app.",
    )
    _add_common(parser)
    parser.set_defaults(strict_plugins=False, debug=False)
    parser.add_argument("--screenshot", metavar="PATH", help="open the app, run a view's default action, save a PNG, exit")
    parser.add_argument("--view", default=None, help="the view to open (sample, score, inspect, ...)")
    parser.add_argument("--after", type=float, default=3.0, metavar="SECONDS", help="seconds before the screenshot")
    parser.add_argument("--size", default=None, metavar="WxH", help="the screenshot's window size (1440x900)")
    parser.add_argument("--checkpoint", default=None, help="the checkpoint to open the app on")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or mps")
    parser.add_argument("--scale", type=float, default=None, help="UI scale (1.0 normal, 1.5-2.0 for projectors)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub, _add_common)
    data_commands.register(sub, _add_common)
    _register_extensions(sub)
    return parser


def _register_extensions(sub: argparse._SubParsersAction) -> None:
    """Commands that live in their own modules (each adds itself if it is present)."""
    import importlib

    for module_name in ("app.cli.bench_command", "app.cli.complete_command", "app.cli.fisher_command",
                        "app.cli.lessons_command"):
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue
            raise
        module.register(sub, _add_common)


GuiLauncher = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None, gui: GuiLauncher | None = None) -> int:
    """Run a command; with none, start the desktop app through ``gui`` (see :mod:`app.main`)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    debug = getattr(args, "debug", False) or bool(os.environ.get("AR_EXPLORER_DEBUG"))
    handler: Callable[[argparse.Namespace], int] | None = getattr(args, "handler", None)
    try:
        if handler is None:
            if gui is None:
                from app.main import launch_gui as gui
            return int(gui(args) or 0)
        return int(handler(args) or 0)
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
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, not a traceback
        if debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (run with --debug for details)", file=sys.stderr)
        return 1


def _one_line(message: str) -> str:
    """Messages may quote a decoder or a plugin that spans lines: the user gets one line."""
    return " ".join(message.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
