"""Look and size: a dark palette that lets the digits stand out, and one scale for projectors.

The scale multiplies the application font (every Qt widget follows) and the fonts and pens of the plots
(pyqtgraph does not follow the application font by itself). Views call :func:`style_plot` on their plots
when :attr:`AppContext.scale_changed` fires.
"""

from __future__ import annotations

from pathlib import Path

import pyqtgraph as pg
from PySide6.QtGui import QColor, QFont, QIcon, QPalette
from PySide6.QtWidgets import QApplication

ASSETS = Path(__file__).resolve().parents[2] / "assets"
BACKGROUND = "#1e2229"
PANEL = "#272c35"
TEXT = "#e6e9ef"
MUTED = "#9aa3b2"
ACCENT = "#4fc3f7"
WARN = "#ffb74d"
GOOD = "#81c784"
ERROR = "#ef5350"
_BASE_POINT_SIZE = 10.0
_scale = 1.0  # the projector scale in use, for widgets that size pictures and lines in pixels


def configure_pyqtgraph() -> None:
    """Row-major images (the fast path) and the app's colours; called once before any plot is built."""
    pg.setConfigOptions(imageAxisOrder="row-major", background=BACKGROUND, foreground=TEXT, antialias=True)


def apply_palette(app: QApplication) -> None:
    app.setStyle("Fusion")
    palette = QPalette()
    roles = {
        QPalette.ColorRole.Window: PANEL,
        QPalette.ColorRole.WindowText: TEXT,
        QPalette.ColorRole.Base: BACKGROUND,
        QPalette.ColorRole.AlternateBase: PANEL,
        QPalette.ColorRole.ToolTipBase: PANEL,
        QPalette.ColorRole.ToolTipText: TEXT,
        QPalette.ColorRole.Text: TEXT,
        QPalette.ColorRole.Button: "#323844",
        QPalette.ColorRole.ButtonText: TEXT,
        QPalette.ColorRole.Highlight: "#2f7bbf",
        QPalette.ColorRole.HighlightedText: "#ffffff",
        QPalette.ColorRole.Link: ACCENT,
        QPalette.ColorRole.PlaceholderText: MUTED,
    }
    for role, colour in roles.items():
        palette.setColor(role, QColor(colour))
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor("#6b7280"))
    app.setPalette(palette)


def remember_base_font(app: QApplication) -> None:
    global _BASE_POINT_SIZE
    size = app.font().pointSizeF()
    _BASE_POINT_SIZE = size if size > 0 else 10.0


def apply_scale(app: QApplication, scale: float) -> None:
    """Scale the application font; widgets re-lay themselves out around it (and those sized in pixels, such
    as :class:`~app.ui.qt_pixel_view.QtPixelView`, read :func:`current_scale` when the font changes)."""
    global _scale
    _scale = float(scale)
    font = QFont(app.font())
    font.setPointSizeF(_BASE_POINT_SIZE * scale)
    app.setFont(font)


def current_scale() -> float:
    """The projector scale last applied (1.0 before any)."""
    return _scale


def scaled(pixels: float, scale: float | None = None) -> int:
    """A size in pixels at 100%, at ``scale`` (the current one by default)."""
    return int(round(pixels * (current_scale() if scale is None else scale)))


def point_size(scale: float, factor: float = 1.0) -> float:
    return _BASE_POINT_SIZE * scale * factor


def scaled_font(scale: float, factor: float = 1.0, bold: bool = False) -> QFont:
    font = QFont()
    font.setPointSizeF(point_size(scale, factor))
    font.setBold(bold)
    return font


def style_plot(plot: pg.PlotItem, scale: float, left: str = "", bottom: str = "") -> None:
    """Fonts of a plot's ticks and axis labels at the app's scale."""
    font = scaled_font(scale, 0.9)
    style = {"color": TEXT, "font-size": f"{point_size(scale):.0f}pt"}
    for name, text in (("left", left), ("bottom", bottom)):
        axis = plot.getAxis(name)
        axis.setStyle(tickFont=font, tickTextOffset=int(4 * scale))
        axis.setTextPen(TEXT)
        if text:
            axis.setLabel(text, **style)
    legend = getattr(plot, "legend", None)
    if legend is not None:
        # A legend's labels keep the size they were made with; set again, they take the new one.
        legend.setLabelTextSize(f"{point_size(scale, 0.85):.0f}pt")
        for _, label in legend.items:
            label.setText(label.text)


def app_icon() -> QIcon:
    icon_path = ASSETS / "icon.png"
    return QIcon(str(icon_path)) if icon_path.is_file() else QIcon()


def heading_css(scale: float, factor: float = 1.3) -> str:
    return f"font-size: {point_size(scale, factor):.0f}pt; font-weight: 600;"


def muted_css(scale: float, factor: float = 1.0) -> str:
    """Secondary text. The size is in the style sheet too: a widget with a style sheet no longer follows the
    application font, so it would not grow with the projector scale."""
    return f"color: {MUTED}; font-size: {point_size(scale, factor):.1f}pt;"


__all__ = [
    "configure_pyqtgraph",
    "apply_palette",
    "apply_scale",
    "current_scale",
    "scaled",
    "remember_base_font",
    "style_plot",
    "scaled_font",
    "point_size",
    "app_icon",
    "heading_css",
    "muted_css",
]
