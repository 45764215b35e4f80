"""The user's drawing, kept across models: each model gets it converted to its own image format.

A binary model and PixelCNN++ (256 grey levels), a 28x28 and a 56x56 model, a grey and a colour one each see
the same drawing in their own values. The drawing is kept as it was last edited, in the format it was edited
in, and every conversion starts from it: going from a binary model to a grey one and back gives back exactly
the binary drawing, and a grey drawing comes back with its grey levels after a visit to a binary model.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from app.core.images import ConvertedImage, convert_image


def convert_values(values: np.ndarray, num_values: int, shape: tuple[int, int, int],
                   target_values: int) -> ConvertedImage:
    """``values`` ``(C, H, W)`` in ``0 .. num_values-1`` as an image of ``shape`` with ``target_values`` levels.

    The same conversion as an image file gets (:func:`app.core.images.convert_image`: resized with a box
    filter, grey made colour or colour grey, binarized at 0.5 or quantised), never inverted.
    """
    values = np.asarray(values)
    if tuple(values.shape) == tuple(shape) and num_values == target_values:
        return ConvertedImage(values.astype(np.uint8).copy(), ["used as it is"], values.shape[:0:-1], "")
    grey = np.clip(values.astype(np.float32) * (255.0 / max(num_values - 1, 1)), 0, 255).round().astype(np.uint8)
    if grey.shape[0] == 3:
        picture = Image.fromarray(np.ascontiguousarray(grey.transpose(1, 2, 0)), "RGB")
    else:
        picture = Image.fromarray(np.ascontiguousarray(grey.mean(axis=0).round().astype(np.uint8)), "L")
    return convert_image(picture, tuple(shape), int(target_values), invert="no")


class Drawing:
    """The image as the user last made it (drawn, loaded, cleared, inverted), in the format they made it in."""

    def __init__(self) -> None:
        self.values: np.ndarray | None = None
        self.num_values = 2

    def remember(self, values: np.ndarray, num_values: int) -> None:
        self.values = np.asarray(values, dtype=np.uint8).copy()
        self.num_values = int(num_values)

    def for_model(self, shape: tuple[int, int, int], num_values: int) -> ConvertedImage | None:
        """The drawing as a model of ``shape`` and ``num_values`` sees it (None before anything was drawn)."""
        if self.values is None:
            return None
        return convert_values(self.values, self.num_values, shape, num_values)


__all__ = ["Drawing", "convert_values"]
