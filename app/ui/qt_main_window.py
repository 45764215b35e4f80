"""The main window: toolbar (checkpoint, device, scale), model card, one tab per registered view, notices."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.session import LoadedModel
from app.ui import export, session_io, theme
from app.ui import views as view_registry
from app.ui.context import AppContext, Notice, SentImage
from app.ui.preferences import SCALES
from app.ui.presentation import PresentationMode
from app.ui.qt_model_card import QtModelCard
from app.ui.qt_notifications import QtNotificationArea
from app.ui.qt_toolbar import QtMainToolBar
from app.ui.qt_view_tabs import QtViewTabs
from app.ui.screens import initial_window_size
from app.ui.views import ViewSpec
from app.ui.workers import begin_shutdown, end_shutdown

SHORTCUTS_HELP = """<h3>Keyboard</h3><table cellpadding=4>
<tr><td><b>Space</b></td><td>play / pause sampling</td></tr>
<tr><td><b>Right</b> or <b>S</b></td><td>step one pixel</td></tr>
<tr><td><b>Down</b> or <b>R</b></td><td>step to the end of the row</td></tr>
<tr><td><b>End</b> or <b>E</b></td><td>run to the end, as fast as the device goes</td></tr>
<tr><td><b>Esc</b></td><td>stop</td></tr>
<tr><td><b>N</b></td><td>new seed</td></tr>
<tr><td><b>Ctrl++ / Ctrl+-</b></td><td>larger / smaller (projector scale)</td></tr>
<tr><td><b>Ctrl+1, 2, 3…</b></td><td>switch view</td></tr>
<tr><td><b>F2</b></td><td>choose the checkpoint</td></tr>
<tr><td><b>Ctrl+S / Ctrl+Shift+O</b></td><td>save / open a session file</td></tr>
<tr><td><b>Ctrl+E / Ctrl+Shift+C</b></td><td>save / copy the figure under the mouse (PNG, plots also SVG)</td></tr>
<tr><td><b>F11</b></td><td>presentation mode: full screen, only the view</td></tr>
</table>"""


class QtMainWindow(QMainWindow):
    """The app's window over an :class:`AppContext`; ``views`` maps view names to their widgets."""

    def __init__(self, context: AppContext, specs: list[ViewSpec] | None = None) -> None:
        super().__init__()
        self.context = context
        self.setWindowTitle("AR Explorer")
        self.setWindowIcon(theme.app_icon())
        self.views: dict[str, QWidget] = {}
        self.toolbar = QtMainToolBar(self)
        self.addToolBar(self.toolbar)
        self.card = QtModelCard()
        self.tabs = QtViewTabs()  # each view scrolls rather than grow the window past the screen
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(6, 6, 6, 0)
        layout.addWidget(self.card)
        layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)
        self.notices = QtNotificationArea()
        self.notice_dock = QDockWidget("Notices", self)
        self.notice_dock.setObjectName("notices")
        self.notice_dock.setWidget(self.notices)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.notice_dock)
        self.notice_dock.hide()
        self._build_status_bar()
        self._build_views(specs if specs is not None else view_registry.registered_views(context.session.registry))
        self._build_menus()
        self._connect()
        self._closed = False
        self.opened_session = None  # the session file the app was started on (--session), if any
        self.apply_scale(context.scale)
        self.refresh_checkpoints()
        self.resize(*initial_window_size(self.screen().availableGeometry().size()))
        if context.preferences.geometry is not None:
            self.restoreGeometry(context.preferences.geometry)

    # -- building ------------------------------------------------------------------------------------------
    def _build_status_bar(self) -> None:
        self.device_label = QLabel()
        self.notice_button = QPushButton("No notices")
        self.notice_button.setFlat(True)
        self.notice_button.clicked.connect(lambda: self.notice_dock.setVisible(not self.notice_dock.isVisible()))
        self.statusBar().addWidget(self.device_label, 1)
        self.statusBar().addPermanentWidget(self.notice_button)

    def _build_views(self, specs: list[ViewSpec]) -> None:
        for spec in specs:
            try:
                widget = spec.create(self.context)
            except Exception as exc:  # noqa: BLE001 - one broken view must not keep the app from opening
                self.context.report(exc, f"the {spec.title} view failed to open")
                widget = QLabel(f"The {spec.title} view failed to open; see Notices for the details.")
                widget.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.views[spec.name] = widget
            index = self.tabs.add_view(widget, spec.title)
            self.tabs.setTabToolTip(index, spec.description)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "Open checkpoint…", self.open_checkpoint_file, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Reload the checkpoint list", lambda: self.refresh_checkpoints(True), "F5")
        file_menu.addSeparator()
        self._action(file_menu, "Open session…", lambda: session_io.choose_and_open(self), "Ctrl+Shift+O")
        self._action(file_menu, "Save session…", lambda: session_io.choose_and_save(self), QKeySequence.StandardKey.Save)
        file_menu.addSeparator()
        self.exporter = export.install(self, file_menu)
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "Larger (projector)", lambda: self.step_scale(+1), QKeySequence.StandardKey.ZoomIn)
        self._action(view_menu, "Smaller", lambda: self.step_scale(-1), QKeySequence.StandardKey.ZoomOut)
        describe = self._action(view_menu, "Show the model description", None)
        describe.setCheckable(True)
        describe.setChecked(True)
        describe.toggled.connect(self.card.set_description_wanted)
        view_menu.addAction(self.notice_dock.toggleViewAction())
        self.presentation = PresentationMode(self, self._chrome)
        self.presentation_action = self._action(view_menu, "Presentation mode", self.presentation.toggle, "F11")
        view_menu.addSeparator()
        for i, name in enumerate(self.views):
            self._action(view_menu, self.tabs.tabText(i), lambda _=False, n=name: self.show_view(n), f"Ctrl+{i + 1}")
        self._action(view_menu, "Choose the checkpoint", self._focus_checkpoints, "F2")
        help_menu = self.menuBar().addMenu("&Help")
        self._action(help_menu, "Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)

    def _action(self, menu, text: str, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if slot is not None:
            action.triggered.connect(slot)
        menu.addAction(action)
        self.addAction(action)  # its shortcut works with the menu bar hidden (presentation mode)
        return action

    def _chrome(self) -> list[QWidget]:
        """Everything around the view, which presentation mode hides."""
        return [self.menuBar(), self.toolbar, self.card, self.tabs.tabBar(), self.statusBar(), self.notice_dock]

    def _connect(self) -> None:
        ctx = self.context
        ctx.model_changed.connect(self._on_model_changed)
        ctx.checkpoints_changed.connect(self.refresh_checkpoints)  # a view trained one: the picker lists it
        ctx.device_changed.connect(self._on_device_changed)
        ctx.noticed.connect(self._on_notice)
        ctx.image_sent.connect(self._on_image_sent)
        ctx.scale_changed.connect(self.apply_scale)
        self.toolbar.checkpoint_chosen.connect(self._choose_checkpoint)
        self.toolbar.device_chosen.connect(self._choose_device)
        self.toolbar.scale_chosen.connect(ctx.set_scale)
        for notice in ctx.notices:
            self._on_notice(notice)

    # -- reacting ------------------------------------------------------------------------------------------
    def refresh_checkpoints(self, rescan: bool = False) -> None:
        infos = self.context.checkpoints(refresh=rescan)
        titles = {}
        for info in infos:
            spec = self.context.session.registry.datasets.get(str(info.meta.get("dataset")))
            titles[info.name] = spec.title if spec is not None else None
        current = self.context.loaded.info if self.context.loaded is not None else None
        self.toolbar.set_checkpoints(infos, titles, current)
        if self.context.loaded is None:
            self.card.show_missing([str(d) for d in self.context.session.registry.checkpoint_dirs])
        self.toolbar.select_device(self.context.preferences.device)
        self._on_device_changed(self.context.device_text())

    def _on_model_changed(self, loaded: LoadedModel | None) -> None:
        if loaded is None:
            self.card.show_missing([str(d) for d in self.context.session.registry.checkpoint_dirs])
            return
        self.toolbar.select_loaded(loaded.info)  # by its file: two checkpoints may share a name
        self.card.show_model(loaded, self.context.device_text())
        self.setWindowTitle(f"AR Explorer — {loaded.model.spec.title} ({loaded.name})")

    def _on_device_changed(self, text: str) -> None:
        self.device_label.setText(f"Device: {text}")
        if self.context.loaded is not None:
            self.card.show_model(self.context.loaded, text)

    def _choose_checkpoint(self, name: str | None) -> None:
        if name and not self.context.load(name):  # the notice says why; the picker shows what is loaded
            if self.context.loaded is not None:
                self.toolbar.select_loaded(self.context.loaded.info)

    def _choose_device(self, name: str) -> None:
        if not self.context.set_device(name):
            self.toolbar.select_device(self.context.preferences.device)

    def _on_notice(self, notice: Notice) -> None:
        self.notices.add(notice)
        count = len(self.notices.rows)
        self.notice_button.setText(f"⚠ {count} notice{'s' if count != 1 else ''}")
        if notice.level in ("error", "warning"):
            self.notice_dock.show()  # shown, never focused: the user carries on

    def _on_image_sent(self, view: str, sent: SentImage) -> None:
        widget = self.views.get(view)
        receive = getattr(widget, "receive_image", None)
        if receive is None:
            self.context.notify(f"the {view} view cannot take images", "warning")
            return
        self.show_view(view)
        receive(sent)

    def show_view(self, name: str) -> QWidget | None:
        widget = self.views.get(name)
        if widget is not None:
            self.tabs.setCurrentWidget(widget)
        return widget

    def apply_scale(self, scale: float) -> None:
        app = QApplication.instance()
        if app is not None:
            theme.apply_scale(app, scale)
        self.card.set_scale(scale)
        self.card.set_room(self.height() / max(scale, 0.1))
        self.toolbar.select_scale(scale)
        size = int(20 * scale)
        self.toolbar.setIconSize(self.toolbar.iconSize().scaled(size, size, Qt.AspectRatioMode.KeepAspectRatio))
        for widget in self.views.values():
            if hasattr(widget, "set_scale"):
                widget.set_scale(scale)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.card.set_room(self.height() / max(self.context.scale, 0.1))

    def step_scale(self, direction: int) -> None:
        index = min(range(len(SCALES)), key=lambda i: abs(SCALES[i] - self.context.scale))
        index = min(max(index + direction, 0), len(SCALES) - 1)
        self.context.set_scale(SCALES[index])

    def open_checkpoint_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a checkpoint", "", "Checkpoints (*.safetensors *.json)")
        if path:
            self.context.load(path)

    def _focus_checkpoints(self) -> None:
        self.toolbar.checkpoints.setFocus()
        self.toolbar.checkpoints.showPopup()

    def show_shortcuts(self) -> QDialog:
        """The keyboard shortcuts, in a window that stays open beside the app (not modal)."""
        dialog = QDialog(self)
        dialog.setWindowTitle("Keyboard shortcuts")
        dialog.setModal(False)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        layout = QVBoxLayout(dialog)
        layout.addWidget(QLabel(SHORTCUTS_HELP))
        dialog.show()
        return dialog

    # -- closing -------------------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop and join every view's workers (idempotent)."""
        if self._closed:
            return
        self._closed = True
        # Every worker's forward pass is aborted at once, and the views' waits share one short deadline: the
        # window closes within a second or two, however long a pass would have taken.
        begin_shutdown()
        try:
            for widget in self.views.values():
                stop = getattr(widget, "shutdown", None)
                if stop is not None:
                    try:
                        stop()
                    except Exception as exc:  # noqa: BLE001
                        self.context.report(exc, "closing a view")
        finally:
            end_shutdown()
        self.notices.close_dialogs()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        self.shutdown()
        self.context.preferences.geometry = self.saveGeometry()
        super().closeEvent(event)


__all__ = ["QtMainWindow", "SHORTCUTS_HELP"]
