"""Per-epoch checkpoints of :func:`fit` (methods/_train.py): how they are
written (whole or not at all: methods/_files.py), read (an unreadable one
is ignored), and named inside :func:`auto_checkpoint`."""
from __future__ import annotations

import contextvars
import io
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from ._files import write_atomic


class AutoCheckpoint:
    """Per-epoch checkpoint files for the :func:`fit` calls made inside
    :func:`auto_checkpoint`: the n-th call uses ``<directory>/fit-<n>.ckpt``.
    A requeued job reruns the same deterministic code, so its n-th call is
    the same training and resumes from that file.  A finished call leaves
    its last checkpoint (after the final epoch): a job killed before its
    result was stored resumes at the end, training nothing again.  The
    directory's owner removes it once the result is stored."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.calls = 0
        self.resumed_from: list[int] = []   # start epoch of each call that resumed

    def next_path(self) -> Path:
        path = self.directory / f"fit-{self.calls}.ckpt"
        self.calls += 1
        return path


_AUTO_CHECKPOINT: contextvars.ContextVar[AutoCheckpoint | None] = contextvars.ContextVar(
    "auto_checkpoint", default=None)


@contextmanager
def auto_checkpoint(directory: Path) -> Iterator[AutoCheckpoint]:
    """Within this block, every ``fit`` call that names no ``checkpoint``
    file gets one in ``directory`` (see :class:`AutoCheckpoint`)."""
    auto = AutoCheckpoint(directory)
    token = _AUTO_CHECKPOINT.set(auto)
    try:
        yield auto
    finally:
        _AUTO_CHECKPOINT.reset(token)


def active_auto_checkpoint() -> AutoCheckpoint | None:
    return _AUTO_CHECKPOINT.get()


def save_checkpoint(state: dict, path: Path) -> None:
    """Whole or not at all, but not fsynced: a checkpoint lost to a power cut
    costs epochs, not results (an unreadable one is ignored, an older one
    resumes to the same weights), and an fsync per epoch is dear for small
    models (see the report of issue 14)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(path, buffer.getbuffer(), durable=False)


def load_checkpoint(path: Path, device) -> dict | None:
    """A checkpoint's state; None if there is none, or if it cannot be read
    (torn by a crash): the training then starts afresh rather than failing."""
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as e:
        warnings.warn(f"ignoring the unreadable checkpoint {path} ({type(e).__name__}: {e}); training from the start")
        return None
