"""Masked self-attention: the KV cache against naive re-evaluation, orderings at build and at run time, and an
ordering file honoured exactly by ``sample`` and ``score`` through the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli.main import main
from app.core.checkpoints import save_checkpoint
from app.core.errors import OrderingError
from app.core.orderings import Ordering, columns, random, raster, spiral
from app.core.sampling import prepare_run, sample
from app.testing import check_model
from plugins.attention import ANY_ORDER_ATTENTION, ATTENTION

SHAPE = (1, 6, 6)


def _model(spec, ordering=None, shape=SHAPE, k=2, seed=0):
    torch.manual_seed(seed)
    model = spec.create(spec.make_config(shape, k, ordering=ordering, tiny=True))
    with torch.no_grad():  # away from the initialisation, so that every conditional depends on its inputs
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def _step_probs(model, mode, ordering, **kwargs):
    run = prepare_run(model, 3, seed=5, ordering=ordering, mode=mode, **kwargs)
    probs = []
    with torch.no_grad():
        for i in range(run.total):
            probs.append(run.step(i)[0])
    return torch.cat(probs, dim=1), run.canvas.clone(), run.sampler.network_calls


@pytest.mark.parametrize("ordering", [raster(6, 6), spiral(6, 6), random(6, 6, 4)])
def test_kv_cache_gives_the_naive_conditionals_and_images(ordering):
    model = _model(ANY_ORDER_ATTENTION)
    naive, naive_images, _ = _step_probs(model, "naive", ordering)
    cached, cached_images, _ = _step_probs(model, "cached", ordering)
    assert torch.allclose(naive, cached, atol=1e-5)
    assert torch.equal(naive_images, cached_images)


def test_kv_cache_runs_the_known_pixels_of_a_completion_in_one_chunk():
    model = _model(ANY_ORDER_ATTENTION)
    known = np.zeros((6, 6), dtype=bool)
    known[:, :2] = True
    init = torch.randint(0, 2, (1, *SHAPE)).float()
    naive, naive_images, _ = _step_probs(model, "naive", spiral(6, 6), init=init, known=known)
    cached, cached_images, calls = _step_probs(model, "cached", spiral(6, 6), init=init, known=known)
    assert torch.equal(naive_images, cached_images)
    assert torch.allclose(naive, cached, atol=1e-5)
    assert calls == int((~known).sum())


def test_colour_images_are_autoregressive_in_every_channel():
    report = check_model(ANY_ORDER_ATTENTION, checks=("autoregressive", "roundtrip"), shape=(3, 3, 3), num_values=4)
    assert report.passed, str(report)
    model = _model(ANY_ORDER_ATTENTION, shape=(3, 3, 3), k=4)
    a = sample(model, 2, seed=1, ordering=random(3, 3, 1), mode="naive")
    b = sample(model, 2, seed=1, ordering=random(3, 3, 1), mode="cached")
    assert torch.equal(a, b)


def test_build_model_keeps_its_ordering_and_refuses_another():
    model = _model(ATTENTION, ordering=columns(6, 6))
    assert model.training_ordering(torch.Generator().manual_seed(0)) is None
    x = torch.randint(0, 2, (2, *SHAPE)).float()
    with pytest.raises(OrderingError, match="columns"):
        model.log_prob(x, ordering=raster(6, 6))
    assert torch.equal(model.log_prob(x), model.log_prob(x, ordering=columns(6, 6)))


def test_any_order_model_trains_on_a_new_random_ordering_each_batch():
    model = _model(ANY_ORDER_ATTENTION)
    generator = torch.Generator().manual_seed(0)
    drawn = [model.training_ordering(generator) for _ in range(5)]
    assert len({o.flat.tobytes() for o in drawn}) == 5
    x = torch.randint(0, 2, (4, *SHAPE)).float()
    loss = model.loss(x, ordering=drawn[0])
    loss.backward()
    assert torch.isfinite(loss) and model.target_position.grad.abs().sum() > 0


def test_the_ordering_changes_the_conditionals_of_the_any_order_model():
    model = _model(ANY_ORDER_ATTENTION)
    x = torch.randint(0, 2, (2, *SHAPE)).float()
    with torch.no_grad():
        assert not torch.allclose(model.log_prob(x, ordering=raster(6, 6)), model.log_prob(x, ordering=spiral(6, 6)))


# the command line honours an ordering file exactly -----------------------------------------------------------------


@pytest.fixture(params=["any-order-attention", "order-agnostic-nade"])
def any_order_checkpoint(request, tmp_path, monkeypatch):
    """A tiny checkpoint of each built-in model that takes any ordering at run time."""
    from app.core.registry import Registry

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    spec = ANY_ORDER_ATTENTION if request.param == "any-order-attention" else Registry().model(request.param)
    save_checkpoint(_model(spec), folder / "tiny-any-order", {"dataset": "none"})
    return "tiny-any-order"


def _score_per_pixel(capsys, checkpoint, image, ordering_arg, path):
    Image.fromarray((image * 255).astype(np.uint8)).save(path)
    code = main(["score", str(path), "--checkpoint", checkpoint, "--ordering", ordering_arg, "--per-pixel",
                 "--json", "--invert", "no", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return np.array(json.loads(captured.out)["per_pixel_nll"])


def test_score_honours_an_ordering_file_exactly(any_order_checkpoint, tmp_path, capsys):
    ordering = random(6, 6, 11).with_name("my-ordering")
    ordering_file = tmp_path / "my-ordering.json"
    ordering.save(ordering_file)
    rng = np.random.default_rng(0)
    for trial in range(3):
        image = rng.integers(0, 2, (6, 6))
        changed_rank = int(rng.integers(5, 30))
        r, c = ordering.order[changed_rank]
        flipped = image.copy()
        flipped[r, c] ^= 1
        before = _score_per_pixel(capsys, any_order_checkpoint, image, str(ordering_file), tmp_path / "a.png")
        after = _score_per_pixel(capsys, any_order_checkpoint, flipped, str(ordering_file), tmp_path / "b.png")
        earlier = ordering.rank < changed_rank
        later = ordering.rank > changed_rank
        assert np.array_equal(before[earlier], after[earlier]), f"trial {trial}: an earlier pixel changed"
        assert not np.allclose(before[later], after[later]), f"trial {trial}: no later pixel noticed the change"
        # Under raster order some of those earlier pixels come after the flipped one, and they do notice it.
        raster_before = _score_per_pixel(capsys, any_order_checkpoint, image, "raster", tmp_path / "a.png")
        raster_after = _score_per_pixel(capsys, any_order_checkpoint, flipped, "raster", tmp_path / "b.png")
        raster_later = raster(6, 6).rank > raster(6, 6).rank[r, c]
        assert not np.allclose(raster_before[raster_later], raster_after[raster_later])


def test_sample_honours_an_ordering_file_exactly(any_order_checkpoint, tmp_path, capsys, registry):
    from app.core.checkpoints import load_checkpoint

    ordering = Ordering.from_dict(spiral(6, 6).to_dict())
    ordering_file = tmp_path / "spiral-copy.json"
    ordering.save(ordering_file)
    npy = tmp_path / "samples.npy"
    code = main(["sample", "--checkpoint", any_order_checkpoint, "--ordering", str(ordering_file), "--n", "6",
                 "--seed", "2", "--out", str(tmp_path / "s.png"), "--npy", str(npy), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert "ordering spiral-copy" in capsys.readouterr().out
    model, _ = load_checkpoint(any_order_checkpoint, registry)
    drawn = np.load(npy)
    assert np.array_equal(drawn, sample(model, 6, seed=2, ordering=ordering, mode="naive").numpy())
    assert not np.array_equal(drawn, sample(model, 6, seed=2, ordering=raster(6, 6)).numpy())
