"""The built-in models' building blocks, which live in the core (:mod:`app.core.layers`).

They moved there so that the core's cached-sampling engine can understand a model composed of them; this
module keeps every import of them working, and their parameter names are unchanged, so that saved
checkpoints load as before.
"""

from app.core.layers import (
    ClassBias,
    DownConv,
    Gate,
    MaskedConv2d,
    Residual,
    RightConv,
    gate,
    raster_mask,
    shift_down,
    shift_right,
)

__all__ = [
    "ClassBias",
    "DownConv",
    "Gate",
    "MaskedConv2d",
    "Residual",
    "RightConv",
    "gate",
    "raster_mask",
    "shift_down",
    "shift_right",
]
