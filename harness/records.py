"""Run records: one JSON file per run, written atomically.

``<out>/runs/<key>.json`` where ``key`` hashes the run's full configuration.
A record whose status is ``ok`` or ``diverged`` is final: a rerun skips it.
A ``failed`` record (an exception, with its traceback) is retried.
"""
from __future__ import annotations

import json
import os
import platform
import socket
import tempfile
from pathlib import Path

FINAL_STATUSES = ("ok", "diverged")
SCHEMA = 1


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON to a temporary file in the same folder, then rename: a
    reader (or a killed writer) never sees a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=1, sort_keys=True, allow_nan=True)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_json_line(path: Path, obj) -> None:
    """Append one JSON line with a single O_APPEND write: lines written by
    concurrent processes never interleave (on a local file system)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = (json.dumps(obj, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def environment(device: str) -> dict:
    """Library versions and the machine, stored in every record."""
    import numpy
    import sklearn
    import torch

    return {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
        "sklearn": sklearn.__version__, "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(), "hostname": socket.gethostname(), "device": device,
        "cuda": torch.cuda.get_device_name() if device.startswith("cuda") else None,
    }


class RecordStore:
    def __init__(self, out: Path):
        self.out = Path(out)
        self.runs = self.out / "runs"

    def path(self, key: str) -> Path:
        return self.runs / f"{key}.json"

    def read(self, key: str) -> dict | None:
        try:
            return json.loads(self.path(key).read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None

    def is_done(self, key: str) -> bool:
        rec = self.read(key)
        return rec is not None and rec.get("status") in FINAL_STATUSES

    def write(self, record: dict) -> Path:
        path = self.path(record["key"])
        write_json_atomic(path, record)
        return path

    def all(self) -> list[dict]:
        if not self.runs.is_dir():
            return []
        records = []
        for p in sorted(self.runs.glob("*.json")):
            try:
                records.append(json.loads(p.read_text()))
            except json.JSONDecodeError:
                continue
        return records
