"""The model card above the views: what the current checkpoint is, in lecture terms, and how good it is."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QLabel, QSizePolicy, QVBoxLayout

from app.core.session import LoadedModel
from app.ui import theme
from app.ui.formatting import parameters_text, test_nll_text
from app.ui.hints import download_command, train_command

NO_CHECKPOINT = (
    "<b>No checkpoint yet.</b> The app looks in: {dirs}.<br>"
    f"Train one (about a minute on a GPU): <code>{train_command('gated-pixelcnn', 'binarized-mnist')}</code> — "
    f"the data first, if needed: <code>{download_command('binarized-mnist')}</code> — or train offline on "
    f"synthetic digits: <code>{train_command('pixelcnn', 'synthetic-digits')}</code>. Open any checkpoint file "
    "with <b>File ▸ Open checkpoint…</b>"
)


def paper_text(paper_nll: str) -> str:
    """A plugin's published figure: a bare number is nats on binarized MNIST, anything else is shown as given."""
    if not paper_nll:
        return ""
    try:
        float(paper_nll)
    except ValueError:
        return f"paper: {paper_nll}"
    return f"paper: {paper_nll} nats on binarized MNIST"


COMPACT_BELOW = 620  # window height at 100% (pixels / scale) under which the description gives way to the view


class QtModelCard(QFrame):
    """Title, lecture section, measured test NLL (units and data named), and the one-paragraph description.

    The description shows when the user wants it (View menu) and the window has the room: on a 1920x1080
    projector at 200% (540 lines at 100%) it gives its two lines to the view and moves to the title's tooltip.
    """

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)  # never taller than its text
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        self.title = QLabel()
        self.nll = QLabel()
        self.description = QLabel()
        for label in (self.title, self.nll, self.description):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(label)
        self._scale = 1.0
        self._has_model = False
        self.wanted = True  # the View menu's "Show the model description"
        self.roomy = True

    def set_scale(self, scale: float) -> None:
        self._scale = scale
        self.title.setStyleSheet(theme.heading_css(scale, 1.25))
        self.description.setStyleSheet(theme.muted_css(scale, 0.95))

    def show_model(self, loaded: LoadedModel, device_text: str) -> None:
        spec = loaded.model.spec
        section = f"  <span style='color:{theme.MUTED}; font-weight: normal'>{spec.lecture_section}</span>"
        self.title.setText(f"{spec.title} — {loaded.name}{section}")
        title = loaded.dataset.title if loaded.dataset is not None else None
        extras = [parameters_text(loaded.info.meta.get("num_parameters")), f"running on {device_text}"]
        paper = paper_text(spec.paper_nll)
        extras.append(paper)
        self.nll.setText(test_nll_text(loaded.info, title) + "  ·  " + "  ·  ".join(e for e in extras if e))
        self.description.setText(spec.description)
        self._has_model = True
        self._show_description()

    def show_missing(self, dirs: list[str]) -> None:
        self.title.setText("AR Explorer")
        self.title.setStyleSheet(theme.heading_css(self._scale, 1.25))
        self.nll.setText(NO_CHECKPOINT.format(dirs=", ".join(f"<code>{d}</code>" for d in dirs) or "nowhere"))
        self._has_model = False
        self._show_description()

    def set_description_wanted(self, wanted: bool) -> None:
        self.wanted = bool(wanted)
        self._show_description()

    def set_room(self, height_at_100: float) -> None:
        """The window's height in pixels at 100% (its height divided by the scale)."""
        roomy = height_at_100 >= COMPACT_BELOW
        if roomy != self.roomy:
            self.roomy = roomy
            self._show_description()

    def _show_description(self) -> None:
        visible = self._has_model and self.wanted and self.roomy
        self.description.setVisible(visible)
        tip = self.description.text() if self._has_model and not visible else ""
        self.title.setToolTip(tip)

    def show_error(self, message: str) -> None:
        self.nll.setText(f"<span style='color:{theme.ERROR}'>{message}</span>")


__all__ = ["QtModelCard", "NO_CHECKPOINT", "COMPACT_BELOW", "paper_text"]
