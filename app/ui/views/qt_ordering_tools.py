"""The ordering editor's tools: presets, paint, fill the rest, reverse, transpose, flip, undo, save, load; and the
grid that turns mouse strokes into painted cells."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QPushButton, QSizePolicy, QWidget

from app.ui.qt_canvas import QtCanvasItem
from app.ui.qt_flow_layout import QtFlowLayout
from app.ui.qt_pixel_view import QtPixelView


class QtOrderingGrid(QtPixelView):
    """The ordering as coloured cells; mouse strokes come out as ``stroked(cells, finished)``."""

    stroked = Signal(list, bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent, item_class=QtCanvasItem, min_size=180)

    def stroke(self, pixels: list[tuple[int, int]], finished: bool) -> None:
        """Called by the canvas item for every mouse move of a drag, and once when it ends."""
        self.stroked.emit([(int(r), int(c)) for r, c in pixels], bool(finished))


class QtOrderingTools(QWidget):
    """A row of controls (wrapping onto more rows where it is narrow); every action is a signal the view handles."""

    preset_chosen = Signal(str)
    paint_toggled = Signal(bool)
    fill_toggled = Signal(bool)
    reverse = Signal()
    transpose = Signal()
    flip = Signal(str)
    undo = Signal()
    save = Signal()
    load = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QtFlowLayout(self)
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.presets = QComboBox()
        self.presets.setToolTip("The lecture's orderings, and a few more")
        self.presets.activated.connect(lambda _: self.preset_chosen.emit(self.presets.currentText()))
        self.paint = QPushButton("Paint")
        self.paint.setCheckable(True)
        self.paint.setToolTip("Click or drag over cells: each gets the next step of the ordering")
        self.paint.toggled.connect(self.paint_toggled)
        self.fill = QCheckBox("fill the rest in raster order")
        self.fill.setChecked(True)
        self.fill.toggled.connect(self.fill_toggled)
        layout.addWidget(QLabel("Preset:"))
        layout.addWidget(self.presets)
        layout.addWidget(self.paint)
        layout.addWidget(self.fill)
        self.buttons: dict[str, QPushButton] = {}
        for name, text, tip, slot in (
            ("reverse", "Reverse", "Last step first", self.reverse.emit),
            ("transpose", "Transpose", "Swap rows and columns", self.transpose.emit),
            ("flip_h", "Flip ↔", "Mirror left to right", lambda: self.flip.emit("horizontal")),
            ("flip_v", "Flip ↕", "Mirror top to bottom", lambda: self.flip.emit("vertical")),
            ("undo", "Undo", "Undo the last change (Ctrl+Z)", self.undo.emit),
            ("save", "Save…", "Save the ordering as JSON", self.save.emit),
            ("load", "Load…", "Load an ordering from JSON", self.load.emit),
        ):
            button = QPushButton(text)
            button.setToolTip(tip)
            button.clicked.connect(slot)
            layout.addWidget(button)
            self.buttons[name] = button

    def set_presets(self, names: list[str]) -> None:
        self.presets.clear()
        self.presets.addItems(names)
        self.presets.setCurrentIndex(-1)

    def show_preset(self, name: str) -> None:
        """Show ``name`` as the chosen preset (without choosing it again)."""
        self.presets.blockSignals(True)
        self.presets.setCurrentIndex(self.presets.findText(name))
        self.presets.blockSignals(False)


__all__ = ["QtOrderingGrid", "QtOrderingTools"]
