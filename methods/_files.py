"""Durable, atomic file writes: the one way the package writes a file.

:func:`write_atomic` writes a temporary file beside the target, flushes it
to the disk (``fsync``), renames it over the target and then flushes the
folder, so that after a crash — a killed process, a lost node, a power cut —
the path holds the old content or the new, never a torn or empty file.
:func:`append_line` appends one line with a single ``O_APPEND`` write,
flushed the same way (a line cut short by a full disk is cut off again).  A
write that fails (a full disk, a quota, an I/O error) leaves nothing partial
and raises :class:`WriteError`, which names the path.

It lives in ``methods/`` because the training loop's checkpoints need it and
``methods/`` imports nothing from ``harness/``; the harness uses it for
everything else (records, models, splits, manifests, logs, figures).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import socket
import tempfile
import time
from pathlib import Path

# A temporary file names its writer: ``.<name>.<random>.<pid>@<host>.tmp``, so that the
# leftovers of a killed writer can be told from a live writer's (remove_stale_temporaries).
TEMPORARY = re.compile(r"\.(\d+)@([^/@]+)\.tmp\Z")
STALE_AFTER_S = 24 * 3600   # a temporary file of another machine this old has no live writer


class WriteError(OSError):
    """A file could not be written; nothing partial is left at ``filename``."""

    def __str__(self) -> str:
        code = errno.errorcode.get(self.errno)
        return f"cannot write {self.filename}: {self.strerror}" + (f" ({code})" if code else "")


def _write_error(path: Path, e: OSError) -> WriteError:
    if isinstance(e, WriteError):
        return e
    return WriteError(e.errno or errno.EIO, e.strerror or str(e), str(path))


def _write_all(fd: int, data, written: list | None = None) -> None:
    """Write all of ``data`` (os.write may write less than asked), counting into ``written[0]``."""
    view = memoryview(data).cast("B")
    written = written if written is not None else [0]
    while view:
        n = os.write(fd, view)
        written[0] += n
        view = view[n:]


def fsync_dir(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file in it) to the disk.
    A file system that cannot flush a folder (EINVAL, ENOTSUP: some FUSE and
    network mounts) is not an error: it has nothing to flush this way."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    except OSError as e:
        if e.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
    finally:
        os.close(fd)


_UMASK = os.umask(0o022)   # read once, at import (single-threaded), and put back
os.umask(_UMASK)


def make_dirs(folder: Path) -> None:
    """``mkdir -p``, each new folder's entry flushed in its parent; WriteError on failure."""
    folder = Path(folder)
    if folder.is_dir():
        return
    make_dirs(folder.parent)
    try:
        folder.mkdir(exist_ok=True)
        fsync_dir(folder.parent)
    except OSError as e:
        raise _write_error(folder, e) from None


def write_atomic(path, data, durable: bool = True) -> None:
    """Write ``data`` (bytes) to ``path``: all of it, durably, or nothing (see
    the module's docstring).  ``durable=False`` skips the two fsyncs: still
    whole or nothing after a killed process, but a power cut may lose it
    (for files whose loss costs time, not results: training checkpoints)."""
    path = Path(path)
    make_dirs(path.parent)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".{os.getpid()}@{socket.gethostname()}.tmp",
                                   dir=path.parent)
        try:
            os.fchmod(fd, 0o666 & ~_UMASK)   # as open() would make it (mkstemp's 0600 hides records from a group)
            _write_all(fd, data)
            if durable:
                os.fsync(fd)          # the data is on the disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
        tmp = None
        if durable:
            fsync_dir(path.parent)    # and the new name is on the disk too
    except OSError as e:
        raise _write_error(path, e) from None
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)


def append_line(path, line: str) -> None:
    """Append ``line`` (one line, ending in a newline) with a single ``O_APPEND``
    write, then flush it: lines of concurrent writers never interleave (on a
    local file system)."""
    path = Path(path)
    make_dirs(path.parent)
    written = [0]
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            _write_all(fd, line.encode(), written)
            os.fsync(fd)
        except OSError:
            if written[0]:     # no line cut short: the file ends where it did (ours is the last write)
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, os.fstat(fd).st_size - written[0])
            raise
        finally:
            os.close(fd)
    except OSError as e:
        raise _write_error(path, e) from None


def _writer_gone(pid: int, host: str, age_s: float) -> bool:
    if host != socket.gethostname():
        return age_s > STALE_AFTER_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:   # alive, another user's
        return False
    return False


def remove_stale_temporaries(*folders) -> list[Path]:
    """Remove, under ``folders``, the temporary files of writers that are gone
    (killed mid-write: a process of this machine no longer running, or a day
    old); returns them.  A live writer's temporary file is left alone."""
    removed, now = [], time.time()
    for folder in dict.fromkeys(Path(f) for f in folders):
        if not folder.is_dir():
            continue
        for tmp in folder.rglob(".*.tmp"):
            match = TEMPORARY.search(tmp.name)
            try:
                if match and _writer_gone(int(match.group(1)), match.group(2), now - tmp.stat().st_mtime):
                    tmp.unlink()
                    removed.append(tmp)
            except FileNotFoundError:   # its writer finished (or another cleaner was first)
                continue
    return removed
