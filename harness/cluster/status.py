"""`unlearnbench status`: where a results folder stands.

Joins three sources: the run records (``<out>/runs``), the sweep manifests
(``<out>/sweeps/*/manifest.json``: which job runs which run) and Slurm's job
states (read through submitit's ``sacct`` watcher).  Each run is

- **done**: a final record (``ok`` or ``diverged``);
- **running**: its job is pending, running or requeued;
- **failed**: a ``failed`` record (an exception, with its traceback), or its
  job ended without writing a record (cancelled, failed, timed out, out of memory, node failure);
- **missing**: none of these (never submitted, or its sweep was interrupted).

It also lists the reference-cache entries found damaged and quarantined.

Rerunning the same sweep command retries the failed and missing runs only.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..protocol.records import FINAL_STATUSES, RecordStore

# Slurm job states (sacct), by what they mean for the runs of the job
ACTIVE_STATES = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESIZING", "SUSPENDED",
                 "CONFIGURING", "COMPLETING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
FAILED_STATES = {"FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "BOOT_FAIL", "DEADLINE",
                 "PREEMPTED", "REVOKED"}
CATEGORIES = ("done", "running", "failed", "missing")


def base_state(state: str) -> str:
    """``"CANCELLED by 0"`` -> ``"CANCELLED"``."""
    return (state or "UNKNOWN").split()[0].upper()


@dataclass
class RunState:
    key: str
    describe: str
    category: str
    detail: str = ""
    job_id: str | None = None


@dataclass
class Report:
    out: Path
    runs: dict = field(default_factory=dict)        # key -> RunState
    jobs: dict = field(default_factory=dict)        # job id -> Slurm state
    job_logs: dict = field(default_factory=dict)    # job id -> stderr log path
    failed_reference_jobs: list = field(default_factory=list)   # (job id, state, describe of its group)
    manifests: int = 0
    diverged: int = 0
    quarantined: list = field(default_factory=list)   # damaged cache entries moved aside (harness/protocol/cache.py)

    def counts(self) -> Counter:
        return Counter(r.category for r in self.runs.values())

    def keys(self, category: str) -> set[str]:
        return {k for k, r in self.runs.items() if r.category == category}

    def active_jobs(self) -> list[str]:
        return [j for j, s in self.jobs.items() if base_state(s) in ACTIVE_STATES]

    def one_line(self) -> str:
        c = self.counts()
        return ", ".join(f"{c.get(k, 0)} {k}" for k in CATEGORIES) + f" of {len(self.runs)} runs"

    def format(self, limit: int = 50) -> str:
        c = self.counts()
        lines = [f"{self.out}: {len(self.runs)} runs"
                 + (f" ({self.manifests} sweep{'s' if self.manifests != 1 else ''})" if self.manifests else "")]
        for k in CATEGORIES:
            extra = f"  ({self.diverged} diverged)" if k == "done" and self.diverged else ""
            lines.append(f"  {k:8s} {c.get(k, 0):5d}{extra}")
        for category in ("failed", "missing"):
            rows = sorted((r for r in self.runs.values() if r.category == category), key=lambda r: r.describe)
            if not rows:
                continue
            lines.append(f"{category}:")
            for r in rows[:limit]:
                lines.append(f"  {r.describe}" + (f": {r.detail}" if r.detail else ""))
            if len(rows) > limit:
                lines.append(f"  ... and {len(rows) - limit} more")
        for job_id, state, describe in self.failed_reference_jobs:
            lines.append(f"reference job {job_id} {state} ({describe}); log: {self.job_logs.get(job_id)}")
        if c.get("failed") or c.get("missing"):
            lines.append("rerun the same sweep command to retry the failed and missing runs")
        if self.quarantined:
            lines.append(f"quarantined cache entries ({len(self.quarantined)}: found damaged, moved aside, retrained):")
            lines += [f"  {q['entry']}: {q['reason']} ({q.get('moved', '?')}; {q['folder']})" for q in self.quarantined]
        return "\n".join(lines)


def manifests_of(out: Path) -> list[Path]:
    return sorted(Path(out).glob("sweeps/*/manifest.json"))


def job_states(job_ids) -> dict[str, str]:
    """Slurm states of ``job_ids`` (``123_4`` for array tasks) with one sacct
    call, through submitit's watcher; ``UNKNOWN`` without Slurm."""
    job_ids = sorted(set(job_ids))
    if not job_ids or shutil.which("sacct") is None:
        return {j: "UNKNOWN" for j in job_ids}
    from submitit.slurm.slurm import SlurmInfoWatcher

    watcher = SlurmInfoWatcher()
    for j in job_ids:
        watcher.register_job(j)
    watcher.update()
    states = {j: watcher.get_state(j, mode="cache") for j in job_ids}
    unknown = sorted({j.split("_")[0] for j, s in states.items() if s == "UNKNOWN"})
    if unknown and shutil.which("squeue"):
        # accounting lags submission by a moment: the queue already knows the job
        out = subprocess.run(["squeue", "-h", "-r", "-o", "%i|%T", "-j", ",".join(unknown)],
                             capture_output=True, text=True).stdout
        queued = dict(line.split("|", 1) for line in out.splitlines() if "|" in line)
        states.update({j: queued[j] for j, s in states.items() if s == "UNKNOWN" and j in queued})
    return states


def _log_path(folder: str, job_id: str) -> str:
    from submitit.core.utils import JobPaths

    return str(JobPaths(folder, job_id=job_id, task_id=0).stderr)


def collect(out, only: list[Path] | None = None, cache_dir=None) -> Report:
    """The state of every run of ``out`` (or of the sweeps ``only``), and the
    quarantined entries of the cache (``cache_dir``, default ``<out>/cache``)."""
    out = Path(out)
    report = Report(out)
    if only is None:
        from ..protocol.cache import quarantined_entries

        report.quarantined = quarantined_entries(Path(cache_dir) if cache_dir else out / "cache")
    store = RecordStore(out)
    records = {r["key"]: r for r in store.all() if "key" in r} if only is None else {}
    describe: dict[str, str] = {}
    run_job: dict[str, str] = {}                  # run key -> job of its latest sweep's runs stage
    ref_jobs: list[tuple[str, list[str]]] = []    # (job id, run keys) of reference tasks
    paths = only if only is not None else manifests_of(out)
    for path in sorted(paths, key=lambda p: json.loads(p.read_text()).get("created", "")):
        manifest = json.loads(path.read_text())
        report.manifests += 1
        describe.update(manifest.get("runs", {}))
        for stage, info in manifest.get("stages", {}).items():
            for task in info.get("tasks", []):
                if task.get("job_id") is None:
                    continue
                report.job_logs[task["job_id"]] = _log_path(info["folder"], task["job_id"])
                if stage == "runs":
                    run_job.update({k: task["job_id"] for k in task["keys"]})
                else:
                    ref_jobs.append((task["job_id"], task["keys"]))
    if only is None:
        for key, rec in records.items():
            describe.setdefault(key, _describe_config(rec.get("config", {})))
    report.jobs = job_states(list(run_job.values()) + [j for j, _ in ref_jobs])
    if only is not None:   # just these sweeps' records
        records = {k: r for k in describe if (r := store.read(k)) is not None}

    for key, desc in describe.items():
        rec = records.get(key)
        job = run_job.get(key)
        state = base_state(report.jobs[job]) if job else None
        if rec is not None and rec.get("status") in FINAL_STATUSES:
            report.runs[key] = RunState(key, desc, "done", job_id=job)
            report.diverged += rec["status"] == "diverged"
        elif state in ACTIVE_STATES:
            report.runs[key] = RunState(key, desc, "running", f"job {job} {state}", job)
        elif rec is not None:
            message = (rec.get("message") or "").splitlines()[0] if rec.get("message") else ""
            report.runs[key] = RunState(key, desc, "failed", f"{message} ({store.path(key)})", job)
        elif state in FAILED_STATES:
            report.runs[key] = RunState(key, desc, "failed",
                                        f"job {job} {report.jobs[job]}; log: {report.job_logs.get(job)}", job)
        else:
            detail = f"job {job} {report.jobs[job]} wrote no record" if job else "not submitted"
            report.runs[key] = RunState(key, desc, "missing", detail, job)
    for job, keys in ref_jobs:
        state = base_state(report.jobs[job])
        if state in FAILED_STATES and any(report.runs[k].category != "done" for k in keys if k in report.runs):
            report.failed_reference_jobs.append((job, report.jobs[job], describe.get(keys[0], "?").rsplit(" ", 1)[0]))
    return report


def _describe_config(config: dict) -> str:
    from ..protocol.spec import RunSpec

    try:
        return RunSpec.from_config(config).describe()
    except (KeyError, TypeError, ValueError):
        return "?"
