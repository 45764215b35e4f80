"""Export for slides: any grid, strip, map or plot as PNG at the current scale, plots also as SVG, or to the
clipboard.

A *figure* is a pixel view (:class:`~app.ui.qt_pixel_view.QtPixelView`: sample grids, strips, maps, canvases)
or a pyqtgraph plot in the view on screen. A pixel view exports its picture, pixel-exact, each model pixel
an integer block as large as it is on screen now (so it grows with the projector scale), without the hover
and cursor marks drawn over it. A plot exports as it is drawn now (its text at the current scale), as PNG or
as SVG (vector lines and text, for slides that scale).

File > Export figure lists the figures of the current view; Ctrl+Shift+C copies the figure under the mouse,
Ctrl+E saves it; a plot's right-click menu has the same three actions.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QCursor, QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QApplication, QFileDialog, QGroupBox, QMenu, QWidget

from app.ui.qt_pixel_view import QtPixelView

PNG_FILTER = "PNG image (*.png)"
SVG_FILTER = "SVG drawing (*.svg)"


@dataclass
class Figure:
    """A figure on screen: ``kind`` is ``image`` (a pixel view) or ``plot``; ``name`` says which one."""

    widget: QWidget
    name: str
    kind: str

    @property
    def formats(self) -> tuple[str, ...]:
        return ("png", "svg") if self.kind == "plot" else ("png",)

    @property
    def file_stem(self) -> str:
        return re.sub(r"[^a-z0-9]+", "-", self.name.lower()).strip("-") or "figure"


def _is_figure(widget: QWidget) -> bool:
    return isinstance(widget, QtPixelView) or isinstance(widget, pg.GraphicsView)


def as_figure(widget: QWidget, index: int = 0) -> Figure:
    kind = "image" if isinstance(widget, QtPixelView) else "plot"
    return Figure(widget, figure_name(widget, kind, index), kind)


def figure_name(widget: QWidget, kind: str, index: int = 0) -> str:
    """A plot's title (it says what the plot shows now), else the widget's accessible name, else the title of
    the box it is in, else ``image 2`` / ``plot 1``."""
    plot_item = getattr(widget, "plotItem", None)
    title = getattr(getattr(plot_item, "titleLabel", None), "text", "") if plot_item is not None else ""
    title = html.unescape(re.sub(r"<[^>]+>", "", title or "")).strip()
    if title:
        return title
    if widget.accessibleName():
        return widget.accessibleName()
    box = next((p for p in _parents(widget, None) if isinstance(p, QGroupBox) and p.title()), None)
    return f"{box.title()} ({kind})" if box is not None else f"{kind} {index + 1}"


def figures_in(root: QWidget) -> list[Figure]:
    """The figures shown in ``root`` (a view), in reading order: top to bottom, then left to right."""
    found = [w for w in root.findChildren(QWidget) if _is_figure(w) and w.isVisibleTo(root) and w.width() > 1]
    found = [w for w in found if not any(_is_figure(p) for p in _parents(w, root))]  # not a figure inside one

    def position(widget: QWidget) -> tuple[int, int]:
        point = widget.mapTo(root, QPoint(0, 0))
        return point.y() // 40, point.x()

    return [as_figure(w, i) for i, w in enumerate(sorted(found, key=position))]


def _parents(widget: QWidget, root: QWidget):
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        yield parent
        parent = parent.parentWidget()


def figure_at(point: QPoint) -> Figure | None:
    """The figure under a global screen point (the mouse), if any."""
    widget = QApplication.widgetAt(point)
    while widget is not None and not _is_figure(widget):
        widget = widget.parentWidget()
    return as_figure(widget) if widget is not None else None


# -- rendering -------------------------------------------------------------------------------------------------
def pixel_factor(view: QtPixelView) -> int:
    """How many screen pixels one image pixel takes now (at least 1): the export's block size."""
    image = view.image
    if image is None:
        return 1
    rect = view.item.sceneBoundingRect()  # the picture as laid out in the widget, in its pixels
    h, w = image.shape[:2]
    on_screen = min(rect.width() / max(w, 1), rect.height() / max(h, 1)) * view.devicePixelRatioF()
    return max(1, int(round(on_screen)))


def image_array(view: QtPixelView) -> np.ndarray:
    """The picture of a pixel view, each pixel a block of :func:`pixel_factor` pixels: ``(H, W, 3)`` uint8."""
    image = view.image
    if image is None:
        raise ValueError("the figure shows nothing yet")
    rgb = np.asarray(image, dtype=np.uint8)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[..., None], 3, axis=2)
    factor = pixel_factor(view)
    return np.ascontiguousarray(np.repeat(np.repeat(rgb[..., :3], factor, axis=0), factor, axis=1))


def render_image(figure: Figure) -> QImage:
    """The figure as an image: a pixel view's picture, or a plot as drawn now."""
    if figure.kind == "image":
        rgb = image_array(figure.widget)
        h, w = rgb.shape[:2]
        return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
    return figure.widget.grab().toImage()


def save_png(figure: Figure, path: str | Path) -> Path:
    path = Path(path)
    if not render_image(figure).save(str(path), "PNG"):
        raise OSError(f"could not write {path}")
    return path


def save_svg(figure: Figure, path: str | Path) -> Path:
    """A plot as SVG: lines and text stay vectors (QtSvg renders the widget's own drawing into the file)."""
    if figure.kind != "plot":
        raise ValueError(f"{figure.name} is a picture: save it as PNG")
    path = Path(path)
    widget = figure.widget
    generator = QSvgGenerator()
    generator.setFileName(str(path))
    generator.setSize(widget.size())
    generator.setViewBox(QRect(0, 0, widget.width(), widget.height()))
    # At the screen's resolution: pyqtgraph replays recorded drawings (bars) and sizes text in points, which
    # QSvgGenerator's default 72 dpi would shrink against the axes by 72/96.
    generator.setResolution(int(round(widget.logicalDpiX())))
    generator.setTitle(figure.name)
    generator.setDescription("exported from AR Explorer")
    painter = QPainter(generator)
    try:
        widget.render(painter)
    finally:
        painter.end()
    if not path.is_file() or path.stat().st_size == 0:
        raise OSError(f"could not write {path}")
    return path


def copy_to_clipboard(figure: Figure) -> None:
    QGuiApplication.clipboard().setImage(render_image(figure))


# -- the menus -------------------------------------------------------------------------------------------------
class FigureExporter:
    """The window's export actions: a menu of the current view's figures and the figure under the mouse.

    ``current_view()`` returns the widget of the view on screen; ``notify(message, level)`` reports.
    """

    def __init__(self, parent: QWidget, current_view, notify) -> None:
        self.parent = parent
        self.current_view = current_view
        self.notify = notify
        self.last_folder = str(Path.home())

    def fill_menu(self, menu: QMenu) -> None:
        """(Re)build ``menu`` with the figures on screen now (call it from ``aboutToShow``)."""
        menu.clear()
        view = self.current_view()
        figures = figures_in(view) if view is not None else []
        if not figures:
            menu.addAction("No figure in this view").setEnabled(False)
            return
        for figure in figures:
            self.add_actions(menu.addMenu(figure.name), figure)

    def add_actions(self, menu: QMenu, figure: Figure) -> None:
        menu.addAction("Save as PNG…", lambda: self.choose_and_save(figure, "png"))
        if "svg" in figure.formats:
            menu.addAction("Save as SVG…", lambda: self.choose_and_save(figure, "svg"))
        menu.addAction("Copy to clipboard", lambda: self.copy(figure))

    def under_mouse(self) -> Figure | None:
        figure = figure_at(QCursor.pos())
        if figure is None:
            view = self.current_view()
            figures = figures_in(view) if view is not None else []
            figure = figures[0] if figures else None  # the view's main figure
        if figure is None:
            self.notify("no figure here to export", "warning")
        return figure

    def copy(self, figure: Figure | None) -> bool:
        if figure is None:
            return False
        try:
            copy_to_clipboard(figure)
        except ValueError as exc:
            self.notify(f"{figure.name}: {exc}", "warning")
            return False
        self.notify(f"copied {figure.name} to the clipboard", "info")
        return True

    def save(self, figure: Figure, path: str | Path) -> bool:
        """Save as PNG or SVG by the path's suffix (PNG when it has none)."""
        path = Path(path)
        if path.suffix.lower() not in (".png", ".svg"):
            path = path.with_suffix(".png")
        try:
            saved = save_svg(figure, path) if path.suffix.lower() == ".svg" else save_png(figure, path)
        except (OSError, ValueError) as exc:
            self.notify(f"{figure.name} was not saved: {exc}", "error")
            return False
        self.last_folder = str(saved.parent)
        self.notify(f"saved {figure.name} to {saved}", "info")
        return True

    def choose_and_save(self, figure: Figure | None, kind: str | None = None) -> bool:
        if figure is None:
            return False
        kinds = [kind] if kind else list(figure.formats)
        filters = ";;".join(PNG_FILTER if k == "png" else SVG_FILTER for k in kinds)
        start = str(Path(self.last_folder) / f"{figure.file_stem}.{kinds[0]}")
        path, _ = QFileDialog.getSaveFileName(self.parent, f"Save {figure.name}", start, filters)
        return self.save(figure, path) if path else False

    def install_plot_menu(self, widget: QWidget) -> None:
        """Right-click on a plot: save it as PNG or SVG, or copy it (plots have no other right-click use)."""
        widget.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)

        def show(point: QPoint) -> None:
            menu = QMenu(widget)
            self.add_actions(menu, as_figure(widget))
            menu.popup(widget.mapToGlobal(point))

        widget.customContextMenuRequested.connect(show)

    def install_plot_menus(self, root: QWidget) -> None:
        for widget in root.findChildren(pg.PlotWidget):
            if not isinstance(widget, QtPixelView):
                self.install_plot_menu(widget)


def install(window, menu: QMenu) -> FigureExporter:
    """Add File > Export figure (and its shortcuts) to ``menu`` of the main window; plots get a right-click
    menu. Returns the exporter."""
    from PySide6.QtGui import QAction, QKeySequence

    exporter = FigureExporter(window, window.tabs.currentWidget,
                              lambda message, level: window.context.notify(message, level, source="export"))
    figures = menu.addMenu("Export figure")
    figures.aboutToShow.connect(lambda: exporter.fill_menu(figures))
    for text, shortcut, slot in (
        ("Copy the figure under the mouse", "Ctrl+Shift+C", lambda: exporter.copy(exporter.under_mouse())),
        ("Save the figure under the mouse…", "Ctrl+E", lambda: exporter.choose_and_save(exporter.under_mouse())),
    ):
        action = QAction(text, window)
        action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
    exporter.install_plot_menus(window.tabs)
    return exporter


__all__ = ["install", "Figure", "FigureExporter", "figures_in", "figure_at", "as_figure", "render_image", "image_array",
           "pixel_factor", "save_png", "save_svg", "copy_to_clipboard"]
