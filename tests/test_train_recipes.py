"""The recipe trainer's choices between continuing a checkpoint and training afresh beside it."""

import argparse
import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "train_recipes.py"


@pytest.fixture
def recipes(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("train_recipes_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "ROOT", tmp_path)
    monkeypatch.setattr(module, "FRESH", tmp_path / "runs" / "fresh")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "runs" / "fresh").mkdir(parents=True)
    return module


def write(folder: Path, name: str, valid: float, hparams: dict, weights: bytes = b"w") -> None:
    meta = {"model": "rnn", "dataset": "binarized-mnist", "valid_nll_nats": valid, "epochs": 0.5,
            "config": {"hparams": hparams}}
    (folder / f"{name}.json").write_text(json.dumps(meta))
    (folder / f"{name}.safetensors").write_bytes(weights)


RECIPE = {"name": "rnn-binarized-mnist", "model": "rnn", "dataset": "binarized-mnist",
          "hparams": {"hidden": 256, "layers": 2}}
ARGS = argparse.Namespace(resume=True, device="cuda", data_dir=None, time_scale=1.0, minutes=0.0, limit=0)


def test_a_checkpoint_of_the_recipes_size_is_continued(recipes, tmp_path):
    write(tmp_path / "checkpoints", RECIPE["name"], 90.0, {"hidden": 256, "layers": 2, "cell": "lstm"})
    assert recipes.resumable(RECIPE)[0] and not recipes.trains_aside(RECIPE, ARGS)
    cmd = recipes.command_for(RECIPE, ARGS)
    assert "--resume" in cmd and cmd[cmd.index("--out") + 1] == str(tmp_path / "checkpoints" / RECIPE["name"])


def test_a_smaller_checkpoint_trains_aside_and_is_replaced_only_by_a_better_run(recipes, tmp_path):
    shipped = tmp_path / "checkpoints"
    write(shipped, RECIPE["name"], 110.0, {"hidden": 128, "layers": 1, "cell": "lstm"}, b"small")
    can, why = recipes.resumable(RECIPE)
    assert not can and "hidden 128 -> 256" in why
    cmd = recipes.command_for(RECIPE, ARGS)
    assert "--resume" not in cmd and cmd[cmd.index("--out") + 1] == str(recipes.FRESH / RECIPE["name"])

    write(recipes.FRESH, RECIPE["name"], 120.0, RECIPE["hparams"], b"worse")
    assert recipes.adopt_fresh(RECIPE["name"])[1].endswith("kept the shipped one")
    assert (shipped / f"{RECIPE['name']}.safetensors").read_bytes() == b"small"

    write(recipes.FRESH, RECIPE["name"], 95.0, RECIPE["hparams"], b"better")
    assert recipes.adopt_fresh(RECIPE["name"]) == (True, f"{RECIPE['name']}: the run afresh validates at 95.00 nats (was 110.00); it replaces the shipped checkpoint")
    assert (shipped / f"{RECIPE['name']}.safetensors").read_bytes() == b"better"
    assert json.loads((shipped / f"{RECIPE['name']}.json").read_text())["valid_nll_nats"] == 95.0
    assert not (recipes.FRESH / f"{RECIPE['name']}.json").exists()


def test_without_resume_a_recipe_trains_over_its_checkpoint(recipes, tmp_path):
    write(tmp_path / "checkpoints", RECIPE["name"], 110.0, {"hidden": 128, "layers": 1})
    args = argparse.Namespace(**{**vars(ARGS), "resume": False})
    cmd = recipes.command_for(RECIPE, args)
    assert "--resume" not in cmd and cmd[cmd.index("--out") + 1] == str(tmp_path / "checkpoints" / RECIPE["name"])
