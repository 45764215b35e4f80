"""The view registry: every tab of the main window is a :class:`ViewSpec` in :data:`VIEWS`.

To add a view, write a module ``app/ui/views/qt_<name>_view.py`` with a ``QWidget`` subclass that takes the
shared :class:`~app.ui.context.AppContext`, and add one line to :data:`VIEWS`. The protocol (what the widget
gets, what it may define) is in ``docs/ui-views.md``. Factories import their module lazily, so that the
window opens fast however many views there are.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QWidget

    from app.ui.context import AppContext


@dataclass(frozen=True)
class ViewSpec:
    """A view as the main window lists it.

    Parameters
    ----------
    name
        Identifier used by ``--view`` and by :meth:`AppContext.send_image` (``sample``).
    title
        The tab's title (``Sample``).
    factory
        ``factory(context) -> QWidget``, or ``"module:Class"`` imported when the window is built.
    description
        One line for the tab's tooltip.
    """

    name: str
    title: str
    factory: Callable[[AppContext], QWidget] | str
    description: str = ""

    def create(self, context: AppContext) -> QWidget:
        factory = self.factory
        if isinstance(factory, str):
            module_name, _, attr = factory.partition(":")
            factory = getattr(importlib.import_module(module_name), attr)
        return factory(context)


VIEWS: list[ViewSpec] = [
    ViewSpec("sample", "Sample", "app.ui.views.qt_sample_view:QtSampleView",
             "Watch the model draw images pixel by pixel, with each pixel's distribution"),
    ViewSpec("score", "Score", "app.ui.views.qt_score_view:QtScoreView",
             "Draw or load an image and see its likelihood, pixel by pixel"),
    ViewSpec("inspect", "Inspect", "app.ui.views.qt_inspect_view:QtInspectView",
             "Click a pixel: its conditional distribution and what it can see"),
    ViewSpec("toy", "1-D / 2-D demos", "app.ui.views.qt_toy_view:QtToyView",
             "Train a histogram, a logistic mixture or p(x1) p(x2 | x1) live on toy data and watch its density"),
    ViewSpec("orderings", "Orderings", "app.ui.views.qt_ordering_view:QtOrderingView",
             "Design an autoregressive ordering; sample and score under it, or train a model with it"),
    ViewSpec("complete", "Complete", "app.ui.views.qt_completion_view:QtCompletionView",
             "Mark what is known of an image and watch several completions fill in the rest"),
    ViewSpec("stages", "Stages", "app.ui.views.qt_stages_view:QtStagesView",
             "Sample in stages (grayscale hierarchy, multiscale grids) with the network calls; class and 7x7 inputs"),
    ViewSpec("fisher", "Fisher", "app.ui.views.qt_fisher_view:QtFisherView",
             "Interpolate between two images in pixel, activation and Fisher-score space"),
    ViewSpec("train", "Train", "app.ui.views.qt_train_view:QtTrainView",
             "Train any model on any dataset it takes, with progress and live curves of its NLL"),
]


def register_view(spec: ViewSpec) -> None:
    """Add a view (or replace the one with the same name)."""
    for i, existing in enumerate(VIEWS):
        if existing.name == spec.name:
            VIEWS[i] = spec
            return
    VIEWS.append(spec)


def view_names() -> list[str]:
    return [spec.name for spec in VIEWS]


__all__ = ["ViewSpec", "VIEWS", "register_view", "view_names"]
