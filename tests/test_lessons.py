"""``ar-explorer lessons`` on tiny models: each lesson can pass and can fail, whatever the shipped figures are.

A template model (defined here as a plugin) draws, for each label, a noisy copy of that class's mean digit:
the class-conditional lesson must pass on it. An untrained tiny class-conditional Gated PixelCNN draws noise:
the same lesson must fail. The NLL lessons read the figures that ``eval`` records, tied to the weights' hash.
"""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from app.core.checkpoints import read_info, save_checkpoint, update_metadata
from app.core.classifier import as_classifier_input, classify, load_classifier, save_classifier, train_classifier
from app.core.lessons import LessonContext, class_conditional_lesson, orderings_lesson, quality_lessons, run_lessons
from app.core.registry import Registry
from app.core.session import Session
from app.core.synthetic import synthetic_digits

TEMPLATE_PLUGIN = """
import torch
from app.core import hookimpl
from app.core.likelihoods import Bernoulli
from app.core.model import ARModel, ConditionSpec, ModelSpec
from app.core.synthetic import synthetic_digits


class TemplateDigits(ARModel):
    '''p(x_i = 1 | label) = sigmoid(+-6) by one synthetic digit of the label: a perfect class-conditional model.'''

    def __init__(self, config):
        super().__init__(config, Bernoulli())
        images, labels = synthetic_digits(400, seed=11)
        x = torch.as_tensor(images[:, 0] > 127).float()
        first = [int((torch.as_tensor(labels) == k).nonzero()[0]) for k in range(10)]
        self.register_buffer("templates", x[first])

    def forward(self, x, cond=None, ordering=None):
        logits = 6.0 * (2.0 * self.templates[cond.long()] - 1.0)
        return logits[:, None, :, :, None].expand(x.shape[0], 1, 28, 28, 1) + 0.0 * x[..., None]


SPEC = ModelSpec(name="template-digits", title="Template digits", description="test", build=TemplateDigits,
                 condition=ConditionSpec(kind="class", num_classes=10))


@hookimpl
def ar_explorer_models():
    return [SPEC]
"""


@pytest.fixture(scope="module")
def classifier_path(tmp_path_factory):
    """A classifier trained in seconds on synthetic digits (the shipped one is trained on MNIST)."""
    images, labels = synthetic_digits(3000, seed=4)
    model, record = train_classifier(images[:, 0], labels, epochs=2.0, batch_size=64, seed=0, width=16)
    path = tmp_path_factory.mktemp("classifier") / "digits"
    save_classifier(model, path, {**record, "test_accuracy": {"grey": 0.0}})
    return path


@pytest.fixture
def session(tmp_path, monkeypatch):
    (tmp_path / "lesson_templates.py").write_text(textwrap.dedent(TEMPLATE_PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("lesson_templates", None)
    registry = Registry(env={"AR_EXPLORER_PLUGINS": "lesson_templates", "AR_EXPLORER_CHECKPOINTS": str(tmp_path / "ck")})
    return Session(registry, "cpu", tmp_path / "data")


def _context(session, classifier_path, infos, **kw):
    classifier, _ = load_classifier(classifier_path)
    return LessonContext(session, classifier, infos, samples_per_label=4, **kw)


def _save(session, tmp_path, name, model_name, meta=None, hparams=None, ordering=None, seed=0):
    spec = session.registry.model(model_name)
    torch.manual_seed(seed)
    config = spec.make_config((1, 28, 28), 2, hparams, ordering, tiny=model_name != "template-digits")
    model = spec.create(config)
    return save_checkpoint(model, tmp_path / "ck" / name, {"dataset": "synthetic-digits", **(meta or {})})


def test_the_classifier_reads_synthetic_digits(classifier_path):
    classifier, _ = load_classifier(classifier_path)
    images, labels = synthetic_digits(300, seed=9)
    read = classify(classifier, (images > 127).astype(np.uint8), 2)
    assert (read.labels == labels).mean() > 0.8
    assert read.probs.shape == (300, 10) and np.allclose(read.probs.sum(1), 1, atol=1e-5)


def test_classifier_input_pools_56_and_scales_grey():
    x = np.zeros((2, 1, 56, 56), np.uint8)
    x[:, :, :28, :28] = 1
    got = as_classifier_input(x, 2)
    assert got.shape == (2, 1, 28, 28) and float(got[0, 0, 0, 0]) == 1.0 and float(got[0, 0, 20, 20]) == 0.0
    grey = as_classifier_input(np.full((1, 28, 28), 255, np.uint8), 256)
    assert float(grey.max()) == 1.0
    with pytest.raises(ValueError, match="28x28"):
        as_classifier_input(np.zeros((1, 1, 30, 30)), 2)


def test_a_missing_or_foreign_classifier_is_a_clear_error(tmp_path):
    from app.core.errors import CheckpointError

    with pytest.raises(CheckpointError, match="no digit classifier"):
        load_classifier(tmp_path / "none")
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    (tmp_path / "x.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(CheckpointError, match="not a digit classifier"):
        load_classifier(tmp_path / "x")


def test_class_conditional_lesson_passes_on_a_model_that_draws_the_label(session, tmp_path, classifier_path):
    info = _save(session, tmp_path, "templates", "template-digits")
    result = class_conditional_lesson(_context(session, classifier_path, [info]), info)
    assert result.passed, result
    assert result.value >= 0.9 and set(result.extra["per_label"]) == set(range(10))


def test_class_conditional_lesson_fails_on_an_untrained_model(session, tmp_path, classifier_path):
    info = _save(session, tmp_path, "untrained", "conditional-gated-pixelcnn")
    result = class_conditional_lesson(_context(session, classifier_path, [info]), info)
    assert not result.passed and result.value < 0.9


def _recorded(info, nll):
    return update_metadata(info, {"test_nll_nats": nll, "test_num_images": 10000})


def test_orderings_lesson_reads_recorded_nlls_and_their_spread(session, tmp_path, classifier_path):
    registry = session.registry
    infos = []
    for k, name in enumerate(("random", "even-then-odd", "raster", "columns", "top-bottom-to-middle")):
        ordering = registry.ordering(name, 28, 28, 0)
        info = _save(session, tmp_path, f"made-{name}", "made", {"dataset": "binarized-mnist"}, {"num_masks": 1},
                     ordering=ordering)
        infos.append(_recorded(info, 90.0 + k))  # spread 4: passes
    ctx = _context(session, classifier_path, infos)
    result = orderings_lesson(ctx, "made", "MADE", 95.0)
    assert result.passed and result.value == pytest.approx(4.0)
    infos[-1] = _recorded(infos[-1], 94.5)  # spread 4.5: fails
    assert not orderings_lesson(_context(session, classifier_path, infos), "made", "MADE", 95.0).passed
    assert not orderings_lesson(_context(session, classifier_path, infos[:4]), "made", "MADE", 95.0).passed


def test_a_recorded_nll_counts_only_for_the_weights_it_was_measured_on(session, tmp_path, classifier_path):
    info = _recorded(_save(session, tmp_path, "snail", "pixelsnail", {"dataset": "binarized-mnist"}), 80.0)
    ctx = _context(session, classifier_path, [info])
    [snail] = [r for r in quality_lessons(ctx) if r.lesson == "Quality: PixelSNAIL"]
    assert snail.passed
    # New weights under the old record: the JSON no longer describes them, and the figure is not taken.
    old_record = info.json_path.read_text()
    _save(session, tmp_path, "snail", "pixelsnail", {"dataset": "binarized-mnist"}, seed=1)
    info.json_path.write_text(old_record)
    stale = read_info(info.weights)
    [snail] = [r for r in quality_lessons(_context(session, classifier_path, [stale])) if r.lesson == "Quality: PixelSNAIL"]
    assert not snail.passed and snail.figure == "not measured"


def test_every_lesson_without_checkpoints_fails_with_a_reason(session, classifier_path):
    results = list(run_lessons(_context(session, classifier_path, [])))
    assert results and not any(r.passed for r in results)
    assert all(r.detail for r in results)


def test_lessons_command_prints_a_table_and_exits_1_on_a_failure(tmp_path, classifier_path, capsys, monkeypatch):
    from app.cli.main import main

    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(tmp_path / "ck"))
    registry = Registry()
    spec = registry.model("conditional-gated-pixelcnn")
    model = spec.create(spec.make_config((1, 28, 28), 2, tiny=True))
    save_checkpoint(model, tmp_path / "ck" / "cond", {"dataset": "synthetic-digits"})
    code = main(["lessons", "--checkpoint", "cond", "--classifier", str(classifier_path), "--samples-per-label", "2",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["failed"] == 1
    [lesson] = out["lessons"]
    assert lesson["checkpoints"] == ["cond"] and lesson["lesson"].startswith("Class-conditional")
