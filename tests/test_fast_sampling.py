"""Cached sampling (Fast PixelCNN) draws exactly what naive re-evaluation draws, step by step and to the end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from app.core import cached_sampling
from app.core.errors import ModelError
from app.core.model import ConditionSpec
from app.core.sampling import NaiveSampler, prepare_run, sample, sample_steps
from plugins import fast_pixelcnn
from plugins.fast_pixelcnn import CachedSampler, make_cached_sampler, resolve_engine
from plugins.gated_pixelcnn import SPEC as GATED
from plugins.gated_pixelcnn import GatedPixelCNN
from plugins.pixelcnn import SPEC as PIXELCNN

SMALL = {
    "pixelcnn": {"channels": 8, "layers": 2, "kernel": 3, "first_kernel": 5, "head_channels": 8},
    "gated-pixelcnn": {"channels": 8, "layers": 3, "kernel": 3, "first_kernel": 5, "head_channels": 8},
}


def randomised(spec, shape=(1, 28, 28), k=2, seed=0, condition=None):
    """A small untrained model whose weights are pushed far from the initialisation (varied conditionals)."""
    if condition is not None:
        spec = dataclasses.replace(spec, condition=condition)
    torch.manual_seed(seed)
    model = spec.create(spec.make_config(shape, k, SMALL[spec.name])).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize(
    ("spec", "k", "size", "seeds"),
    [(PIXELCNN, 2, 28, (0,)), (PIXELCNN, 4, 14, (0, 7)), (GATED, 2, 28, (0,)), (GATED, 4, 14, (0, 7))],
    ids=["pixelcnn-2", "pixelcnn-4", "gated-2", "gated-4"],
)
def test_cached_draws_the_naive_images(spec, k, size, seeds):
    model = randomised(spec, shape=(1, size, size), k=k)
    for seed in seeds:
        naive = sample(model, 3, seed=seed, mode="naive")
        cached = sample(model, 3, seed=seed, mode="cached")
        assert torch.equal(naive, cached)
    # Not trivially equal: the conditionals are varied, so another seed draws other images, of several values.
    assert not torch.equal(sample(model, 3, seed=99, mode="cached"), cached)
    assert len(torch.unique(cached)) == k


def test_step_conditionals_are_the_models_conditionals():
    model = randomised(GATED, shape=(1, 10, 9), k=4)
    steps = list(sample_steps(model, 2, seed=3, mode="cached", temperature=0.8))
    final = torch.as_tensor(steps[-1].image).float()
    with torch.no_grad():
        expected = model.conditionals(final).reshape(2, -1, 4)
    for step in steps:
        got = torch.as_tensor(step.probs)
        assert torch.allclose(got, expected[:, step.dims], atol=1e-5), f"step {step.index}"
    # The live loop (probs/commit) and the headless loop (sample_to_end) draw the same images.
    assert np.array_equal(steps[-1].image, sample(model, 2, seed=3, mode="cached", temperature=0.8).numpy())


def test_colour_pixelcnn_with_channel_groups():
    model = randomised(PIXELCNN, shape=(3, 6, 7), k=4)
    for seed in (0, 1):
        assert torch.equal(sample(model, 2, seed=seed, mode="naive"), sample(model, 2, seed=seed, mode="cached"))


@pytest.mark.parametrize("spec", [PIXELCNN, GATED], ids=["pixelcnn", "gated"])
def test_class_conditional_and_completion(spec):
    model = randomised(spec, shape=(1, 9, 8), condition=ConditionSpec("class", num_classes=3))
    with torch.no_grad():
        for layer_bias in (m for m in model.modules() if isinstance(m, torch.nn.Embedding)):
            layer_bias.weight.normal_(0, 1.0)
    labels = torch.tensor([0, 2, 1])
    naive = sample(model, 3, seed=5, cond=labels, mode="naive")
    cached = sample(model, 3, seed=5, cond=labels, mode="cached")
    assert torch.equal(naive, cached)
    known = np.zeros((9, 8), dtype=bool)
    known[:4] = True
    known[6, 2:5] = True
    init = torch.randint(0, 2, (1, 1, 9, 8)).float()
    kwargs = {"seed": 2, "cond": labels, "init": init, "known": known}
    naive = sample(model, 3, mode="naive", **kwargs)
    cached = sample(model, 3, mode="cached", **kwargs)
    assert torch.equal(naive, cached)
    assert torch.equal(cached[:, 0][:, torch.as_tensor(known)], init[0, 0][torch.as_tensor(known)].long().expand(3, -1))
    stepped = list(sample_steps(model, 3, mode="cached", every=1000, **kwargs))[-1].image
    assert np.array_equal(stepped, cached.numpy())


def test_sampler_is_cached_and_counts_one_call_per_step():
    model = randomised(GATED, shape=(1, 5, 5))
    run = prepare_run(model, 2, mode="cached")
    assert isinstance(run.sampler, CachedSampler)
    with torch.no_grad():
        for index in range(run.total):
            run.step(index)
    assert run.sampler.network_calls == 25


def test_sampler_only_goes_forward():
    model = randomised(PIXELCNN, shape=(1, 4, 4))
    run = prepare_run(model, 1, mode="cached")
    with torch.no_grad():
        for index in range(6):
            run.step(index)
        again = run.sampler.probs(5)  # asking again for the current step is fine
        assert again.shape == (1, 1, 2)
        with pytest.raises(ModelError, match="only goes forward"):
            run.sampler.probs(2)


def test_a_subclass_with_its_own_forward_samples_naively():
    class Shifted(GatedPixelCNN):
        def forward(self, x, cond=None, ordering=None):
            return super().forward(x, cond, ordering) + 1.0

    config = GATED.make_config((1, 4, 4), 2, SMALL["gated-pixelcnn"])
    model = GATED.create(config)
    plain = Shifted(config)
    plain.spec = GATED
    x = torch.zeros(1, 1, 4, 4)
    assert isinstance(make_cached_sampler(model, x), CachedSampler)
    assert isinstance(make_cached_sampler(plain, x), NaiveSampler)


def test_non_finite_probabilities_are_an_error():
    model = randomised(PIXELCNN, shape=(1, 5, 5))
    with torch.no_grad():
        model.head2.bias.fill_(float("nan"))
    with pytest.raises(ModelError, match="NaN or infinite"):
        sample(model, 2, mode="cached")


def test_engines_fall_back_to_eager_off_cuda(monkeypatch):
    cpu = torch.device("cpu")
    for engine in ("auto", "eager", "graph", "compile", "triton"):
        assert resolve_engine(engine, cpu) == "eager"
    assert resolve_engine("auto", torch.device("cuda")) == "graph"
    with pytest.raises(ModelError, match="choose one of"):
        resolve_engine("turbo", cpu)
    monkeypatch.setenv(fast_pixelcnn.ENGINE_VARIABLE, "graph")
    model = randomised(GATED, shape=(1, 4, 4))
    sampler = make_cached_sampler(model, torch.zeros(1, 1, 4, 4))
    assert sampler.engine == "eager"
    monkeypatch.setenv(fast_pixelcnn.ENGINE_VARIABLE, "warp")
    with pytest.raises(ModelError, match="AR_EXPLORER_CACHED_ENGINE"):
        make_cached_sampler(model, torch.zeros(1, 1, 4, 4))


def test_a_shared_program_sees_new_weights():
    """Programs kept with a model (for CUDA graphs) re-derive their weights at every run."""
    model = randomised(PIXELCNN, shape=(1, 6, 6))
    program = fast_pixelcnn.shared_program(model, 2)
    assert fast_pixelcnn.shared_program(model, 2) is program

    def run_shared(seed):
        run = prepare_run(model, 2, seed=seed, mode="naive")
        with torch.no_grad():
            program.reset(run.canvas, None)
            program.uniforms.copy_(run.uniforms)
            for _ in range(program.height):
                program.run_row(1.0, False)
        return program.canvas.round().long()

    assert torch.equal(run_shared(4), sample(model, 2, seed=4, mode="naive"))
    with torch.no_grad():
        model.head2.bias.add_(torch.tensor([3.0]))
    assert torch.equal(run_shared(4), sample(model, 2, seed=4, mode="naive"))


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("engine", ["eager", "graph"])
def test_cuda_engines_draw_the_naive_images(monkeypatch, engine):
    monkeypatch.setenv(fast_pixelcnn.ENGINE_VARIABLE, engine)
    for spec in (PIXELCNN, GATED):
        model = randomised(spec).cuda()
        for seed in (0, 1):
            assert torch.equal(sample(model, 4, seed=seed, mode="naive"), sample(model, 4, seed=seed, mode="cached"))


class _ReplayedRow:
    """Stands in for a captured CUDA graph on the CPU: replaying runs the captured row function again."""

    def __init__(self, row):
        self.replay = row


def test_the_graph_engine_path_with_a_stand_in_for_capture(monkeypatch):
    """The shared-program path of the graph engines (capture once, reset, replay every row), on the CPU."""
    captures = []

    def fake_capture(program, row):
        captures.append(program)
        row()  # like the real capture: the warm-up runs rows and leaves the program dirty
        row()
        return _ReplayedRow(row)

    monkeypatch.setattr(cached_sampling, "resolve_engine", lambda engine, device: "graph")
    monkeypatch.setattr(cached_sampling, "_capture", fake_capture)
    for spec in (PIXELCNN, GATED):
        model = randomised(spec, shape=(1, 7, 6), k=4)
        known = np.zeros((7, 6), dtype=bool)
        known[2] = True
        init = torch.randint(0, 4, (1, 1, 7, 6)).float()
        for kwargs in ({"seed": 1}, {"seed": 2}, {"seed": 3, "temperature": 0.7}, {"seed": 4, "init": init, "known": known}):
            assert torch.equal(sample(model, 2, mode="naive", **kwargs), sample(model, 2, mode="cached", **kwargs))
        # One capture per (temperature, completion) for the model and batch size, then replays.
        assert len(captures) == 3
        captures.clear()
    # A temperature slider must not pile graphs up: a program keeps the few most recently used.
    for temperature in (0.5, 0.6, 0.8, 0.9, 1.1, 1.2):
        sample(model, 2, seed=1, temperature=temperature, mode="cached")
    assert len(captures) == 6 and len(fast_pixelcnn.shared_program(model, 2).graphs) == fast_pixelcnn.KEEP_GRAPHS
    for batch in range(1, 7):
        fast_pixelcnn.shared_program(model, batch)
    assert len(fast_pixelcnn._SHARED[model]) == fast_pixelcnn.KEEP_PROGRAMS


def _triton_runs_here() -> bool:
    """The fused step needs Triton, and a CUDA device or Triton's interpreter (TRITON_INTERPRET=1)."""
    import importlib.util
    import os

    if importlib.util.find_spec("triton") is None:
        return False
    return torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1"


@pytest.mark.slow
@pytest.mark.skipif(not _triton_runs_here(), reason="needs Triton with CUDA or TRITON_INTERPRET=1")
def test_the_fused_triton_step_draws_the_naive_images():
    from plugins import fast_gated_triton

    device = "cuda" if torch.cuda.is_available() else "cpu"
    hparams = {"channels": 16, "layers": 3, "kernel": 5, "first_kernel": 7, "head_channels": 16}
    torch.manual_seed(0)
    model = GATED.create(GATED.make_config((1, 8, 9), 2, hparams)).eval().to(device)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    for batch, temperature in ((3, 1.0), (17, 0.7)):
        with torch.no_grad():
            run = prepare_run(model, batch, seed=5, mode="naive", temperature=temperature)
            expected = sample(model, batch, seed=5, mode="naive", temperature=temperature)
            program = fast_pixelcnn.build_program(model, batch)
            program.reset(run.canvas, None)
            program.uniforms.copy_(run.uniforms)
            assert fast_gated_triton.supports(program)
            row = fast_gated_triton.fused_row(program, temperature)
            for _ in range(program.height):
                row()
        assert torch.equal(program.canvas.round().long(), expected)
        assert int(program.nonfinite) == 0


def test_bench_command_reports_naive_and_cached(capsys):
    import json

    from app.cli.main import main

    code = main(["bench", "--model", "pixelcnn", "--batches", "1", "--budget", "0.3", "--skip", "training", "--json"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    (row,) = report["models"]
    assert row["model"] == "pixelcnn" and row["shape"] == [1, 28, 28]
    naive, cached = row["sampling"]["naive"]["1"], row["sampling"]["cached"]["1"]
    assert naive["seconds"] > cached["seconds"] > 0
    assert naive["extrapolated"]  # 784 shipped-size forward passes do not fit in 0.3 s: timed over a few steps
    assert row["scoring_ms"] > 0 and "train_images_per_s" not in row


def test_gpu_check_script_runs_its_parts_on_the_cpu():
    """The GPU check runs once on a borrowed GPU: its smoke mode keeps every part of it working."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
    done = subprocess.run([sys.executable, str(script), "--cpu-smoke"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert not [line for line in lines if "error" in line], done.stdout
    correct = [line for line in lines if line["part"] == "correctness"]
    engines = ("eager", "graph", "triton", "compile")
    assert correct and all(line["live_steps"] for line in correct)
    assert all(line[e] is True for line in correct for e in engines if e in line)
    assert {e for line in correct for e in engines if e in line} == set(engines)
    assert lines[-1]["part"] == "done"


def test_a_spatially_conditioned_gated_pixelcnn_can_opt_in():
    """A Gated PixelCNN whose forward is the plain one given ``condition_features(cond)`` (super-resolution)."""
    from app.core.conditions import derive_condition
    from plugins.conditional import SUPER_RESOLUTION as spec

    assert "cached" in spec.sampler_modes
    torch.manual_seed(0)
    model = spec.create(spec.make_config((1, 8, 8), 2, {**SMALL["gated-pixelcnn"], "cond_channels": 4})).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    images = torch.randint(0, 2, (3, 1, 8, 8)).float()
    cond = derive_condition(model.config.condition, images, None, 2)
    assert isinstance(make_cached_sampler(model, torch.zeros(3, 1, 8, 8), cond), CachedSampler)
    for seed in (0, 1):
        assert torch.equal(sample(model, 3, seed=seed, cond=cond, mode="naive"),
                           sample(model, 3, seed=seed, cond=cond, mode="cached"))
