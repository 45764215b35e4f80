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
    monkeypatch.setattr(views, "VIEWS", [*views.VIEWS])
    views.register_view(views.ViewSpec("mean", "Mean", view_class, "the documented example"))
    window = make_window("tiny-pixelcnn")
    view = window.show_view("mean")
    assert isinstance(view, view_class)
    wait_for(lambda: "nats per image" in view.label.text())
    assert "bits/dim" in view.label.text() and "Binarized MNIST" in view.label.text()
    assert window.tabs.tabText(window.tabs.indexOf(view)) == "Mean"


def test_register_view_replaces_a_view_of_the_same_name(monkeypatch):
    from app.ui import views

    monkeypatch.setattr(views, "VIEWS", [*views.VIEWS])
    count = len(views.VIEWS)
    views.register_view(views.ViewSpec("sample", "Sampling", "app.ui.views.qt_sample_view:QtSampleView"))
    assert len(views.VIEWS) == count and views.VIEWS[0].title == "Sampling"
    assert views.view_names()[:3] == ["sample", "score", "inspect"]
