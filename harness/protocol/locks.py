"""File locks: one writer at a time, across processes and (on file systems
that support flock) nodes."""
from __future__ import annotations

import fcntl
from contextlib import contextmanager
from pathlib import Path

from unlearnbench.methods import WriteError, make_dirs


@contextmanager
def file_lock(path: Path):
    """An exclusive lock on ``path`` (flock): one trainer per cache entry,
    across processes and, on file systems that support it, nodes."""
    path = Path(path)
    make_dirs(path.parent)
    try:
        f = open(path, "a")
    except OSError as e:   # a full disk can refuse the lock file's inode too
        raise WriteError(e.errno, e.strerror, str(path)) from None
    with f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
