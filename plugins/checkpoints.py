"""The checkpoints shipped with AR Explorer (``checkpoints/`` in the source tree), and the user's own folder
(``AR_EXPLORER_CHECKPOINTS``, default ``~/.local/share/ar-explorer/checkpoints``) where ``train`` saves."""

from __future__ import annotations

import os
from pathlib import Path

from app.core import hookimpl

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


def user_checkpoint_dir() -> Path:
    env = os.environ.get("AR_EXPLORER_CHECKPOINTS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "ar-explorer" / "checkpoints"


@hookimpl
def ar_explorer_checkpoint_dirs():
    return [SHIPPED, user_checkpoint_dir()]
