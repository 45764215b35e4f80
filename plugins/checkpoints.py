"""The checkpoints shipped with AR Explorer (``checkpoints/`` in the source tree), and the user's own folder
(:func:`app.core.checkpoints.user_checkpoint_dir`, where ``train`` saves)."""

from __future__ import annotations

from pathlib import Path

from app.core import hookimpl
from app.core.checkpoints import user_checkpoint_dir

SHIPPED = Path(__file__).resolve().parent.parent / "checkpoints"


@hookimpl
def ar_explorer_checkpoint_dirs():
    return [SHIPPED, user_checkpoint_dir()]
