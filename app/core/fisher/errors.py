"""The one error of the Fisher modules."""

from __future__ import annotations

from app.core.errors import ARExplorerError


class FisherError(ARExplorerError):
    """Fisher scores cannot be computed for this model, or a stored Fisher space does not fit it."""


__all__ = ["FisherError"]
