"""The reference-model cache on disk: ``<cache>/<kind>/<key>/`` holds one
model trained once — ``model.pt`` (a state dict, loaded with
``weights_only=True``) and ``meta.json`` (what it is, how long it took) —
for every process and Slurm task that needs it.

One trainer per entry: the entry's ``lock`` (flock) is held while it is
trained, so a second process waits and then loads it.  Every training is
logged, one JSON line each, to ``<cache>/trainings.jsonl`` (by whom, how
long, resumed from which epoch): the proof that no model is trained twice.
"""
from __future__ import annotations

import json
import os
import socket
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import torch

from .locks import file_lock
from .records import append_json_line, write_json_atomic

MODEL, META, LOCK, LOG = "model.pt", "meta.json", "lock", "trainings.jsonl"


def save_state(state: dict, path: Path) -> None:
    """Write a state dict atomically (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_state(path: Path, device) -> dict:
    return torch.load(path, map_location=device, weights_only=True)


class ModelCache:
    """Entries ``<root>/<kind>/<key>/``, each trained once (see the module's docstring)."""

    def __init__(self, root, device):
        self.root = Path(root)
        self.device = device
        self.trainings = 0     # how many models this process trained into the cache

    def kind_dir(self, kind: str) -> Path:
        return self.root / kind

    def entry(self, kind: str, key: str) -> Path:
        return self.kind_dir(kind) / key

    def load_or_train(self, entry: Path, train: Callable, meta: dict, log: dict) -> tuple[dict, float]:
        """The state dict (on the device) and training seconds of ``entry``,
        trained first by ``train() -> (model, seconds, resumed_from_epoch)``
        if absent; ``meta`` is stored beside the model, ``log`` (kind, run)
        in the trainings log."""
        with file_lock(entry / LOCK):
            if not (entry / META).exists():
                model, seconds, resumed_from = train()
                self.log_training(entry.name, seconds, resumed_from, **log)
                save_state(model.state_dict(), entry / MODEL)
                write_json_atomic(entry / META, {**meta, "train_time_s": seconds})
        return load_state(entry / MODEL, self.device), json.loads((entry / META).read_text())["train_time_s"]

    def log_training(self, key: str, seconds: float, resumed_from_epoch: int, kind: str, run: str) -> None:
        """Count a training and append it to ``trainings.jsonl``."""
        self.trainings += 1
        append_json_line(self.root / LOG, {
            "kind": kind, "key": key, "run": run, "train_time_s": seconds,
            "resumed_from_epoch": resumed_from_epoch, "host": socket.gethostname(), "pid": os.getpid(),
            "slurm_job": os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")),
            "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})
