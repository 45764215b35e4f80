"""The same image scored by every checkpoint of the same size, side by side."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.ui.formatting import rank_text
from app.ui.score_jobs import ComparisonRow

COLUMNS = ("Checkpoint", "Model", "Trained on", "NLL (nats per image)", "bits/dim", "Rank among its test images")


class QtCompareTable(QWidget):
    """``compare_requested`` asks the view to score the image under every compatible checkpoint."""

    compare_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.caption = QLabel("<b>Every checkpoint of this size</b> on the same image")
        self.button = QPushButton("Compare now")
        self.button.setToolTip("Score the image under every checkpoint with the same shape and values")
        self.button.clicked.connect(self.compare_requested.emit)
        self.auto = QCheckBox("after every stroke")
        self.auto.setChecked(True)
        header.addWidget(self.caption)
        header.addStretch(1)
        header.addWidget(self.auto)
        header.addWidget(self.button)
        layout.addLayout(header)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table)
        self.rows: list[ComparisonRow] = []
        self.last_values: np.ndarray | None = None

    def show_rows(self, rows: list[ComparisonRow], current: str | None, values: np.ndarray | None = None) -> None:
        """Fill the table, best (lowest NLL) first; the current checkpoint in bold. ``values``: the image."""
        self.last_values = values
        self.rows = sorted(rows, key=lambda r: (math.isnan(r.nll_nats), r.nll_nats))
        self.table.setRowCount(len(self.rows))
        for i, row in enumerate(self.rows):
            rank = rank_text(row.percentile)
            nll = f"{row.nll_nats:.2f}" if math.isfinite(row.nll_nats) else row.note
            bpd = f"{row.bits_per_dim:.4f}" if math.isfinite(row.bits_per_dim) else ""
            cells = (row.name, row.model, row.data.split(";")[0], nll, bpd, rank)
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(row.data)
                if j in (3, 4):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if row.note:
                    item.setToolTip(f"{row.data}\n{row.note}")
                if row.name == current:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(i, j, item)
        self.caption.setText(f"<b>Every checkpoint of this size</b> on the same image ({len(self.rows)})")

    def clear(self) -> None:
        self.rows = []
        self.last_values = None
        self.table.setRowCount(0)

    def value(self, name: str) -> float | None:
        for row in self.rows:
            if row.name == name:
                return row.nll_nats
        return None


__all__ = ["QtCompareTable", "COLUMNS"]
