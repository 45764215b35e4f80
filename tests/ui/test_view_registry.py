"""The view protocol of docs/ui-views.md: the page's minimal view, registered as written, opens as a tab,
scores on a worker, and is shut down with the window."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

DOC = Path(__file__).resolve().parents[2] / "docs" / "ui-views.md"


def minimal_view_class():
    text = DOC.read_text(encoding="utf-8")
    code = re.search(r"## A minimal view\s+```python\n(.*?)```", text, re.S).group(1)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)  # the page's own example, as a reader would paste it
    return namespace["QtMeanView"]


def test_the_documented_minimal_view_works(make_window, tiny_checkpoints, tiny_binarized, monkeypatch, wait_for):
    from app.ui import views

    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    view_class = minimal_view_class()
    monkeypatch.setattr(views, "EXTRA_VIEWS", [])
    views.register_view(views.ViewSpec("mean", "Mean", view_class, "the documented example"))
    window = make_window("tiny-pixelcnn")
    view = window.show_view("mean")
    assert isinstance(view, view_class)
    wait_for(lambda: "nats per image" in view.label.text())
    assert "bits/dim" in view.label.text() and "Binarized MNIST" in view.label.text()
    assert window.tabs.tabText(window.tabs.indexOf(view)) == "Mean"


def test_register_view_replaces_a_view_of_the_same_name(monkeypatch, registry):
    from app.ui import views

    monkeypatch.setattr(views, "EXTRA_VIEWS", [])
    count = len(views.registered_views(registry))
    views.register_view(views.ViewSpec("sample", "Sampling", "app.ui.views.qt_sample_view:QtSampleView"))
    views.register_view(views.ViewSpec("sample", "Sampling again", "app.ui.views.qt_sample_view:QtSampleView"))
    listed = views.registered_views(registry)
    assert len(listed) == count and listed[0].title == "Sampling again"
    assert views.view_names(registry)[:3] == ["sample", "score", "inspect"]


def test_a_plugins_view_becomes_a_tab_after_the_built_in_ones(make_window, tiny_checkpoints, monkeypatch):
    from app.core import registry

    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "example_plugins.extra_view")
    monkeypatch.setattr(registry, "_DEFAULT", None)  # the checkpoints were saved through a registry without it
    window = make_window("tiny-gated")
    names = list(window.views)
    assert names[:9] == ["sample", "score", "inspect", "toy", "orderings", "complete", "stages", "fisher", "train"]
    assert names[9:] == ["notes"]
    view = window.show_view("notes")
    assert window.tabs.tabText(window.tabs.indexOf(view)) == "Notes"
    assert "tiny-gated" in view.text()
