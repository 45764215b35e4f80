"""The views' tabs. Each view sits in a scroll area, so that no view can make the window wider or taller
than the screen: at a scale or on a screen where a view does not fit, it scrolls instead of pushing the
window (and its Stop button) off the screen. The views are laid out to fit without scrolling at 1280x720 at
100% and 1920x1080 at 200%; ``tests/ui/test_fit.py`` checks it.

The tab widget speaks in views: :meth:`currentWidget`, :meth:`indexOf` and :meth:`setCurrentWidget` take and
give the view itself, never the scroll area around it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import QFrame, QScrollArea, QTabWidget, QVBoxLayout, QWidget


class _MinimumSizeLayout(QVBoxLayout):
    """Holds the view and tells the scroll area only the view's minimum size.

    A view with word-wrapped labels has a height for each width, and a scroll area would take the view's
    *preferred* height for its width as the least it may have, scrolling long before anything is cut. A
    window gives its views room down to their minimum size; so does the page.
    """

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt's name
        return False


class QtViewPage(QScrollArea):
    """One view, resized to the page when it fits and scrolled when it needs more room."""

    def __init__(self, view: QWidget, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view = view
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setWidgetResizable(True)
        holder = QWidget()
        layout = _MinimumSizeLayout(holder)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(view)
        self.setWidget(holder)
        self.viewport().setBackgroundRole(QPalette.ColorRole.Window)  # the app's panel colour, not the base

    def needs_scrolling(self) -> bool:
        """Whether the view needs more room than the page has (a scroll bar shows)."""
        return self.horizontalScrollBar().maximum() > 0 or self.verticalScrollBar().maximum() > 0


class QtViewTabs(QTabWidget):
    """A ``QTabWidget`` of views, each in a :class:`QtViewPage`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocumentMode(True)
        self.setUsesScrollButtons(True)  # many tabs at 250% scroll rather than widen the window
        self.tabBar().setElideMode(Qt.TextElideMode.ElideNone)

    def add_view(self, view: QWidget, title: str) -> int:
        """Add ``view`` as a tab; returns its index."""
        return self.addTab(QtViewPage(view), title)

    def page(self, index: int) -> QtViewPage | None:
        page = self.widget(index)
        return page if isinstance(page, QtViewPage) else None

    def view_at(self, index: int) -> QWidget | None:
        page = self.widget(index)
        return page.view if isinstance(page, QtViewPage) else page

    def currentWidget(self) -> QWidget | None:  # noqa: N802 - Qt's name
        return self.view_at(self.currentIndex())

    def indexOf(self, widget: QWidget) -> int:  # noqa: N802
        for index in range(self.count()):
            if self.widget(index) is widget or self.view_at(index) is widget:
                return index
        return -1

    def setCurrentWidget(self, widget: QWidget) -> None:  # noqa: N802
        index = self.indexOf(widget)
        if index >= 0:
            self.setCurrentIndex(index)


__all__ = ["QtViewTabs", "QtViewPage"]
