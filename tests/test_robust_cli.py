"""The command line, fed the whole bad-input corpus and bad arguments: exit status != 0, exactly one
``error: ...`` line on stderr, never a traceback, nothing written; good inputs still work."""

from __future__ import annotations

import json

import pytest
import torch
from bad_inputs.checks import assert_cli_refused, run_cli, snapshot
from bad_inputs.make import Case, checkpoints, images, tiny_checkpoint

from app.core.errors import ImageError

IMAGES = images()


@pytest.fixture
def checkpoint(tmp_path):
    return tiny_checkpoint(tmp_path / "checkpoints")


@pytest.mark.parametrize("case", IMAGES, ids=lambda c: c.name)
def test_score_every_image_of_the_corpus(case: Case, tmp_path, capsys, checkpoint) -> None:
    path = case.write(tmp_path)
    result = run_cli(capsys, ["score", path, "--checkpoint", checkpoint, "--json"])
    if case.expect == "refused":
        assert_cli_refused(result, case.reason)
        return
    assert result.code == 0, result.err
    scored = json.loads(result.out)
    assert scored["nll_nats"] > 0 and scored["bits_per_dim"] > 0 and scored["conversion"]
    assert scored["dataset"] == "synthetic-digits" and scored["image"] == str(path)


@pytest.fixture(scope="module")
def checkpoint_cases(tmp_path_factory) -> list[Case]:
    valid = tiny_checkpoint(tmp_path_factory.mktemp("valid")).read_bytes()
    return checkpoints(valid)


@pytest.mark.parametrize("command", ["sample", "score", "eval"])
def test_every_corrupt_checkpoint_through_every_command(command: str, checkpoint_cases, tmp_path, capsys) -> None:
    image = next(c for c in IMAGES if c.name == "grey.png").write(tmp_path)
    out = tmp_path / "samples.png"
    for case in checkpoint_cases:
        path = case.write(tmp_path)
        argv = {
            "sample": ["sample", "--checkpoint", path, "--out", out, "--n", 2],
            "score": ["score", image, "--checkpoint", path],
            "eval": ["eval", "--checkpoint", path, "--limit", 4],
        }[command]
        assert_cli_refused(run_cli(capsys, argv), case.reason)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("command", ["sample", "score", "eval", "train"])
def test_a_missing_gpu(command: str, tmp_path, capsys, checkpoint) -> None:
    image = next(c for c in IMAGES if c.name == "grey.png").write(tmp_path)
    argv = {
        "sample": ["sample", "--checkpoint", checkpoint, "--out", tmp_path / "s.png"],
        "score": ["score", image, "--checkpoint", checkpoint],
        "eval": ["eval", "--checkpoint", checkpoint],
        "train": ["train", "--model", "made", "--dataset", "synthetic-digits", "--out", tmp_path / "m"],
    }[command]
    assert_cli_refused(run_cli(capsys, [*argv, "--device", "cuda"]), "no cuda gpu is available")
    assert_cli_refused(run_cli(capsys, [*argv, "--device", "tpu"]), "unknown device 'tpu'")
    assert_cli_refused(run_cli(capsys, [*argv, "--device", "cuda:3"]), "cuda")
    assert not (tmp_path / "s.png").exists() and not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize(
    "extra, reason",
    [
        (["--n", "0"], "argument --n"),
        (["--n", "100000"], "argument --n"),
        (["--temperature", "-1"], "--temperature"),
        (["--temperature", "nan"], "--temperature"),
        (["--temperature", "inf"], "--temperature"),
        (["--scale", "0"], "--scale"),
        (["--mode", "warp-speed"], "no 'warp-speed' sampler"),
        (["--ordering", "no-such-preset"], "no ordering named"),
        (["--condition", "missing.png"], "no file"),
    ],
)
def test_bad_sample_arguments(extra, reason, tmp_path, capsys, checkpoint, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--out", tmp_path / "s.png", *extra])
    assert_cli_refused(result, reason)
    assert snapshot(tmp_path) == before


def test_outputs_that_cannot_be_written(tmp_path, capsys, checkpoint) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    for flag in ("--out", "--npy"):
        target = ["--out", tmp_path / "ok.png"] if flag == "--npy" else []
        result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, *target, flag, blocker / "s.x", "--n", 2])
        assert_cli_refused(result, "cannot write")


def test_bad_train_arguments(tmp_path, capsys, tiny_binarized) -> None:
    base = ["train", "--dataset", "binarized-mnist", "--data-dir", tiny_binarized, "--out", tmp_path / "m",
            "--limit", 32, "--no-test"]
    for extra, reason in (
        (["--model", "no-such-model"], "no model named 'no-such-model'"),
        (["--model", "made", "--hparam", "hidden"], "--hparam takes key=value"),
        (["--model", "made", "--hparam", "hidden=lots"], "MADE: hyperparameter hidden=\"lots\" is not allowed"),
        (["--model", "pixelcnn", "--ordering", "spiral"], "fixed ordering"),
        (["--model", "made", "--ordering", "nowhere.json"], "no ordering file"),
        (["--model", "made", "--epochs", "0"], "argument --epochs"),
    ):
        assert_cli_refused(run_cli(capsys, [*base, *extra]), reason)
    assert not (tmp_path / "m.safetensors").exists()


def test_unknown_names(capsys, tmp_path) -> None:
    assert_cli_refused(run_cli(capsys, ["data", "download", "no-such-data"]), "no dataset named")
    assert_cli_refused(run_cli(capsys, ["data"]), "say what to do")
    assert_cli_refused(run_cli(capsys, ["sample", "--checkpoint", "no-such-checkpoint"]), "no checkpoint named")
    assert_cli_refused(run_cli(capsys, ["check", "no-such-model"]), "no model named")


def test_debug_shows_the_traceback(tmp_path, capsys, checkpoint, monkeypatch) -> None:
    from app.cli.main import main

    missing = tmp_path / "missing.png"
    for argv in (["--debug", "score", missing, "--checkpoint", checkpoint],
                 ["score", missing, "--checkpoint", checkpoint, "--debug"]):
        with pytest.raises(ImageError):
            main([str(a) for a in argv])
    monkeypatch.setenv("AR_EXPLORER_DEBUG", "1")
    with pytest.raises(ImageError):
        main(["score", str(missing), "--checkpoint", str(checkpoint)])


def test_an_unexpected_exception_is_still_one_line(tmp_path, capsys, checkpoint, monkeypatch) -> None:
    """The last line of defence: a bug anywhere shows as one line naming the exception, and --debug for more."""

    def bug(*args, **kwargs):
        raise ZeroDivisionError("a bug\nover two lines")

    monkeypatch.setattr("app.core.scoring.score", bug)
    image = next(c for c in IMAGES if c.name == "grey.png").write(tmp_path)
    result = run_cli(capsys, ["score", image, "--checkpoint", checkpoint])
    assert result.code != 0 and "Traceback" not in result.err
    assert result.error_lines == ["error: unexpected ZeroDivisionError: a bug over two lines (run with --debug for details)"]
