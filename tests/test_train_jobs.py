"""Training from the app, without Qt: the plan's checks, where the checkpoint goes, the run and its stop."""

import copy

import pytest

from app.core.errors import ARExplorerError, ModelError
from app.core.session import Session
from app.ui.train_jobs import RunRecord, TrainPlan, output_path, output_stem, parse_hparams, run_plan

TINY = {"channels": 4, "layers": 1, "kernel": 3, "first_kernel": 3, "head_channels": 4}


def test_hyperparameters_are_a_json_object_or_a_clear_message():
    assert parse_hparams('{"channels": 8, "layers": 2}') == {"channels": 8, "layers": 2}
    assert parse_hparams("  ") == {}
    with pytest.raises(ARExplorerError, match="not valid JSON"):
        parse_hparams('{"channels": 8,')
    with pytest.raises(ARExplorerError, match="JSON object"):
        parse_hparams("[8, 2]")


def test_the_output_never_names_an_existing_checkpoint(tmp_path):
    stem = output_stem("pixelcnn", "synthetic-digits", None, None)
    first = output_path(tmp_path, stem)
    assert first.name == "pixelcnn-synthetic-digits-trained.safetensors"
    first.with_suffix(".json").write_text("{}")
    assert output_path(tmp_path, stem).name == "pixelcnn-synthetic-digits-trained-2.safetensors"
    assert output_stem("made", "binarized-mnist", "even-then-odd", None) == "made-binarized-mnist-even-then-odd-trained"
    assert output_stem("made", "binarized-mnist", None, "made-binarized-mnist") == "made-binarized-mnist-continued"
    assert output_path(tmp_path, "a/b: c").parent == tmp_path  # no folder or odd character from a name


def test_the_output_never_takes_the_name_of_a_checkpoint_in_another_folder(tmp_path):
    """The shipped checkpoints live elsewhere and are listed first: a new one under one of their names would
    never show in the list."""
    taken = ["gated-pixelcnn-binarized-mnist", "gated-pixelcnn-binarized-mnist-trained"]
    out = output_path(tmp_path, output_stem("gated-pixelcnn", "binarized-mnist", None, None), taken)
    assert out.stem == "gated-pixelcnn-binarized-mnist-trained-2" and out.parent == tmp_path
    assert output_path(tmp_path, "gated-pixelcnn-binarized-mnist", taken).stem == "gated-pixelcnn-binarized-mnist-2"


def test_a_run_trains_writes_the_best_checkpoint_and_measures_the_test_nll(tmp_path):
    session = Session(device="cpu")
    out = tmp_path / "run.safetensors"
    plan = TrainPlan("pixelcnn", "synthetic-digits", TINY, out, epochs=0.25, batch_size=64, lr=3e-3, minutes=2.0)
    record = RunRecord()
    events = list(run_plan(session, plan, record))
    assert events == record.events and events[-1].kind == "done"
    evals = [e for e in events if e.kind == "eval"]
    assert len(evals) >= 3  # several points on the validation curve within a quarter of an epoch
    assert out.exists() and record.out == out and record.phase == "done"
    test = record.test
    assert test["dataset"] == "synthetic-digits" and test["split"] == "test" and test["nll_nats"] > 0
    loaded = session.load(out)
    assert loaded.info.meta["test_nll_nats"] == pytest.approx(test["nll_nats"])  # recorded for the picker
    assert loaded.info.meta["dataset"] == "synthetic-digits"


def test_continuing_a_checkpoint_starts_from_its_weights(tmp_path):
    session = Session(device="cpu")
    first = tmp_path / "first.safetensors"
    plan = TrainPlan("pixelcnn", "synthetic-digits", TINY, first, epochs=0.25, batch_size=64, lr=1e-2,
                     measure_test=False)
    evals = [e.valid_nll for e in run_plan(session, plan, RunRecord()) if e.kind == "eval"]
    fresh_first_eval, before = evals[0], min(evals)  # on the same 1,000 validation images
    loaded = session.load(first)

    more = TrainPlan("pixelcnn", "synthetic-digits", {}, tmp_path / "more.safetensors", epochs=0.02, batch_size=64,
                     start_from=loaded.name, start_model=copy.deepcopy(loaded.model), measure_test=False)
    record = RunRecord()
    events = list(run_plan(session, more, record))
    first_eval = next(e for e in events if e.kind == "eval")
    assert before < fresh_first_eval - 20  # the first run learned something
    assert first_eval.valid_nll < before + 10  # ... and the continued run started from it, not afresh
    assert session.load(tmp_path / "more.safetensors").info.meta["trained_from"] == loaded.name
    assert session.load(tmp_path / "more.safetensors").model.config.hparams["channels"] == TINY["channels"]


def test_a_stop_ends_the_run_and_skips_the_test_measurement(tmp_path):
    session = Session(device="cpu")
    plan = TrainPlan("pixelcnn", "synthetic-digits", TINY, tmp_path / "s.safetensors", epochs=5, batch_size=64)
    record = RunRecord()
    calls = {"n": 0}

    def stop():
        calls["n"] += 1
        return calls["n"] > 10

    events = list(run_plan(session, plan, record, stop))
    assert events[-1].kind == "stopped" and record.test is None


def test_a_plan_that_cannot_run_says_why(tmp_path):
    session = Session(device="cpu")
    with pytest.raises(ARExplorerError, match="models binary"):
        list(run_plan(session, TrainPlan("pixelcnn", "toy-1d", {}, tmp_path / "x.safetensors"), RunRecord()))
    with pytest.raises(ModelError, match='layers="many" is not allowed; it takes a whole number >= 0'):
        bad = TrainPlan("pixelcnn", "synthetic-digits", {"layers": "many"}, tmp_path / "y.safetensors")
        list(run_plan(session, bad, RunRecord()))
    with pytest.raises(ModelError, match="hyperparameters failed"):
        bad = TrainPlan("pixelcnn", "synthetic-digits", {"likelihood": "no-such-head"}, tmp_path / "z.safetensors")
        list(run_plan(session, bad, RunRecord()))
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".safetensors", ".json")]


def _models():
    from app.core.registry import get_registry

    return sorted(get_registry().models)


@pytest.mark.parametrize("name", _models())
def test_every_model_trains_from_the_app_at_its_tiny_size_on_offline_data(name, tmp_path):
    """What the Train view's "tiny" size offers builds and trains for every model, on a dataset that needs no
    download, and the checkpoint it writes loads."""
    from app.ui.train_jobs import compatible_datasets

    session = Session(device="cpu")
    spec = session.registry.models[name]
    offline = [d for d in compatible_datasets(session.registry, spec) if session.registry.datasets[d].offline]
    assert offline, f"{name} has no dataset that needs no download"
    hparams = {**spec.default_hparams, **spec.tiny_hparams}
    ordering = "even-then-odd" if spec.orderings == "build" else None
    out = tmp_path / f"{name}.safetensors"
    plan = TrainPlan(name, offline[0], hparams, out, ordering, epochs=0.002, batch_size=16, measure_test=False,
                     valid_images=16)
    events = list(run_plan(session, plan, RunRecord()))
    assert events[-1].kind == "done" and out.exists()
    loaded = session.load(out)
    assert loaded.model.spec.name == name and loaded.info.meta["dataset"] == offline[0]
    if ordering:
        assert loaded.model.ordering.name == ordering
