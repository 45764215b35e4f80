"""The ``ar-explorer`` entry point: the desktop app with no command, the headless CLI otherwise.

This module sits above both layers: :mod:`app.cli` never imports Qt, and only this function reaches for
:mod:`app.ui`, and only when the app is asked for.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def launch_gui(args: argparse.Namespace) -> int:
    """Start the desktop app, or explain in one line why it cannot start."""
    try:
        import pyqtgraph  # noqa: F401
        import PySide6  # noqa: F401
    except ImportError:
        print(
            "error: the desktop app needs PySide6 and pyqtgraph (pip install 'ar-explorer[gui]'); "
            "the headless commands work without them: ar-explorer --help",
            file=sys.stderr,
        )
        return 2
    from app.ui.launch import launch

    return int(launch(args) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    from app.cli.main import main as cli_main

    return cli_main(argv, gui=launch_gui)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
