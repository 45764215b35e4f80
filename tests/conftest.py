"""Test isolation: every test runs with its own data, checkpoint and settings folders, offscreen Qt, and no
access to the developer's data (tests make their own small data)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYTHONHASHSEED", "0")

import pytest  # noqa: E402
import torch  # noqa: E402

# Under pytest-xdist each worker takes its share of the cores: two workers of two threads each on two cores
# spend their time waiting for each other.
_WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
torch.set_num_threads(max(1, min(2, (os.cpu_count() or 1) // _WORKERS)))


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("AR_EXPLORER_DATA", str(home / "data"))
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(home / "checkpoints"))
    monkeypatch.delenv("AR_EXPLORER_PLUGINS", raising=False)
    monkeypatch.delenv("AR_EXPLORER_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("AR_EXPLORER_TRACE_PLUGINS", raising=False)
    from app.core import registry

    monkeypatch.setattr(registry, "_DEFAULT", None)
    yield


@pytest.fixture
def registry():
    from app.core.registry import get_registry

    return get_registry()


@pytest.fixture
def tiny_binarized(tmp_path):
    """A tiny stand-in for binarized MNIST (.npz, no pickle) made from synthetic digits, in a data folder."""
    import numpy as np

    from app.core.synthetic import synthetic_digits

    arrays = {}
    for split, (n, seed) in {"train": (256, 1), "valid": (64, 2), "test": (64, 3)}.items():
        images, _ = synthetic_digits(n, seed)
        arrays[split] = (images[:, 0] > 127).astype(np.uint8)
    folder = tmp_path / "data"
    folder.mkdir()
    np.savez(folder / "binarized_mnist.npz", **arrays)
    return folder
