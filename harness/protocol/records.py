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
from pathlib import Path

from unlearnbench.methods import append_line, write_atomic

FINAL_STATUSES = ("ok", "diverged")
SCHEMA = 1


def write_json_atomic(path: Path, obj) -> None:
    """Write JSON whole and durably, or nothing (methods/_files.py): a reader,
    a killed writer or a power cut never leaves a half-written file."""
    write_atomic(path, (json.dumps(obj, indent=1, sort_keys=True, allow_nan=True) + "\n").encode())


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, text.encode())


def append_json_line(path: Path, obj) -> None:
    """Append one JSON line (a single O_APPEND write, flushed): lines written
    by concurrent processes never interleave (on a local file system)."""
    append_line(path, json.dumps(obj, sort_keys=True) + "\n")


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
        **reproducibility(),
    }


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo on Linux, else the platform's processor string)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def reproducibility() -> dict:
    """What decides whether two runs can be bit-identical: the CPU model and
    the vector instructions torch dispatches to, torch's intra-op threads, its
    BLAS backend and whether deterministic algorithms are on."""
    import torch

    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for line in config.splitlines() for part in line.replace(",", " ").split()
                 if part.startswith("BLAS_INFO=")), "unknown")
    capability = getattr(torch.backends.cpu, "get_cpu_capability", lambda: "unknown")()
    return {"cpu_model": cpu_model(), "cpu_capability": capability, "torch_threads": torch.get_num_threads(),
            "blas": blas, "deterministic": bool(torch.are_deterministic_algorithms_enabled())}


REPRODUCIBILITY_KEYS = ("cpu_model", "cpu_capability", "torch_threads", "blas", "deterministic", "torch", "device")


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
