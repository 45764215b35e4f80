"""Interrupted work: a KeyboardInterrupt or an error at any moment of a save, a training run or a sampling run
leaves every file either as it was or complete, no temporary file behind, and a training run that resumes from
the last good checkpoint."""

from __future__ import annotations

import json
import os

import pytest
import torch
from bad_inputs.checks import assert_cli_refused, leftovers, run_cli, snapshot
from bad_inputs.make import tiny_checkpoint, tiny_model

from app.core import checkpoints as checkpoints_module
from app.core import files as files_module
from app.core.checkpoints import load_checkpoint, read_header, read_info, save_checkpoint


class Boom(Exception):
    """A failure injected by the tests (stands for a full disk, a dead USB stick, ...)."""


def fail_on_call(monkeypatch, owner, name: str, call: int, error: BaseException, before: bool = True) -> list[int]:
    """Make ``owner.name`` raise ``error`` on its ``call``-th call (1-based), before or after doing its work."""
    real = getattr(owner, name)
    count = [0]

    def wrapper(*args, **kwargs):
        count[0] += 1
        if count[0] == call and before:
            raise error
        result = real(*args, **kwargs)
        if count[0] == call:
            raise error
        return result

    monkeypatch.setattr(owner, name, wrapper)
    return count


def _write_partial_then_fail(monkeypatch, error: BaseException) -> None:
    """safetensors writes half the weights file, then the write fails."""
    real = checkpoints_module.save_file

    def half_written(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as handle:
            handle.truncate(os.path.getsize(filename) // 2)
        raise error

    monkeypatch.setattr(checkpoints_module, "save_file", half_written)


# stage -> how to inject the failure; the pair on disk must then be the old one, or new weights whose own record
# is what read_info reports (a JSON left from the old save is recognised as stale).
STAGES = {
    "before the weights": lambda mp, e: fail_on_call(mp, checkpoints_module, "save_file", 1, e),
    "while writing the weights": _write_partial_then_fail,
    "at the fsync of the weights": lambda mp, e: fail_on_call(mp, files_module.os, "fsync", 1, e),
    "at the os.replace of the weights": lambda mp, e: fail_on_call(mp, files_module.os, "replace", 1, e),
    "after the weights, before the JSON": lambda mp, e: fail_on_call(mp, checkpoints_module, "atomic_write_text", 1, e),
    "at the fsync of the JSON": lambda mp, e: fail_on_call(mp, files_module.os, "fsync", 2, e),
    "at the os.replace of the JSON": lambda mp, e: fail_on_call(mp, files_module.os, "replace", 2, e),
    "after the JSON": lambda mp, e: fail_on_call(mp, files_module.os, "replace", 2, e, before=False),
}


@pytest.mark.parametrize("error", [KeyboardInterrupt(), Boom("disk full")], ids=["ctrl-c", "error"])
@pytest.mark.parametrize("stage", list(STAGES))
def test_a_save_interrupted_at_any_stage(stage: str, error: BaseException, tmp_path, registry, monkeypatch) -> None:
    path = tiny_checkpoint(tmp_path, meta={"note": "old"})
    old = snapshot(tmp_path)
    new_model = tiny_model()
    with torch.no_grad():
        for parameter in new_model.parameters():
            parameter.add_(1.0)
    STAGES[stage](monkeypatch, error)
    with pytest.raises(type(error)):
        save_checkpoint(new_model, path, {"dataset": "synthetic-digits", "note": "new"})
    monkeypatch.undo()
    assert leftovers(tmp_path) == []
    now = snapshot(tmp_path)
    assert set(now) == set(old)
    weights, sidecar = path.name, path.with_suffix(".json").name
    kept_old = now[weights] == old[weights]
    # Whatever is on disk is complete, describes itself truthfully, and loads.
    info = read_info(path)
    record = json.loads(read_header(path)["__metadata__"]["ar_explorer_record"])
    assert info.meta["note"] == record["note"] == ("old" if kept_old else "new")
    model, _ = load_checkpoint(path, registry)
    expected = tiny_model() if kept_old else new_model
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), expected.state_dict().values(), strict=True))
    if now[sidecar] != old[sidecar]:
        assert not kept_old and json.loads(now[sidecar])["note"] == "new"


@pytest.mark.parametrize("error", [KeyboardInterrupt(), Boom("disk full")], ids=["ctrl-c", "error"])
def test_other_atomic_writes(error: BaseException, tmp_path, monkeypatch) -> None:
    from PIL import Image

    from app.core.images import save_png
    from app.core.orderings import raster, spiral

    raster(4, 4).save(tmp_path / "order.json")
    save_png(Image.new("L", (3, 3), 0), tmp_path / "grid.png")
    old = snapshot(tmp_path)
    for write in (lambda: spiral(4, 4).save(tmp_path / "order.json"),
                  lambda: save_png(Image.new("L", (5, 5), 255), tmp_path / "grid.png")):
        fail_on_call(monkeypatch, files_module.os, "replace", 1, error)
        with pytest.raises(type(error)):
            write()
        monkeypatch.undo()
    assert snapshot(tmp_path) == old and leftovers(tmp_path) == []


# training ----------------------------------------------------------------------------------------------------------


def _train(capsys, data_dir, out, *extra) -> object:
    return run_cli(capsys, [
        "train", "--model", "made", "--dataset", "binarized-mnist", "--data-dir", data_dir, "--out", out,
        "--limit", 64, "--valid-limit", 32, "--batch-size", 32, "--epochs", 2, "--eval-every", 1, "--log-every", 1,
        "--hparam", "hidden=[16]", "--lr", 0.01, "--no-test", "--device", "cpu", *extra,
    ])


def _interrupt_at_validation(monkeypatch, call: int, error: BaseException) -> None:
    from app.core import training

    fail_on_call(monkeypatch, training, "validation_nll", call, error)


def test_training_interrupted_keeps_the_last_good_checkpoint_and_resumes(
    tiny_binarized, tmp_path, capsys, monkeypatch, registry
) -> None:
    out = tmp_path / "run" / "made.safetensors"
    _interrupt_at_validation(monkeypatch, 3, KeyboardInterrupt())
    result = _train(capsys, tiny_binarized, out)
    monkeypatch.undo()
    assert result.code == 130 and "interrupted" in result.err and "Traceback" not in result.err
    assert leftovers(tmp_path) == []
    before = read_info(out)
    assert before.meta["steps"] in (1, 2)
    kept, _ = load_checkpoint(out, registry)
    # Resume: the run starts from the checkpoint's weights and its step count, and extends its history.
    loaded_at_resume = []
    real_train = __import__("app.core.training", fromlist=["train"]).train

    def spy(model, *args, **kwargs):
        loaded_at_resume.append({k: v.clone() for k, v in model.state_dict().items()})
        return real_train(model, *args, **kwargs)

    monkeypatch.setattr("app.core.training.train", spy)
    result = _train(capsys, tiny_binarized, out, "--resume")
    assert result.code == 0, result.err
    assert "resuming from made.safetensors" in result.err
    assert all(torch.equal(loaded_at_resume[0][k], v) for k, v in kept.state_dict().items())
    after = read_info(out)
    assert after.meta["steps"] > before.meta["steps"]
    assert after.meta["history"][: len(before.meta["history"])] == before.meta["history"]
    assert after.meta["dataset"] == "binarized-mnist" and leftovers(tmp_path) == []


def test_a_save_that_fails_during_training(tiny_binarized, tmp_path, capsys, monkeypatch, registry) -> None:
    """The second checkpoint's JSON cannot be written: one-line error; the weights on disk load, their metadata
    is their own (not the first save's JSON), and --resume continues from them."""
    out = tmp_path / "made.safetensors"
    monkeypatch.setattr("app.core.training.validation_nll", _falling_nll())
    fail_on_call(monkeypatch, checkpoints_module, "atomic_write_text", 2, OSError(28, "No space left on device"))
    result = _train(capsys, tiny_binarized, out)
    monkeypatch.undo()
    assert_cli_refused(result, "no space left on device")
    assert leftovers(tmp_path) == []
    info = read_info(out)
    assert info.meta["steps"] == 2, "the metadata must describe the weights on disk, not the stale JSON"
    assert json.loads(out.with_suffix(".json").read_text())["steps"] == 1  # the stale one, left as it was
    load_checkpoint(out, registry)
    result = _train(capsys, tiny_binarized, out, "--resume", "--epochs", 0.5)
    assert result.code == 0, result.err
    assert read_info(out).meta["steps"] == 3


def _falling_nll():
    """Validation NLLs that improve at every call, so that every step saves a checkpoint."""
    values = iter(range(1000, 0, -1))
    return lambda *args, **kwargs: float(next(values))


# sampling ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", [KeyboardInterrupt(), Boom("the GPU fell off the bus")], ids=["ctrl-c", "error"])
def test_sampling_interrupted_leaves_the_old_output(error: BaseException, tmp_path, capsys, monkeypatch) -> None:
    from app.core import sampling

    checkpoint = tiny_checkpoint(tmp_path)
    out, npy = tmp_path / "samples.png", tmp_path / "samples.npy"
    assert run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--out", out, "--npy", npy, "--n", 2]).code == 0
    old = snapshot(tmp_path)
    for inject in (
        lambda: fail_on_call(monkeypatch, sampling.SamplingRun, "step", 5, error),
        lambda: fail_on_call(monkeypatch, files_module.os, "replace", 1, error),
    ):
        inject()
        result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--out", out, "--npy", npy, "--n", 2,
                                  "--seed", 7, "--force"])
        monkeypatch.undo()
        assert result.code != 0 and "Traceback" not in result.err
        assert snapshot(tmp_path) == old and leftovers(tmp_path) == []
    # Interrupted between the PNG and the .npy: each file is complete, the PNG new and the .npy as it was.
    fail_on_call(monkeypatch, files_module.os, "replace", 2, error)
    result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--out", out, "--npy", npy, "--n", 2, "--seed", 7,
                              "--force"])
    monkeypatch.undo()
    assert result.code != 0
    now = snapshot(tmp_path)
    assert now["samples.npy"] == old["samples.npy"] and now["samples.png"] != old["samples.png"]
    assert leftovers(tmp_path) == []


# a run killed between its writes, a loss that diverges --------------------------------------------------------------


def test_a_kill_between_the_weights_and_the_optimizer_is_detected_on_resume(
    tiny_binarized, tmp_path, capsys, monkeypatch
) -> None:
    """The second save writes its weights, then the run is killed before the optimizer state: on resume the
    state left from the first save is recognised as stale and not used with the newer weights."""
    out = tmp_path / "made.safetensors"
    monkeypatch.setattr("app.core.training.validation_nll", _falling_nll())
    from app.core import training

    fail_on_call(monkeypatch, training, "save_optimizer", 2, KeyboardInterrupt())
    assert _train(capsys, tiny_binarized, out).code == 130
    monkeypatch.undo()
    assert read_info(out).meta["steps"] == 2  # the weights of the second save
    result = _train(capsys, tiny_binarized, out, "--resume", "--epochs", 0.5)
    assert result.code == 0, result.err
    assert "is from an earlier save (step 1)" in result.err and "the optimizer starts afresh" in result.err
    # A resume after a clean stop uses the state saved with its weights, and says nothing.
    result = _train(capsys, tiny_binarized, out, "--resume", "--epochs", 0.5)
    assert result.code == 0 and "optimizer" not in result.err


def test_a_loss_that_turns_nan_stops_training_at_once(tiny_binarized, tmp_path, capsys, monkeypatch, registry) -> None:
    from app.core import training

    out = tmp_path / "made.safetensors"
    real = training._LossModule.forward
    calls = [0]

    def diverging(self, *args):
        calls[0] += 1
        loss = real(self, *args)
        return loss * float("nan") if calls[0] >= 3 else loss

    monkeypatch.setattr(training._LossModule, "forward", diverging)
    result = _train(capsys, tiny_binarized, out)
    assert_cli_refused(result, "the training loss became nan at step 3")
    assert "the best checkpoint so far is kept" in result.err
    assert calls[0] == 3, "training went on after the loss turned NaN"
    model, info = load_checkpoint(out, registry)  # refused if a NaN had reached the weights
    assert info.meta["steps"] == 2
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert leftovers(tmp_path) == [] and not (tmp_path / "made.safetensors.lock").exists()
