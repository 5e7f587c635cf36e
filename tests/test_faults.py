"""Faults a long sweep meets, on a small real grid: a damaged reference-cache
entry (quarantined, retrained once, the run goes on), durable writes (every
file fsynced before its rename, its folder after), a full disk (one line,
exit status 74, nothing partial, a rerun finishes), and the temporary files
of killed writers (removed by the next run).  The kill-at-random test is
tests/test_kill.py; the node that goes down, tests/test_slurm.py."""
from __future__ import annotations

import errno
import json
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from unlearnbench.harness.cli import main
from unlearnbench.harness.cluster.status import collect
from unlearnbench.harness.errors import WRITE_FAILED
from unlearnbench.harness.protocol.cache import read_entry
from unlearnbench.harness.protocol.records import RecordStore
from unlearnbench.methods import WriteError, append_line, remove_stale_temporaries, write_atomic

GRID = ["--datasets", "digits", "--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
        "--methods", "original,retrain,finetune", "--floor-retrains", "0", "--train-arg", "epochs=5",
        "--cpus-per-task", "1", "--no-leaderboard"]
TEMPORARY_NAME = re.compile(r"\A\.(.+)\.[a-z0-9_]+\.\d+@[^/@]+\.tmp\Z")   # methods/_files.py's naming


def cli(*args) -> int:
    """`unlearnbench ARGS` in this process (the torch threads restored afterwards)."""
    threads = torch.get_num_threads()
    try:
        return main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)


def comparable(record: dict) -> dict:
    """A record without what differs between two runs of it (times, dates, the machine's state)."""
    return {"status": record["status"], "config": record["config"], "sizes": record.get("sizes"),
            "forget_indices": record.get("forget_indices"),
            "reference": {k: v for k, v in (record.get("reference") or {}).items() if not k.endswith("time_s")},
            "metrics": {k: v for k, v in record["metrics"].items() if k not in ("time_s", "rte")}}


def records_of(out) -> dict:
    return {r["key"]: comparable(r) for r in RecordStore(out).all()}


def trainings(cache) -> list[dict]:
    log = Path(cache) / "trainings.jsonl"
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def temporaries(*folders) -> list[Path]:
    return [p for f in folders if Path(f).exists() for p in Path(f).rglob("*.tmp")]


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """The grid run once, undisturbed: its records and its cache."""
    base = tmp_path_factory.mktemp("clean")
    assert cli("run", *GRID, "--out", base / "out", "--cache-dir", base / "cache") == 0
    return base / "out", base / "cache"


# ---- durable writes ---------------------------------------------------------------------------------------

def test_write_atomic_fsyncs_the_file_before_the_rename_and_the_folder_after(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}"))),
                                                  real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", str(b))), real_replace(a, b))[1])
    target = tmp_path / "new" / "x.json"
    write_atomic(target, b'{"a": 1}\n')
    assert target.read_bytes() == b'{"a": 1}\n' and not temporaries(tmp_path)
    kinds = [(kind, TEMPORARY_NAME.sub(r"\1", Path(p).name) if kind == "fsync" else Path(p).name)
             for kind, p in events]
    # the new folder's entry in its parent, the data, the rename, then the folder holding the new name
    assert kinds == [("fsync", tmp_path.name), ("fsync", "x.json"), ("replace", "x.json"), ("fsync", "new")]
    events.clear()
    append_line(tmp_path / "log.jsonl", "{}\n")
    assert events == [("fsync", str(tmp_path / "log.jsonl"))]


def test_a_file_system_that_cannot_flush_a_folder_is_not_an_error(tmp_path, monkeypatch):
    real_fsync = os.fsync

    def fsync(fd):
        if os.path.isdir(os.readlink(f"/proc/self/fd/{fd}")):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    write_atomic(tmp_path / "a" / "x.json", b"{}\n")
    assert (tmp_path / "a" / "x.json").read_bytes() == b"{}\n"
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(OSError(errno.EIO, os.strerror(errno.EIO))))
    with pytest.raises(WriteError, match="Input/output error"):     # a real flush failure is one
        write_atomic(tmp_path / "a" / "y.json", b"{}\n")
    assert not temporaries(tmp_path) and not (tmp_path / "a" / "y.json").exists()


def test_every_file_a_run_and_a_sweep_write_is_fsynced(tmp_path, monkeypatch):
    """One helper for every writer: each file a run leaves (records, split
    file, models, θ₀, metadata, trainings log, leaderboard, figures, a
    sweep's manifest) was fsynced, and its folder; the training checkpoints
    on the way were written by the same helper (its temporary-file names)
    without fsync, by design (methods/_checkpoint.py)."""
    written_by_helper = []
    real_write = os.write

    def write(fd, data):
        written_by_helper.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return real_write(fd, data)
    monkeypatch.setattr(os, "write", write)
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        return real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)
    out, cache = tmp_path / "out", tmp_path / "cache"
    grid = [a for a in GRID if a != "--no-leaderboard"]
    assert cli("run", *grid, "--out", out, "--cache-dir", cache, "--leaderboard", out / "leaderboard.md") == 0
    assert cli("sweep", *GRID, "--methods", "original,retrain,gradient_ascent", "--executor", "local",
               "--out", out, "--cache-dir", cache) == 0
    files = {p.parent / TEMPORARY_NAME.sub(r"\1", p.name) for p in synced if p.is_relative_to(tmp_path)}
    written = {p for p in tmp_path.rglob("*") if p.is_file() and p.name not in ("lock",) and p.suffix != ".lock"}
    assert written and not written - files, f"written without fsync: {sorted(map(str, written - files))}"
    names = {p.name for p in written}
    assert {"model.pt", "theta0.pt", "meta.json", "trainings.jsonl", "manifest.json", "summary.csv",
            "leaderboard.md"} <= names and any(n.endswith(".png") for n in names)
    checkpoints = {p for p in written_by_helper if p.is_relative_to(tmp_path) and ".fit-" in p.name}
    assert checkpoints and all(TEMPORARY_NAME.match(p.name) for p in checkpoints)
    assert not any(p.name.startswith("fit-") for p in files)
    folders = {p for p in synced if p.is_dir()}
    assert {p.parent for p in written} <= folders   # and each file's folder, after its rename


# ---- a damaged reference-cache entry ------------------------------------------------------------------------

def _truncate(path: Path):
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _flip_a_byte(path: Path):      # same size, loads fine: only the checksum sees it
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _garbage_with_its_checksum(path: Path):   # e.g. a file replaced by hand, metadata updated to match
    import hashlib

    data = b"not a state dict" * 100
    path.write_bytes(data)
    meta = json.loads((path.parent / "meta.json").read_text())
    meta["files"][path.name] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (path.parent / "meta.json").write_text(json.dumps(meta))


DAMAGE = {   # case: (entry kind, file, damage, reason printed)
    "truncated model": ("original", "model.pt", _truncate, r"model\.pt is truncated: \d+ of \d+ bytes"),
    "wrong checksum": ("retrain", "model.pt", _flip_a_byte, r"model\.pt does not match its checksum"),
    "missing file": ("original", "theta0.pt", Path.unlink, r"theta0\.pt is missing"),
    "unloadable file": ("retrain", "model.pt", _garbage_with_its_checksum, r"model\.pt does not load: \w+"),
    "unreadable metadata": ("original", "meta.json", _truncate, r"meta\.json is unreadable: JSONDecodeError"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_damaged_cache_entry_is_quarantined_retrained_once_and_the_run_goes_on(clean, tmp_path, capsys, case):
    clean_out, clean_cache = clean
    kind, name, damage, reason = DAMAGE[case]
    cache, out = tmp_path / "cache", tmp_path / "out"
    shutil.copytree(clean_cache, cache)
    (entry,) = (cache / kind).iterdir()
    damage(entry / name)
    before = trainings(cache)

    assert cli("run", *GRID, "--out", out, "--cache-dir", cache) == 0
    err = capsys.readouterr().err
    warnings = [line.strip() for line in err.splitlines() if "warning" in line]
    with capsys.disabled():
        print(f"\n{case}: {warnings}")
    assert len(warnings) == 1
    assert re.fullmatch(rf"warning: cache entry {kind}/{entry.name} is damaged \({reason}.*\); moved to "
                        rf"{re.escape(str(cache))}/quarantine/{kind}/{entry.name}-\S+, retraining it", warnings[0])
    (folder,) = (cache / "quarantine" / kind).iterdir()
    assert re.match(reason, json.loads((folder / "reason.json").read_text())["reason"])
    assert (folder / "meta.json").exists() and not (folder / "lock").exists() and (entry / "lock").exists()
    new = trainings(cache)[len(before):]
    assert [(t["kind"], t["key"]) for t in new] == [(kind, entry.name)]   # retrained, once
    assert read_entry(entry, torch.device("cpu")) is not None              # and whole again
    assert records_of(out) == records_of(clean_out)                        # the run went on, to the same numbers
    status = collect(out, cache_dir=cache).format()
    assert f"quarantined cache entries (1: found damaged, moved aside, retrained):\n  {kind}/{entry.name}: " in status
    assert cli("status", "--out", out, "--cache-dir", cache) == 0
    assert f"{kind}/{entry.name}" in capsys.readouterr().out

    assert cli("run", *GRID, "--out", tmp_path / "again", "--cache-dir", cache) == 0   # repaired for good
    assert "warning" not in capsys.readouterr().err and len(trainings(cache)) == len(before) + 1


# ---- a full disk ------------------------------------------------------------------------------------------

class Disk:
    """``os.write`` to the files under ``root`` with ``free`` bytes left: a
    write that does not fit writes what fits, then fails with ENOSPC.  With
    ``full_at`` (a pattern of paths relative to ``root``) the disk has room
    until the first write to such a file, of which one byte fits."""

    def __init__(self, root: Path, free: int = 10**12, full_at: str | None = None):
        self.root, self.free, self.full_at, self.real = Path(root), free, full_at, os.write
        self.full_in = None     # the file being written when the disk filled up

    def write(self, fd, data):
        path = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not path.is_relative_to(self.root):
            return self.real(fd, data)
        target = path.parent / TEMPORARY_NAME.sub(r"\1", path.name)
        if self.full_at and self.full_in is None and re.fullmatch(self.full_at, str(target.relative_to(self.root))):
            self.free, self.full_in = 1, target
        if self.free <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written = self.real(fd, memoryview(data)[: self.free])
        self.free -= written
        return written


def check_nothing_partial(out: Path, cache: Path) -> None:
    assert not temporaries(out, cache)
    for path in out.rglob("*.json"):
        json.loads(path.read_text())                     # every record, split file, manifest: whole
    for meta in cache.glob("*/*/meta.json"):
        assert read_entry(meta.parent, torch.device("cpu")) is not None   # every committed entry: whole
    for line in trainings(cache):
        assert line["key"]


# the disk fills up during the first write of each kind of file (one byte of it fits)
FULL_AT = {"split file": r"splits/.*\.json", "checkpoint": r"cache/original/\w+/checkpoints/fit-0\.ckpt",
           "trainings log": r"cache/trainings\.jsonl", "model": r"cache/original/\w+/model\.pt",
           "theta0": r"cache/original/\w+/theta0\.pt", "cache metadata": r"cache/original/\w+/meta\.json",
           "run record": r"runs/\w+\.json"}


@pytest.mark.slow
@pytest.mark.parametrize("writer", list(FULL_AT))
def test_full_disk_stops_the_run_with_one_line_and_a_rerun_finishes(clean, tmp_path, capsys, monkeypatch,
                                                                   writer):
    out = tmp_path / "out"
    disk = Disk(out, full_at=FULL_AT[writer])
    with monkeypatch.context() as patch:
        patch.setattr(os, "write", disk.write)
        code = cli("run", *GRID, "--out", out, "--cache-dir", out / "cache")
    err = capsys.readouterr().err.strip().splitlines()
    with capsys.disabled():
        print(f"\ndisk full in the first write of the {writer}: exit {code}: {err[-1]}")
    assert code == WRITE_FAILED == 74
    assert [line for line in err if "error" in line] == [err[-1]]       # one line, the last
    assert err[-1] == (f"unlearnbench: error: cannot write {disk.full_in}: No space left on device (ENOSPC); nothing "
                       f"half-written is left: rerun the same command to finish once there is room")
    check_nothing_partial(out, out / "cache")

    assert cli("run", *GRID, "--out", out, "--cache-dir", out / "cache") == 0   # space freed: the rerun finishes
    check_nothing_partial(out, out / "cache")
    assert records_of(out) == records_of(clean[0])
    log = trainings(out / "cache")
    assert {t["key"] for t in log} == {p.parent.name for p in (out / "cache").glob("*/*/meta.json")}
    for key in {t["key"] for t in log}:                                  # nothing trained to completion twice
        assert sum(t["resumed_from_epoch"] < t["epochs"] for t in log if t["key"] == key) <= 1


def test_full_disk_in_a_local_sweep_exits_74(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(os, "write", Disk(tmp_path, full_at=r"out/sweeps/.*/manifest\.json").write)
    code = cli("sweep", *GRID, "--executor", "local", "--out", tmp_path / "out")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == WRITE_FAILED and err[-1].startswith("unlearnbench: error: cannot write ")
    assert not temporaries(tmp_path)


def _file_size_limit(limit: int):
    def preexec():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG instead
    return preexec


@pytest.mark.slow
def test_a_real_write_error_through_the_command_line(clean, tmp_path):
    """A real OSError, not a patched one: the process may not write a file
    larger than 60 kB (RLIMIT_FSIZE), so the first model checkpoint fails
    with EFBIG; then, without the limit, the same command finishes."""
    args = [sys.executable, "-m", "unlearnbench.harness.cli", "run", *GRID, "--out", str(tmp_path / "out")]
    failed = subprocess.run(args, capture_output=True, text=True, timeout=600, preexec_fn=_file_size_limit(60_000))
    err = failed.stderr.strip().splitlines()
    print(f"\nRLIMIT_FSIZE 60 kB: exit {failed.returncode}: {err[-1]}")
    assert failed.returncode == WRITE_FAILED
    assert re.fullmatch(r"unlearnbench: error: cannot write \S+/cache/original/\w+/checkpoints/fit-0\.ckpt: File too "
                        r"large \(EFBIG\); nothing half-written is left: .*", err[-1])
    assert [line for line in err if "error" in line or "Traceback" in line] == [err[-1]]
    check_nothing_partial(tmp_path / "out", tmp_path / "out" / "cache")
    done = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert records_of(tmp_path / "out") == records_of(clean[0])


# ---- temporary files of killed writers ---------------------------------------------------------------------

def test_temporary_files_of_writers_that_are_gone_are_removed(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = socket.gethostname()
    gone = tmp_path / "runs" / f".a.json.abc123.{dead.pid}@{host}.tmp"
    live = tmp_path / "runs" / f".b.json.abc123.{os.getpid()}@{host}.tmp"
    elsewhere_new = tmp_path / "cache" / ".c.pt.abc123.1@another-node.tmp"
    elsewhere_old = tmp_path / "cache" / ".d.pt.abc123.1@another-node.tmp"
    for p in (gone, live, elsewhere_new, elsewhere_old):
        p.parent.mkdir(exist_ok=True)
        p.write_text("partial")
    two_days_ago = time.time() - 2 * 86400
    os.utime(elsewhere_old, (two_days_ago, two_days_ago))
    assert sorted(remove_stale_temporaries(tmp_path)) == sorted([gone, elsewhere_old])
    assert live.exists() and elsewhere_new.exists()


def test_a_failed_write_leaves_nothing_and_names_the_path(tmp_path, monkeypatch):
    target = tmp_path / "runs" / "x.json"
    write_atomic(target, b"old\n")
    monkeypatch.setattr(os, "write", Disk(tmp_path, free=3).write)
    with pytest.raises(WriteError) as e:
        write_atomic(target, b"new content\n")
    assert str(e.value) == f"cannot write {target}: No space left on device (ENOSPC)"
    assert target.read_bytes() == b"old\n" and not temporaries(tmp_path)
    log = tmp_path / "log.jsonl"
    monkeypatch.undo()
    append_line(log, '{"a": 1}\n')
    # 5 bytes of the next line fit, then the disk is full
    monkeypatch.setattr(os, "write", Disk(tmp_path, free=5).write)
    with pytest.raises(WriteError, match=f"cannot write {log}: No space left on device"):
        append_line(log, '{"b": 2}\n')
    assert log.read_text() == '{"a": 1}\n'                        # no line cut short


def test_quarantined_models_are_off_limits_to_a_method(tmp_path):
    """A quarantined retrain is still (mostly) the answer key: the guard protects the quarantine too."""
    from unlearnbench.harness.protocol.cache import ModelCache
    from unlearnbench.harness.protocol.guard import TestDataAccess, method_guard

    moved = tmp_path / "quarantine" / "retrain" / "abc-20260101T000000-1" / "model.pt"
    moved.parent.mkdir(parents=True)
    moved.write_bytes(b"weights")
    with pytest.raises(TestDataAccess, match="a cached reference model"):
        with method_guard("m", protected_dirs=ModelCache(tmp_path, torch.device("cpu")).answer_keys()):
            moved.read_bytes()


def test_written_files_get_the_mode_open_would_give(tmp_path):
    """Records and presets are shared: mkstemp's 0600 must not leak into them."""
    from unlearnbench.methods import _files

    path = tmp_path / "r.json"
    _files.write_atomic(path, b"{}")
    assert path.stat().st_mode & 0o777 == 0o666 & ~_files._UMASK
    assert path.stat().st_mode & 0o044 or _files._UMASK & 0o044     # group/others can read under a usual umask
