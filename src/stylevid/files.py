"""Input checks and atomic output (L1: standard library only).

FFmpeg treats path strings as URLs (``concat:a|b``, ``http://``, ``subfile,``) and a FIFO hangs a
reader forever, so every input is checked to be an existing regular file first. Every output is
written under a temporary name in the same folder, synced, then renamed: a crash never leaves a
partial file under the final name.
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Iterator

from .errors import BadInput, InputNotFound, OutputRefused, WriteFailed

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_UMASK = os.umask(0o022)   # read once at import (single-threaded then); restored at once
os.umask(_UMASK)


def check_input(path: str | os.PathLike, what: str = "input") -> Path:
    """Return the path of an existing, non-empty regular file, or raise a one-line error."""
    s = os.fspath(path)
    if _URL.match(s) and not (len(s) > 1 and s[1] == ":" and os.name == "nt"):
        if not os.path.exists(s):
            raise BadInput(f"{s}: URLs and protocol paths are not accepted; give a local file")
    p = Path(s)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise InputNotFound(f"{s}: {what} not found") from None
    except OSError as e:
        raise InputNotFound(f"{s}: cannot read {what} ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise BadInput(f"{s}: is a directory, expected {'an' if what[:1] in 'aeiou' else 'a'} {what} file")
    if not stat.S_ISREG(st.st_mode):
        raise BadInput(f"{s}: not a regular file (FIFO, device or socket)")
    if st.st_size == 0:
        raise BadInput(f"{s}: empty file")
    if not os.access(p, os.R_OK):
        raise InputNotFound(f"{s}: not readable")
    return p


def check_output(out: str | os.PathLike, inputs: list[Path] | tuple = (), overwrite: bool = False) -> Path:
    """Refuse an output that exists (unless overwrite), is one of the inputs, or cannot be written."""
    p = Path(out)
    for i in inputs:
        try:
            if p.exists() and p.samefile(i) or p.resolve() == Path(i).resolve():
                raise OutputRefused(f"{p}: output would overwrite an input")
        except OSError:
            pass
    if p.is_dir():
        raise OutputRefused(f"{p}: output is a directory")
    if p.exists() and not overwrite:
        raise OutputRefused(f"{p}: exists; pass --overwrite to replace it")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise OutputRefused(f"{p}: folder {parent} does not exist (make it first: mkdir -p {parent})")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputRefused(f"{p}: folder {parent} is not writable")
    return p


def write_failed(path: Path | str, e: BaseException) -> WriteFailed:
    """Turn an OS error (disk full, permissions) into a one-line WriteFailed."""
    if isinstance(e, OSError) and e.errno == errno.ENOSPC:
        return WriteFailed(f"{path}: disk full")
    reason = getattr(e, "strerror", None) or (str(e).splitlines()[0] if str(e) else type(e).__name__)
    return WriteFailed(f"{path}: write failed ({reason})")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success fsync it and rename it to ``final``.

    The temporary keeps the final extension last (``.out.mp4.tmp123.mp4``) so format detection by
    name still works. On any error the temporary is removed and nothing appears under ``final``.
    """
    final = Path(final)
    ext = suffix if suffix is not None else final.suffix
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".part{ext}", dir=final.parent or ".")
    except OSError as e:   # a missing or read-only folder, a full disk (no inode left)
        raise write_failed(final, e) from e
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)   # mkstemp creates 0600: give outputs the usual permissions
    except OSError:
        pass
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp_path, final)
        _fsync_dir(final.parent)
    except BaseException as e:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        if isinstance(e, OSError) or (isinstance(e, RuntimeError) and "write" in str(e).lower()):
            raise write_failed(final, e) from e
        raise


def atomic_write_bytes(final: str | os.PathLike, data: bytes) -> None:
    with atomic_path(final) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(final: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(final, text.encode("utf-8"))


def clean_stale_temporaries(folder: Path, pattern: str = ".*.part*") -> int:
    """Remove ``.*.part*`` files (or those matching ``pattern``) a killed run left behind; return how many."""
    n = 0
    for f in Path(folder).glob(pattern):
        with contextlib.suppress(OSError):
            f.unlink()
            n += 1
    return n


def _fsync_dir(d: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(d or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def exclusive(lock_file: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an advisory lock (flock) on ``lock_file``; a second holder is refused at once.

    The kernel drops the lock when the process dies (even with kill -9), so no stale lock remains.
    The lock file is removed when the holder is done (success, error or interrupt), while the lock
    is still held. That alone would let two runs in: a process that opened the file just before
    it was unlinked would lock the orphaned inode, and a third one would create and lock a new
    file. So a process that gets the lock checks that the file it locked is still the one at the
    path (same device and inode) and starts over otherwise. The lock file's folder is created if
    it is missing (another run may just have removed it, empty).
    """
    import fcntl

    lock_file = Path(lock_file)
    for _ in range(_LOCK_TRIES):
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        except FileNotFoundError:          # the folder was removed by a run that just ended
            lock_file.parent.mkdir(parents=True, exist_ok=True)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputRefused(f"{what}: another stylevid run is writing it (lock {lock_file})") from None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, lock_file):
            break
        os.close(fd)                       # we locked a file its holder had already removed
    else:
        raise OutputRefused(f"{what}: cannot take the lock {lock_file} (it keeps being replaced)")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock_file)           # still holding the lock: see above
        os.close(fd)


_LOCK_TRIES = 100


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)
