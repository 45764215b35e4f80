"""Errors the core raises for bad input. Each carries a message meant for the user, in one line."""

from __future__ import annotations


class ARExplorerError(Exception):
    """Base class: the message is complete and shown to the user as it is (no traceback)."""


class OrderingError(ARExplorerError, ValueError):
    """An ordering is not a permutation of the grid's positions, or a model cannot take it."""


class CheckpointError(ARExplorerError):
    """A checkpoint is missing, corrupt, unsafe (pickle) or does not fit its model."""


class ImageError(ARExplorerError):
    """An image file cannot be read or converted to what a model sees."""


class DataError(ARExplorerError):
    """A dataset is missing, incomplete, or does not match its checksums."""


class PluginError(ARExplorerError):
    """A plugin failed to load, raised in a hook, or returned something invalid."""


class ModelError(ARExplorerError):
    """A model raised, returned NaN or a wrong shape, or was asked for something it cannot do."""


class DeviceError(ARExplorerError):
    """The requested device is not available."""


class Cancelled(ARExplorerError):
    """Long work was asked to stop and stopped before its end (nothing was recorded)."""


class HyperparameterError(ModelError):
    """A hyperparameter the model does not take, of the wrong type, or out of its bounds."""
