"""One validation layer for every numeric option of every command: NaN, infinities, negatives, zero and numbers
past any use get exit status 2 and one line naming the option, the same in every command; sizes that multiply
(images x scale, a batch of large images) are bounded by what they allocate; unknown hyperparameters are refused
with the keys the model takes."""

from __future__ import annotations

import time

import pytest
from bad_inputs.checks import assert_cli_refused, run_cli, snapshot
from bad_inputs.make import BAD_NUMBERS, NUMERIC_OPTIONS, images, tiny_checkpoint

from app.cli.main import EXIT_ERROR
from app.cli.options import MAX_SEED


@pytest.fixture
def workspace(tmp_path):
    checkpoint = tiny_checkpoint(tmp_path / "checkpoints")
    image = next(c for c in images() if c.name == "grey.png").write(tmp_path)
    return {"ckpt": str(checkpoint), "out": str(tmp_path / "out.png"), "image": str(image)}


def _fill(argv: list[str], workspace: dict[str, str]) -> list[str]:
    return [arg.format(**workspace) for arg in argv]


@pytest.mark.parametrize("argv, option, kind", NUMERIC_OPTIONS,
                         ids=[f"{a[0] if a else 'app'} {o}" for a, o, _ in NUMERIC_OPTIONS])
def test_every_bad_number_of_every_option_is_refused_naming_it(argv, option, kind, workspace, tmp_path, capsys) -> None:
    before = snapshot(tmp_path)
    for value in BAD_NUMBERS[kind]:
        result = run_cli(capsys, [*_fill(argv, workspace), f"{option}={value}"])
        line = assert_cli_refused(result, f"argument {option}")
        assert result.code == EXIT_ERROR, f"{option}={value!r}: exit {result.code}"
        assert repr(value)[1:-1][:20] in line or not value, f"the line does not quote {value!r}: {line}"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("value", ["-5", "-1", "nan", "1e400", "18446744073709551616"])
def test_the_same_value_gets_the_same_answer_everywhere(value, workspace, capsys) -> None:
    """Seeds beyond 64 bits, --limit -5, --subset -1: refused by one command and taken by another, before."""
    seen = set()
    for argv, option, _ in NUMERIC_OPTIONS:
        if option in ("--seed", "--limit", "--subset"):
            result = run_cli(capsys, [*_fill(argv, workspace), f"{option}={value}"])
            seen.add(result.code)
            assert_cli_refused(result, f"argument {option}")
    assert seen == {EXIT_ERROR}


def test_the_bounds_themselves_are_taken(workspace, tmp_path, capsys) -> None:
    ok = run_cli(capsys, ["sample", "--checkpoint", workspace["ckpt"], "--out", workspace["out"], "--n", 1,
                          "--seed", MAX_SEED, "--temperature", 0, "--scale", 1])
    assert ok.code == 0, ok.err
    checkpoint = tiny_checkpoint(tmp_path / "28", shape=(1, 28, 28))
    ok = run_cli(capsys, ["eval", "--checkpoint", checkpoint, "--limit", 8, "--subset", 0, "--no-record"])
    assert ok.code == 0, ok.err


def test_a_refused_option_prints_no_usage_block(workspace, capsys) -> None:
    result = run_cli(capsys, ["sample", "--checkpoint", workspace["ckpt"], "--n", "0"])
    assert result.err.strip().splitlines() == result.error_lines
    assert "usage:" not in result.err


# sizes that multiply -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, reason", [
    (["sample", "--n", 256, "--scale", 64], "megapixels"),
    (["sample", "--n", 4096, "--scale", 64], "megapixels"),
    (["complete", "test:0", "--known", "top-half", "--n", 256, "--scale", 64], "megapixels"),
    (["fisher", "test:0", "test:1", "--steps", 32, "--scale", 64], "megapixels"),
])
def test_a_canvas_too_large_is_refused_before_it_is_drawn(argv, reason, tmp_path, capsys) -> None:
    """``sample --n 256 --scale 64`` took 5.9 GB: n and scale were each checked, never their product."""
    checkpoint = tiny_checkpoint(tmp_path / "c", shape=(1, 28, 28))
    start = time.perf_counter()
    result = run_cli(capsys, [*argv, "--checkpoint", checkpoint, "--out", tmp_path / "big.png"])
    assert_cli_refused(result, reason)
    assert time.perf_counter() - start < 10
    assert not (tmp_path / "big.png").exists()


def test_a_batch_of_large_images_is_bounded_by_its_values(tmp_path, capsys) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "c", shape=(1, 56, 56))
    result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--n", 4096, "--scale", 1, "--out", tmp_path / "s.png"])
    assert_cli_refused(result, "at most 1024 of them")
    ok = run_cli(capsys, ["sample", "--checkpoint", tiny_checkpoint(tmp_path / "d"), "--n", 4096, "--scale", 1,
                          "--out", tmp_path / "ok.png"])
    assert ok.code == 0, ok.err


# NaN settings --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["sample", "complete"])
def test_a_nan_temperature_is_refused(command, workspace, capsys) -> None:
    """``complete --temperature nan`` returned blank completions with exit 0."""
    argv = {"sample": ["sample"], "complete": ["complete", workspace["image"], "--known", "top-half"]}[command]
    result = run_cli(capsys, [*argv, "--checkpoint", workspace["ckpt"], "--out", workspace["out"], "--temperature", "nan"])
    assert_cli_refused(result, "argument --temperature")


# hyperparameters ---------------------------------------------------------------------------------------------------


def _train(capsys, data_dir, tmp_path, *extra):
    return run_cli(capsys, ["train", "--model", "pixelcnn", "--dataset", "binarized-mnist", "--data-dir", data_dir,
                            "--out", tmp_path / "m", "--limit", 16, "--epochs", 1, "--no-test", *extra])


def test_an_unknown_hyperparameter_is_refused_with_the_keys_the_model_takes(tiny_binarized, tmp_path, capsys) -> None:
    line = assert_cli_refused(_train(capsys, tiny_binarized, tmp_path, "--hparam", "chanels=128"), "chanels")
    assert "did you mean 'channels'" in line
    for key in ("channels", "layers", "kernel", "first_kernel", "head_channels", "likelihood"):
        assert key in line
    assert not (tmp_path / "m.safetensors").exists()


@pytest.mark.parametrize("value, reason", [
    ("nan", "no model takes it"),
    ("Infinity", "no model takes it"),
    ("1e400", "no model takes it"),
    ("99999999999", "no model takes it"),
    ("64000", "asks for more than"),
])
def test_hyperparameters_that_no_model_takes_are_refused(value, reason, tiny_binarized, tmp_path, capsys) -> None:
    start = time.perf_counter()
    assert_cli_refused(_train(capsys, tiny_binarized, tmp_path, "--hparam", f"channels={value}"), reason)
    assert time.perf_counter() - start < 15, "the model was built before the size was refused"
    assert not (tmp_path / "m.safetensors").exists()


def test_every_model_takes_its_own_hyperparameters(registry) -> None:
    """The keys a model takes are its default and tiny hyperparameters and those its family declares: the
    recipes of every shipped checkpoint pass."""
    import json
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for path in [*root.glob("scripts/recipes/*.json"), root / "scripts" / "cpu-recipes.json"]:
        for recipe in json.loads(path.read_text()):
            registry.model(recipe["model"]).check_hparams(recipe.get("hparams"))
    for spec in registry.models.values():
        spec.check_hparams(spec.default_hparams)
        spec.check_hparams(spec.tiny_hparams)
