"""Data: a partial, tampered or interrupted download is detected by its checksum and never replaces anything;
a missing or corrupt data folder gives a one-line message with the exact command that gets the data."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import shlex
import threading
from pathlib import Path

import numpy as np
import pytest
from bad_inputs.checks import assert_cli_refused, assert_one_line, leftovers, run_cli, snapshot
from bad_inputs.make import tiny_checkpoint

from app.core.datasets import DatasetSpec, RemoteFile, download_dataset, download_file, read_idx
from app.core.errors import DataError

CONTENT = np.random.default_rng(0).integers(0, 256, 512 * 1024, dtype=np.uint8).tobytes()  # several blocks
SHA = hashlib.sha256(CONTENT).hexdigest()


def _remote(url: str, gzipped: bool = False, name: str = "train.bin") -> RemoteFile:
    return RemoteFile(name, (url,), SHA, len(CONTENT), gzipped=gzipped)


@pytest.fixture
def source(tmp_path) -> Path:
    folder = tmp_path / "server"
    folder.mkdir()
    (folder / "good.bin").write_bytes(CONTENT)
    (folder / "partial.bin").write_bytes(CONTENT[: len(CONTENT) // 2])
    tampered = bytearray(CONTENT)
    tampered[1234] ^= 0xFF
    (folder / "tampered.bin").write_bytes(bytes(tampered))
    (folder / "good.bin.gz").write_bytes(gzip.compress(CONTENT))
    (folder / "cut.bin.gz").write_bytes(gzip.compress(CONTENT)[:5000])
    (folder / "not-gzip.bin.gz").write_bytes(CONTENT)
    return folder


def test_a_good_download_is_verified_and_placed(source, tmp_path) -> None:
    data = tmp_path / "data"
    assert download_file(_remote((source / "good.bin").as_uri()), data).read_bytes() == CONTENT
    assert download_file(_remote((source / "good.bin.gz").as_uri(), gzipped=True, name="z.bin"), data).read_bytes() == CONTENT
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(
    "name, gzipped, reason",
    [("partial.bin", False, "sha-256"), ("tampered.bin", False, "sha-256"), ("cut.bin.gz", True, "could not download"),
     ("not-gzip.bin.gz", True, "gzip"), ("missing.bin", False, "no such file")],
)
def test_a_bad_download_replaces_nothing(name: str, gzipped: bool, reason: str, source, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.bin").write_bytes(b"the copy that was there before")
    before = snapshot(data)
    with pytest.raises(DataError) as caught:
        download_file(_remote((source / name).as_uri(), gzipped), data)
    assert_one_line(caught.value, DataError, reason)
    assert snapshot(data) == before and leftovers(tmp_path) == []


def test_a_download_interrupted_midway_leaves_nothing_behind(source, tmp_path) -> None:
    data = tmp_path / "data"
    blocks = []

    def progress(done: int, total: int) -> None:
        blocks.append(done)
        if len(blocks) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        download_file(_remote((source / "good.bin").as_uri()), data, progress)
    assert len(blocks) == 3 and blocks[-1] < len(CONTENT)
    assert not (data / "train.bin").exists() and leftovers(tmp_path) == []


class _Server:
    """A local HTTP server: ``/good``, ``/cut`` (promises more bytes than it sends), ``/missing`` (404)."""

    def __init__(self) -> None:
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server API
                if self.path == "/good":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(CONTENT)))
                    self.end_headers()
                    self.wfile.write(CONTENT)
                elif self.path == "/cut":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(CONTENT)))
                    self.end_headers()
                    self.wfile.write(CONTENT[:70_000])
                    self.wfile.flush()
                    self.close_connection = True
                else:
                    self.send_error(404)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    running = _Server()
    yield running
    running.close()


@pytest.mark.parametrize("path, reason", [("/cut", "could not download"), ("/missing", "404")])
def test_http_downloads_that_fail(path: str, reason: str, server, tmp_path) -> None:
    data = tmp_path / "data"
    with pytest.raises(DataError) as caught:
        download_file(_remote(server.url(path)), data)
    assert_one_line(caught.value, DataError, reason)
    assert not (data / "train.bin").exists() and leftovers(tmp_path) == []
    assert download_file(_remote(server.url("/good")), data).read_bytes() == CONTENT


def test_a_tampered_copy_is_downloaded_again_and_a_good_one_kept(source, tmp_path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.bin").write_bytes(b"tampered")
    spec = _spec((source / "good.bin").as_uri())
    assert download_dataset(spec, data)[0].read_bytes() == CONTENT
    # A verified copy is not fetched again: the URL may now be gone.
    assert download_dataset(_spec((source / "gone.bin").as_uri()), data)[0].read_bytes() == CONTENT


def _spec(url: str) -> DatasetSpec:
    def load(split, data_dir):
        raise DataError("not used")

    return DatasetSpec("remote-test", "Remote test", "", "binary", (1, 2, 2), 2, "none", load, files=(_remote(url),))


# through the CLI: a plugin dataset with a local URL, and the built-in datasets with no data ----------------------

PLUGIN = '''
from app.core import hookimpl
from app.core.datasets import DatasetSpec, RemoteFile
from app.core.errors import DataError


def load(split, data_dir):
    raise DataError("not used")


@hookimpl
def ar_explorer_datasets():
    files = (RemoteFile("train.bin", ({url!r},), {sha!r}),)
    return [DatasetSpec("local-remote", "Local remote", "", "binary", (1, 2, 2), 2, "none", load, files=files)]
'''


def test_cli_download_of_a_partial_file_is_refused(source, tmp_path, capsys, monkeypatch) -> None:
    (tmp_path / "plugins").mkdir()
    (tmp_path / "plugins" / "local_remote_data.py").write_text(PLUGIN.format(url=(source / "partial.bin").as_uri(), sha=SHA))
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    monkeypatch.setenv("AR_EXPLORER_PLUGINS", "local_remote_data")
    data = tmp_path / "data"
    result = run_cli(capsys, ["data", "download", "local-remote", "--data-dir", data])
    assert_cli_refused(result, "does not match its known sha-256")
    assert not (data / "train.bin").exists() and leftovers(tmp_path) == []


@pytest.mark.parametrize("dataset", ["binarized-mnist", "mnist", "mnist-threshold"])
def test_missing_data_gives_the_exact_command(dataset: str, tmp_path, capsys, registry) -> None:
    empty = tmp_path / "no data here"  # a space in the name: the command must still paste into a shell
    result = run_cli(capsys, ["train", "--model", "made", "--dataset", dataset, "--data-dir", empty,
                              "--out", tmp_path / "m", "--force"])
    line = assert_cli_refused(result, "Get it with: ar-explorer data download")
    command = shlex.split(line.split("Get it with: ", 1)[1])
    from app.cli.main import build_parser

    args = build_parser().parse_args(command[1:])
    assert command[0] == "ar-explorer" and args.data_command == "download"
    assert args.data_dir == str(empty)
    # It names a dataset whose download brings every file the one asked for needs.
    asked, named = registry.dataset(dataset), registry.dataset(args.name)
    assert {f.filename for f in asked.files} <= {f.filename for f in named.files}
    assert not (tmp_path / "m.safetensors").exists()


def test_data_list_says_what_is_missing(tmp_path, capsys) -> None:
    result = run_cli(capsys, ["data", "list", "--data-dir", tmp_path])
    assert result.code == 0
    assert "missing: ar-explorer data download binarized-mnist" in result.out


def test_eval_on_a_missing_dataset(tmp_path, capsys) -> None:
    checkpoint = tiny_checkpoint(tmp_path, meta={"dataset": "binarized-mnist"}, shape=(1, 28, 28))
    result = run_cli(capsys, ["eval", "--checkpoint", checkpoint, "--data-dir", tmp_path / "nothing"])
    assert_cli_refused(result, "ar-explorer data download binarized-mnist --data-dir")


def _corrupt_data_folders(folder: Path) -> dict[str, tuple[str, str]]:
    """dataset -> (a data folder holding a broken copy, a piece of the message)."""
    cut = folder / "cut"
    cut.mkdir()
    arrays = {s: np.zeros((4, 28, 28), np.uint8) for s in ("train", "valid", "test")}
    np.savez(cut / "binarized_mnist.npz", **arrays)
    raw = (cut / "binarized_mnist.npz").read_bytes()
    (cut / "binarized_mnist.npz").write_bytes(raw[: len(raw) // 2])
    pickled = folder / "pickled"
    pickled.mkdir()
    np.savez(pickled / "binarized_mnist.npz", train=np.array([{"x": 1}], dtype=object), valid=arrays["valid"],
             test=arrays["test"])
    amat = folder / "amat"
    amat.mkdir()
    for split in ("train", "valid", "test"):
        (amat / f"binarized_mnist_{split}.amat").write_text("0 1 2 3\n")
    idx = folder / "idx"
    idx.mkdir()
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / name).write_bytes(bytes([0, 0, 8, 3, 0, 0, 0, 9, 0, 0, 0, 28, 0, 0, 0, 28]) + b"\x00" * 100)
    return {
        "truncated npz": ("binarized-mnist", str(cut), "truncated or corrupt"),
        "pickled npz": ("binarized-mnist", str(pickled), "pickled"),
        "bad amat": ("binarized-mnist", str(amat), "not a binarized mnist .amat"),
        "truncated idx": ("mnist", str(idx), "truncated"),
    }


def test_corrupt_data_files_are_refused_in_one_line(tmp_path, capsys) -> None:
    for what, (dataset, folder, reason) in _corrupt_data_folders(tmp_path).items():
        result = run_cli(capsys, ["train", "--model", "made", "--dataset", dataset, "--data-dir", folder,
                                  "--out", tmp_path / "m", "--force"])
        assert_cli_refused(result, reason), what
    assert not (tmp_path / "m.safetensors").exists()


def test_idx_headers_that_lie(tmp_path) -> None:
    for name, data, reason in (
        ("short", b"\x00\x00\x08\x03\x00", "header is incomplete"),
        ("huge", b"\x00\x00\x08\xff" + b"\xff" * 1020, "truncated"),
        ("not idx", b"hello world", "not an idx"),
        ("empty", b"", "not an idx"),
    ):
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(DataError) as caught:
            read_idx(path)
        assert_one_line(caught.value, DataError, reason)
