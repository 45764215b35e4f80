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

from app.ui import theme
from app.ui.formatting import rank_text
from app.ui.score_jobs import ComparisonRow

# The figures next to the name, so that a narrow table (it scrolls sideways) still shows them.
TABLE_MIN_HEIGHT = 80  # at 100%: the header and two rows
COLUMNS = ("Checkpoint", "NLL (nats per image)", "bits/dim", "Rank among its test images", "Trained on", "Model")


class QtCompareTable(QWidget):
    """``compare_requested`` asks the view to score the image under every compatible checkpoint."""

    compare_requested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        header = QHBoxLayout()
        self.caption = QLabel("<b>Every checkpoint of this size</b> on the same image")
        self.caption.setWordWrap(True)  # its counts grow long; it must never widen the window
        self.button = QPushButton("Compare now")
        self.button.setToolTip("Score the image under every checkpoint with the same shape and values")
        self.button.clicked.connect(self.compare_requested.emit)
        self.auto = QCheckBox("after every stroke")
        self.auto.setChecked(True)
        header.addWidget(self.caption, 1)
        header.addWidget(self.auto)
        header.addWidget(self.button)
        layout.addLayout(header)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)  # one line a checkpoint; the table scrolls sideways instead
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # never elided: it scrolls sideways
        head.setStretchLastSection(True)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table)
        self.set_scale(theme.current_scale())
        self.rows: list[ComparisonRow] = []
        self.last_values: np.ndarray | None = None

    def set_scale(self, scale: float) -> None:
        """Room for the header and two rows at any scale."""
        self.table.setMinimumHeight(theme.scaled(TABLE_MIN_HEIGHT, scale))

    def show_rows(self, rows: list[ComparisonRow], current: str | None, values: np.ndarray | None = None,
                  total: int | None = None) -> None:
        """Fill the table: first the checkpoints trained on the current one's data, best (lowest NLL) first,
        then those trained on other data (greyed: an NLL compares only with NLLs on the same data). The current
        checkpoint is in bold. ``values``: the image; ``total``: how many rows there will be, while scoring."""
        self.last_values = values
        own = next((r.data for r in rows if r.name == current), None)
        self.rows = sorted(rows, key=lambda r: (own is not None and r.data != own, math.isnan(r.nll_nats), r.nll_nats))
        self.table.setRowCount(len(self.rows))
        dim = self.palette().color(self.foregroundRole())
        dim.setAlphaF(0.5)
        for i, row in enumerate(self.rows):
            rank = rank_text(row.percentile)
            nll = f"{row.nll_nats:.2f}" if math.isfinite(row.nll_nats) else row.note
            bpd = f"{row.bits_per_dim:.4f}" if math.isfinite(row.bits_per_dim) else ""
            cells = (row.name, nll, bpd, rank, row.data.split(";")[0], row.model)
            other = own is not None and row.data != own
            tip = row.data + (f"\n{row.note}" if row.note else "")
            if other:
                tip += "\nTrained on other data than the current checkpoint: its NLL does not compare with theirs."
            for j, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip(tip)
                if j in (1, 2):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if other:
                    item.setForeground(dim)
                if row.name == current:
                    font = QFont(item.font())
                    font.setBold(True)
                    item.setFont(font)
                self.table.setItem(i, j, item)
        same = sum(1 for r in self.rows if own is None or r.data == own)
        count = f"{len(self.rows)}" if total is None or total <= len(self.rows) else f"{len(self.rows)} of {total}, scoring…"
        others = f"; {len(self.rows) - same} trained on other data, greyed: compare NLLs only on the same data" \
            if same < len(self.rows) else ""
        self.caption.setText(f"<b>Every checkpoint of this size</b> on the same image ({count}{others})")

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
