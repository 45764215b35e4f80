"""Every registered model, whatever its data (binary, grey, colour, 1-D, 2-D) or condition (class, image),
works in the Sample, Score and Inspect views without an error notice."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PySide6")
pytest.importorskip("pytestqt")

from checkpoint_factory import save_tiny  # noqa: E402
from event_loop import pump  # noqa: E402

SHAPES = {"binary": ((1, 8, 8), 2), "grey": ((1, 8, 8), 256), "colour": ((3, 8, 8), 4), "1d": ((1, 1, 1), 100),
          "2d": ((1, 1, 2), 25)}


def shape_for(spec) -> tuple[tuple[int, int, int], int]:
    shape, k = SHAPES[spec.data_kinds[0]]
    if spec.condition is not None and spec.condition.kind == "image":
        # image conditions are made from a 28x28 image (a 7x7 summary, a grey version)
        shape = (shape[0], 28, 28)
    return shape, k


def test_every_registered_model_samples_scores_and_inspects(make_window, checkpoint_dir, wait_for, monkeypatch):
    from app.core.registry import get_registry
    from app.ui import views

    every_view = views.registered_views
    monkeypatch.setattr(views, "registered_views",
                        lambda registry: [v for v in every_view(registry) if v.name in ("sample", "score", "inspect")])
    specs = get_registry().models
    values = {}
    for name, spec in specs.items():
        shape, values[name] = shape_for(spec)
        save_tiny(checkpoint_dir, f"tiny-{name}", name, shape=shape, num_values=values[name])
    window = make_window(None)
    for name in specs:
        exercise(window, f"tiny-{name}", values[name], wait_for)


def exercise(window, checkpoint: str, num_values: int, wait_for) -> None:
    """Load ``checkpoint``, sample three steps, score a dot, inspect a pixel of it and of a whole sample; no
    error notice."""
    context = window.context

    def no_errors() -> bool:
        errors = [n.message for n in context.notices if n.level == "error"]
        assert not errors, f"{checkpoint}: {errors}"
        return True

    assert context.load(checkpoint), context.notices[-1].message
    sample = window.show_view("sample")
    sample.controls.count.setValue(2)
    sample.step(3)
    wait_for(lambda: sample.frame is not None and sample.frame.step.index >= min(2, sample.frame.step.total - 1))
    sample.stop()
    assert sample.plot.heights.size > 0, checkpoint
    score = window.show_view("score")
    score.canvas.stroke([(0, 0)], finished=True)
    wait_for(lambda: score.result is not None and score.result.checkpoint == checkpoint)
    assert np.isfinite(score.result.nll_nats) and "nats per image" in score.nll.text(), checkpoint
    inspect = window.show_view("inspect")
    wait_for(lambda: no_errors() and inspect.inspection is not None and inspect.inspection.checkpoint == checkpoint)
    assert inspect.plot.heights.size == num_values, checkpoint
    if int(np.prod(context.loaded.model.shape)) > 64:
        return  # a whole sample of a 28x28 model takes seconds: the 8x8 ones show the path works
    inspect.load_sample(seed=1)

    wait_for(lambda: no_errors() and "a sample of" in inspect.source and inspect.inspection is not None
             and np.array_equal(inspect.inspection.values, inspect.values))
    pump(20)
    no_errors()
