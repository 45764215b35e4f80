"""``ar-explorer train`` under torchrun: DistributedDataParallel on the CPU with the gloo backend.

The test launches ``torchrun --standalone --nproc_per_node 2`` on this very file: run as a script, it is the
worker, which runs the real command line (``app.cli.main.main``) and then saves the weights its rank ended
with, so that the test can compare the ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
TINY = ["channels=8", "layers=1", "kernel=3", "first_kernel=3", "head_channels=8"]


def _train_argv(out: Path, data: Path) -> list[str]:
    argv = [
        "train", "--model", "pixelcnn", "--dataset", "binarized-mnist", "--data-dir", str(data), "--device", "cpu",
        "--limit", "256", "--valid-limit", "64", "--epochs", "2", "--batch-size", "32", "--lr", "3e-3",
        "--log-every", "4", "--no-test", "--out", str(out / "tiny"),
    ]
    for item in TINY:
        argv += ["--hparam", item]
    return argv


def _worker(out: Path, data: Path) -> int:
    """One rank: run the CLI, keep the model that ``train`` was given, save its final weights."""
    from safetensors.torch import save_file

    import app.core.training as training
    from app.cli.main import main

    models = []
    original = training.train

    def recording(model, *args, **kwargs):
        models.append(model)
        yield from original(model, *args, **kwargs)

    training.train = recording
    code = main(_train_argv(out, data))
    state = {k: v.detach().contiguous() for k, v in models[0].state_dict().items()}
    save_file(state, str(out / f"weights-rank{os.environ['RANK']}.bin"))
    return code


@pytest.mark.slow
def test_torchrun_two_processes(tmp_path, tiny_binarized):
    from safetensors.torch import load_file

    from app.core.checkpoints import load_checkpoint
    from app.core.registry import get_registry
    from app.core.session import Session
    from app.core.training import validation_nll

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(Path(__file__)), str(tmp_path), str(tiny_binarized)]
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "x2 processes" in done.stderr
    assert done.stdout.count("checkpoint:") == 1  # only rank 0 reports

    # Both ranks end with the same weights: DDP averaged the gradients of their different shards.
    rank0 = load_file(str(tmp_path / "weights-rank0.bin"))
    rank1 = load_file(str(tmp_path / "weights-rank1.bin"))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)
    spec = get_registry().model("pixelcnn")
    torch.manual_seed(0)  # as the CLI does (--seed 0) before it builds the model
    hparams = {k: int(v) for k, v in (item.split("=") for item in TINY)}
    initial = spec.create(spec.make_config((1, 28, 28), 2, hparams)).state_dict()
    assert any(not torch.equal(initial[k], rank0[k]) for k in rank0), "training did not change the weights"

    # Exactly one checkpoint, written whole by rank 0: no temporary files, no second copy.
    names = sorted(p.name for p in tmp_path.iterdir() if p.is_file() and not p.name.startswith("weights-rank"))
    assert names == ["tiny.json", "tiny.optim.safetensors", "tiny.safetensors"]
    meta = json.loads((tmp_path / "tiny.json").read_text())
    assert meta["world_size"] == 2
    assert meta["images_seen"] == pytest.approx(meta["epochs"] * 256)  # both ranks' shards count

    # It loads and evaluates like any other checkpoint: the recorded validation NLL is reproduced.
    model, _ = load_checkpoint(tmp_path / "tiny.safetensors", get_registry(), "cpu")
    session = Session(get_registry(), "cpu", str(tiny_binarized))
    valid = session.split(session.dataset("binarized-mnist"), "valid", 64)
    assert validation_nll(model, valid) == pytest.approx(meta["valid_nll_nats"], abs=1e-3)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(_worker(Path(sys.argv[1]), Path(sys.argv[2])))
