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
    Coordinates,
    DecoderTraining,
    Embedder,
    FisherError,
    FisherSettings,
    FisherSpace,
    RowFigure,
    ScoreScaling,
    SparseProjection,
    _gradients_loop,
    _gradients_vmap,
    activation_features,
    build_space_steps,
    different_class_pairs,
    final_event,
    interior_nll,
    interpolate,
    interpolation_figure,
    load_space_for,
    mean_square_steps,
    num_parameters,
    per_example_gradients,
    quantise,
    random_sample,
    read_labels,
    space_path,
    train_decoder_steps,
    trainable_parameters,
    weights_sha256,
)
from app.core.scoring import score
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
    settings = FisherSettings(dim=16, batch_size=16, components=8, stats_images=16)
    events = list(build_space_steps(model, train, reference, settings, DecoderTraining(hidden=16, epochs=3),
                                    {"checkpoint": "tiny"}))
    return model, events, reference


def test_building_a_space_reports_each_stage_in_order(small_space):
    _, events, reference = small_space
    stages = list(dict.fromkeys(e.stage for e in events))
    assert stages == ["statistics", "fisher", "activation", "reference", "fisher-decoder", "activation-decoder",
                      "done"]
    space = events[-1].result
    assert space.reference_fisher.shape == (10, 8)  # the reference images in the decoder's 8 components
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
    z = np.random.default_rng(0).normal(size=(3, 8)).astype(np.float32)
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
    start = space.fisher.standardise(Embedder(model, "fisher", space.settings, space.scaling).embed(a[None]))
    assert np.allclose(result.fisher[0], space.fisher.decoder.decode(start)[0], atol=1e-5)
    assert result.nearest[0, 0] == 2 and result.nearest[-1, 0] == 7
    assert result.nearest_distances[0, 0] < 0.05
    assert result.fisher.shape == result.activation.shape == (5, 1, 6, 6)
    assert 0 <= result.fisher.min() and result.fisher.max() <= 1
    assert set(result.interior_nll) == {"pixel", "activation", "fisher"}
    assert all(len(v) == 3 for v in result.interior_nll.values())
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


@pytest.fixture
def tiny_checkpoint(tiny_binarized, tmp_path, monkeypatch):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    torch.manual_seed(0)
    model = GATED.create(GATED.make_config((1, 28, 28), 2, tiny=True))
    save_checkpoint(model, folder / "tiny-gated", {"dataset": "binarized-mnist"})
    return folder, ["--data-dir", str(tiny_binarized), "--device", "cpu"]


MAKE = ["fisher-decoder", "--checkpoint", "tiny-gated", "--images", "48", "--reference", "64", "--epochs", "2",
        "--dim", "64", "--hidden", "16", "--components", "8", "--stats-images", "8"]


def test_fisher_commands_make_a_strip_offline(tiny_checkpoint, tmp_path, capsys):
    folder, data = tiny_checkpoint
    out = tmp_path / "strip.png"
    missing = main(["fisher", "test:0", "test:1", "--checkpoint", "tiny-gated", "--out", str(out), *data])
    err = capsys.readouterr().err
    assert missing == 2 and "fisher-decoder --checkpoint tiny-gated" in err and not out.exists()
    code = main([*MAKE, "--normalisation", "channel", "--layers", "layers.2.,head", *data])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert (folder / "tiny-gated.fisher-decoder.safetensors").is_file()
    meta = json.loads((folder / "tiny-gated.fisher-decoder.json").read_text())
    assert meta["num_train_images"] == 48 and meta["num_reference"] == 64 and meta["dataset"] == "binarized-mnist"
    assert meta["settings"]["normalisation"] == "channel" and meta["settings"]["layers"] == "layers.2.,head"
    assert meta["settings"]["dim"] == 64 and meta["settings"]["components"] == 8
    assert meta["decoder_training"]["hidden"] == 16 and "reference_labels_source" in meta
    drawn = tmp_path / "drawn.png"
    Image.fromarray((np.eye(28) * 255).astype(np.uint8)).save(drawn)
    code = main(["fisher", str(drawn), "test:3", "--checkpoint", "tiny-gated", "--steps", "4", "--out", str(out),
                 "--json", *data])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["alphas"] == [0.0, 0.3333, 0.6667, 1.0]
    assert summary["nearest_test_index"][-1] == [3]  # every test image is a reference here
    assert set(summary["interior_nll"]) == {"pixel", "activation", "fisher"}
    assert len(summary["interior_nll"]["fisher"]["per_point_nats"]) == 2
    assert "nats per image" in summary["interior_nll_unit"]
    assert Image.open(out).size[1] == 4 * (28 * 3 + 4) + 4


def test_fisher_npz_holds_the_three_rows_as_arrays(tiny_checkpoint, tmp_path, capsys):
    _, data = tiny_checkpoint
    assert main([*MAKE, *data]) == 0
    npz = tmp_path / "strip.npz"
    code = main(["fisher", "test:0", "test:5", "--checkpoint", "tiny-gated", "--steps", "6", "--out",
                 str(tmp_path / "s.png"), "--npz", str(npz), *data])
    printed = capsys.readouterr().out
    assert code == 0 and "nats per image" in printed and "fisher" in printed
    with np.load(npz, allow_pickle=False) as arrays:
        assert {"pixels", "activations", "fisher"} <= set(arrays.files)
        for name in ("pixels", "activations", "fisher"):
            assert arrays[name].shape == (6, 28, 28) and arrays[name].dtype == np.float32
            assert 0.0 <= arrays[name].min() and arrays[name].max() <= 1.0
        test = np.load(data[1] + "/binarized_mnist.npz")["test"]
        np.testing.assert_array_equal(arrays["pixels"][0], test[0])
        np.testing.assert_array_equal(arrays["pixels"][-1], test[5])


def test_a_layers_setting_that_matches_nothing_is_refused_before_any_work(tiny_checkpoint, capsys):
    folder, data = tiny_checkpoint
    code = main([*MAKE, "--layers", "decoder.", *data])
    err = capsys.readouterr().err
    assert code == 2 and "no parameter of Gated PixelCNN starts with 'decoder.'" in err
    assert len(err.strip().splitlines()) == 1
    assert not (folder / "tiny-gated.fisher-decoder.safetensors").exists()


def test_the_benchmark_measures_every_row_over_pairs_of_different_digits(tiny_checkpoint, tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    _, data = tiny_checkpoint
    assert main([*MAKE, *data]) == 0
    capsys.readouterr()
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "fisher_interpolation.py"
    spec = importlib.util.spec_from_file_location("fisher_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "report.json"
    code = bench.main(["--checkpoint", "tiny-gated", "--pairs", "3", "--steps", "5", "--data-dir", data[1],
                       "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["rows"]) == {"pixel", "activation", "fisher"}
    assert all(r["interior_points"] == 9 for r in report["rows"].values())
    assert report["rows"]["fisher"]["minus_fisher_nats"] == 0.0
    assert report["space_settings"]["dim"] == 64 and report["pairs"] == 3
    assert "nats/image" in printed and "| fisher |" in printed and "64" in printed
    assert bench.main(["--checkpoint", "tiny-gated", "--pairs", "0", "--data-dir", data[1]]) == 2


# the parts ------------------------------------------------------------------------------------------------------------


def test_projection_is_the_sparse_matrix_its_seed_draws():
    # The gather implementation must give what the sparse matrix of the same draws gives (spaces depend on it).
    n, dim, seed = 900, 40, 5
    per_row = 30
    generator = torch.Generator().manual_seed(seed)
    columns = torch.randint(n, (dim, per_row), generator=generator)
    signs = torch.randint(0, 2, (dim, per_row), generator=generator).float() * 2 - 1
    dense = torch.zeros(dim, n)
    for r in range(dim):
        for c, sgn in zip(columns[r].tolist(), signs[r].tolist(), strict=True):
            dense[r, c] += sgn * (n / (per_row * dim)) ** 0.5
    vectors = torch.randn(11, n, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(SparseProjection(n, dim, seed)(vectors), vectors @ dense.T, rtol=1e-5, atol=1e-5)
    first = SparseProjection(n, 8, seed)(vectors)
    assert first.shape == (11, 8)
    with pytest.raises(FisherError, match="takes 900"):
        SparseProjection(n, dim, seed)(torch.zeros(2, 5))


def test_scores_over_some_layers_are_those_parameters_gradients():
    model = _model(GATED)
    x = torch.as_tensor(_images(2)).float()
    full = per_example_gradients(model, x, "loop")
    names = [(name, p.numel()) for name, p in model.named_parameters()]
    offsets = dict(zip([n for n, _ in names], np.cumsum([0] + [k for _, k in names])[:-1], strict=True))
    head = per_example_gradients(model, x, "loop", layers="head")
    expected = torch.cat([full[:, offsets[n] : offsets[n] + k] for n, k in names if n.startswith("head")], dim=1)
    torch.testing.assert_close(head, expected)
    torch.testing.assert_close(per_example_gradients(model, x, "vmap", layers="head"), expected, atol=1e-4,
                               rtol=1e-4)
    assert num_parameters(model, "head") == head.shape[1] < num_parameters(model)
    with pytest.raises(FisherError, match=r"starts with 'tail'.*its modules: head1, head2, layers"):
        per_example_gradients(model, x, layers="tail")


@pytest.mark.parametrize("kind", ["tensor", "channel", "diagonal"])
def test_normalisation_gives_each_group_a_unit_mean_square(kind):
    model = _model(GATED)
    images = _images(24, seed=6)
    mean_square = final_event(mean_square_steps(model, images, batch_size=8)).result
    g = per_example_gradients(model, images).double().numpy()
    np.testing.assert_allclose(mean_square, (g**2).mean(0), rtol=1e-6, atol=1e-12)
    shapes = [tuple(p.shape) for _, p in trainable_parameters(model)]
    scaling = ScoreScaling.from_mean_square(kind, mean_square, shapes)
    scaled = g * scaling.expanded(shapes).double().numpy()
    sizes = [int(np.prod(s)) for s in shapes]
    starts = np.cumsum([0] + sizes)
    for (start, stop), shape in zip(zip(starts[:-1], starts[1:], strict=True), shapes, strict=True):
        block = (scaled[:, start:stop] ** 2).mean(0)
        if mean_square[start:stop].max() == 0:  # a parameter the model never uses
            continue
        if kind == "tensor":
            assert block.mean() == pytest.approx(1.0, rel=1e-3)
        elif kind == "channel":
            rows = block.reshape(shape[0], -1).mean(1)
            used = mean_square[start:stop].reshape(shape[0], -1).mean(1) > 1e-3 * np.median(mean_square[mean_square > 0])
            np.testing.assert_allclose(rows[used], 1.0, rtol=1e-3)
    if kind == "diagonal":
        big = mean_square > 1e-3 * np.median(mean_square[mean_square > 0])
        np.testing.assert_allclose((scaled**2).mean(0)[big], 1.0, rtol=1e-3)
    assert ScoreScaling.identity().expanded(shapes) is None
    with pytest.raises(FisherError, match="made for"):
        scaling.expanded(shapes[:-1])
    with pytest.raises(FisherError, match="normalisation must be one of"):
        ScoreScaling.from_mean_square("whiten", mean_square, shapes)


def test_normalised_scores_are_not_dominated_by_the_output_layer():
    # The reason for normalising: raw, the 9 output-layer numbers of this tiny model carry a large share of the
    # squared norm; per tensor, every tensor carries a share in proportion to its size.
    model = _model(GATED)
    images = _images(32, seed=7)
    shapes = [tuple(p.shape) for _, p in trainable_parameters(model)]
    names = [n for n, _ in trainable_parameters(model)]
    g = per_example_gradients(model, images).double().numpy()
    mean_square = (g**2).mean(0)
    scaled = g * ScoreScaling.from_mean_square("tensor", mean_square, shapes).expanded(shapes).double().numpy()
    head = np.concatenate([np.full(int(np.prod(s)), n.startswith("head2")) for n, s in zip(names, shapes, strict=True)])
    raw_share = (g[:, head] ** 2).sum() / (g**2).sum()
    scaled_share = (scaled[:, head] ** 2).sum() / (scaled**2).sum()
    assert scaled_share == pytest.approx(head.mean(), rel=0.05)
    assert raw_share > 3 * scaled_share


def test_principal_coordinates_order_the_variance_and_refuse_too_many():
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(200, 6)) @ np.diag([5, 3, 1, 0.5, 0.2, 0.1]) @ np.linalg.qr(rng.normal(size=(6, 6)))[0]
    coords = Coordinates.fit(raw * 10 + 3, components=3)
    z = coords.transform(raw * 10 + 3)
    assert z.shape == (200, 3) and coords.size == 3
    variances = z.var(0)
    assert variances[0] > variances[1] > variances[2]
    np.testing.assert_allclose(coords.basis @ coords.basis.T, np.eye(3), atol=1e-5)
    np.testing.assert_allclose(Coordinates.fit(raw).transform(raw).std(0), 1.0, atol=1e-3)
    again = Coordinates.fit(raw * 10 + 3, components=3)
    np.testing.assert_array_equal(again.basis, coords.basis)  # the signs are fixed: same data, same basis
    with pytest.raises(FisherError, match="7 principal components"):
        Coordinates.fit(raw, components=7)


def test_pairs_are_of_different_classes_seeded_and_distinct():
    labels = np.repeat(np.arange(10), 30)  # ordered by class, like the binarized MNIST test split
    pairs = different_class_pairs(labels, 200, seed=3)
    assert pairs == different_class_pairs(labels, 200, seed=3) != different_class_pairs(labels, 200, seed=4)
    assert all(labels[a] != labels[b] for a, b in pairs)
    assert len({(min(p), max(p)) for p in pairs}) == 200
    assert len({labels[a] for a, _ in pairs}) == 10
    with pytest.raises(FisherError, match="only 2 pairs"):
        different_class_pairs(np.array([0, 0, 1]), 3)
    unknown = different_class_pairs(np.full(5, -1), 10)
    assert len(unknown) == 10 and all(a != b for a, b in unknown)


def test_a_random_reference_sample_covers_every_class_where_the_first_images_do_not():
    labels = np.repeat(np.arange(10), 100)
    assert len(set(labels[:50])) == 1  # what "the first 50 test images" gave: all zeros
    sample = random_sample(len(labels), 50, seed=0)
    assert len(set(labels[sample])) == 10
    np.testing.assert_array_equal(sample, random_sample(len(labels), 50, seed=0))
    assert len(random_sample(20, 50, seed=0)) == 20


def test_labels_come_from_the_data_else_the_digit_classifier(tiny_binarized):
    from app.core.synthetic import synthetic_digits

    given = read_labels(np.zeros((3, 1, 28, 28), np.uint8), np.array([4, 5, 6]), 2)
    assert given.values.tolist() == [4, 5, 6] and given.source == "the dataset's labels"
    grey, truth = synthetic_digits(40, 11)
    read = read_labels((grey > 127).astype(np.uint8), None, 2)
    assert "classifier" in read.source and read.known
    assert (read.values == truth).mean() > 0.7
    small = read_labels(_images(4), None, 2)
    assert not small.known and small.values.tolist() == [-1] * 4


def test_interiors_are_quantised_then_scored_under_the_model():
    model = _model(GATED)
    strip = np.random.default_rng(1).random((5, 1, 6, 6)).astype(np.float32)
    strip[2, 0, 0, 0] = 0.5  # exactly 0.5 is not ink
    nats = interior_nll(model, strip)
    expected = score(model, (strip[1:-1] > 0.5).astype(np.uint8)).nll_nats
    np.testing.assert_allclose(nats, expected)
    assert quantise(strip, 2)[2, 0, 0, 0] == 0
    assert quantise(np.array([0.0, 0.49, 0.51, 1.0]), 256).tolist() == [0, 125, 130, 255]
    figure = RowFigure.of(np.array([10.0, 12.0, 14.0]), 36)
    assert figure.mean_nats == 12.0 and figure.stderr_nats == pytest.approx(2 / 3**0.5)
    assert figure.bits_per_dim == pytest.approx(12.0 / (36 * np.log(2)))


def test_a_space_keeps_its_normalisation_components_and_reference_classes(small_space, tmp_path):
    model, events, reference = small_space
    space = events[-1].result
    space.reference_labels = np.arange(10) % 3
    space.reference_indices = np.arange(100, 110)
    path = space.save(tmp_path / "s.fisher-decoder.safetensors")
    loaded = FisherSpace.load(path)
    assert loaded.scaling.kind == "tensor"
    np.testing.assert_allclose(loaded.scaling.group_scales, space.scaling.group_scales)
    np.testing.assert_allclose(loaded.fisher.coordinates.basis, space.fisher.coordinates.basis, atol=1e-3)
    assert loaded.reference_labels.tolist() == [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]
    assert loaded.reference_indices.tolist() == list(range(100, 110))
    a, b = reference[0], reference[1]
    before, after = interpolate(model, space, a, b, 4), interpolate(model, loaded, a, b, 4)
    np.testing.assert_allclose(after.fisher, before.fisher, atol=2e-2)
    assert after.nearest_labels[0, 0] == 0 and after.nearest_labels[-1, 0] == 1
    record = json.loads(path.with_suffix(".json").read_text())
    assert record["settings"]["normalisation"] == "tensor" and record["format_version"] == 2


def test_a_space_written_before_the_settings_existed_still_loads(tmp_path):
    from safetensors.torch import load_file, save_file

    model, train, reference = _model(GATED), _images(40, seed=4), _images(6, seed=5)
    legacy = FisherSettings(dim=16, batch_size=16, normalisation="none", components=0)
    space = final_event(build_space_steps(model, train, reference, legacy, DecoderTraining(hidden=16, epochs=2))).result
    path = space.save(tmp_path / "new.fisher-decoder.safetensors")
    tensors = {k: v for k, v in load_file(str(path)).items() if k not in ("reference.labels", "reference.indices")}
    record = json.loads(path.with_suffix(".json").read_text())
    record["settings"] = {"dim": 16, "seed": 0, "method": "auto", "batch_size": 16}  # what the first version wrote
    for key in ("normalisation", "fisher_decoder_in", "format_version"):
        record.pop(key)
    old = tmp_path / "old.fisher-decoder.safetensors"
    save_file(tensors, str(old), metadata={"ar_explorer_fisher": json.dumps(record)})
    loaded = FisherSpace.load(old)
    assert loaded.settings.normalisation == "none" and loaded.settings.components == 0
    assert loaded.scaling.kind == "none" and loaded.reference_labels.tolist() == [-1] * 6  # 6x6: no digits to read
    result = interpolate(model, loaded, reference[0], reference[1], 3)
    np.testing.assert_allclose(result.fisher, interpolate(model, space, reference[0], reference[1], 3).fisher,
                               atol=2e-2)
