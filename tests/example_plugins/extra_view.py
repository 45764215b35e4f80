"""A third-party view: a tab that names the open checkpoint, registered through ``ar_explorer_views`` (its
factory a plain callable; a ``"module:Class"`` string works too)."""

from app.core import hookimpl
from app.core.extensions import ViewSpec


def notes_view(context):
    """A label that follows the open checkpoint (views are built before the first checkpoint loads)."""
    from PySide6.QtWidgets import QLabel

    label = QLabel()

    def show(loaded) -> None:
        label.setText(f"Notes on {loaded.name}" if loaded is not None else "No checkpoint")

    context.model_changed.connect(show)
    show(context.loaded)
    return label


@hookimpl
def ar_explorer_views():
    return [ViewSpec("notes", "Notes", notes_view, "Notes on the open checkpoint")]
