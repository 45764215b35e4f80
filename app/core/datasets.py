"""Datasets: specs, the data folder, MNIST readers (IDX, .amat, .npz without pickle), verified downloads.

Images are ``uint8`` arrays ``(N, C, H, W)`` of integer values ``0 .. K-1``; labels ``int64`` ``(N,)`` or None.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import math
import os
import shlex
import shutil
import subprocess
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.errors import DataError
from app.core.files import atomic_path

ProgressCallback = Callable[[int, int], None]  # (bytes done, bytes total or 0)


@dataclass
class DataSplit:
    """One split of a dataset."""

    images: np.ndarray  # (N, C, H, W) uint8
    labels: np.ndarray | None = None  # (N,) int64

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def subset(self, n: int) -> DataSplit:
        return DataSplit(self.images[:n], None if self.labels is None else self.labels[:n])


@dataclass(frozen=True)
class RemoteFile:
    """A file a dataset downloads: where from, where to, and the checksums of its decompressed content."""

    filename: str  # name in the data folder, after decompression
    urls: tuple[str, ...]
    sha256: str
    size: int = 0
    gzipped: bool = False  # the download is gzip-compressed and is stored decompressed


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset as a plugin registers it.

    ``load(split, data_dir)`` returns a :class:`DataSplit` or raises :class:`DataError` with the exact
    command that gets the data. ``binarization`` names how grey levels became the values the models see: NLL
    figures are only comparable within one binarization.
    """

    name: str
    title: str
    description: str
    kind: str  # binary | grey | colour | 1d | 2d
    shape: tuple[int, int, int]
    num_values: int
    binarization: str
    load: Callable[[str, Path], DataSplit]
    splits: tuple[str, ...] = ("train", "valid", "test")
    files: tuple[RemoteFile, ...] = field(default_factory=tuple)
    offline: bool = False  # needs no download
    has_labels: bool = False
    citation: str = ""

    def describe(self) -> str:
        return f"{self.title} ({self.binarization})"


def default_data_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ar-explorer" / "data"


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """``--data-dir`` if given, else ``AR_EXPLORER_DATA``, else a folder in the user's cache."""
    if data_dir:
        return Path(data_dir).expanduser()
    env = os.environ.get("AR_EXPLORER_DATA")
    if env:
        return Path(env).expanduser()
    return default_data_dir()


def find_file(data_dir: Path, names: Sequence[str], subdirs: Sequence[str]) -> Path | None:
    """The first of ``names`` found in ``data_dir`` or one of its ``subdirs``."""
    for sub in ("", *subdirs):
        for name in names:
            candidate = data_dir / sub / name if sub else data_dir / name
            if candidate.is_file():
                return candidate
    return None


def _open_maybe_gzip(path: Path):
    with open(path, "rb") as handle:
        magic = handle.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or not): the MNIST format of LeCun and Cortes."""
    try:
        with _open_maybe_gzip(path) as handle:
            data = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is not a readable IDX file: {exc}") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path} is truncated: its header is incomplete")
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = math.prod(dims)  # Python integers: a forged header cannot overflow them
    if len(data) - header != expected:
        claimed = str(expected) if expected < 10**12 else "more than 10^12"
        raise DataError(f"{path} is truncated: {len(data) - header} bytes of data, the header says {claimed}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def read_amat(path: Path, dims: int = 784) -> np.ndarray:
    """Read a Larochelle & Murray ``.amat`` file (one image a line, values 0/1 separated by spaces)."""
    try:
        with _open_maybe_gzip(path) as handle:
            raw = handle.read()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DataError(f"{path} is not a readable .amat file: {exc}") from None
    line = 2 * dims
    if len(raw) % line != 0:
        raise DataError(f"{path} is not a binarized MNIST .amat file (its size is not a whole number of lines)")
    if not raw:
        raise DataError(f"{path} is empty: it holds no images")
    array = np.frombuffer(raw, dtype=np.uint8).reshape(-1, line)
    values = array[:, 0::2] - ord("0")
    if values.max(initial=0) > 1 or not np.all(array[:, 1:-1:2] == ord(" ")):
        raise DataError(f"{path} holds values other than 0 and 1, or is not separated by single spaces")
    return values.reshape(-1, 28, 28).astype(np.uint8)


def read_npz(path: Path, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """Read arrays from an ``.npz`` file, refusing any pickled object inside."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise DataError(f"{path} is not a readable .npz file: {exc}") from None
    if magic != b"PK\x03\x04":
        raise DataError(f"{path} is not an .npz file (it is empty, truncated or of another format)")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise DataError(f"{path} lacks the array(s) {', '.join(missing)}")
            return {k: np.asarray(data[k]) for k in keys}
    except ValueError:  # object arrays need pickle: refused
        raise DataError(f"{path} holds pickled objects; it is refused, because unpickling can run code") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise DataError(f"{path} is not a readable .npz file (truncated or corrupt: {exc})") from None


def _hash_file(path: Path, algorithm: str = "sha256") -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, remote: RemoteFile) -> None:
    """Raise :class:`DataError` unless ``path`` holds exactly the expected (decompressed) content."""
    actual = _hash_file(path)
    if actual != remote.sha256:
        raise DataError(
            f"{remote.filename} does not match its known SHA-256 (expected {remote.sha256[:16]}..., got "
            f"{actual[:16]}...): the file is partial or not the original; it was not used"
        )


def download_file(remote: RemoteFile, data_dir: Path, progress: ProgressCallback | None = None) -> Path:
    """Download ``remote`` into ``data_dir``, decompress, verify, and only then move it into place.

    A partial, interrupted or tampered download never replaces anything in the data folder.
    """
    target = data_dir / remote.filename
    errors = []
    for url in remote.urls:
        try:
            with atomic_path(target) as tmp:
                raw_tmp = tmp.with_suffix(".download")
                try:
                    _fetch(url, raw_tmp, progress)
                    if remote.gzipped:
                        with gzip.open(raw_tmp, "rb") as src, open(tmp, "wb") as dst:
                            shutil.copyfileobj(src, dst, 1 << 20)
                    else:
                        shutil.move(raw_tmp, tmp)
                    verify_file(tmp, remote)
                finally:
                    raw_tmp.unlink(missing_ok=True)
            return target
        except (OSError, EOFError, ValueError, http.client.HTTPException, DataError) as exc:
            # OSError covers URLError and BadGzipFile; ValueError a malformed URL; HTTPException a cut connection.
            errors.append(f"{url}: {' '.join(str(exc).split()) or type(exc).__name__}")
    raise DataError(f"could not download {remote.filename}: " + "; ".join(errors))


def _fetch(url: str, dest: Path, progress: ProgressCallback | None) -> None:
    request = urllib.request.Request(url, headers={"User-Agent": "ar-explorer"})
    with urllib.request.urlopen(request, timeout=60) as response, open(dest, "wb") as out:
        total = int(response.headers.get("Content-Length") or 0)
        done = 0
        while True:
            block = response.read(1 << 16)
            if not block:
                break
            out.write(block)
            done += len(block)
            if progress is not None:
                progress(done, total)


def download_dataset(spec: DatasetSpec, data_dir: Path, progress: Callable[[str, int, int], None] | None = None) -> list[Path]:
    """Fetch every file of ``spec`` that is not already present and verified."""
    if not spec.files:
        raise DataError(f"{spec.name} needs no download" if spec.offline else f"{spec.name} has nothing to download")
    data_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for remote in spec.files:
        target = data_dir / remote.filename
        if target.is_file():
            try:
                verify_file(target, remote)
                paths.append(target)
                continue
            except DataError:
                pass  # re-download over a bad copy (atomically)
        callback = (lambda done, total, name=remote.filename: progress(name, done, total)) if progress else None
        paths.append(download_file(remote, data_dir, callback))
    return paths


def missing_data_message(spec: DatasetSpec, data_dir: Path, looked_for: str) -> str:
    """The message for a dataset that is not in ``data_dir``, ending with the command that gets it (quoted
    for the shell, so that it can be pasted whatever the folder's name)."""
    return (
        f"{spec.title} is not in {data_dir} (looked for {looked_for}). Get it with: "
        f"ar-explorer data download {spec.name} --data-dir {_shell_quote(str(data_dir))}"
    )


def _shell_quote(text: str) -> str:
    if os.name == "nt":
        return subprocess.list2cmdline([text])
    return shlex.quote(text)
