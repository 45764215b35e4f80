"""Typed hyperparameters: one dataclass per family, its defaults the spec's, its checks one line each."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.errors import ARExplorerError, HyperparameterError
from app.core.hparams import Hparams, hparam
from app.core.model import ModelSpec
from app.core.registry import get_registry


@dataclass(frozen=True)
class ToyHparams(Hparams):
    channels: int = hparam(64, ge=1)
    kernel: int = hparam(7, ge=1, odd=True)
    dropout: float = hparam(0.0, ge=0, lt=1)
    hidden: tuple[int, ...] = hparam((500,), ge=1, min_items=1)
    cell: str = hparam("lstm", choices=("lstm", "gru"))
    direct: bool = hparam(True, absent=False)
    likelihood: str | None = hparam(None, listed=False)


def test_the_defaults_are_the_listed_fields_as_json_values():
    assert ToyHparams.defaults() == {"channels": 64, "kernel": 7, "dropout": 0.0, "hidden": [500], "cell": "lstm",
                                     "direct": True}
    assert "likelihood" in ToyHparams.names()


def test_a_dict_builds_the_typed_config_and_fills_the_rest():
    hp = ToyHparams.from_hparams({"channels": 32, "hidden": [8, 8], "cell": "GRU", "kit_shape": [1, 3, 3],
                                  "direct": True})
    assert hp.channels == 32 and hp.hidden == (8, 8) and hp.cell == "gru" and hp.kernel == 7
    assert ToyHparams.from_hparams({"channels": 32.0}).channels == 32  # a JSON writer's whole float
    assert ToyHparams.from_hparams({"dropout": 0}).dropout == 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        hp.channels = 1  # type: ignore[misc]


def test_a_key_absent_from_a_saved_config_takes_its_value_from_before_the_key_existed():
    assert ToyHparams.from_hparams({}).direct is False
    assert ToyHparams().direct is True


@pytest.mark.parametrize("hparams, words", [
    ({"channels": 0}, ["channels=0", "a whole number >= 1"]),
    ({"channels": "many"}, ['channels="many"', "a whole number >= 1"]),
    ({"channels": 2.5}, ["channels=2.5", "a whole number"]),
    ({"channels": True}, ["channels=true", "a whole number"]),
    ({"kernel": 4}, ["kernel=4", "an odd whole number >= 1"]),
    ({"dropout": 1.0}, ["dropout=1.0", "a number in [0, 1)"]),
    ({"hidden": []}, ["hidden=[]", "a list of whole numbers >= 1 (at least 1)"]),
    ({"hidden": [8, -1]}, ["hidden=[8, -1]", "a list of whole numbers >= 1"]),
    ({"cell": "transformer"}, ['cell="transformer"', "one of lstm, gru"]),
    ({"direct": 1}, ["direct=1", "true or false"]),
    ({"likelihood": 3}, ["likelihood=3", "a string or null"]),
])
def test_a_wrong_type_or_bound_is_one_line_naming_the_key_the_value_and_what_is_allowed(hparams, words):
    with pytest.raises(HyperparameterError) as info:
        ToyHparams.from_hparams(hparams, "Toy")
    message = str(info.value)
    assert "\n" not in message and message.startswith("Toy: hyperparameter ")
    for word in words:
        assert word in message
    assert isinstance(info.value, ARExplorerError)


def test_an_unknown_key_is_refused_naming_the_known_ones():
    with pytest.raises(HyperparameterError, match=r"'chanels' \(did you mean 'channels'\?\); it takes: cell, "
                                                  r"channels, direct, dropout, hidden, kernel, likelihood"):
        ToyHparams.from_hparams({"chanels": 8}, "Toy")


def test_a_spec_takes_its_defaults_and_checks_from_its_class():
    spec = ModelSpec("toy", "Toy", "", build=lambda config: None, hparams_class=ToyHparams)
    assert spec.default_hparams == ToyHparams.defaults()
    assert "likelihood" in spec.known_hparams
    spec.check_hparams({"kernel": 5})
    with pytest.raises(HyperparameterError, match="Toy: hyperparameter kernel=6"):
        spec.check_hparams({"kernel": 6})
    with pytest.raises(ValueError, match="default_hparams differ"):
        ModelSpec("toy", "Toy", "", build=lambda config: None, hparams_class=ToyHparams,
                  default_hparams={"channels": 8})


def test_a_spec_without_a_class_keeps_its_plain_dicts():
    spec = ModelSpec("plain", "Plain", "", build=lambda config: None, default_hparams={"width": 3})
    assert spec.hparams_class is None and spec.default_hparams == {"width": 3}
    spec.check_hparams({"width": "anything"})  # a plain dict's values are the plugin's business
    with pytest.raises(HyperparameterError, match="did you mean 'width'"):
        spec.check_hparams({"widht": 3})


def _typed_specs():
    return [spec for spec in get_registry().models.values() if spec.hparams_class is not None]


def test_every_built_in_model_has_typed_hyperparameters():
    untyped = [spec.name for spec in get_registry().models.values()
               if spec.build.__module__.startswith("plugins.") and spec.hparams_class is None]
    assert not untyped


@pytest.mark.parametrize("spec", _typed_specs(), ids=lambda spec: spec.name)
def test_the_shipped_and_tiny_sizes_pass_their_own_checks(spec):
    spec.check_hparams(spec.default_hparams)
    spec.check_hparams({**spec.default_hparams, **spec.tiny_hparams})


def test_every_shipped_checkpoint_config_parses():
    registry = get_registry()
    folder = Path(__file__).resolve().parent.parent / "checkpoints"
    seen = 0
    for path in sorted(folder.glob("*.json")):
        meta = json.loads(path.read_text())
        spec = registry.models.get(meta.get("model", ""))
        if spec is None or spec.hparams_class is None or "config" not in meta:
            continue
        spec.hparams_class.from_hparams(meta["config"]["hparams"], spec.title)
        seen += 1
    assert seen >= 20


def test_train_refuses_an_out_of_bounds_hparam_in_one_line(tmp_path, capsys):
    from tests.bad_inputs.checks import assert_cli_refused, run_cli

    result = run_cli(capsys, ["train", "--model", "pixelcnn", "--dataset", "synthetic-digits", "--out",
                              tmp_path / "m", "--epochs", 1, "--no-test", "--hparam", "kernel=4"])
    assert_cli_refused(result, "PixelCNN: hyperparameter kernel=4 is not allowed; it takes an odd whole number >= 1")
    assert not list(tmp_path.iterdir())
