"""`unlearnbench sweep` and `status` without a cluster: planning, dry run,
the local executor, failure records, retries, concurrency and job states.
The same code against a real Slurm cluster: tests/test_slurm.py."""
import json
import pickle
import subprocess
import sys
from collections import Counter

import pytest
import torch

from unlearnbench.harness.cli import main
from unlearnbench.harness.cluster import status as status_mod
from unlearnbench.harness.cluster.slurm import Settings, SweepTask
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.records import RecordStore
from unlearnbench.methods import register_method, unregister_method

GRID = ["--datasets", "digits", "--seeds", "0", "--scenarios", "random,class", "--ratios", "0.1", "--classes", "0",
        "--methods", "original,retrain,finetune", "--train-arg", "epochs=3", "--method-arg", "finetune.epochs=2"]


# per run seed: one Original; per forget set: Retrain and the noise floor's 2 + 2 extra retrains
KINDS = Counter({"original": 1, "retrain": 2, "retrain-order": 4, "retrain-init": 4})


def comparable(record: dict) -> dict:
    """What must be equal between executors: everything but times and the machine."""
    return {"status": record["status"], "config": record["config"], "sizes": record.get("sizes"),
            "forget_indices": record.get("forget_indices"),
            "metrics": {k: v for k, v in record["metrics"].items() if k not in ("time_s", "rte")}}


def records_of(out) -> dict:
    return {r["key"]: r for r in RecordStore(out).all()}


def trainings_of(cache_dir) -> list[dict]:
    path = cache_dir / "trainings.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture(autouse=True)
def _keep_threads():
    threads = torch.get_num_threads()   # the local executor sets them from --cpus-per-task
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The small grid through `sweep --executor local`, and through plain `run`."""
    threads = torch.get_num_threads()
    base = tmp_path_factory.mktemp("sweep")
    try:
        assert main(["sweep", *GRID, "--executor", "local", "--cpus-per-task", "1", "--out", str(base / "sweep"),
                     "--no-leaderboard"]) == 0
        assert main(["run", *GRID, "--cpus-per-task", "1", "--out", str(base / "run"), "--no-leaderboard"]) == 0
    finally:
        torch.set_num_threads(threads)
    return base


def test_dry_run_prints_jobs_and_sbatch_parameters_and_submits_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    args = [*GRID, "--out", str(out), "--dry-run", "--executor", "slurm", "--partition", "gpu", "--time", "30",
            "--cpus-per-task", "2", "--mem-gb", "4", "--gpus-per-task", "1", "--array-parallelism", "1",
            "--sbatch", "account=lab", "--runs-per-task", "2"]
    assert main(["sweep", *args]) == 0
    text = capsys.readouterr().out
    assert "6 runs in the grid: 0 done, 0 queued or running in an earlier sweep, 6 to run" in text
    assert "stage 1 references: 2 jobs (at most 3 reference models" in text    # one original, two retrains
    assert "stage 2 runs: 4 jobs, after stage 1 ends (afterany)" in text      # 3 runs per group, 2 per task
    for line in ("--partition=gpu", "--time=30", "--cpus-per-task=2", "--mem=4GB", "--gpus-per-node=1",
                 "--account=lab", "--array=0-1%1", "--array=0-3%1", "--signal=USR2@90",
                 "--job-name=unlearnbench-references", "--job-name=unlearnbench-runs", "afterany:"):
        assert line in text, line
    assert text.strip().endswith("nothing submitted (--dry-run)")
    assert not out.exists()
    assert main(["run", *args]) == 0          # `run --executor slurm` is the same command
    assert capsys.readouterr().out == text


@pytest.mark.parametrize("args, needle", [
    (["--time", "1"], "--time 1: need at least 2 minutes"),
    (["--signal-delay", "200", "--time", "3"], "--signal-delay 200: accepted: 0 to 179 seconds"),
    (["--sbatch", "exclusive"], "--sbatch 'exclusive': expected KEY=VALUE"),
    (["--runs-per-task", "-1"], "--runs-per-task -1: accepted: 0"),
    (["--array-parallelism", "0"], "--array-parallelism 0: accepted: a positive integer"),
])
def test_bad_executor_options_exit_2(tmp_path, capsys, args, needle):
    assert main(["sweep", *GRID, "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_slurm_executor_without_slurm_exits_2(tmp_path, capsys, monkeypatch):
    import shutil

    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name in ("sbatch", "sacct") else which(name))
    out = tmp_path / "out"
    assert main(["sweep", *GRID, "--executor", "slurm", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "sbatch not found: --executor slurm needs a Slurm cluster" in err and err.count("\n") == 1
    assert not (out / "sweeps").exists() and not (out / "runs").exists()


def test_local_sweep_gives_the_records_of_run(local_sweep):
    swept, ran = records_of(local_sweep / "sweep"), records_of(local_sweep / "run")
    assert len(swept) == 6 and swept.keys() == ran.keys()
    for key in swept:
        assert comparable(swept[key]) == comparable(ran[key])
    trainings = trainings_of(local_sweep / "sweep" / "cache")
    assert KINDS == Counter(t["kind"] for t in trainings)   # 11 models for 6 runs, each trained once
    assert len({t["key"] for t in trainings}) == len(trainings)
    (manifest,) = (local_sweep / "sweep" / "sweeps").glob("*/manifest.json")
    stages = json.loads(manifest.read_text())["stages"]
    assert [len(stages[s]["tasks"]) for s in ("references", "runs")] == [2, 2]


def test_status_and_rerun_of_a_finished_sweep(local_sweep, capsys):
    out = local_sweep / "sweep"
    assert main(["status", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "6 runs (1 sweep)" in text and "done         6" in text and "missing      0" in text
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert main(["sweep", *GRID, "--executor", "local", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith("nothing to do")
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")} == before


_calls = {"n": 0}


def _fails_once(ctx, hp):
    _calls["n"] += 1
    if _calls["n"] == 1:
        raise RuntimeError("out of luck on the first try")
    return ctx.model


@pytest.fixture
def flaky_method():
    register_method("flaky_for_test")(_fails_once)
    _calls["n"] = 0
    yield "flaky_for_test"
    unregister_method("flaky_for_test")


def test_failed_run_is_reported_and_only_it_is_retried(local_sweep, tmp_path, flaky_method, capsys):
    out = tmp_path / "out"
    before = trainings_of(local_sweep / "sweep" / "cache")
    args = ["sweep", *GRID[:-4], "--methods", f"original,{flaky_method}", "--train-arg", "epochs=3",
            "--scenarios", "random", "--executor", "local", "--out", str(out),
            "--cache-dir", str(local_sweep / "sweep" / "cache"), "--no-leaderboard"]
    assert main(args) == 1
    capsys.readouterr()
    records = records_of(out)
    failed = [r for r in records.values() if r["status"] == "failed"]
    assert len(records) == 2 and len(failed) == 1
    assert "RuntimeError: out of luck" in failed[0]["message"] and "_fails_once" in failed[0]["traceback"]
    assert main(["status", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "done         1" in text and "failed       1" in text
    assert f"random 10% seed=0 {flaky_method}: RuntimeError: out of luck on the first try" in text
    ok_before = {k: r["finished"] for k, r in records.items() if r["status"] == "ok"}
    ok_mtime = {k: RecordStore(out).path(k).stat().st_mtime_ns for k in ok_before}
    assert main(args) == 0                   # the rerun retries the failed run only
    assert "1 to run" in capsys.readouterr().out
    assert all(r["status"] == "ok" for r in records_of(out).values())
    assert {k: RecordStore(out).path(k).stat().st_mtime_ns for k in ok_before} == ok_mtime
    assert trainings_of(local_sweep / "sweep" / "cache") == before   # no reference trained again


def test_task_that_raises_outside_the_harness_writes_failed_records(tmp_path):
    """A data folder missing on the node: the task fails before any run starts."""
    specs = expand(Grid(datasets=["fashion_mnist"], seeds=[0], scenarios=["random"], ratios=[0.1],
                        methods=["original", "finetune"]))
    settings = Settings(out=str(tmp_path / "out"), data_root=str(tmp_path / "no-data"), threads=1)
    for stage in ("references", "runs"):
        with pytest.raises(Exception, match="not found"):
            SweepTask(stage, [s.to_config() for s in specs], settings)()
        records = records_of(tmp_path / "out")
        assert len(records) == 2
        for r in records.values():
            assert r["status"] == "failed" and "Fashion-MNIST not found" in r["message"]
            assert "Traceback" in r["traceback"] and r["config"]["dataset"] == "fashion_mnist"
        assert not any(RecordStore(tmp_path / "out").is_done(s.key) for s in specs)   # retried by a rerun


def test_checkpoint_requeues_the_same_task(tmp_path):
    import submitit

    specs = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"]))
    task = SweepTask("runs", [s.to_config() for s in specs], Settings(out=str(tmp_path), threads=2))
    delayed = task.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    again = pickle.loads(pickle.dumps(delayed)).function    # what submitit writes for the requeued job
    assert isinstance(again, SweepTask) and again is not task
    assert (again.stage, again.configs, again.settings) == (task.stage, task.configs, task.settings)


def test_status_joins_records_manifest_and_job_states(local_sweep, tmp_path, monkeypatch):
    """Job states as sacct reports them, without a cluster: which run is done,
    running, failed (cancelled job, failed record) or missing."""
    out = tmp_path / "out"
    specs = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1],
                        methods=["original", "retrain", "finetune", "gradient_ascent", "random_relabel"]))
    done, running, cancelled, failed_rec, never = specs
    store = RecordStore(out)
    store.write({"key": done.key, "config": done.to_config(), "status": "ok", "metrics": {}})
    store.write({"key": failed_rec.key, "config": failed_rec.to_config(), "status": "failed",
                 "message": "ValueError: bad", "metrics": {}})
    store.write({"key": running.key, "config": running.to_config(), "status": "failed",
                 "message": "earlier attempt", "metrics": {}})   # being retried: counts as running
    manifest = {"created": "2026-01-01T00:00:00+00:00", "executor": "slurm",
                "runs": {s.key: s.describe() for s in specs},
                "stages": {"runs": {"job_id": "7", "folder": str(out / "sweeps" / "x" / "jobs" / "%j"), "tasks": [
                    {"job_id": "7_0", "keys": [done.key, running.key]},
                    {"job_id": "7_1", "keys": [cancelled.key]},
                    {"job_id": "7_2", "keys": [failed_rec.key]}]}}}
    (out / "sweeps" / "x").mkdir(parents=True)
    (out / "sweeps" / "x" / "manifest.json").write_text(json.dumps(manifest))
    states = {"7_0": "RUNNING", "7_1": "CANCELLED by 0", "7_2": "COMPLETED"}
    monkeypatch.setattr(status_mod, "job_states", lambda ids: {j: states[j] for j in ids})
    report = status_mod.collect(out)
    category = {k: r.category for k, r in report.runs.items()}
    assert category == {done.key: "done", running.key: "running", cancelled.key: "failed",
                        failed_rec.key: "failed", never.key: "missing"}
    text = report.format()
    assert "job 7_1 CANCELLED by 0; log: " in text and "7_1_0_log.err" in text
    assert "ValueError: bad" in text and "not submitted" in text
    assert report.active_jobs() == ["7_0"]


@pytest.mark.slow
def test_concurrent_sweeps_into_one_folder_train_each_reference_once(tmp_path):
    """Three processes run the same grid into one results folder at once:
    every reference model is trained once (flock per cache entry), every
    record is complete JSON, nothing is lost."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "unlearnbench.harness.cli", "sweep", *GRID, "--executor", "local",
           "--cpus-per-task", "1", "--out", str(out), "--no-leaderboard"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    trainings = trainings_of(out / "cache")
    assert Counter(t["kind"] for t in trainings) == KINDS and len({t["key"] for t in trainings}) == 11, trainings
    assert len({t["pid"] for t in trainings}) >= 1
    records = records_of(out)
    assert len(records) == 6 and all(r["status"] == "ok" for r in records.values())
    assert not list((out / "runs").glob(".*.tmp"))
    assert len(list((out / "sweeps").glob("*/manifest.json"))) == 3
