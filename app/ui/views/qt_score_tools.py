"""The Score view's tool bar: pen, eraser, brush size, clear, invert, and where an image comes from."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QButtonGroup, QComboBox, QLabel, QPushButton, QSizePolicy, QSpinBox, QWidget

from app.ui.qt_flow_layout import QtFlowLayout


class QtScoreTools(QWidget):
    """Signals the view connects to; ``brush_size`` and ``eraser`` hold the drawing state."""

    tool_changed = Signal(bool)  # True for the eraser
    size_changed = Signal(int)
    clear = Signal()
    invert = Signal()
    load_file = Signal()
    test_image = Signal()
    sample_image = Signal()
    label_changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QtFlowLayout(self)  # wraps onto a second row on a narrow screen or at a large scale
        policy = QSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Preferred)
        policy.setHeightForWidth(True)
        self.setSizePolicy(policy)
        self.pen = QPushButton("Pen")
        self.eraser = QPushButton("Eraser")
        group = QButtonGroup(self)
        for button in (self.pen, self.eraser):
            button.setCheckable(True)
            group.addButton(button)
            layout.addWidget(button)
        self.pen.setChecked(True)
        self.pen.setToolTip("Draw with the left button (what you draw is exactly what the model sees)")
        self.eraser.toggled.connect(self.tool_changed.emit)
        self.size = QSpinBox()
        self.size.setRange(1, 4)
        self.size.setValue(2)
        self.size.setToolTip("Brush size in the model's pixels")
        self.size.valueChanged.connect(self.size_changed.emit)
        layout.addWidget(QLabel("Size"))
        layout.addWidget(self.size)
        for text, signal, tip in (
            ("Clear", self.clear, "A blank image"),
            ("Invert", self.invert, "Swap ink and background"),
        ):
            layout.addWidget(self._button(text, signal, tip))
        self.load_button = self._button("Load image…", self.load_file,
                                        "Any image file (or drop one here): converted to what the model sees")
        self.test_button = self._button("A test image", self.test_image, "A random image of the test split")
        self.sample_button = self._button("A sample", self.sample_image, "An image sampled from the model")
        for button in (self.load_button, self.test_button, self.sample_button):
            layout.addWidget(button)
        self.label = QComboBox()
        self.label.setToolTip("The class label this class-conditional model scores the image under")
        self.label.activated.connect(lambda _: self.label_changed.emit())
        self.label_caption = QLabel("Class")
        layout.addWidget(self.label_caption)
        layout.addWidget(self.label)

    def _button(self, text: str, signal: Signal, tip: str) -> QPushButton:
        button = QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(signal.emit)
        return button

    def set_classes(self, count: int) -> None:
        self.label.clear()
        for k in range(count):
            self.label.addItem(str(k), k)
        self.label.setVisible(count > 0)
        self.label_caption.setVisible(count > 0)

    @property
    def label_value(self) -> int | None:
        return self.label.currentData() if self.label.count() else None


__all__ = ["QtScoreTools"]
