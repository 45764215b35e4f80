"""Fisher scores: per-example gradients, the sparse projection, activations, decoders, the stored space,
interpolation, and the ``fisher-decoder`` / ``fisher`` commands end to end."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from PIL import Image

from app.cli.main import main
from app.core.checkpoints import save_checkpoint
from app.core.fisher import (
    DecoderTraining,
    Embedder,
    FisherError,
    FisherSettings,
    FisherSpace,
    SparseProjection,
    _gradients_loop,
    _gradients_vmap,
    activation_features,
    build_space_steps,
    final_event,
    interpolate,
    interpolation_figure,
    load_space_for,
    per_example_gradients,
    space_path,
    train_decoder_steps,
    weights_sha256,
)
from plugins.attention import ANY_ORDER_ATTENTION
from plugins.gated_pixelcnn import SPEC as GATED
from plugins.made import SPEC as MADE


def _model(spec, shape=(1, 6, 6), seed=0):
    torch.manual_seed(seed)
    model = spec.create(spec.make_config(shape, 2, tiny=True))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model.eval()


def _images(n, shape=(1, 6, 6), seed=0):
    return np.random.default_rng(seed).integers(0, 2, (n, *shape)).astype(np.uint8)


def test_projection_is_reproducible_and_keeps_distances():
    vectors = torch.randn(12, 5000, generator=torch.Generator().manual_seed(1))
    a = SparseProjection(5000, 256, seed=3)
    assert torch.equal(a(vectors), SparseProjection(5000, 256, seed=3)(vectors))
    assert not torch.allclose(a(vectors), SparseProjection(5000, 256, seed=4)(vectors))
    before = torch.cdist(vectors, vectors)
    after = torch.cdist(a(vectors), a(vectors))
    upper = torch.triu_indices(12, 12, 1)
    ratio = after[upper[0], upper[1]] / before[upper[0], upper[1]]
    assert ratio.mean().item() == pytest.approx(1.0, abs=0.1)
    assert ratio.std().item() < 0.15


@pytest.mark.parametrize("spec", [GATED, MADE, ANY_ORDER_ATTENTION])
def test_per_example_gradients_are_the_gradients_of_each_image_log_likelihood(spec):
    model = _model(spec)
    x = torch.as_tensor(_images(3)).float()
    rows = per_example_gradients(model, x, "loop")
    params = [p for p in model.parameters() if p.requires_grad]
    for i in range(3):
        total = model.log_prob(x[i : i + 1]).sum()
        grads = torch.autograd.grad(total, params, allow_unused=True)
        expected = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params, strict=True)])
        assert torch.allclose(rows[i], expected, atol=1e-5)
    assert not torch.allclose(rows[0], rows[1])


@pytest.mark.parametrize("spec", [GATED, MADE])
def test_vmap_and_loop_agree(spec):
    model = _model(spec)
    x = torch.as_tensor(_images(2, seed=2)).float()
    assert torch.allclose(_gradients_vmap(model, x), _gradients_loop(model, x), atol=1e-4)


def test_vmap_falls_back_to_the_loop_where_an_op_cannot_be_batched():
    model = _model(ANY_ORDER_ATTENTION)  # its one-hot embedding has no batching rule
    x = torch.as_tensor(_images(2, seed=2)).float()
    with pytest.raises(RuntimeError):
        _gradients_vmap(model, x)
    assert torch.allclose(per_example_gradients(model, x, "vmap"), _gradients_loop(model, x), atol=1e-6)


def test_fisher_scores_average_to_zero_under_the_model():
    # E_{x ~ p}[grad log p(x)] = grad sum_x p(x) = 0: a property of the score of a normalised model.
    model = _model(GATED, shape=(1, 2, 2))
    images = torch.tensor(list(itertools.product((0, 1), repeat=4)), dtype=torch.float32).reshape(16, 1, 2, 2)
    with torch.no_grad():
        p = model.log_prob(images).flatten(1).sum(1).exp()
    scores = per_example_gradients(model, images)
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)
    assert (p[:, None] * scores).sum(0).abs().max().item() < 1e-4
    assert scores.abs().max().item() > 1e-2


def test_activation_features_pool_every_layer_and_leave_no_hooks():
    model = _model(GATED)
    features = activation_features(model, _images(3))
    assert features.shape == (3, 3 * 3 * 8)  # three layers, each (v, h, skip) with 8 channels
    assert not torch.allclose(features[0], features[1])
    assert all(not m._forward_hooks for m in model.modules())


def test_activation_features_ignore_another_thread_running_the_same_model(monkeypatch):
    import threading

    model = _model(GATED)
    images = _images(3)
    alone = activation_features(model, images)
    forward = model.log_prob

    def with_a_sampler_meanwhile(x, *args, **kwargs):
        # what a view sampling on its own thread does while the Fisher space is made: the hooks see it too
        other = threading.Thread(target=lambda: forward(torch.zeros(5, 1, 6, 6)))
        other.start()
        other.join()
        return forward(x, *args, **kwargs)

    monkeypatch.setattr(model, "log_prob", with_a_sampler_meanwhile)
    torch.testing.assert_close(activation_features(model, images), alone)


def test_conditional_models_are_refused():
    from app.core.model import ConditionSpec, ModelConfig

    config = ModelConfig((1, 6, 6), 2, dict(GATED.tiny_hparams), condition=ConditionSpec("class", num_classes=10))
    model = GATED.create(config)
    with pytest.raises(FisherError, match="conditional"):
        per_example_gradients(model, _images(1))


def test_decoder_learns_and_stops_when_asked():
    images = _images(600, seed=3)
    embeddings = images.reshape(600, -1).astype(np.float32) * 2 - 1  # the image itself: learnable exactly
    cfg = DecoderTraining(hidden=64, epochs=10, lr=3e-3, batch_size=32)
    events = list(train_decoder_steps(embeddings, images, 2, cfg))
    assert [e.done for e in events[:-1]] == list(range(1, 11))
    decoder, history = events[-1].result
    assert history[-1]["valid_nats"] < 0.5 * history[0]["valid_nats"]
    calls = iter(range(100))
    stopped = list(train_decoder_steps(embeddings, images, 2, cfg, should_stop=lambda: next(calls) >= 3))
    assert len(stopped) == 4 and stopped[-1].result[0] is not None
    assert len(stopped[-1].result[1]) == 3


@pytest.fixture
def small_space():
    model = _model(GATED)
    train, reference = _images(60, seed=4), _images(10, seed=5)
    settings = FisherSettings(dim=16, batch_size=16)
    events = list(build_space_steps(model, train, reference, settings, DecoderTraining(hidden=16, epochs=3),
                                    {"checkpoint": "tiny"}))
    return model, events, reference


def test_building_a_space_reports_each_stage_in_order(small_space):
    _, events, reference = small_space
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages == ["fisher", "fisher-decoder", "activation", "activation-decoder", "reference", "done"]
    space = events[-1].result
    assert space.reference_fisher.shape == (10, 16)
    assert np.array_equal(space.reference_images, reference)
    assert space.meta["fisher_seconds_per_image"] > 0


def test_building_stops_early_and_yields_no_space():
    model = _model(GATED)
    calls = iter(range(1000))
    events = list(build_space_steps(model, _images(64), _images(4), FisherSettings(dim=8, batch_size=8),
                                    DecoderTraining(epochs=2), should_stop=lambda: next(calls) >= 2))
    assert events and all(e.stage != "done" for e in events)


def test_space_round_trip_and_weights_check(small_space, tmp_path):
    model, events, _ = small_space
    space = events[-1].result
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(b"weights v1")
    space.meta["checkpoint_sha256"] = weights_sha256(weights)
    space.save(space_path(weights))
    loaded = load_space_for(weights)
    assert np.array_equal(loaded.reference_images, space.reference_images)
    assert loaded.settings == space.settings
    z = np.random.default_rng(0).normal(size=(3, 16)).astype(np.float32)
    assert np.allclose(loaded.fisher.decoder.decode(z), space.fisher.decoder.decode(z), atol=2e-2)
    weights.write_bytes(b"weights v2")
    with pytest.raises(FisherError, match="other weights"):
        load_space_for(weights)
    with pytest.raises(FisherError, match="fisher-decoder"):
        load_space_for(tmp_path / "other.safetensors")
    (tmp_path / "junk.fisher-decoder.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(FisherError, match="not a readable"):
        FisherSpace.load(tmp_path / "junk.fisher-decoder.safetensors")


def test_interpolation_ends_and_nearest_images(small_space):
    model, events, reference = small_space
    space = events[-1].result
    a, b = reference[2], reference[7]
    result = interpolate(model, space, a, b, steps=5, neighbours=2)
    assert np.allclose(result.alphas, [0, 0.25, 0.5, 0.75, 1])
    assert np.array_equal(result.pixel[0], a.astype(np.float32)) and np.array_equal(result.pixel[-1], b.astype(np.float32))
    assert np.allclose(result.pixel[2], (a + b) / 2.0)
    start = space.fisher.standardise(Embedder(model, "fisher", space.settings).embed(a[None]))
    assert np.allclose(result.fisher[0], space.fisher.decoder.decode(start)[0], atol=1e-5)
    assert result.nearest[0, 0] == 2 and result.nearest[-1, 0] == 7
    assert result.nearest_distances[0, 0] < 0.05
    assert result.fisher.shape == result.activation.shape == (5, 1, 6, 6)
    assert 0 <= result.fisher.min() and result.fisher.max() <= 1
    figure = interpolation_figure(result, 2, scale=2)
    assert figure.height == 4 * (12 + 4) + 4
    with pytest.raises(FisherError, match="2 steps"):
        interpolate(model, space, a, b, steps=1)


def test_embedding_rate_is_recorded_for_each_chunk():
    model = _model(MADE)
    embedder = Embedder(model, "fisher", FisherSettings(dim=8, batch_size=4))
    events = list(embedder.steps(_images(10)))
    assert [e.done for e in events] == [4, 8, 10, 10]
    assert "ms per image" in events[0].message
    assert final_event(iter(events)).result.shape == (10, 8)


# the commands ---------------------------------------------------------------------------------------------------------


def test_fisher_commands_make_a_strip_offline(tiny_binarized, tmp_path, monkeypatch, capsys):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    torch.manual_seed(0)
    model = GATED.create(GATED.make_config((1, 28, 28), 2, tiny=True))
    save_checkpoint(model, folder / "tiny-gated", {"dataset": "binarized-mnist"})
    data = ["--data-dir", str(tiny_binarized), "--device", "cpu"]
    out = tmp_path / "strip.png"
    missing = main(["fisher", "test:0", "test:1", "--checkpoint", "tiny-gated", "--out", str(out), *data])
    err = capsys.readouterr().err
    assert missing == 2 and "fisher-decoder --checkpoint tiny-gated" in err and not out.exists()
    code = main(["fisher-decoder", "--checkpoint", "tiny-gated", "--images", "48", "--reference", "12", "--epochs",
                 "2", "--dim", "16", "--hidden", "16", *data])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (folder / "tiny-gated.fisher-decoder.safetensors").is_file()
    meta = json.loads((folder / "tiny-gated.fisher-decoder.json").read_text())
    assert meta["num_train_images"] == 48 and meta["num_reference"] == 12 and meta["dataset"] == "binarized-mnist"
    drawn = tmp_path / "drawn.png"
    Image.fromarray((np.eye(28) * 255).astype(np.uint8)).save(drawn)
    code = main(["fisher", str(drawn), "test:3", "--checkpoint", "tiny-gated", "--steps", "4", "--out", str(out),
                 "--json", *data])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["alphas"] == [0.0, 0.3333, 0.6667, 1.0]
    assert summary["nearest_reference"][-1] == [3]
    assert Image.open(out).size[1] == 4 * (28 * 3 + 4) + 4
