"""The sample view's controls: playback, speed, temperature, seed, number of images, mode, class, overlay."""

from __future__ import annotations

import math
import random

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from app.core.model import ARModel
from app.core.session_file import SamplingSettings
from app.ui.formatting import rate_text
from app.ui.views.qt_sampler_comparison import COMPARE

SPEED_STEPS = 30  # slider positions 0..30 are 10 ** (pos / 10) pixels/s (1 to 1000); one more is "max"
DEFAULT_SPEED = 18  # about 60 pixels/s: a 28x28 digit in 13 s, slow enough to follow


def speed_from_slider(position: int) -> float:
    return math.inf if position > SPEED_STEPS else 10 ** (position / 10)


class QtSampleControls(QWidget):
    """Buttons and settings; the view connects to the signals and reads the properties."""

    play_pause = Signal()
    step_pixel = Signal()
    step_row = Signal()
    run_to_end = Signal()
    stop = Signal()
    speed_changed = Signal(float)
    settings_changed = Signal()
    overlay_toggled = Signal(bool)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._playback_box())
        layout.addWidget(self._settings_box())
        layout.addStretch(1)
        self._last_values: dict = {}
        self.mark_settled()

    # -- building ------------------------------------------------------------------------------------------
    def _button(self, text: str, icon: QStyle.StandardPixmap, tip: str, signal: Signal) -> QPushButton:
        button = QPushButton(self.style().standardIcon(icon), text)
        button.setToolTip(tip)
        button.clicked.connect(signal.emit)
        return button

    def _playback_box(self) -> QGroupBox:
        box = QGroupBox("Playback")
        grid = QGridLayout(box)
        sp = QStyle.StandardPixmap
        self.play_button = self._button("Play", sp.SP_MediaPlay, "Play / pause (Space)", self.play_pause)
        self.step_button = self._button("Pixel", sp.SP_MediaSeekForward, "Step one pixel (Right or S)",
                                        self.step_pixel)
        self.row_button = self._button("Row", sp.SP_ArrowDown, "Step to the end of the row (Down or R)",
                                       self.step_row)
        self.end_button = self._button("To end", sp.SP_MediaSkipForward,
                                       "Run to the end as fast as the device goes (End or E)", self.run_to_end)
        self.stop_button = self._button("Stop", sp.SP_MediaStop, "Stop (Esc)", self.stop)
        grid.addWidget(self.play_button, 0, 0, 1, 2)
        grid.addWidget(self.stop_button, 0, 2)
        grid.addWidget(self.step_button, 1, 0)
        grid.addWidget(self.row_button, 1, 1)
        grid.addWidget(self.end_button, 1, 2)
        self.speed = QSlider(Qt.Orientation.Horizontal)
        self.speed.setRange(0, SPEED_STEPS + 1)
        self.speed.setValue(DEFAULT_SPEED)
        self.speed.setToolTip("From slow motion to as fast as the device goes")
        self.speed_label = QLabel()
        self.speed_label.setWordWrap(True)
        self.speed.valueChanged.connect(self._on_speed)
        grid.addWidget(QLabel("Speed"), 2, 0)
        grid.addWidget(self.speed, 2, 1, 1, 2)
        grid.addWidget(self.speed_label, 3, 1, 1, 2)
        self._on_speed(self.speed.value())
        return box

    def _settings_box(self) -> QGroupBox:
        box = QGroupBox("Sampling")
        form = QFormLayout(box)
        self.temperature = QSlider(Qt.Orientation.Horizontal)
        self.temperature.setRange(0, 300)
        self.temperature.setValue(100)
        self.temperature.setToolTip("p^(1/T), renormalised: below 1 sharper and cleaner, above 1 noisier; 0 = argmax")
        self.temperature_label = QLabel()
        self.temperature.valueChanged.connect(self._on_temperature)
        self._temperature_settled = QTimer(self)  # one new run when the slider comes to rest
        self._temperature_settled.setSingleShot(True)
        self._temperature_settled.setInterval(250)
        self._temperature_settled.timeout.connect(lambda: self._edited(self.temperature))
        row = QHBoxLayout()
        row.addWidget(self.temperature, 1)
        row.addWidget(self.temperature_label)
        form.addRow("Temperature", row)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("The same seed, model and settings give the same images on any device")
        self.seed.editingFinished.connect(lambda: self._edited(self.seed))
        self.new_seed_button = QPushButton("New seed")
        self.new_seed_button.setToolTip("A random seed (N)")
        self.new_seed_button.clicked.connect(self.new_seed)
        seed_row = QHBoxLayout()
        seed_row.addWidget(self.seed, 1)
        seed_row.addWidget(self.new_seed_button)
        form.addRow("Seed", seed_row)
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(16)
        self.count.setToolTip("How many images are drawn at once (one network call per step draws all)")
        self.count.editingFinished.connect(lambda: self._edited(self.count))
        form.addRow("Images", self.count)
        self.mode = QComboBox()
        self.mode.setToolTip("naive re-runs the network at every step; cached reuses activations (same result); "
                             "side by side runs both at once on the same seed")
        self.mode.activated.connect(lambda _: self.settings_changed.emit())
        form.addRow("Sampler", self.mode)
        self.label = QComboBox()
        self.label.setToolTip("The class this class-conditional model is asked to draw")
        self.label.activated.connect(lambda _: self.settings_changed.emit())
        self.label_caption = QLabel("Class")
        form.addRow(self.label_caption, self.label)
        self.overlay = QCheckBox("Show the order ahead")
        self.overlay.setToolTip("Colour the pixels not drawn yet by when they will be drawn: dark first, bright last")
        self.overlay.toggled.connect(self.overlay_toggled.emit)
        form.addRow(self.overlay)
        self.ordering_label = QLabel()
        self.ordering_label.setWordWrap(True)  # a row of its own: long names such as top-bottom-to-middle fit
        form.addRow(self.ordering_label)
        self._on_temperature(self.temperature.value())
        return box

    # -- state ---------------------------------------------------------------------------------------------
    def apply_settings(self, settings: SamplingSettings) -> list[str]:
        """Show a session's settings (without starting anything); sentences for what did not fit."""
        notes = []
        for box, value, what in ((self.seed, settings.seed, "seed"), (self.count, settings.images, "number of images")):
            box.setValue(value)
            if box.value() != value:
                notes.append(f"the {what} {value} is outside {box.minimum()}..{box.maximum()}; {box.value()} is used")
        self.temperature.setValue(int(round(settings.temperature * 100)))
        if abs(self.temperature_value - settings.temperature) > 0.005:
            notes.append(f"the temperature {settings.temperature:g} is outside the slider's 0..3; "
                         f"{self.temperature_value:g} is used")
        if settings.speed is not None:
            self.set_rate(math.inf if settings.speed == "max" else float(settings.speed))
        index = self.mode.findData(settings.mode)
        if index < 0:
            notes.append(f"this model has no {settings.mode!r} sampler; {self.mode.currentData()} is used")
        else:
            self.mode.setCurrentIndex(index)
        if settings.label is not None and self.label.count():
            index = self.label.findData(settings.label)
            if index < 0:
                notes.append(f"this model has no class {settings.label}")
            else:
                self.label.setCurrentIndex(index)
        return notes

    def set_model(self, model: ARModel | None) -> None:
        """Offer the modes and classes this model has."""
        self.mode.clear()
        modes = ["auto", "naive", *model.spec.sampler_modes] if model is not None else ["naive"]
        for mode in dict.fromkeys(modes):
            self.mode.addItem(mode, mode)
        if model is not None and model.spec.sampler_modes:  # the lecture's point about caching, side by side
            self.mode.addItem(f"naive vs {model.spec.sampler_modes[0]}", COMPARE)
        self.mode.setEnabled(len(modes) > 2)
        condition = model.config.condition if model is not None else None
        is_class = condition is not None and condition.kind == "class"
        self.label.clear()
        if is_class:
            for k in range(condition.num_classes):
                self.label.addItem(str(k), k)
        self.label.setVisible(is_class)
        self.label_caption.setVisible(is_class)
        if model is not None:
            ordering = model.resolve_ordering(None)
            kind = {"fixed": "fixed by the architecture", "build": "chosen when the model was built",
                    "any": "any, chosen at run time"}.get(model.capability, model.capability)
            self.ordering_label.setText(f"Ordering: {ordering.name}\n({kind})")
        for widget in (self.play_button, self.step_button, self.row_button, self.end_button, self.stop_button):
            widget.setEnabled(model is not None)

    def set_playing(self, playing: bool) -> None:
        icon = QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setText("Pause" if playing else "Play")

    def mark_settled(self) -> None:
        """The seed, count and temperature in use now (a run started with them): an edit that ends where it
        began is no news."""
        self._last_values = {box: box.value() for box in (self.seed, self.count, self.temperature)}

    def _edited(self, spin) -> None:
        """An edit ended (Enter or focus leaving a box, the slider at rest): a new setting only if it changed."""
        if self._last_values.get(spin) != spin.value():
            self._last_values[spin] = spin.value()
            self.settings_changed.emit()

    def new_seed(self) -> None:
        self.seed.setValue(random.randrange(0, 100000))
        self.settings_changed.emit()

    def _on_speed(self, position: int) -> None:
        rate = speed_from_slider(position)
        self.speed_label.setText(rate_text(rate))
        self.speed_changed.emit(rate)

    def _on_temperature(self, value: int) -> None:
        t = value / 100.0
        self.temperature_label.setText(f"{t:.2f}" + (" (argmax)" if t == 0 else ""))
        if hasattr(self, "_temperature_settled"):
            self._temperature_settled.start()

    def set_rate(self, pixels_per_second: float) -> None:
        """Put the speed slider at the position nearest to ``pixels_per_second`` (``inf``: as fast as it goes)."""
        if math.isinf(pixels_per_second):
            self.speed.setValue(SPEED_STEPS + 1)
        else:
            self.speed.setValue(min(max(int(round(10 * math.log10(max(pixels_per_second, 1.0)))), 0), SPEED_STEPS))

    @property
    def speed_setting(self) -> float | str:
        """The speed as a session keeps it: pixels per second, or ``"max"``."""
        return "max" if math.isinf(self.rate) else round(self.rate, 2)

    @property
    def rate(self) -> float:
        return speed_from_slider(self.speed.value())

    @property
    def temperature_value(self) -> float:
        return self.temperature.value() / 100.0

    @property
    def seed_value(self) -> int:
        return int(self.seed.value())

    @property
    def count_value(self) -> int:
        return int(self.count.value())

    @property
    def mode_value(self) -> str:
        return self.mode.currentData() or "naive"

    @property
    def label_value(self) -> int | None:
        return self.label.currentData() if self.label.count() else None


__all__ = ["QtSampleControls", "speed_from_slider", "DEFAULT_SPEED"]
