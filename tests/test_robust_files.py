"""Special files and what the app writes: a FIFO, a device, a symlink loop or a folder handed to any reader is
refused at once with its reason, never read; reads stop at their limit whatever ``stat`` says; outputs get a new
file's usual mode; temporary files of killed writers are cleared; one writer holds an output at a time."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import threading
import time

import pytest
from bad_inputs.checks import assert_cli_refused, assert_one_line, leftovers, run_cli
from bad_inputs.make import SpecialFile, images, orderings, special_files, tiny_checkpoint

from app.core import files as files_module
from app.core.checkpoints import CheckpointError, list_checkpoints, load_checkpoint, read_info
from app.core.errors import ImageError, OrderingError
from app.core.files import (
    FileTooLarge,
    NotARegularFile,
    OutputBusy,
    OutputLock,
    atomic_write_text,
    describe_os_error,
    is_locked,
    read_limited,
    remove_orphans,
)
from app.core.images import load_image
from app.core.orderings import Ordering

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs and symbolic links as POSIX makes them")

SPECIAL = special_files()
#: A refusal of a special file must come at once: opening a FIFO that waits for a writer would hang.
PROMPT_S = 3.0


@contextlib.contextmanager
def unblocked(path, after_s: float = PROMPT_S + 2):
    """If ``path`` is a FIFO, open its writing end after ``after_s`` seconds should a reader be waiting on it:
    a regression then fails the test (too slow) instead of hanging the suite."""
    done = threading.Event()

    def writer() -> None:
        if done.wait(after_s) or not stat.S_ISFIFO(os.lstat(path).st_mode):
            return
        deadline = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < deadline:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # succeeds only while a reader waits
            except OSError:
                time.sleep(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    start = time.monotonic()
    try:
        yield
    finally:
        done.set()
        thread.join(5)
    assert time.monotonic() - start < PROMPT_S, f"{path.name} was waited on instead of being refused"


def _special(tmp_path, item: SpecialFile, name: str):
    return item.make(tmp_path / name)


@pytest.mark.parametrize("item", SPECIAL, ids=lambda i: i.kind)
def test_every_reader_refuses_a_special_file_at_once(item: SpecialFile, tmp_path, registry) -> None:
    readers = {
        "image.png": (lambda p: load_image(p, (1, 28, 28), 2), ImageError),
        "order.json": (Ordering.load, OrderingError),
        "weights.safetensors": (read_info, CheckpointError),
        "other.safetensors": (lambda p: load_checkpoint(p, registry), CheckpointError),
        "preset.json": (lambda p: registry.ordering(str(p), 4, 4), OrderingError),
    }
    for name, (read, kind) in readers.items():
        path = _special(tmp_path, item, name)
        with unblocked(path), pytest.raises(kind) as caught:
            read(path)
        assert_one_line(caught.value, kind, item.reason)


@pytest.mark.parametrize("item", SPECIAL[:3], ids=lambda i: i.kind)
def test_the_cli_refuses_special_files_with_their_reason(item: SpecialFile, tmp_path, capsys) -> None:
    checkpoint = tiny_checkpoint(tmp_path / "good")
    image = _special(tmp_path, item, "digit.png")
    with unblocked(image):
        assert_cli_refused(run_cli(capsys, ["score", image, "--checkpoint", checkpoint]), item.reason)
    ordering = _special(tmp_path, item, "order.json")
    with unblocked(ordering):
        result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--ordering", ordering, "--n", 1,
                                  "--out", tmp_path / "s.png"])
        assert_cli_refused(result, item.reason)
    weights = _special(tmp_path, item, "model.safetensors")
    with unblocked(weights):
        assert_cli_refused(run_cli(capsys, ["eval", "--checkpoint", weights]), item.reason)
    assert not (tmp_path / "s.png").exists()


def test_a_fifo_in_a_checkpoint_folder_is_skipped_by_the_listing(tmp_path, registry, monkeypatch, capsys) -> None:
    """A FIFO in a checkpoint folder hung ``ar-explorer models`` and the app before its window opened."""
    folder = tmp_path / "checkpoints"
    tiny_checkpoint(folder, "good")
    for item in SPECIAL:
        _special(folder, item, f"{item.kind}.safetensors")
    registry.checkpoint_dirs.append(folder)
    fifo = folder / "fifo.safetensors"
    with unblocked(fifo):
        names = {info.name for info in list_checkpoints(registry) if info.weights.parent == folder}
    assert names == {"good"}
    monkeypatch.setenv("AR_EXPLORER_CHECKPOINTS", str(folder))
    with unblocked(fifo):
        result = run_cli(capsys, ["models", "--json"])
    assert result.code == 0, result.err
    assert "good" in {c["name"] for c in json.loads(result.out)["checkpoints"]}


def test_a_fifo_where_the_json_sidecar_should_be_is_not_read(tmp_path, registry) -> None:
    weights = tiny_checkpoint(tmp_path, meta={"epochs": 2.0})
    sidecar = weights.with_suffix(".json")
    sidecar.unlink()
    os.mkfifo(sidecar)
    with unblocked(sidecar):
        info = read_info(weights)
        load_checkpoint(weights, registry)
    assert info.meta["epochs"] == 2.0  # the weights' own record


# reads stop at their limit ---------------------------------------------------------------------------------------


def test_a_read_stops_at_its_limit_whatever_stat_says(tmp_path, monkeypatch) -> None:
    """Files under /proc report a size of 0 and hold more: the limit holds on the bytes read."""
    path = tmp_path / "grows.json"
    path.write_bytes(b"x" * 5000)
    real_fstat = os.fstat

    class Lying:
        def __init__(self, st):
            self._st = st

        def __getattr__(self, name):
            return 0 if name == "st_size" else getattr(self._st, name)

    monkeypatch.setattr(files_module.os, "fstat", lambda fd: Lying(real_fstat(fd)))
    with pytest.raises(FileTooLarge):
        read_limited(path, 1000)
    assert read_limited(path, 5000) == b"x" * 5000


def test_a_file_over_the_limit_by_its_size_is_refused_unread(tmp_path, monkeypatch) -> None:
    path = tmp_path / "huge.png"
    with open(path, "wb") as handle:
        handle.truncate(10_000_000)  # sparse
    reads = []
    real_open = files_module.os.fdopen

    def spy(fd, *args, **kwargs):
        handle = real_open(fd, *args, **kwargs)
        real_read = handle.read
        handle.read = lambda *a: reads.append(a) or real_read(*a)
        return handle

    monkeypatch.setattr(files_module.os, "fdopen", spy)
    with pytest.raises(FileTooLarge):
        read_limited(path, 1_000_000)
    assert reads == []


def test_dev_zero_as_an_ordering_is_refused_at_once(tmp_path, capsys) -> None:
    """``--ordering /dev/zero`` read until memory ran out."""
    if not os.path.exists("/dev/zero"):
        pytest.skip("no /dev/zero")
    checkpoint = tiny_checkpoint(tmp_path)
    start = time.monotonic()
    result = run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--ordering", "/dev/zero", "--n", 1,
                              "--out", tmp_path / "s.png"])
    assert_cli_refused(result, "a device, not an ordering file")
    assert time.monotonic() - start < PROMPT_S


def test_os_errors_are_named_by_their_real_reason() -> None:
    cases = {
        errno.ENOSPC: "no space left on device",
        errno.EROFS: "read-only",
        errno.ELOOP: "loop of symbolic links",
        errno.EACCES: "permission denied",
        errno.ENOENT: "no such file",
    }
    for number, reason in cases.items():
        assert reason in describe_os_error(OSError(number, os.strerror(number), "x"))
    assert "named pipe" in describe_os_error(NotARegularFile("x", "a named pipe (FIFO)"))


# what is written -------------------------------------------------------------------------------------------------


def test_outputs_get_a_new_files_usual_mode(tmp_path) -> None:
    """mkstemp made every output 0600: a checkpoint others on the machine could not read."""
    old = os.umask(0o022)
    try:
        path = tmp_path / "record.json"
        atomic_write_text(path, "{}")
        assert stat.S_IMODE(path.stat().st_mode) == 0o644
        path.chmod(0o600)  # a file replaced keeps the mode its owner gave it
        atomic_write_text(path, "[]")
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    finally:
        os.umask(old)


def test_the_cli_writes_outputs_with_a_new_files_mode(tmp_path, capsys) -> None:
    old = os.umask(0o022)
    try:
        checkpoint = tiny_checkpoint(tmp_path / "in")
        out = tmp_path / "s.png"
        assert run_cli(capsys, ["sample", "--checkpoint", checkpoint, "--n", 1, "--out", out]).code == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o644
        assert stat.S_IMODE(checkpoint.stat().st_mode) == 0o644
    finally:
        os.umask(old)


def _dead_pid() -> int:
    pid = 2**22 + 12345
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid += 1


def test_temporary_files_of_a_killed_writer_are_removed_on_the_next_write(tmp_path) -> None:
    target = tmp_path / "model.safetensors"
    orphan = tmp_path / f".model.safetensors.{_dead_pid()}.deadbeef.tmp"
    orphan.write_bytes(b"half a checkpoint")
    old_style = tmp_path / ".model.safetensors.k3j2h1.tmp"  # mkstemp's name, from before process ids were kept
    old_style.write_bytes(b"half")
    os.utime(old_style, (time.time() - 3 * 86400,) * 2)
    alive = tmp_path / f".model.safetensors.{os.getpid()}.cafe.tmp"  # this process is writing it
    alive.write_bytes(b"being written")
    other = tmp_path / f".other.png.{_dead_pid()}.beef.tmp"  # another file's: left to its own writer
    other.write_bytes(b"x")
    atomic_write_text(target, "new")
    assert not orphan.exists() and not old_style.exists()
    assert alive.exists() and other.exists()
    assert remove_orphans(tmp_path / "other.png") == [other]


def test_a_training_killed_midway_leaves_nothing_the_next_run_keeps(tiny_binarized, tmp_path, capsys) -> None:
    out = tmp_path / "m.safetensors"
    for name in ("m.safetensors", "m.json", "m.optim.safetensors"):
        (tmp_path / f".{name}.{_dead_pid()}.0001.tmp").write_bytes(b"killed midway")
    result = run_cli(capsys, ["train", "--model", "made", "--dataset", "binarized-mnist", "--data-dir", tiny_binarized,
                              "--out", out, "--limit", 32, "--valid-limit", 16, "--epochs", 1, "--no-test",
                              "--hparam", "hidden=[8]"])
    assert result.code == 0, result.err
    assert leftovers(tmp_path) == []


def test_one_writer_holds_an_output(tmp_path) -> None:
    out = tmp_path / "m.safetensors"
    with OutputLock(out):
        assert is_locked(out)
        with pytest.raises(OutputBusy):
            OutputLock(out).acquire()
    assert not is_locked(out) and not (tmp_path / "m.safetensors.lock").exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path) -> None:
    out = tmp_path / "m.safetensors"
    import socket

    (tmp_path / "m.safetensors.lock").write_text(f"{socket.gethostname()} {_dead_pid()}\n")
    assert not is_locked(out)
    with OutputLock(out) as lock:
        assert lock.held


def test_the_corpus_files_still_load(tmp_path, registry) -> None:
    """The readers that now refuse special files still read every good file of the corpus."""
    for case in images():
        if case.expect == "converted":
            load_image(case.write(tmp_path), (1, 28, 28), 2)
    for case in orderings():
        if case.expect == "converted":
            Ordering.load(case.write(tmp_path))
    load_checkpoint(tiny_checkpoint(tmp_path), registry)


@pytest.mark.parametrize("item", SPECIAL[:3], ids=lambda i: i.kind)
def test_a_special_file_as_a_condition_array_is_refused(item: SpecialFile, tmp_path, capsys) -> None:
    condition = _special(tmp_path, item, "low.npy")
    with unblocked(condition):
        result = run_cli(capsys, ["sample", "--checkpoint", "superres-gated-pixelcnn-mnist-threshold", "--n", 1,
                                  "--condition", condition, "--out", tmp_path / "s.png"])
        assert_cli_refused(result, item.reason)
