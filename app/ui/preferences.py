"""Settings that persist between runs (QSettings in an INI file): checkpoint, device, UI scale, geometry.

The file lives in ``$XDG_CONFIG_HOME/ar-explorer/ui.ini`` (``~/.config`` by default), or where
``AR_EXPLORER_SETTINGS`` points, so that tests and several users never share one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

SCALES = (1.0, 1.25, 1.5, 2.0, 2.5)


def settings_path() -> Path:
    env = os.environ.get("AR_EXPLORER_SETTINGS")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "ar-explorer" / "ui.ini"


class Preferences:
    """Typed access to the app's QSettings."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or settings_path()
        self._settings = QSettings(str(self.path), QSettings.Format.IniFormat)
        self._scratch: tempfile.TemporaryDirectory | None = None

    @classmethod
    def scratch(cls) -> Preferences:
        """Settings that start empty and vanish with the process (screenshots neither read nor change the
        user's own)."""
        folder = tempfile.TemporaryDirectory(prefix="ar-explorer-settings-")
        preferences = cls(Path(folder.name) / "ui.ini")
        preferences._scratch = folder
        return preferences

    def _get(self, key: str, default=None):
        return self._settings.value(key, default)

    def _set(self, key: str, value) -> None:
        self._settings.setValue(key, value)
        self._settings.sync()

    @property
    def checkpoint(self) -> str | None:
        value = self._get("checkpoint")
        return str(value) if value else None

    @checkpoint.setter
    def checkpoint(self, name: str | None) -> None:
        self._set("checkpoint", name or "")

    @property
    def device(self) -> str:
        return str(self._get("device", "auto") or "auto")

    @device.setter
    def device(self, name: str) -> None:
        self._set("device", name)

    @property
    def scale(self) -> float:
        try:
            value = float(self._get("scale", 1.0))
        except (TypeError, ValueError):
            return 1.0
        return min(max(value, 0.75), 3.0)

    @scale.setter
    def scale(self, value: float) -> None:
        self._set("scale", float(value))

    @property
    def geometry(self) -> QByteArray | None:
        value = self._get("geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    @geometry.setter
    def geometry(self, value: QByteArray) -> None:
        self._set("geometry", value)

    def value(self, key: str, default=None):
        """A view's own setting (``sample/speed``, ...)."""
        return self._get(key, default)

    def set_value(self, key: str, value) -> None:
        self._set(key, value)


__all__ = ["Preferences", "settings_path", "SCALES"]
