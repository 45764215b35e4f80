"""Checkpoints from anywhere: corrupt, truncated, lying, mismatched or pickle-based files are refused with the
reason; nothing inside a pickle is ever executed, by any entry point; CUDA-saved checkpoints load on the CPU."""

from __future__ import annotations

import json
import pickle
import shutil

import pytest
import torch
from bad_inputs.checks import assert_cli_refused, assert_one_line, run_cli
from bad_inputs.make import (
    Case,
    checkpoints,
    images,
    nan_checkpoint,
    pickle_that_creates,
    tiny_checkpoint,
    torch_file_that_creates,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.checkpoints import PICKLE_SUFFIXES, list_checkpoints, load_checkpoint, read_info
from app.core.errors import CheckpointError, DeviceError

_VALID: list[bytes] = []


def tiny_checkpoint_bytes() -> bytes:
    """The bytes of a valid tiny checkpoint, made once (the corpus mutates them)."""
    if not _VALID:
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory() as folder:
            _VALID.append(tiny_checkpoint(Path(folder)).read_bytes())
    return _VALID[0]


CASES = checkpoints(tiny_checkpoint_bytes())


def _refused(path, registry, reason: str = "") -> str:
    with pytest.raises(CheckpointError) as caught:
        read_info(path)
        load_checkpoint(path, registry)
    return assert_one_line(caught.value, CheckpointError, reason)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_corrupt_and_lying_checkpoints_are_refused(case: Case, tmp_path, registry) -> None:
    _refused(case.write(tmp_path), registry, case.reason)


def test_the_valid_checkpoint_they_are_made_from_loads(tmp_path, registry) -> None:
    path = tmp_path / "valid.safetensors"
    path.write_bytes(tiny_checkpoint_bytes())
    model, info = load_checkpoint(path, registry)
    assert info.model == "made" and tuple(model.shape) == (1, 4, 4)


def test_nan_weights_are_refused(tmp_path, registry) -> None:
    _refused(nan_checkpoint(tmp_path), registry, "nan")


def test_a_checkpoint_of_another_model_is_refused_where_one_is_expected(tmp_path, registry) -> None:
    path = tiny_checkpoint(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, registry, expect_model="pixelcnn")
    assert_one_line(caught.value, CheckpointError, "not of 'pixelcnn'")


def test_shapes_are_compared_before_the_weights_are_read(tmp_path, registry, monkeypatch) -> None:
    """A config that does not match the weights is refused from the header alone, without reading the data."""
    path = next(c for c in CASES if c.name == "other-size.safetensors").write(tmp_path)

    def must_not_load(*args, **kwargs):
        raise AssertionError("the weights were read")

    monkeypatch.setattr("app.core.checkpoints.load_bytes", must_not_load)
    monkeypatch.setattr("app.core.checkpoints.read_limited", must_not_load)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_checkpoint(path, registry)


def test_a_broken_sidecar_is_ignored_and_the_weights_header_used(tmp_path, registry) -> None:
    path = tiny_checkpoint(tmp_path, meta={"epochs": 3.0})
    for junk in ("{not json", "[1, 2]", json.dumps({"model": "pixelcnn", "epochs": 99.0}), ""):
        path.with_suffix(".json").write_text(junk)
        info = read_info(path)
        assert info.model == "made" and info.meta.get("epochs") == 3.0
        load_checkpoint(path, registry)


def test_every_corrupt_file_in_a_checkpoint_folder_is_skipped(tmp_path, registry, monkeypatch, capsys) -> None:
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for case in CASES:
        case.write(folder)
    (folder / "planted.safetensors").write_bytes(pickle_that_creates(tmp_path / "marker"))
    tiny_checkpoint(folder, "the-good-one")
    readable = set()
    for path in sorted(folder.glob("*.safetensors")):  # the listing reads headers only, never weights
        try:
            readable.add(read_info(path).name)
        except CheckpointError:
            pass
    assert "the-good-one" in readable and not {"planted", "empty", "offsets-strings"} & readable
    registry.checkpoint_dirs.append(folder)
    assert {info.name for info in list_checkpoints(registry) if info.weights.parent == folder} == readable
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    result = run_cli(capsys, ["models", "--json"])
    assert result.code == 0, result.err
    assert {c["name"] for c in json.loads(result.out)["checkpoints"]} >= readable
    assert not (tmp_path / "marker").exists()


# pickles: refused, never executed --------------------------------------------------------------------------------


@pytest.fixture
def no_unpickling(monkeypatch):
    """Record any attempt to unpickle or ``torch.load`` (the marker file is the proof; this says where)."""
    calls: list[str] = []

    def record(name):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called on an untrusted file")

        return called

    monkeypatch.setattr(pickle, "load", record("pickle.load"))
    monkeypatch.setattr(pickle, "loads", record("pickle.loads"))
    monkeypatch.setattr(torch, "load", record("torch.load"))
    return calls


def test_the_planted_pickles_really_would_run(tmp_path) -> None:
    """The proof is only worth something if loading the planted files does create the marker."""
    import io

    marker = tmp_path / "ran"
    pickle.loads(pickle_that_creates(marker))
    assert marker.exists()
    marker.unlink()
    torch.load(io.BytesIO(torch_file_that_creates(marker)), weights_only=False)
    assert marker.exists()


def _planted(tmp_path):
    """Every way a pickle can be handed to the app: each pickle suffix, and pickles renamed to .safetensors."""
    marker = tmp_path / "pickle-was-executed"
    folder = tmp_path / "planted"
    folder.mkdir()
    files = []
    for i, suffix in enumerate(sorted(PICKLE_SUFFIXES)):
        make = pickle_that_creates if i % 2 else torch_file_that_creates
        files.append(folder / f"model{suffix}")
        files[-1].write_bytes(make(marker))
    for name, make in (("plain", pickle_that_creates), ("torch", torch_file_that_creates)):
        path = folder / f"renamed-{name}.safetensors"
        path.write_bytes(make(marker))
        path.with_suffix(".json").write_text(json.dumps({"model": "made", "config": {}}))
        files.append(path)
    return marker, folder, files


def test_no_entry_point_executes_a_pickle(tmp_path, registry, capsys, monkeypatch, no_unpickling, tiny_binarized) -> None:
    from app.core.session import Session

    marker, folder, files = _planted(tmp_path)
    image = next(c for c in images() if c.name == "grey.png").write(tmp_path)
    refs = [*files, *(f.with_suffix("") for f in files if f.suffix == ".safetensors")]
    for ref in refs:
        for call in (read_info, lambda r: load_checkpoint(r, registry), lambda r: Session(registry, "cpu").load(r)):
            with pytest.raises(CheckpointError) as caught:
                call(ref)
            assert_one_line(caught.value, CheckpointError)
        for command in (
            ["sample", "--checkpoint", ref, "--out", tmp_path / "s.png", "--device", "cpu"],
            ["score", image, "--checkpoint", ref],
            ["eval", "--checkpoint", ref, "--dataset", "synthetic-digits", "--limit", "4"],
        ):
            assert_cli_refused(run_cli(capsys, command), "pickle")
    resume = folder / "renamed-torch.safetensors"
    result = run_cli(capsys, ["train", "--model", "made", "--dataset", "binarized-mnist", "--data-dir", tiny_binarized,
                              "--out", resume, "--resume", "--limit", "32", "--epochs", "0.1"])
    assert_cli_refused(result, "pickle")
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    assert run_cli(capsys, ["models", "--json"]).code == 0
    assert not marker.exists(), "a pickle was executed"
    assert no_unpickling == []


# devices ---------------------------------------------------------------------------------------------------------


def test_a_checkpoint_trained_on_cuda_loads_on_the_cpu(tmp_path, registry) -> None:
    """Training on a GPU records CUDA in the metadata; safetensors stores no device: it loads on the CPU."""
    cuda_meta = {"device": "CUDA (NVIDIA H200)", "world_size": 1, "train_config": {"precision": "bf16"}}
    path = tiny_checkpoint(tmp_path, meta=cuda_meta)
    header = path.read_bytes()[8 : 8 + int.from_bytes(path.read_bytes()[:8], "little")]
    assert b"cuda:" not in header.lower()  # no tensor is tied to a device in the file
    model, info = load_checkpoint(path, registry, device="cpu")
    assert info.meta["device"].startswith("CUDA")
    assert all(p.device.type == "cpu" for p in model.parameters())


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
def test_asking_for_a_missing_gpu_is_a_clear_error(tmp_path, registry) -> None:
    from app.core.session import Session

    with pytest.raises(DeviceError) as caught:
        Session(registry, "cuda")
    assert_one_line(caught.value, DeviceError, "--device cpu")


def test_out_of_memory_on_the_gpu_falls_back_to_the_cpu(tmp_path, registry, monkeypatch) -> None:
    from app.core.session import Session

    path = tiny_checkpoint(tmp_path)
    moved_to = []
    real_to = torch.nn.Module.to

    def to(self, *args, **kwargs):
        target = torch.device(args[0]) if args and isinstance(args[0], (str, torch.device)) else None
        moved_to.append(str(target))
        if target is not None and target.type == "cuda":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    loaded = Session(registry, "cpu").load(path, device="cuda")
    assert "cuda" in moved_to
    assert loaded.model.device.type == "cpu"
    assert any("out of memory" in note and "CPU" in note for note in loaded.notes)


def test_other_gpu_errors_are_not_mistaken_for_out_of_memory(tmp_path, registry, monkeypatch) -> None:
    from app.core.session import Session

    path = tiny_checkpoint(tmp_path)

    def to(self, *args, **kwargs):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(torch.nn.Module, "to", to)
    with pytest.raises(RuntimeError, match="illegal memory access"):
        Session(registry, "cpu").load(path, device="cuda")


# properties ------------------------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cut=st.one_of(st.none(), st.integers(0, 4000)),
    flips=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 7)), max_size=4),
)
def test_property_truncated_or_bit_flipped_checkpoints(cut, flips, tmp_path_factory, registry) -> None:
    data = bytearray(tiny_checkpoint_bytes())
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    for where, bit in flips:
        if data:
            data[where % len(data)] ^= 1 << bit
    folder = tmp_path_factory.mktemp("mutated")
    path = folder / "mutated.safetensors"
    path.write_bytes(bytes(data))
    try:
        model, _ = load_checkpoint(path, registry)
    except CheckpointError as error:
        assert_one_line(error, CheckpointError)
    else:
        assert all(torch.isfinite(p).all() for p in model.parameters())
    shutil.rmtree(folder)


def test_a_header_length_that_spells_a_pickle_signature_still_loads(tmp_path, registry) -> None:
    """A safetensors header of 896 bytes starts the file with 80 03 00 .., the bytes of a pickle (protocol 3)."""
    from safetensors.torch import save_file

    from app.core.checkpoints import read_header

    for pad in range(0, 2000):
        path = tmp_path / "weights.safetensors"
        save_file({"w": torch.zeros(2)}, str(path), metadata={"pad": "x" * pad})
        if path.read_bytes()[:2] == b"\x80\x03":
            break
    else:
        pytest.skip("no padding gave the pickle signature")
    assert "w" in read_header(path)


# headers that lie about the model: refused at once, without building it ------------------------------------------


@pytest.mark.parametrize("case", [c for c in CASES if c.name.startswith("claims-")], ids=lambda c: c.name)
def test_a_config_that_claims_a_huge_model_is_refused_at_once(case: Case, tmp_path, registry) -> None:
    """A 2 MB checkpoint claiming 2000 channels took 45 s and 5.6 GB; 10^6 layers never finished."""
    import time

    path = case.write(tmp_path)
    start = time.perf_counter()
    _refused(path, registry, case.reason)
    assert time.perf_counter() - start < 5


def test_the_budget_stops_an_allocation_before_it_is_made(registry) -> None:
    from app.core.allocation import AllocationBudget, BudgetExceeded

    with pytest.raises(BudgetExceeded), AllocationBudget(1000, 100):
        torch.empty(10**12)  # a terabyte: never asked of the allocator
    with AllocationBudget(10**6, 100) as budget:
        torch.zeros(3, 4)
        torch.randn((5, 5))
        torch.arange(0, 10, 2)
    assert budget.values == 12 + 25 + 5 and budget.calls == 3


def test_listing_checkpoints_never_builds_a_model(tmp_path, registry, monkeypatch, capsys) -> None:
    from app.core.model import ModelSpec

    folder = tmp_path / "checkpoints"
    tiny_checkpoint(folder, "a")
    for case in CASES:
        case.write(folder)

    def must_not_build(*args, **kwargs):
        raise AssertionError("a model was built to list checkpoints")

    monkeypatch.setattr(ModelSpec, "create", must_not_build)
    registry.checkpoint_dirs.append(folder)
    assert "a" in {info.name for info in list_checkpoints(registry)}
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    result = run_cli(capsys, ["models", "--json"])
    assert result.code == 0, result.err


def test_weights_of_a_dtype_the_model_does_not_store_are_refused(tmp_path, registry) -> None:
    from app.core.checkpoints import accepted_dtypes

    assert accepted_dtypes(torch.float32, "float16") == {"F16"}
    assert accepted_dtypes(torch.float32, "float32") == {"F32"}
    assert accepted_dtypes(torch.float32, None) == {"F32", "F16"}
    assert accepted_dtypes(torch.int64, "float16") == {"I64"}
    for name in ("half-relabelled-bf16.safetensors", "float-relabelled-int.safetensors"):
        case = next(c for c in CASES if c.name == name)
        _refused(case.write(tmp_path), registry, case.reason)


# the record travels with the weights -----------------------------------------------------------------------------


def test_a_copy_without_its_json_keeps_its_record(tmp_path, registry, capsys) -> None:
    """Dataset, binarization and test NLL sit in the weights' own header, not only in the JSON."""
    path = tiny_checkpoint(tmp_path / "a", shape=(1, 28, 28), meta={"binarization": "thresholded at 0.5"})
    result = run_cli(capsys, ["eval", "--checkpoint", path, "--json"])
    assert result.code == 0, result.err
    nll = json.loads(result.out)["nll_nats"]
    copy = tmp_path / "b" / "copy.safetensors"
    copy.parent.mkdir()
    shutil.copy(path, copy)
    info = read_info(copy)
    assert info.test_nll_nats == pytest.approx(nll)
    assert info.dataset == "synthetic-digits" and info.meta["binarization"] == "thresholded at 0.5"
    assert len(info.meta["test_nll_quantiles"]) == 101
    load_checkpoint(copy, registry)
    assert read_info(path).meta["weights_sha256"] == json.loads(path.with_suffix(".json").read_text())["weights_sha256"]


def test_every_shipped_checkpoint_carries_its_own_record(registry) -> None:
    from pathlib import Path

    from app.core.checkpoints import read_header

    folder = Path(__file__).resolve().parents[1] / "checkpoints"
    shipped = [p for p in folder.glob("*.safetensors") if ".fisher-decoder" not in p.name and ".optim" not in p.name]
    assert len(shipped) >= 20
    for path in shipped:
        record = json.loads(read_header(path)["__metadata__"]["ar_explorer_record"])
        sidecar = json.loads(path.with_suffix(".json").read_text())
        for key in ("dataset", "binarization", "test_nll_nats", "test_bits_per_dim"):
            assert record.get(key) == sidecar.get(key) and record.get(key) is not None, f"{path.name}: {key}"


def test_recording_a_result_keeps_the_identity_of_the_weights(tmp_path) -> None:
    """What is made for a checkpoint's weights (a Fisher space) names them by their tensors, so that a result
    recorded in the header later does not orphan it."""
    from app.core.checkpoints import tensors_sha256, update_metadata
    from app.core.fisher import weights_sha256

    path = tiny_checkpoint(tmp_path)
    identity, whole = tensors_sha256(path), path.read_bytes()
    update_metadata(read_info(path), {"test_nll_nats": 12.5})
    assert path.read_bytes() != whole and read_info(path).test_nll_nats == 12.5
    assert tensors_sha256(path) == identity == weights_sha256(path)
    other = tiny_checkpoint(tmp_path, "other", hidden=9)
    assert tensors_sha256(other) != identity
