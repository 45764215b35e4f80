import json

import pytest
import torch

from app.core.checkpoints import list_checkpoints, load_checkpoint, read_info, save_checkpoint, update_metadata
from app.core.errors import CheckpointError
from app.core.orderings import random
from app.core.registry import Registry


def tiny(registry, name="pixelcnn", ordering=None):
    spec = registry.model(name)
    torch.manual_seed(0)
    return spec.create(spec.make_config((1, 6, 6), 2, ordering=ordering, tiny=True))


def test_round_trip_keeps_config_ordering_and_outputs(tmp_path):
    registry = Registry()
    model = tiny(registry, "made", random(6, 6, 4))
    info = save_checkpoint(model, tmp_path / "m", {"dataset": "synthetic-digits", "binarization": "x"})
    assert info.weights.name == "m.safetensors" and info.json_path.exists()
    meta = json.loads(info.json_path.read_text())
    assert meta["model"] == "made" and meta["config"]["ordering"]["order"][0] == random(6, 6, 4).order[0].tolist()
    assert meta["versions"]["torch"] == torch.__version__ and len(meta["weights_sha256"]) == 64
    loaded, linfo = load_checkpoint(tmp_path / "m.safetensors", registry)
    x = torch.randint(0, 2, (3, 1, 6, 6)).float()
    assert torch.equal(model.eval().log_prob(x), loaded.log_prob(x))
    assert loaded.ordering == random(6, 6, 4)
    assert linfo.meta["dataset"] == "synthetic-digits"


def test_half_precision_is_loaded_as_float32(tmp_path):
    registry = Registry()
    model = tiny(registry)
    save_checkpoint(model, tmp_path / "h", half=True)
    loaded, info = load_checkpoint(tmp_path / "h.safetensors", registry)
    assert info.meta["weights_dtype"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.randint(0, 2, (2, 1, 6, 6)).float()
    assert torch.allclose(model.eval().log_prob(x), loaded.log_prob(x), atol=1e-2)


def test_weights_of_another_model_or_size_are_refused(tmp_path):
    registry = Registry()
    save_checkpoint(tiny(registry), tmp_path / "p")
    meta_path = tmp_path / "p.json"
    with pytest.raises(CheckpointError, match="not of 'made'"):
        load_checkpoint(tmp_path / "p.safetensors", registry, expect_model="made")
    # Swap in the weights of a bigger model under the same header: shapes no longer fit.
    spec = registry.model("pixelcnn")
    big = spec.create(spec.make_config((1, 6, 6), 2, {"channels": 24}, tiny=True))
    from safetensors.torch import load_file, save_file

    header = {"ar_explorer": json.dumps({k: json.loads(meta_path.read_text())[k] for k in ("format", "format_version", "model", "config")})}
    save_file({k: v.contiguous() for k, v in big.state_dict().items()}, str(tmp_path / "p.safetensors"), metadata=header)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(tmp_path / "p.safetensors", registry)
    assert load_file(str(tmp_path / "p.safetensors"))  # the file itself is a valid safetensors file


def test_pickle_files_are_refused_unread(tmp_path):
    registry = Registry()
    for suffix in (".pt", ".pth", ".ckpt", ".pkl", ".bin"):
        path = tmp_path / f"model{suffix}"
        path.write_bytes(b"\x80\x04not really")
        with pytest.raises(CheckpointError, match="never unpickles"):
            load_checkpoint(path, registry)


def test_truncated_file_is_refused(tmp_path):
    registry = Registry()
    info = save_checkpoint(tiny(registry), tmp_path / "t")
    data = info.weights.read_bytes()
    info.weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|corrupt"):
        load_checkpoint(info.weights, registry)


def test_listing_and_lookup_by_name(tmp_path, monkeypatch):
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(tmp_path))
    registry = Registry()
    save_checkpoint(tiny(registry), tmp_path / "named-one", {"dataset": "synthetic-digits"})
    names = {c.name for c in list_checkpoints(registry)}
    assert "named-one" in names
    model, info = load_checkpoint("named-one", registry)
    assert info.dataset == "synthetic-digits"
    with pytest.raises(CheckpointError, match="no checkpoint named"):
        load_checkpoint("does-not-exist", registry)


def test_update_metadata_keeps_weights_and_records(tmp_path):
    registry = Registry()
    info = save_checkpoint(tiny(registry), tmp_path / "u")
    update_metadata(info, {"test_nll_nats": 12.5})
    assert read_info(info.weights).test_nll_nats == 12.5


def test_sidecar_that_disagrees_with_the_weights_is_ignored(tmp_path):
    registry = Registry()
    info = save_checkpoint(tiny(registry), tmp_path / "s", {"dataset": "synthetic-digits"})
    meta = json.loads(info.json_path.read_text())
    meta["config"]["hparams"]["channels"] = 999
    info.json_path.write_text(json.dumps(meta))
    model, _ = load_checkpoint(info.weights, registry)  # the header's config wins
    assert model.config.hparams["channels"] != 999
