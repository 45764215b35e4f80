"""Outputs that would destroy: a command never writes over one of its inputs, never over an existing file unless
asked (``--force``), never over a device; ``train`` never replaces a checkpoint without ``--resume``, and two
trainings never write one output. A full disk or a read-only folder is named as such, and ``eval`` prints its
figure before saying that it could not record it."""

from __future__ import annotations

import errno
import json
import os

import pytest
from bad_inputs.checks import assert_cli_refused, leftovers, run_cli, snapshot
from bad_inputs.make import images, orderings, tiny_checkpoint

from app.core import checkpoints as checkpoints_module
from app.core import files as files_module
from app.core.files import OutputLock


@pytest.fixture
def checkpoint(tmp_path):
    return tiny_checkpoint(tmp_path / "checkpoints")


def _sample(capsys, checkpoint, *extra):
    return run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--n", 2, *extra])


def test_sample_never_writes_over_its_checkpoint(checkpoint, tmp_path, capsys) -> None:
    """``sample --out`` over an existing checkpoint replaced it with a PNG."""
    before = snapshot(tmp_path)
    for target in (checkpoint, checkpoint.with_suffix(".json")):
        for force in ([], ["--force"]):
            assert_cli_refused(_sample(capsys, checkpoint, "--out", target, *force), "one of this command's inputs")
        assert_cli_refused(_sample(capsys, checkpoint, "--out", tmp_path / "ok.png", "--npy", target, "--force"),
                           "one of this command's inputs")
    assert snapshot(tmp_path) == before


def test_an_existing_output_is_replaced_only_when_asked(checkpoint, tmp_path, capsys) -> None:
    out = tmp_path / "grid.png"
    out.write_bytes(b"the lecture's figure")
    assert_cli_refused(_sample(capsys, checkpoint, "--out", out), "exists; add --force")
    assert out.read_bytes() == b"the lecture's figure"
    result = _sample(capsys, checkpoint, "--out", out, "--force")
    assert result.code == 0, result.err
    assert out.read_bytes().startswith(b"\x89PNG")


def test_other_outputs_that_would_destroy(checkpoint, tmp_path, capsys) -> None:
    ordering = next(c for c in orderings() if c.name == "reversed.json").write(tmp_path)
    out = tmp_path / "s.png"
    before = snapshot(tmp_path)
    for argv, reason in (
        (["--out", out, "--npy", out], "name the same file"),
        (["--out", ordering, "--ordering", ordering, "--force"], "one of this command's inputs"),
        (["--out", tmp_path, "--force"], "is a folder"),
    ):
        assert_cli_refused(_sample(capsys, checkpoint, *argv), reason)
    if os.path.exists("/dev/null"):
        assert_cli_refused(_sample(capsys, checkpoint, "--out", "/dev/null", "--force"), "a device, not a file")
        assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")
    assert snapshot(tmp_path) == before


def test_complete_never_writes_over_its_image(tmp_path, capsys) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "c", shape=(1, 28, 28))
    image = next(c for c in images() if c.name == "grey.png").write(tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(capsys, ["complete", image, "--checkpoint", checkpoint, "--known", "top-half", "--n", 1,
                              "--out", image, "--force"])
    assert_cli_refused(result, "one of this command's inputs")
    assert snapshot(tmp_path) == before


def test_fisher_decoder_never_writes_over_its_checkpoint(checkpoint, tmp_path, capsys) -> None:
    before = snapshot(tmp_path)
    result = run_cli(capsys, ["fisher-decoder", "--checkpoint", checkpoint, "--out", checkpoint, "--force"])
    assert_cli_refused(result, "one of this command's inputs")
    assert snapshot(tmp_path) == before


# train -------------------------------------------------------------------------------------------------------------


def _train(capsys, data_dir, *extra):
    return run_cli(capsys, ["train", "--model", "made", "--dataset", "binarized-mnist", "--data-dir", data_dir,
                            "--limit", 32, "--valid-limit", 16, "--epochs", 1, "--no-test", "--hparam", "hidden=[8]",
                            *extra])


def test_a_second_training_to_the_default_output_writes_beside_it(tiny_binarized, tmp_path, capsys, monkeypatch) -> None:
    """A second ``train`` to the default output silently replaced a better checkpoint with a worse one."""
    folder = tmp_path / "user-checkpoints"
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    assert _train(capsys, tiny_binarized).code == 0
    first = snapshot(folder)
    result = _train(capsys, tiny_binarized, "--seed", 1)
    assert result.code == 0, result.err
    assert "made-binarized-mnist.safetensors exists and is kept" in result.err
    assert "checkpoint: " in result.out and "made-binarized-mnist-2.safetensors" in result.out
    after = snapshot(folder)
    assert {k: after[k] for k in first} == first
    assert "made-binarized-mnist-2.safetensors" in after and leftovers(folder) == []


def test_an_explicit_output_that_exists_is_refused_without_resume(tiny_binarized, tmp_path, capsys) -> None:
    out = tmp_path / "m.safetensors"
    assert _train(capsys, tiny_binarized, "--out", out).code == 0
    before = snapshot(tmp_path)
    assert_cli_refused(_train(capsys, tiny_binarized, "--out", out), "--resume continues it")
    assert snapshot(tmp_path) == before
    # An ordering file where the run would write its JSON is not replaced either.
    ordering = next(c for c in orderings() if c.name == "reversed.json").write(tmp_path)
    assert_cli_refused(_train(capsys, tiny_binarized, "--out", ordering.with_suffix("")), "already holds")
    assert ordering.read_bytes() == next(c for c in orderings() if c.name == "reversed.json").data
    result = _train(capsys, tiny_binarized, "--out", out, "--resume")
    assert result.code == 0, result.err


def test_two_trainings_never_write_one_output(tiny_binarized, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "m.safetensors"
    with OutputLock(out):  # another run holds it
        assert_cli_refused(_train(capsys, tiny_binarized, "--out", out), "being written by another training run")
        assert not out.exists()
        tiny_checkpoint(tmp_path, "m")
        before = snapshot(tmp_path)
        assert_cli_refused(_train(capsys, tiny_binarized, "--out", out, "--resume"), "another training run")
        assert snapshot(tmp_path) == before
    folder = tmp_path / "user"
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    with OutputLock(folder / "made-binarized-mnist.safetensors"):  # a run that has not written yet
        result = _train(capsys, tiny_binarized)
        assert result.code == 0, result.err
        assert "made-binarized-mnist-2.safetensors" in result.out
    assert not list(tmp_path.rglob("*.lock"))


def test_an_interrupted_training_releases_its_output(tiny_binarized, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "m.safetensors"

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("app.core.training.validation_nll", interrupt)
    assert _train(capsys, tiny_binarized, "--out", out).code == 130
    assert not list(tmp_path.rglob("*.lock"))


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM") or os.name != "posix", reason="POSIX signals")
def test_a_terminated_training_cleans_up_like_an_interrupted_one(tiny_binarized, tmp_path, capsys, monkeypatch) -> None:
    """``kill`` (a scheduler's time limit) left the lock and the temporary files of the write under way."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach the main thread only")
    out = tmp_path / "m.safetensors"

    def killed(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("SIGTERM was not delivered")

    monkeypatch.setattr("app.core.checkpoints.save_file", killed)
    result = _train(capsys, tiny_binarized, "--out", out)
    assert result.code == 143 and "terminated" in result.err
    assert not list(tmp_path.rglob("*.lock")) and leftovers(tmp_path) == [] and not out.exists()
    assert signal.getsignal(signal.SIGTERM) is not None  # put back as it was


# the system's refusals ---------------------------------------------------------------------------------------------


def test_a_full_disk_and_a_read_only_folder_are_named(checkpoint, tmp_path, capsys, monkeypatch) -> None:
    for number, reason in ((errno.ENOSPC, "no space left on device"), (errno.EROFS, "read-only")):
        def refuse(*args, _number=number, **kwargs):
            raise OSError(_number, os.strerror(_number))

        monkeypatch.setattr(files_module.os, "replace", refuse)
        assert_cli_refused(_sample(capsys, checkpoint, "--out", tmp_path / "s.png"), reason)
        monkeypatch.undo()
        assert not (tmp_path / "s.png").exists() and leftovers(tmp_path) == []


def test_an_os_error_anywhere_is_the_systems_reason_not_a_bug(checkpoint, tmp_path, capsys, monkeypatch) -> None:
    """Exit status 1 ("unexpected") is kept for bugs."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "/tmp/scratch")

    monkeypatch.setattr("app.core.scoring.score", full)
    image = next(c for c in images() if c.name == "grey.png").write(tmp_path)
    result = run_cli(capsys, ["score", image, "--checkpoint", checkpoint])
    assert_cli_refused(result, "no space left on device")
    assert result.code == 2


def test_eval_in_a_read_only_folder_prints_its_figure_first(tmp_path, capsys, monkeypatch) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "ro", shape=(1, 28, 28))
    before = snapshot(tmp_path)

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(checkpoints_module, "atomic_write_bytes", read_only)
    monkeypatch.setattr(checkpoints_module, "atomic_write_text", read_only)
    for extra in ([], ["--json"]):
        result = run_cli(capsys, ["eval", "--checkpoint", checkpoint, *extra])
        assert_cli_refused(result, "was not recorded")
        assert "read-only" in result.error_lines[0]
        if extra:
            assert json.loads(result.out)["recorded"] is False
        else:
            assert "nats/image" in result.out
    assert snapshot(tmp_path) == before
