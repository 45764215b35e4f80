"""Non-modal notices: plugin problems and errors during use, each with a details button (the traceback).

Nothing here ever blocks: the list sits in a dock, the details open in a window that can stay open while
the user carries on.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.ui import theme
from app.ui.context import Notice

COLOURS = {"error": theme.ERROR, "warning": theme.WARN, "info": theme.ACCENT}


class QtDetailsDialog(QDialog):
    """The full text behind a notice (a traceback), selectable, with a copy button. Non-modal."""

    def __init__(self, notice: Notice, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Details")
        self.setModal(False)
        self.resize(760, 420)
        layout = QVBoxLayout(self)
        message = QLabel(notice.message)
        message.setWordWrap(True)
        message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.text = QPlainTextEdit(notice.details or "(no further details)")
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        buttons = QHBoxLayout()
        copy = QPushButton("Copy")
        copy.clicked.connect(lambda: QGuiApplication.clipboard().setText(f"{notice.message}\n\n{notice.details}"))
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons.addStretch(1)
        buttons.addWidget(copy)
        buttons.addWidget(close)
        layout.addWidget(message)
        layout.addWidget(self.text, 1)
        layout.addLayout(buttons)


class QtNoticeRow(QFrame):
    """One notice: a coloured level, the time, the message, Details and Dismiss."""

    dismissed = Signal(object)
    details_requested = Signal(object)

    def __init__(self, notice: Notice, parent=None) -> None:
        super().__init__(parent)
        self.notice = notice
        self.setFrameShape(QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 3, 6, 3)
        colour = COLOURS.get(notice.level, theme.TEXT)
        level = QLabel(f"<b style='color:{colour}'>{notice.level}</b>")
        stamp = QLabel(f"<span style='color:{theme.MUTED}'>{time.strftime('%H:%M:%S', time.localtime(notice.time))}"
                       "</span>")
        source = f"<i>{notice.source}</i>: " if notice.source else ""
        self.message = QLabel(f"{source}{_escape(notice.message)}")
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(level)
        layout.addWidget(stamp)
        layout.addWidget(self.message, 1)
        if notice.details:
            self.details_button = QPushButton("Details…")
            self.details_button.clicked.connect(lambda: self.details_requested.emit(self.notice))
            layout.addWidget(self.details_button)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(lambda: self.dismissed.emit(self))
        layout.addWidget(dismiss)


class QtNotificationArea(QWidget):
    """The list of notices, newest first. ``count_changed`` carries how many are listed."""

    count_changed = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.rows: list[QtNoticeRow] = []
        self._dialogs: list[QtDetailsDialog] = []
        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>Notices</b> — problems never stop the app; the rest keeps working"))
        header.addStretch(1)
        clear = QPushButton("Clear all")
        clear.clicked.connect(self.clear)
        header.addWidget(clear)
        outer.addLayout(header)
        self._list = QVBoxLayout()
        self._list.setSpacing(2)
        self._list.addStretch(1)
        holder = QWidget()
        holder.setLayout(self._list)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(holder)
        outer.addWidget(scroll, 1)

    def add(self, notice: Notice) -> QtNoticeRow:
        row = QtNoticeRow(notice)
        row.dismissed.connect(self._remove)
        row.details_requested.connect(self.show_details)
        self._list.insertWidget(0, row)
        self.rows.insert(0, row)
        self.count_changed.emit(len(self.rows))
        return row

    def show_details(self, notice: Notice) -> QtDetailsDialog:
        dialog = QtDetailsDialog(notice, self.window())
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.destroyed.connect(lambda *_: self._dialogs.remove(dialog) if dialog in self._dialogs else None)
        self._dialogs.append(dialog)
        dialog.show()
        return dialog

    def close_dialogs(self) -> None:
        for dialog in list(self._dialogs):
            dialog.close()
        self._dialogs.clear()

    def _remove(self, row: QtNoticeRow) -> None:
        if row in self.rows:
            self.rows.remove(row)
            row.setParent(None)
            row.deleteLater()
            self.count_changed.emit(len(self.rows))

    def clear(self) -> None:
        for row in list(self.rows):
            self._remove(row)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["QtNotificationArea", "QtDetailsDialog", "QtNoticeRow"]
