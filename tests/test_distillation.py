"""Distillation from a teacher's conditionals: the loss, the checks on the teacher, the cache and `train --distill-from`."""

import json
import math

import numpy as np
import pytest
import torch

from app.cli.main import main
from app.core.datasets import DataSplit
from app.core.distillation import (
    DistillationError,
    cached_teacher_conditionals,
    check_teacher,
    distillation_loss,
    teacher_conditionals,
)


def _build(registry, name, shape=(1, 8, 8), values=2, seed=0, ordering=None, **hparams):
    spec = registry.model(name)
    torch.manual_seed(seed)
    return spec.create(spec.make_config(shape, values, {**spec.tiny_hparams, **hparams}, ordering)).eval()


def _images(n=6, shape=(1, 8, 8), seed=0):
    return np.random.default_rng(seed).integers(0, 2, (n, *shape)).astype(np.uint8)


@torch.no_grad()
def test_weight_zero_is_the_nll_and_one_is_the_cross_entropy(registry):
    student = _build(registry, "pixelcnn")
    x = torch.as_tensor(_images()).float()
    soft = torch.rand(*x.shape, 2)
    soft = soft / soft.sum(-1, keepdim=True)
    assert math.isclose(float(distillation_loss(student, x, None, soft, 0.0)), float(student.loss(x)), rel_tol=1e-5)
    log_q = student.log_conditionals(x)
    cross = float(-(soft * log_q).sum(-1).flatten(1).sum(1).mean())
    assert math.isclose(float(distillation_loss(student, x, None, soft, 1.0)), cross, rel_tol=1e-5)
    # Soft targets that are the pixels themselves (one-hot) give back the NLL at any weight.
    onehot = torch.nn.functional.one_hot(x.long(), 2).float()
    assert math.isclose(float(distillation_loss(student, x, None, onehot, 0.7)), float(student.loss(x)), rel_tol=1e-5)


def test_teacher_conditionals_are_the_teachers_own(registry):
    teacher = _build(registry, "gated-pixelcnn", seed=1)
    data = DataSplit(_images(5))
    probs = teacher_conditionals(teacher, data, batch_size=2)
    assert probs.shape == (5, 1, 8, 8, 2) and probs.dtype == np.float16
    with torch.no_grad():
        expected = teacher.conditionals(torch.as_tensor(data.images).float()).numpy()
    np.testing.assert_allclose(probs.astype(np.float32), expected, atol=2e-3)


def test_cache_is_reused_and_keyed_by_teacher_and_data(registry, tmp_path):
    teacher = _build(registry, "gated-pixelcnn", seed=1)
    data = DataSplit(_images(4))
    first, path, hit = cached_teacher_conditionals(teacher, "sha-a", data, tmp_path)
    assert not hit and path.exists()
    again, path2, hit2 = cached_teacher_conditionals(teacher, "sha-a", data, tmp_path)
    assert hit2 and path2 == path and np.array_equal(first, again)
    _, other, hit3 = cached_teacher_conditionals(teacher, "sha-b", data, tmp_path)
    assert not hit3 and other != path
    _, other_data, _ = cached_teacher_conditionals(teacher, "sha-a", DataSplit(_images(4, seed=9)), tmp_path)
    assert other_data not in (path, other)
    path.write_bytes(b"not a numpy file")  # a damaged cache entry is computed again, not trusted
    fixed, _, hit4 = cached_teacher_conditionals(teacher, "sha-a", data, tmp_path)
    assert not hit4 and np.array_equal(fixed, first)


def test_teachers_that_cannot_teach_are_refused(registry):
    student = _build(registry, "pixelcnn")
    with pytest.raises(DistillationError, match="same data"):
        check_teacher(student, _build(registry, "pixelcnn", shape=(1, 6, 6)))
    with pytest.raises(DistillationError, match="same data"):
        check_teacher(student, _build(registry, "pixelcnn", values=4))
    columns = registry.ordering("columns", 8, 8, 0)
    made = _build(registry, "made", ordering=columns)
    with pytest.raises(DistillationError, match="ordering"):
        check_teacher(made, student)
    with pytest.raises(DistillationError, match="order-agnostic"):
        check_teacher(_build(registry, "order-agnostic-nade"), student)
    check_teacher(_build(registry, "wavenet"), _build(registry, "gated-pixelcnn"))  # same data, both raster


def test_train_distill_from_records_the_teacher_and_reuses_the_cache(tiny_binarized, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    teacher = tmp_path / "teacher"
    common = ["--dataset", "binarized-mnist", "--batch-size", "32", "--device", "cpu", "--no-test"]
    assert main(["train", "--model", "gated-pixelcnn", "--epochs", "2", "--hparam", "channels=8", "--hparam",
                 "layers=2", "--hparam", "head_channels=8", "--out", str(teacher), *common]) == 0
    student = tmp_path / "student"
    argv = ["train", "--model", "wavenet", "--epochs", "1", "--hparam", "channels=8", "--hparam", "skip_channels=8",
            "--hparam", "head_channels=8", "--distill-from", str(teacher.with_suffix(".safetensors")),
            "--distill-weight", "0.8", "--out", str(student), *common]
    capsys.readouterr()
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "distilling from teacher" in err and "written to" in err
    meta = json.loads(student.with_suffix(".json").read_text())
    assert meta["distilled_from"]["checkpoint"] == "teacher" and meta["distilled_from"]["weight"] == 0.8
    assert math.isfinite(meta["valid_nll_nats"])
    # A second student of the same teacher reads the teacher's conditionals from the cache.
    assert main([*argv[:-len(common) - 2], "--out", str(tmp_path / "student2"), *common]) == 0
    assert "read from" in capsys.readouterr().err


def test_train_distill_from_a_teacher_of_other_data_is_refused(tiny_binarized, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    teacher = tmp_path / "teacher"
    assert main(["train", "--model", "pixelcnn", "--dataset", "binarized-mnist", "--epochs", "1", "--batch-size", "64",
                 "--hparam", "channels=8", "--hparam", "layers=1", "--hparam", "head_channels=8", "--out",
                 str(teacher), "--device", "cpu", "--no-test"]) == 0
    capsys.readouterr()
    code = main(["train", "--model", "made", "--ordering", "columns", "--dataset", "binarized-mnist", "--epochs", "1",
                 "--hparam", "hidden=[16]", "--distill-from", str(teacher.with_suffix(".safetensors")),
                 "--out", str(tmp_path / "student"), "--device", "cpu", "--no-test"])
    assert code != 0
    err = capsys.readouterr().err
    assert "ordering" in err and "Traceback" not in err
    assert not (tmp_path / "student.safetensors").exists()
