"""The reference-model cache on disk: ``<cache>/<kind>/<key>/`` holds one
model trained once — ``model.pt`` (a state dict, loaded with
``weights_only=True``; the Original's entry also holds ``theta0.pt``) and
``meta.json`` (what it is, how long it took, and the size and SHA-256 of
every file) — for every process and Slurm task that needs it.

``meta.json`` is written last, after the files it describes, all durably
(methods/_files.py): an entry without it is not trained yet (its training
may have left per-epoch checkpoints to resume from).  Every load checks the
files against it.  An entry whose file is missing, truncated, does not match
its checksum or does not load is *damaged*: it is moved into
``<cache>/quarantine/<kind>/<key>-<when>/`` (with ``reason.json``) with a
one-line warning naming it, and retrained; the run goes on.

One trainer per entry: the entry's ``lock`` (flock) is held while it is
repaired or trained (the lock file itself never moves), so a second process
waits and then loads it.  Every training is logged, one JSON line each, to
``<cache>/trainings.jsonl`` (by whom, how long, resumed from which epoch):
the proof that no model is trained twice.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import socket
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from unlearnbench.methods import WriteError, fsync_dir, write_atomic

from .locks import file_lock
from .records import append_json_line, write_json_atomic

MODEL, META, LOCK, LOG = "model.pt", "meta.json", "lock", "trainings.jsonl"
CHECKPOINTS, QUARANTINE, REASON = "checkpoints", "quarantine", "reason.json"


class Damaged(Exception):
    """What is wrong with a cache entry (a file missing, truncated, altered or unloadable)."""


def state_bytes(state: dict) -> memoryview:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getbuffer()


def _valid_files(files) -> bool:
    return isinstance(files, dict) and all(
        isinstance(f, dict) and isinstance(f.get("bytes"), int) and isinstance(f.get("sha256"), str)
        for f in files.values())


def read_entry(entry: Path, device) -> tuple[dict, dict] | None:
    """The entry's state dicts ({file name: state}) and metadata, each file
    checked against ``meta.json``; None if not trained yet (no ``meta.json``);
    :class:`Damaged` if a file is missing, truncated, altered or unloadable."""
    try:
        meta = json.loads((entry / META).read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise Damaged(f"{META} is unreadable: {type(e).__name__}: {e}") from None
    if not isinstance(meta, dict) or "train_time_s" not in meta or not _valid_files(meta.get("files", {})):
        raise Damaged(f"{META} is malformed")
    files = meta.get("files")
    if files is None:   # written before checksums were recorded: checked by loading
        files = {p.name: None for p in sorted(entry.glob("*.pt"))} or {MODEL: None}
    states = {}
    for name, expected in files.items():
        try:
            data = (entry / name).read_bytes()
        except FileNotFoundError:
            raise Damaged(f"{name} is missing") from None
        if expected is not None:
            if len(data) < expected["bytes"]:
                raise Damaged(f"{name} is truncated: {len(data)} of {expected['bytes']} bytes")
            if len(data) != expected["bytes"] or hashlib.sha256(data).hexdigest() != expected["sha256"]:
                raise Damaged(f"{name} does not match its checksum")
        try:
            states[name] = torch.load(io.BytesIO(data), map_location=device, weights_only=True)
        except Exception as e:
            first = (str(e).strip().splitlines() or [""])[0]
            raise Damaged(f"{name} does not load: {type(e).__name__}: {first[:100]}"
                          + ("..." if len(first) > 100 else "")) from None
    return states, meta


def quarantined_entries(root) -> list[dict]:
    """The damaged entries moved aside (their ``reason.json``, plus ``folder``), oldest first."""
    found = []
    for path in Path(root).glob(f"{QUARANTINE}/*/*/{REASON}"):
        try:
            found.append({**json.loads(path.read_text()), "folder": str(path.parent)})
        except (OSError, ValueError):
            found.append({"entry": f"{path.parent.parent.name}/{path.parent.name}", "reason": "?",
                          "folder": str(path.parent)})
    return sorted(found, key=lambda q: q.get("moved", ""))


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ModelCache:
    """Entries ``<root>/<kind>/<key>/``, each trained once (see the module's docstring)."""

    def __init__(self, root, device, warn: Callable[[str], None] | None = None):
        self.root = Path(root)
        self.device = device
        self.warn = warn or _stderr     # the one-line warning of a damaged entry
        self.trainings = 0     # how many models this process trained into the cache

    def kind_dir(self, kind: str) -> Path:
        return self.root / kind

    def entry(self, kind: str, key: str) -> Path:
        return self.kind_dir(kind) / key

    def answer_keys(self) -> list[Path]:
        """The folders a method must not read: the retrains, and the quarantine (damaged ones)."""
        return [self.kind_dir("retrain"), self.root / QUARANTINE]

    def load_or_train(self, entry: Path, train: Callable, meta: dict, log: dict) -> tuple[dict, float]:
        """The state dicts ({file name: state}, on the device) and training
        seconds of ``entry``, trained first by ``train() -> ({file name:
        state}, seconds, resumed_from_epoch)`` if absent or damaged;
        ``meta`` is stored beside the files, ``log`` (kind, run, epochs) in
        the trainings log."""
        try:
            found = read_entry(entry, self.device)   # the common case: trained and whole, no lock needed
        except Damaged:
            found = None                              # repaired under the lock, by one process
        if found is None:
            with file_lock(entry / LOCK):
                try:
                    found = read_entry(entry, self.device)
                except Damaged as e:
                    self.quarantine(entry, str(e))
                if found is None:
                    states, seconds, resumed_from = train()
                    self.log_training(entry.name, seconds, resumed_from, **log)
                    found = states, self.commit(entry, states, {**meta, "train_time_s": seconds})
        if (entry / CHECKPOINTS).exists():   # left by a process killed between commit and clean-up
            shutil.rmtree(entry / CHECKPOINTS, ignore_errors=True)
        states, meta = found
        return states, meta["train_time_s"]

    @staticmethod
    def commit(entry: Path, states: dict, meta: dict) -> dict:
        """Write the files, then ``meta.json`` with their sizes and checksums (the
        commit), then drop the training's checkpoints; returns the metadata."""
        files = {}
        for name, state in states.items():
            data = state_bytes(state)
            write_atomic(entry / name, data)
            files[name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        meta = {**meta, "files": files}
        write_json_atomic(entry / META, meta)
        shutil.rmtree(entry / CHECKPOINTS, ignore_errors=True)
        return meta

    def quarantine(self, entry: Path, reason: str) -> Path:
        """Move a damaged entry's files (all but its lock) to ``<root>/quarantine/``, with a warning."""
        now = datetime.now(timezone.utc)
        name = f"{entry.parent.name}/{entry.name}"
        dest = self.root / QUARANTINE / entry.parent.name / f"{entry.name}-{now:%Y%m%dT%H%M%S}-{os.getpid()}"
        write_json_atomic(dest / REASON, {"entry": name, "reason": reason, "host": socket.gethostname(),
                                          "pid": os.getpid(), "moved": now.isoformat(timespec="seconds")})
        try:   # meta.json first: an entry interrupted half-way through the move is one not trained yet
            for item in sorted(entry.iterdir(), key=lambda p: p.name != META):
                if item.name != LOCK:    # waiting processes hold the lock file: it stays
                    os.replace(item, dest / item.name)
            fsync_dir(entry)
            fsync_dir(dest)
        except OSError as e:
            raise WriteError(e.errno, e.strerror, str(dest)) from None
        self.warn(f"warning: cache entry {name} is damaged ({reason}); moved to {dest}, retraining it")
        return dest

    def log_training(self, key: str, seconds: float, resumed_from_epoch: int, **fields) -> None:
        """Count a training and append it to ``trainings.jsonl``."""
        self.trainings += 1
        append_json_line(self.root / LOG, {
            **fields, "key": key, "train_time_s": seconds, "resumed_from_epoch": resumed_from_epoch,
            "host": socket.gethostname(), "pid": os.getpid(),
            "slurm_job": os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")),
            "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
