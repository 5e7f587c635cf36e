"""Sweeps: a grid run as two Slurm job arrays through submitit, or in this process.

The design in full: docs/design-notes.md#clusterslurm.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from unlearnbench.methods import WriteError

from .. import defaults as D
from ..errors import UsageError
from ..protocol.guard import lift_in_signal_handlers
from ..protocol.records import RecordStore, environment, write_json_atomic
from ..protocol.runner import Harness, failed_record, run_pending
from ..protocol.spec import RunSpec, stable_hash
from ..protocol.threads import set_threads
from .plan import Plan
from .status import collect

STAGES = ("references", "runs")


@dataclass
class SlurmOptions:
    """What each array task asks Slurm for (see ``unlearnbench sweep --help``)."""

    partition: str | None = None
    time_min: int = D.SLURM_TIME_MIN
    cpus_per_task: int | None = None
    gpus_per_task: int = 0
    mem_gb: float | None = None
    array_parallelism: int = D.SLURM_ARRAY_PARALLELISM
    signal_delay_s: int = D.SLURM_SIGNAL_DELAY_S   # the job is told to checkpoint this long before its time limit
    max_timeouts: int = 3             # requeues after hitting the time limit (preemptions do not count)
    sbatch: dict = field(default_factory=dict)   # any other sbatch option, e.g. {"account": "lab"}
    setup: list = field(default_factory=list)    # shell lines run before the task, e.g. "module load cuda"

    @classmethod
    def from_args(cls, args) -> "SlurmOptions":
        """The options of ``add_executor_options`` on a command line, checked."""
        sbatch = {}
        for item in args.sbatch or []:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--sbatch {item!r}: expected KEY=VALUE, e.g. account=mylab")
            sbatch[key.strip().lstrip("-")] = value
        options = cls(partition=args.partition, time_min=args.time_min, cpus_per_task=args.cpus_per_task,
                      gpus_per_task=args.gpus_per_task, mem_gb=args.mem_gb, array_parallelism=args.array_parallelism,
                      signal_delay_s=args.signal_delay_s, sbatch=sbatch, setup=args.setup or [])
        options.validate()
        return options

    def validate(self) -> None:
        if self.time_min < 2:
            raise UsageError(f"--time {self.time_min}: need at least 2 minutes (submitit signals the job "
                             "--signal-delay seconds before the limit)")
        if self.signal_delay_s < 0 or self.signal_delay_s >= self.time_min * 60:
            raise UsageError(f"--signal-delay {self.signal_delay_s}: accepted: 0 to {self.time_min * 60 - 1} "
                             f"seconds (less than --time)")
        for name in ("cpus_per_task", "array_parallelism"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise UsageError(f"--{name.replace('_', '-')} {value}: accepted: a positive integer")
        if self.gpus_per_task < 0:
            raise UsageError(f"--gpus-per-task {self.gpus_per_task}: accepted: 0 or more")
        if self.mem_gb is not None and not self.mem_gb > 0:
            raise UsageError(f"--mem-gb {self.mem_gb:g}: accepted: a positive number of GB")

    def executor_parameters(self) -> dict:
        """Parameters of ``submitit.AutoExecutor.update_parameters``."""
        params = {"timeout_min": self.time_min, "tasks_per_node": 1, "nodes": 1,
                  "slurm_array_parallelism": self.array_parallelism,
                  "slurm_signal_delay_s": self.signal_delay_s}
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.cpus_per_task:
            params["cpus_per_task"] = self.cpus_per_task
        if self.gpus_per_task:
            params["gpus_per_node"] = self.gpus_per_task
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        if self.setup:
            params["slurm_setup"] = list(self.setup)
        return params


@dataclass
class Settings:
    """Where and how a task runs: what it needs besides its runs (picklable)."""

    out: str
    cache_dir: str | None = None
    data_root: str | None = None
    device: str = "auto"
    download: bool = False
    threads: int | None = None        # torch threads; None: the CPUs Slurm gave the task, or all
    precision: str = "auto"           # mixed precision on CUDA (see harness/protocol/device.py)
    deterministic: bool = False

    @classmethod
    def of(cls, grid, threads: int | None = None) -> "Settings":
        return cls(out=grid.out, cache_dir=grid.cache_dir, data_root=grid.data_root, device=grid.device,
                   download=grid.download, threads=threads, precision=grid.precision,
                   deterministic=grid.deterministic)

    def harness(self, log=None):
        return Harness(out=self.out, cache_dir=self.cache_dir, data_root=self.data_root, device=self.device,
                       download=self.download, log=log, precision=self.precision,
                       deterministic=self.deterministic)


def slurm_job_id() -> str | None:
    """``<array job>_<task>`` (or the plain job id) inside a Slurm job."""
    if os.environ.get("SLURM_ARRAY_JOB_ID"):
        return f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID')}"
    return os.environ.get("SLURM_JOB_ID")


class SweepTask:
    """One array task: train the references of its runs (stage ``references``)
    or run them and write their records (stage ``runs``).

    submitit calls :meth:`checkpoint` when the job is about to hit its time
    limit or is preempted; the returned submission is this same task, which,
    requeued, resumes from what is on disk (records, cache, training
    checkpoints).  The task holds only configurations, so it pickles small.
    """

    def __init__(self, stage: str, configs: list[dict], settings: Settings):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}")
        self.stage, self.configs, self.settings = stage, configs, settings

    def __call__(self, harness=None) -> dict:
        specs = [RunSpec.from_config(c) for c in self.configs]
        log = (harness.log if harness is not None else None) or (lambda msg: print(msg, flush=True))
        store = RecordStore(self.settings.out)
        statuses: dict[str, int] = {}
        recorded: set[str] = set()     # runs that got their record in this attempt
        errors: list[Exception] = []
        try:
            if harness is None:       # a Slurm task: submitit's requeue handler may fire during a method
                lift_in_signal_handlers()
                set_threads(self.settings.threads)
                harness = self.settings.harness(log=log)
                harness.env = {**environment(str(harness.device)), "slurm_job": slurm_job_id()}
            if self.stage == "references":
                refs = harness.references(specs[0])   # every spec of the task shares them
                harness.retrain_reference(specs[0])    # and the extra retrains of its noise floor
                log(f"references ready: original {refs.original_key}, retrain {refs.retrain_key}")
            if self.stage == "runs":   # what escapes a run fails that run only (errors), the others go on
                statuses = run_pending(harness, specs, store, errors=errors, recorded=recorded,
                                       report=lambda spec, status, _: log(f"{spec.describe()}: {status}"))
            if errors:
                raise errors[0]
        except WriteError:       # a full disk: writing failed records would fail too
            raise
        except Exception as e:   # not SystemExit: that is submitit requeueing the task
            for spec in specs:
                if spec.key not in recorded and not store.is_done(spec.key):
                    store.write(failed_record(spec, e, getattr(harness, "env", None)))
            raise                # the Slurm job ends FAILED
        return {"stage": self.stage, "runs": len(specs), "statuses": statuses,
                "reference_trainings": harness.reference_trainings}

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(SweepTask(self.stage, self.configs, self.settings))

    def __repr__(self) -> str:
        return f"SweepTask({self.stage}, {len(self.configs)} runs)"


# ---- submission ----------------------------------------------------------------

def new_sweep_dir(out: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return Path(out) / "sweeps" / f"{stamp}-{os.getpid()}"


def slurm_executor(folder: Path, options: SlurmOptions, name: str, dependency: str | None = None):
    """A submitit executor for Slurm job arrays with ``options``."""
    import submitit

    executor = submitit.AutoExecutor(folder=folder, cluster="slurm", slurm_max_num_timeout=options.max_timeouts)
    extra = dict(options.sbatch)
    if dependency:
        extra["dependency"] = dependency
    executor.update_parameters(name=name, slurm_additional_parameters=extra, **options.executor_parameters())
    return executor


def sbatch_lines(options: SlurmOptions, name: str, n_tasks: int, dependency: str | None = None) -> list[str]:
    """The #SBATCH lines submitit writes for a stage (for --dry-run)."""
    with tempfile.TemporaryDirectory() as tmp:
        executor = slurm_executor(Path(tmp) / "%j", options, name, dependency)
        text = executor._executor._make_submission_file_text("<task>", "<uid>")
    lines = [line for line in text.splitlines() if line.startswith("#SBATCH")
             and not line.startswith(("#SBATCH --output", "#SBATCH --error"))]
    if n_tasks > 1:
        lines.append(f"#SBATCH --array=0-{n_tasks - 1}%{min(options.array_parallelism, n_tasks)}")
    return lines


def describe_plan(plan: Plan, executor: str, options: SlurmOptions) -> str:
    ref_models = len(plan.reference_tasks) + len({stable_hash(r[0].original_identity())
                                                   for r in plan.reference_tasks})
    lines = [f"{len(plan.specs)} runs in the grid: {plan.done} done, {plan.active} queued or running in an "
             f"earlier sweep, {plan.pending} to run",
             f"stage 1 references: {len(plan.reference_tasks)} jobs (at most {ref_models} reference models "
             f"to train; cached ones are skipped)",
             f"stage 2 runs: {len(plan.run_tasks)} jobs"
             + (", after stage 1 ends (afterany)" if plan.reference_tasks else "")]
    if executor == "local":
        lines.append("executor local: the jobs run one after another in this process")
        return "\n".join(lines)
    for stage, tasks, dep in (("references", plan.reference_tasks, None),
                              ("runs", plan.run_tasks, "afterany:<stage 1 job>" if plan.reference_tasks else None)):
        if tasks:
            lines.append(f"sbatch parameters, stage {stage}:")
            lines += [f"  {line}" for line in sbatch_lines(options, f"unlearnbench-{stage}", len(tasks), dep)]
    return "\n".join(lines)


def _task_entries(jobs, tasks) -> list[dict]:
    return [{"job_id": job.job_id, "keys": [s.key for s in runs]} for job, runs in zip(jobs, tasks)]


def write_manifest(sweep_dir: Path, manifest: dict) -> None:
    write_json_atomic(sweep_dir / "manifest.json", manifest)


def new_manifest(plan: Plan, executor: str, options: SlurmOptions | None, argv) -> dict:
    return {"schema": 1, "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "executor": executor, "command": list(argv),
            "options": asdict(options) if options else None,
            "runs": {s.key: s.describe() for s in plan.specs},
            "stages": {}}


def submit(plan: Plan, settings: Settings, options: SlurmOptions, sweep_dir: Path, argv) -> dict:
    """Submit both stages as job arrays; returns the manifest (also written).
    If sbatch refuses a stage, nothing stays submitted (UsageError)."""
    from submitit.core.utils import FailedJobError

    if shutil.which("sbatch") is None:
        raise UsageError("sbatch not found: --executor slurm needs a Slurm cluster "
                         "(scripts/slurm_localhost.sh start makes one here); accepted here: --executor local")
    manifest = new_manifest(plan, "slurm", options, argv)
    folder = sweep_dir / "jobs" / "%j"
    dependency = None
    for stage, tasks in (("references", plan.reference_tasks), ("runs", plan.run_tasks)):
        if not tasks:
            continue
        executor = slurm_executor(folder, options, f"unlearnbench-{stage}", dependency if stage == "runs" else None)
        try:
            with executor.batch():
                jobs = [executor.submit(SweepTask(stage, [s.to_config() for s in runs], settings))
                        for runs in tasks]
        except FailedJobError as e:
            submitted = [info["job_id"] for info in manifest["stages"].values()]
            if submitted:
                subprocess.run(["scancel", *submitted], check=False)
            shutil.rmtree(sweep_dir, ignore_errors=True)
            for parent in (sweep_dir.parent, sweep_dir.parent.parent):   # sweeps/ and OUT, if now empty
                with contextlib.suppress(OSError):
                    parent.rmdir()
            reason = " ".join(str(e).split())
            raise UsageError(f"sbatch refused the {stage} stage: {reason}; nothing submitted") from None
        manifest["stages"][stage] = {"job_id": jobs[0].job_id.split("_")[0], "folder": str(folder),
                                     "tasks": _task_entries(jobs, tasks)}
        write_manifest(sweep_dir, manifest)
        if stage == "references":
            dependency = f"afterany:{manifest['stages'][stage]['job_id']}"
    return manifest


def run_local(plan: Plan, settings: Settings, sweep_dir: Path, argv, log=print) -> dict:
    """Run the stages' tasks one after another in this process (one harness,
    so data and references stay in memory between tasks)."""
    manifest = new_manifest(plan, "local", None, argv)
    for stage, tasks in (("references", plan.reference_tasks), ("runs", plan.run_tasks)):
        manifest["stages"][stage] = {"job_id": None, "tasks": [{"job_id": None, "keys": [s.key for s in t]}
                                                               for t in tasks]}
    write_manifest(sweep_dir, manifest)
    set_threads(settings.threads)
    harness = settings.harness(log=log)
    harness.env = {**environment(str(harness.device)), "slurm_job": None}
    for stage, tasks in (("references", plan.reference_tasks), ("runs", plan.run_tasks)):
        for i, runs in enumerate(tasks):
            try:
                SweepTask(stage, [s.to_config() for s in runs], settings)(harness)
            except (UsageError, WriteError):
                raise
            except Exception as e:  # recorded as failed; the other tasks go on, as on a cluster
                log(f"{stage} task {i} failed: {type(e).__name__}: {e}")
    manifest["reference_trainings"] = harness.reference_trainings
    write_manifest(sweep_dir, manifest)
    return manifest


def wait(out: str, sweep_dir: Path, log=print) -> None:
    """Block until no job of this sweep is pending or running (sacct is
    asked every 2 s at first, then less often: at most every 30 s)."""
    last, start = None, time.monotonic()
    while True:
        report = collect(out, only=[sweep_dir / "manifest.json"])
        line = report.one_line()
        if line != last:
            log(line)
            last = line
        if not report.active_jobs():
            return
        time.sleep(min(30.0, 2.0 + 0.05 * (time.monotonic() - start)))


def check_data(grid) -> None:
    """Missing data or too large a subset fail here, before anything is written (exit status 2)."""
    Harness.from_grid(grid)


def argv_of() -> list[str]:
    return ["unlearnbench", *sys.argv[1:]]
