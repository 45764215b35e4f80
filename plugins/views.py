"""The desktop app's built-in views, registered through ``ar_explorer_views`` as a plugin's views are.

Each names its widget class as ``"module:Class"``, imported only when the window is built: this module never
imports Qt, and the window opens fast however many views there are. The order is the order of the tabs.
"""

from __future__ import annotations

from app.core import hookimpl
from app.core.extensions import ViewSpec

VIEWS: tuple[ViewSpec, ...] = (
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
)


@hookimpl
def ar_explorer_views():
    return list(VIEWS)
