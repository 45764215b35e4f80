"""The Qt-free core of AR Explorer: models, orderings, sampling, scoring, data, training, checkpoints.

Nothing under ``app.core`` imports Qt; the CLI, the tests and the desktop UI all use this same API.
"""

from app.core.hookspecs import hookimpl

__all__ = ["hookimpl"]
