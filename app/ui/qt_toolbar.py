"""The main toolbar: checkpoint picker, device picker and UI scale."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QLabel, QSizePolicy, QToolBar, QWidget

from app.core.checkpoints import CheckpointInfo
from app.core.devices import CHOICES, available_devices
from app.ui.formatting import checkpoint_label, test_nll_text
from app.ui.preferences import SCALES

WEIGHTS_ROLE = Qt.ItemDataRole.UserRole + 1  # each entry's weights file, which tells two of one name apart


class QtMainToolBar(QToolBar):
    """Emits ``checkpoint_chosen(name)``, ``device_chosen(name)`` and ``scale_chosen(scale)`` on user choices."""

    checkpoint_chosen = Signal(str)
    device_chosen = Signal(str)
    scale_chosen = Signal(float)

    def __init__(self, parent=None) -> None:
        super().__init__("Model", parent)
        self.setMovable(False)
        self.setObjectName("main-toolbar")
        self.checkpoints = QComboBox()
        self.checkpoints.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.checkpoints.setToolTip("The checkpoint every view uses (F2)")
        self.devices = QComboBox()
        self.devices.setToolTip("Where the model runs: auto picks CUDA, then Apple's MPS, then the CPU")
        self.scales = QComboBox()
        self.scales.setToolTip("Text and plot size: 150% or more for a projector (Ctrl++ / Ctrl+-)")
        for scale in SCALES:
            self.scales.addItem(f"{scale:.0%}", scale)
        self._titles: dict[str, str | None] = {}
        self._fill_devices()
        self.addWidget(_label("Checkpoint"))
        self.addWidget(self.checkpoints)
        self.addSeparator()
        self.addWidget(_label("Device"))
        self.addWidget(self.devices)
        self.addSeparator()
        self.addWidget(_label("Scale"))
        self.addWidget(self.scales)
        spacer = QWidget()
        spacer.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.addWidget(spacer)
        self.checkpoints.activated.connect(lambda i: self.checkpoint_chosen.emit(self.checkpoints.itemData(i)))
        self.devices.activated.connect(lambda i: self.device_chosen.emit(self.devices.itemData(i)))
        self.scales.activated.connect(lambda i: self.scale_chosen.emit(float(self.scales.itemData(i))))

    def _fill_devices(self) -> None:
        present = set(available_devices())
        model: QStandardItemModel = self.devices.model()
        for name in CHOICES:
            label = {"auto": "auto", "cpu": "CPU", "cuda": "CUDA", "mps": "MPS"}[name]
            self.devices.addItem(label, name)
            if name not in present and name != "auto":
                item = model.item(self.devices.count() - 1)
                item.setEnabled(False)
                item.setToolTip(f"{label} is not available on this machine")

    def set_checkpoints(self, infos: list[CheckpointInfo], titles: dict[str, str],
                        current: CheckpointInfo | str | None) -> None:
        """List ``infos`` (``titles``: their datasets' titles) and show ``current``, the one loaded."""
        self.checkpoints.blockSignals(True)
        self.checkpoints.clear()
        self._titles = dict(titles)
        for info in infos:
            self._add(info, info.name)
        if not infos:
            self.checkpoints.addItem("no checkpoint found", None)
        self.checkpoints.setEnabled(bool(infos))
        if isinstance(current, CheckpointInfo):
            self.select_loaded(current)
        else:
            self.select_checkpoint(current)
        self.checkpoints.blockSignals(False)

    def _add(self, info: CheckpointInfo, ref: str, label: str | None = None) -> int:
        self.checkpoints.addItem(label or checkpoint_label(info), ref)
        index = self.checkpoints.count() - 1
        self.checkpoints.setItemData(index, str(info.weights.resolve()), WEIGHTS_ROLE)
        self.checkpoints.setItemData(index, test_nll_text(info, self._titles.get(info.name)),
                                     Qt.ItemDataRole.ToolTipRole)
        return index

    def select_checkpoint(self, name: str | None) -> None:
        index = self.checkpoints.findData(name)
        if index < 0 and name is not None:
            self.checkpoints.addItem(name, name)  # a checkpoint opened from a file
            index = self.checkpoints.count() - 1
        if index >= 0:
            self.checkpoints.setCurrentIndex(index)

    def select_loaded(self, info: CheckpointInfo) -> None:
        """Show the checkpoint that is loaded, found by its file: a file opened from elsewhere under the name of
        a listed checkpoint gets an entry of its own, with its own NLL, never the listed one's."""
        index = self.checkpoints.findData(str(info.weights.resolve()), WEIGHTS_ROLE)
        if index < 0:
            self.checkpoints.setEnabled(True)
            index = self._add(info, str(info.weights), f"{checkpoint_label(info)}  ·  {info.weights.parent.name}/")
        self.checkpoints.setCurrentIndex(index)

    def select_device(self, name: str) -> None:
        index = self.devices.findData(name)
        self.devices.setCurrentIndex(max(index, 0))

    def select_scale(self, scale: float) -> None:
        best = min(range(len(SCALES)), key=lambda i: abs(SCALES[i] - scale))
        self.scales.setCurrentIndex(best)


def _label(text: str) -> QLabel:
    label = QLabel(f" {text} ")
    return label


__all__ = ["QtMainToolBar"]
