"""Files on disk: what the app reads is a regular file, read up to a limit; what it writes is written atomically.

Reading: a named pipe (FIFO), a device such as ``/dev/zero``, a socket or a folder is refused before a byte is
read, and no read goes past its limit, whatever ``stat`` says (files under ``/proc`` report a size of 0 and
hold more). Opening never blocks: a FIFO with no writer would otherwise hang the app.

Writing: a file on disk is always either as it was or complete. A temporary file beside the target, named
after it and the writing process, is moved into place in one step; one left by a process that was killed is
removed the next time that file is written. Outputs get the mode any new file gets (``0666`` less the umask,
usually ``0644``), or the mode of the file they replace. :class:`OutputLock` keeps two processes from
writing one output at the same time.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import socket
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

# Opening a FIFO for reading waits for a writer; non-blocking, it returns at once and is then refused.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)


class NotARegularFile(OSError):
    """The path exists but is a folder, a FIFO, a device or a socket: nothing the app reads."""

    def __init__(self, path: str | Path, kind: str) -> None:
        super().__init__(errno.EINVAL, f"{kind}, not a regular file", str(path))
        self.kind = kind


class FileTooLarge(OSError):
    """The file holds more bytes than the reader accepts."""

    def __init__(self, path: str | Path, limit: int, size: int | None = None) -> None:
        self.limit, self.size = limit, size
        told = f"{size / 2**20:.0f} MB" if size is not None else f"over {_megabytes(limit)}"
        super().__init__(errno.EFBIG, f"it is {told}; files over {_megabytes(limit)} are refused", str(path))


def _megabytes(count: int) -> str:
    return f"{count / 2**20:g} MB" if count >= 2**20 else f"{count} bytes"


def file_kind(mode: int) -> str:
    """What a file of ``st_mode`` ``mode`` is, in words, for a message ("a folder", "a named pipe (FIFO)"...)."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def open_regular(path: str | Path) -> BinaryIO:
    """Open ``path`` for binary reading, only if it is a regular file (checked on the open file itself).

    Raises
    ------
    NotARegularFile
        For a folder, a FIFO, a device or a socket.
    OSError
        As the system raises it (no such file, permission denied, a loop of symbolic links, ...); see
        :func:`describe_os_error` for a message.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except IsADirectoryError:
        raise NotARegularFile(path, "a folder") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a FIFO opened without a reader on some systems
            raise NotARegularFile(path, "a socket or a named pipe") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotARegularFile(path, file_kind(mode))
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refused with :class:`FileTooLarge` past ``limit`` bytes.

    A file whose size is already over the limit is refused unread; any other is read at most ``limit + 1``
    bytes far, so that a file that grows, or lies about its size, costs no more.
    """
    with open_regular(path) as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise FileTooLarge(path, limit, size)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge(path, limit)
    return data


_REASONS = {
    errno.ENOENT: "no such file or folder",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ELOOP: "a loop of symbolic links",
    errno.ENOSPC: "no space left on device",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.ENAMETOOLONG: "the name is too long",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EISDIR: "a folder, not a file",
}


def describe_os_error(exc: OSError) -> str:
    """The real reason of an ``OSError``, in a few words (``no space left on device``, ``a loop of symbolic
    links``, ``a named pipe (FIFO), not a regular file``): the user is told what to fix."""
    if isinstance(exc, (NotARegularFile, FileTooLarge)):
        return exc.strerror or str(exc)
    reason = _REASONS.get(exc.errno or 0)
    if reason is None:
        reason = (exc.strerror or str(exc) or type(exc).__name__).strip()
        reason = reason[:1].lower() + reason[1:]
    return reason


# writing -------------------------------------------------------------------------------------------------------

_TMP_SUFFIX = ".tmp"
#: A temporary file without a writer's process id (as older versions named them) is an orphan after this long.
_ANONYMOUS_ORPHAN_AGE_S = 24 * 3600


def _tmp_prefix(path: Path) -> str:
    return f".{path.name}."


def _new_tmp(path: Path) -> Path:
    """Create an empty temporary file beside ``path``, named after it and this process, with a new file's mode."""
    for _ in range(100):
        tmp = path.with_name(f"{_tmp_prefix(path)}{os.getpid()}.{secrets.token_hex(4)}{_TMP_SUFFIX}")
        try:
            # 0o666: the file gets the mode any new file gets (the umask applies), not mkstemp's 0600.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, "cannot create a temporary file", str(path.parent))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # it exists, under another user (or we cannot tell: keep its file)
    return True


def _is_orphan(tmp: Path, prefix: str) -> bool:
    middle = tmp.name[len(prefix) : -len(_TMP_SUFFIX)]
    pid_text = middle.split(".", 1)[0]
    if pid_text.isdigit() and "." in middle:
        return not _process_alive(int(pid_text))
    try:
        return time.time() - tmp.lstat().st_mtime > _ANONYMOUS_ORPHAN_AGE_S
    except OSError:
        return False


def remove_orphans(path: str | Path) -> list[Path]:
    """Remove the temporary files that writers of ``path`` killed midway left beside it; returns them."""
    path = Path(path)
    prefix = _tmp_prefix(path)
    removed = []
    try:
        candidates = [p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(_TMP_SUFFIX)]
    except OSError:
        return removed
    for tmp in candidates:
        if _is_orphan(tmp, prefix):
            with contextlib.suppress(OSError):
                tmp.unlink()
                removed.append(tmp)
    return removed


def _final_mode(path: Path) -> int | None:
    """The mode of the file being replaced (kept), or None for a new file (the one it was created with)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return None


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one step.

    If the body raises (or the process is interrupted), the temporary file is removed and ``path`` is left
    exactly as it was. Temporary files of earlier writers of ``path`` that were killed are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphans(path)
    tmp = _new_tmp(path)
    try:
        new_file_mode = stat.S_IMODE(os.stat(tmp).st_mode)  # 0666 less the umask, as the system gave it
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        # Set again: a writer may have made the file anew (safetensors creates it 0600).
        mode = _final_mode(path)
        os.chmod(tmp, new_file_mode if mode is None else mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` to produce the file, then move it into place atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


# one writer per output -----------------------------------------------------------------------------------------


class OutputBusy(OSError):
    """Another live process holds the lock of an output."""

    def __init__(self, path: Path, owner: str) -> None:
        super().__init__(errno.EBUSY, f"another process ({owner}) is writing it", str(path))
        self.owner = owner


def lock_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _lock_owner(lock: Path) -> tuple[str, int | None]:
    """``(description, pid)`` of a lock's holder, read from the lock file (pid None if unreadable)."""
    try:
        host, pid_text = lock.read_text(encoding="utf-8").split()[:2]
        pid = int(pid_text)
    except (OSError, ValueError):
        return "an unknown process", None
    return f"process {pid} on {host}", pid if host == socket.gethostname() else -1


#: The locks this process holds: a lock naming this process's id but not among them is stale (a reused id).
_HELD: set[Path] = set()


class OutputLock:
    """A lock file beside an output (``PATH.lock``, holding the host and process id of its writer).

    Taken with ``O_EXCL``, so that of two processes only one writes ``path``. A lock whose process has ended
    (killed, say) on this machine is stale and taken over. Use as a context manager, or :meth:`acquire` and
    :meth:`release`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.lock = lock_path(self.path)
        self.held = False

    def acquire(self) -> OutputLock:
        self.lock.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                owner, pid = _lock_owner(self.lock)
                ours = pid == os.getpid() and self.lock.resolve() in _HELD
                if pid is not None and pid >= 0 and not ours and (pid == os.getpid() or not _process_alive(pid)):
                    with contextlib.suppress(FileNotFoundError):
                        self.lock.unlink()  # stale: its writer is gone
                    continue
                if pid is None and self._older_than(5.0):
                    with contextlib.suppress(FileNotFoundError):
                        self.lock.unlink()  # a lock left empty by a writer killed while taking it
                    continue
                raise OutputBusy(self.path, owner) from None
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"{socket.gethostname()} {os.getpid()}\n")
            self.held = True
            _HELD.add(self.lock.resolve())
            return self
        raise OutputBusy(self.path, "another process")

    def _older_than(self, seconds: float) -> bool:
        try:
            return time.time() - self.lock.stat().st_mtime > seconds
        except OSError:
            return True

    def release(self) -> None:
        if self.held:
            self.held = False
            _HELD.discard(self.lock.resolve())
            with contextlib.suppress(FileNotFoundError):
                self.lock.unlink()

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(path: str | Path) -> bool:
    """Whether a live process holds the lock of ``path`` (a stale lock does not count)."""
    lock = lock_path(path)
    if not lock.exists():
        return False
    _, pid = _lock_owner(lock)
    if pid == os.getpid():
        return lock.resolve() in _HELD
    return pid is None or pid < 0 or _process_alive(pid)
