"""The headless commands, end to end, as a user runs them (in-process through app.cli.main.main)."""

import json

import numpy as np
import pytest
from PIL import Image

from app.cli.main import main


@pytest.fixture
def trained(tiny_binarized, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("AR_EXPLORER_DATA", str(tiny_binarized))
    out = tmp_path / "ck" / "tiny-pixelcnn"
    code = main(["train", "--model", "pixelcnn", "--dataset", "binarized-mnist", "--epochs", "1", "--batch-size", "64",
                 "--hparam", "channels=8", "--hparam", "layers=1", "--hparam", "head_channels=8", "--out", str(out),
                 "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "test NLL:" in captured.out and "nats/image" in captured.out and "bits/dim" in captured.out
    return out.with_suffix(".safetensors")


def test_models_json_lists_plugins_models_checkpoints(capsys):
    assert main(["models", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"plugins", "models", "checkpoints", "datasets", "orderings"} <= set(data)
    models = {m["name"]: m for m in data["models"]}
    assert models["pixelcnn"]["orderings"] == "fixed" and models["made"]["orderings"] == "build"
    assert all(set(p) >= {"name", "status", "error"} for p in data["plugins"])
    shipped = {c["name"]: c for c in data["checkpoints"]}
    assert "gated-pixelcnn-binarized-mnist" in shipped
    assert shipped["gated-pixelcnn-binarized-mnist"]["test_nll_nats"] > 0
    assert set(shipped["gated-pixelcnn-binarized-mnist"]) >= {"name", "model", "dataset", "test_nll_nats"}


def test_train_sample_score_eval(trained, tmp_path, tiny_binarized, capsys):
    grid = tmp_path / "grid.png"
    assert main(["sample", "--checkpoint", str(trained), "--n", "4", "--out", str(grid), "--seed", "3"]) == 0
    assert Image.open(grid).size[0] > 28
    capsys.readouterr()
    # eval recorded the test NLL in the checkpoint's JSON
    meta = json.loads(trained.with_suffix(".json").read_text())
    assert meta["test_nll_nats"] > 0 and len(meta["test_nll_quantiles"]) == 101
    # score of test images agrees with eval on the same images
    test = np.load(tiny_binarized / "binarized_mnist.npz")["test"][:3]
    paths = []
    for i, image in enumerate(test):
        path = tmp_path / f"t{i}.png"
        Image.fromarray(image * 255).save(path)
        paths.append(str(path))
    assert main(["score", "--checkpoint", str(trained), *paths, "--json", "--per-pixel", "--invert", "no"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert len(scored) == 3 and len(scored[0]["per_pixel_nll"]) == 28 and len(scored[0]["per_pixel_nll"][0]) == 28
    assert abs(sum(map(sum, scored[0]["per_pixel_nll"])) - scored[0]["nll_nats"]) < 1e-3
    assert main(["eval", "--checkpoint", str(trained), "--limit", "3", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert abs(stats["nll_nats"] - np.mean([s["nll_nats"] for s in scored])) < 1e-3
    assert stats["dataset"] == "binarized-mnist" and "Larochelle" in stats["binarization"]
    recorded = json.loads(trained.with_suffix(".json").read_text())["test_nll_nats"]
    assert main(["eval", "--checkpoint", str(trained), "--subset", "5", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["num_images"] == 5 and stats["images"] == "a seeded random subset of"
    assert json.loads(trained.with_suffix(".json").read_text())["test_nll_nats"] == recorded  # not recorded


def test_resume_from_cli(trained, capsys):
    steps_before = json.loads(trained.with_suffix(".json").read_text())["steps"]
    code = main(["train", "--model", "pixelcnn", "--dataset", "binarized-mnist", "--epochs", "1", "--batch-size", "64",
                 "--out", str(trained), "--resume", "--no-test", "--device", "cpu"])
    assert code == 0
    assert "resuming from" in capsys.readouterr().err
    assert json.loads(trained.with_suffix(".json").read_text())["steps"] >= steps_before


@pytest.mark.parametrize(
    "extra, conflict",
    [
        (["--hparam", "channels=16"], "channels=8 (asked: 16)"),
        (["--dataset", "mnist-threshold"], "dataset binarized-mnist (asked: mnist-threshold)"),
    ],
)
def test_resume_refuses_settings_that_differ_from_the_checkpoint(trained, capsys, extra, conflict):
    """--resume continues the checkpoint as it is; a setting that it would ignore is an error, and nothing changes."""
    before = trained.read_bytes(), trained.with_suffix(".json").read_text()
    argv = ["train", "--model", "pixelcnn", "--epochs", "1", "--batch-size", "64", "--out", str(trained),
            "--resume", "--no-test", "--device", "cpu"]
    if "--dataset" not in extra:
        argv += ["--dataset", "binarized-mnist"]
    code = main(argv + extra)
    err = capsys.readouterr().err
    assert code != 0 and conflict in err and "Leave out --resume" in err
    assert (trained.read_bytes(), trained.with_suffix(".json").read_text()) == before


@pytest.mark.parametrize(
    "argv, message",
    [
        (["sample", "--checkpoint", "nope"], "no checkpoint named 'nope'"),
        (["sample", "--checkpoint", "pixelcnn-binarized-mnist", "--ordering", "spiral", "--n", "1"], "only supports"),
        (["train", "--model", "nonexistent", "--dataset", "binarized-mnist"], "no model named"),
        (["eval", "--checkpoint", "pixelcnn-binarized-mnist"], "ar-explorer data download binarized-mnist"),
        (["sample", "--checkpoint", "pixelcnn-binarized-mnist", "--device", "cuda"], "CUDA"),
    ],
)
def test_errors_are_one_line(argv, message, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code != 0 and message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_shipped_checkpoint_samples(tmp_path, capsys):
    out = tmp_path / "s.png"
    assert main(["sample", "--checkpoint", "made-binarized-mnist", "--n", "2", "--out", str(out)]) == 0
    assert "2 samples from made-binarized-mnist" in capsys.readouterr().out and out.exists()
