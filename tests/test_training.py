import json
import math

import numpy as np
import pytest
import torch

from app.core.checkpoints import read_info
from app.core.datasets import DataSplit
from app.core.registry import Registry
from app.core.synthetic import synthetic_digits
from app.core.training import TrainConfig, train, validation_nll


def data(n, seed):
    images, labels = synthetic_digits(n, seed, size=8)
    return DataSplit((images > 127).astype(np.uint8), labels)


def tiny_model():
    spec = Registry().model("pixelcnn")
    torch.manual_seed(0)
    return spec.create(spec.make_config((1, 8, 8), 2, tiny=True))


def test_training_lowers_validation_nll_and_writes_the_best_checkpoint(tmp_path):
    model = tiny_model()
    train_split, valid_split = data(256, 1), data(64, 2)
    before = validation_nll(model, valid_split)
    cfg = TrainConfig(epochs=6, batch_size=32, lr=3e-3, log_every=4, warmup_steps=5)
    events = list(train(model, train_split, valid_split, cfg, tmp_path / "ck", {"dataset": "tiny"}))
    kinds = [e.kind for e in events]
    assert kinds[-1] == "done" and "step" in kinds and kinds.count("eval") == 6
    best = min(e.valid_nll for e in events if e.kind == "eval")
    assert best < before - 5
    info = read_info(tmp_path / "ck.safetensors")
    assert abs(info.meta["valid_nll_nats"] - best) < 1e-6
    assert info.meta["steps"] == 48 and info.meta["dataset"] == "tiny" and len(info.meta["history"]) >= 1
    assert (tmp_path / "ck.optim.safetensors").exists()


def test_resume_continues_the_step_count(tmp_path):
    model = tiny_model()
    train_split, valid_split = data(128, 1), data(32, 2)
    cfg = TrainConfig(epochs=1, batch_size=32, log_every=2, warmup_steps=1)
    list(train(model, train_split, valid_split, cfg, tmp_path / "r"))
    assert read_info(tmp_path / "r.safetensors").meta["steps"] == 4
    events = list(train(model, train_split, valid_split, cfg, tmp_path / "r", resume=True))
    assert events[-1].step == 8
    meta = read_info(tmp_path / "r.safetensors").meta
    assert meta["steps"] in (4, 8) and meta["epochs"] >= 1.0


def test_a_resumed_run_does_not_start_again_with_the_images_of_the_first_run(tmp_path):
    model = tiny_model()
    train_split, valid_split = data(128, 1), data(32, 2)
    cfg = TrainConfig(epochs=0.25, batch_size=32, log_every=1, warmup_steps=1)  # one step: less than an epoch
    first_batches = []
    hook = model.register_forward_pre_hook(lambda module, args: first_batches.append(args[0].clone()))
    list(train(model, train_split, valid_split, cfg, tmp_path / "r"))
    first_run = first_batches[0]
    first_batches.clear()
    list(train(model, train_split, valid_split, cfg, tmp_path / "r", resume=True))
    hook.remove()
    assert first_run.shape == first_batches[0].shape == (32, 1, 8, 8)
    assert not torch.equal(first_run, first_batches[0])


def test_validation_can_also_follow_the_clock(tmp_path):
    """eval_seconds adds validations by time (a slow device still draws a curve), spaced by at least three times
    what the last one took; without it, validations come by steps only."""
    train_split, valid_split = data(256, 1), data(32, 2)
    by_steps = TrainConfig(epochs=1, batch_size=32, log_every=100, eval_every=100, warmup_steps=1)
    events = list(train(tiny_model(), train_split, valid_split, by_steps, tmp_path / "a"))
    assert [e.step for e in events if e.kind == "eval"] == [8]  # only the last step
    by_clock = TrainConfig(epochs=1, batch_size=32, log_every=100, eval_every=100, warmup_steps=1, eval_seconds=1e-9)
    events = list(train(tiny_model(), train_split, valid_split, by_clock, tmp_path / "b"))
    steps = [e.step for e in events if e.kind == "eval"]
    assert steps[0] == 1 and steps[-1] == 8 and len(steps) >= 2  # by the clock first, then at the end


def test_a_validation_stops_between_batches_when_asked():
    model, valid = tiny_model(), data(64, 2)
    seen = []
    full = validation_nll(model, valid, batch_size=16)
    assert math.isfinite(full)
    stopped = validation_nll(model, valid, batch_size=16, should_stop=lambda: seen.append(1) or len(seen) > 2)
    assert math.isnan(stopped) and len(seen) == 3 and model.training


def test_stop_request_ends_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model()
    train_split, valid_split = data(128, 1), data(32, 2)
    cfg = TrainConfig(epochs=100, batch_size=32, log_every=1, warmup_steps=1)
    asked = {"stop": False}
    events = []
    for event in train(model, train_split, valid_split, cfg, tmp_path / "s", should_stop=lambda: asked["stop"]):
        events.append(event)
        if event.kind == "step" and event.step == 6:
            asked["stop"] = True  # as the Stop button does, between two steps
    assert events[-1].kind == "stopped" and events[-1].step == 6
    assert (tmp_path / "s.safetensors").exists()  # written at the first epoch's validation
    assert json.loads((tmp_path / "s.json").read_text())["steps"] == 4


def test_time_budget_ends_with_a_validated_checkpoint(tmp_path):
    model = tiny_model()
    cfg = TrainConfig(epochs=1000, batch_size=32, log_every=50, max_minutes=0.02)
    events = list(train(model, data(128, 1), data(32, 2), cfg, tmp_path / "t"))
    assert events[-1].kind == "stopped" and events[-1].message == "time budget reached"
    assert (tmp_path / "t.safetensors").exists()


def test_a_step_event_reports_the_mean_training_loss_of_its_logging_window(tmp_path):
    """It reported the loss of the window's last batch alone, called an average."""
    model = tiny_model()
    losses = []
    plain_loss = model.loss

    def recording_loss(*args, **kwargs):
        value = plain_loss(*args, **kwargs)
        losses.append(float(value.detach()))
        return value

    model.loss = recording_loss
    cfg = TrainConfig(epochs=2, batch_size=16, lr=3e-3, log_every=4, warmup_steps=1)
    steps = [e for e in train(model, data(64, 1), None, cfg, None) if e.kind == "step"]
    assert len(steps) == 2 and len(losses) == 8
    for k, event in enumerate(steps):
        window = losses[4 * k : 4 * k + 4]
        assert event.train_nll == pytest.approx(sum(window) / 4, rel=1e-5)
        assert event.train_nll != pytest.approx(window[-1], rel=1e-5)  # not the last batch alone
