"""Sweeps on a real Slurm cluster (`scripts/slurm_localhost.sh start`: one
node, slurmdbd accounting) through submitit's SlurmExecutor.

Without a cluster these tests are skipped on a developer machine, and fail
in CI (``CI`` or ``UNLEARNBENCH_REQUIRE_SLURM`` set): `.ci/run` starts one.
"""
import contextlib
import io
import json
import math
import os
import shutil
import subprocess
import threading
import time
from collections import Counter

import pytest
import torch

from unlearnbench.harness.cli import main
from unlearnbench.harness.cluster.status import collect
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.records import RecordStore

pytestmark = pytest.mark.slurm

GRID = ["--datasets", "digits", "--seeds", "0", "--scenarios", "random,class", "--ratios", "0.1", "--classes", "0",
        "--methods", "original,retrain,finetune,gradient_ascent,random_relabel"]
SLURM = ["--executor", "slurm", "--cpus-per-task", "1", "--array-parallelism", "2", "--no-leaderboard"]
DEADLINE_S = 600   # no test waits longer on the cluster


def cluster_problem() -> str | None:
    for tool in ("sbatch", "sinfo", "sacct", "scancel"):
        if shutil.which(tool) is None:
            return f"{tool} not found"
    deadline = time.monotonic() + 120
    while True:   # a node still COMPLETING the jobs just cancelled (state "comp") is usable in a moment
        info = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=30)
        if info.returncode != 0:
            return f"sinfo failed: {info.stderr.strip()}"
        if "comp" not in (s.strip("*~#!%$@^-") for s in info.stdout.split()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    if not any(s.strip("*~#!%$@^-") in ("idle", "mix", "alloc") for s in info.stdout.split()):
        return f"no usable node (sinfo: {info.stdout.split()})"
    acct = subprocess.run(["sacct", "-n", "-X", "-S", "now"], capture_output=True, text=True, timeout=30)
    if acct.returncode != 0:
        return f"job accounting unavailable (sacct: {acct.stderr.strip()})"
    return None


@pytest.fixture(scope="module")
def cluster():
    problem = cluster_problem()
    if problem:
        message = f"no usable Slurm cluster: {problem}; start one with `scripts/slurm_localhost.sh start`"
        if os.environ.get("CI") or os.environ.get("UNLEARNBENCH_REQUIRE_SLURM"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    yield
    # leave nothing queued behind
    names = "unlearnbench-references,unlearnbench-runs,unlearnbench-tune"
    jobs = subprocess.run(["squeue", "-h", "-n", names, "-o", "%A"],
                          capture_output=True, text=True).stdout.split()
    if jobs:
        subprocess.run(["scancel", *jobs])


def cli(*args) -> tuple[int, str]:
    """`unlearnbench ARGS` in this process; (exit status, stdout)."""
    threads = torch.get_num_threads()
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer):
            code = main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)
    return code, buffer.getvalue()


def manifests(out) -> list:
    return sorted(out.glob("sweeps/*/manifest.json"))


def wait_until_ended(out, manifest, deadline_s=DEADLINE_S) -> None:
    deadline = time.time() + deadline_s
    while collect(out, only=[manifest]).active_jobs():
        if time.time() > deadline:
            cancel(manifest)
            pytest.fail(f"jobs of {manifest} still active after {deadline_s} s")
        time.sleep(1)


def cancel(manifest) -> None:
    stages = json.loads(manifest.read_text())["stages"]
    subprocess.run(["scancel", *[s["job_id"] for s in stages.values()]])


@contextlib.contextmanager
def watchdog(out, seconds=DEADLINE_S):
    """Cancel the sweep's jobs if `--wait` has not returned in time."""
    timer = threading.Timer(seconds, lambda: [cancel(m) for m in manifests(out)])
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def comparable(record: dict) -> dict:
    return {"status": record["status"], "config": record["config"], "sizes": record.get("sizes"),
            "forget_indices": record.get("forget_indices"),
            "metrics": {k: v for k, v in record["metrics"].items() if k not in ("time_s", "rte")}}


def trainings_of(cache_dir) -> list[dict]:
    return [json.loads(line) for line in (cache_dir / "trainings.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def slurm_sweep(cluster, tmp_path_factory):
    """A small digits sweep through the real SlurmExecutor (`--wait`), and the
    same grid through the local executor."""
    base = tmp_path_factory.mktemp("slurm")
    start = time.perf_counter()
    with watchdog(base / "slurm"):
        code, text = cli("sweep", *GRID, *SLURM, "--time", "10", "--wait", "--out", base / "slurm")
    seconds = time.perf_counter() - start
    assert code == 0, text
    code, local_text = cli("sweep", *GRID, "--executor", "local", "--cpus-per-task", "1", "--no-leaderboard",
                           "--out", base / "local")
    assert code == 0, local_text
    trainings = trainings_of(base / "slurm" / "cache")
    summary = {"sweep_s": round(seconds, 1), "runs": len(RecordStore(base / "slurm").all()),
               "reference_trainings": len(trainings)}
    (base / "timing.json").write_text(json.dumps(summary))
    print(f"\nslurm test sweep: {summary}")
    return base, text


def test_slurm_records_equal_local_records(slurm_sweep):
    base, text = slurm_sweep
    assert "submitted references: job" in text and "submitted runs: job" in text
    slurm = {r["key"]: r for r in RecordStore(base / "slurm").all()}
    local = {r["key"]: r for r in RecordStore(base / "local").all()}
    assert len(slurm) == 10 and slurm.keys() == local.keys()
    for key in slurm:
        assert comparable(slurm[key]) == comparable(local[key]), slurm[key]["config"]["method"]
        assert slurm[key]["env"]["slurm_job"] and local[key]["env"]["slurm_job"] is None
    # array tasks wrote into one folder concurrently: nothing half-written, nothing lost
    assert not list((base / "slurm" / "runs").glob(".*"))


def test_each_reference_model_is_trained_once(slurm_sweep):
    base, _ = slurm_sweep
    trainings = trainings_of(base / "slurm" / "cache")
    # one Original; per forget set Retrain and the noise floor's 2 + 2 extra retrains: 11 models, 10 runs
    assert Counter(t["kind"] for t in trainings) == {"original": 1, "retrain": 2, "retrain-order": 4,
                                                     "retrain-init": 4}
    assert len({t["key"] for t in trainings}) == len(trainings)
    (manifest,) = manifests(base / "slurm")
    reference_job = json.loads(manifest.read_text())["stages"]["references"]["job_id"]
    assert {t["slurm_job"] for t in trainings} == {reference_job}   # all in stage 1, none by a run task


def test_status_is_all_done_and_rerun_submits_nothing(slurm_sweep):
    base, _ = slurm_sweep
    code, text = cli("status", "--out", base / "slurm")
    assert code == 0 and "10 runs (1 sweep)" in text
    assert "done        10" in text and "failed       0" in text and "missing      0" in text
    code, text = cli("sweep", *GRID, *SLURM, "--out", base / "slurm")
    assert code == 0 and text.strip().endswith("nothing to do")
    assert len(manifests(base / "slurm")) == 1


def epochs_lasting(seconds: float, cache_dir, tmp_path) -> int:
    """Fine-tuning epochs that take about ``seconds`` on one thread here
    (measured on the cached references, checkpoints included)."""
    from unlearnbench.harness.protocol.runner import Harness

    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"],
                method_args={"finetune": {"epochs": 30}})
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        record = Harness(out=tmp_path / "calibration", cache_dir=cache_dir).run(expand(grid)[0])
    finally:
        torch.set_num_threads(threads)
    return math.ceil(seconds / (record["metrics"]["time_s"] / 30))


def test_cancelled_task_is_reported_failed_and_redone_by_a_rerun(slurm_sweep, tmp_path):
    base, _ = slurm_sweep
    cache = base / "slurm" / "cache"       # references already trained: the runs stage starts at once
    epochs = epochs_lasting(15, cache, tmp_path)
    out = tmp_path / "out"
    args = ["sweep", "--datasets", "digits", "--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
            "--methods", "original,finetune", "--method-arg", f"finetune.epochs={epochs}", *SLURM,
            "--time", "10", "--out", out, "--cache-dir", cache]
    code, text = cli(*args)
    assert code == 0 and "stage 1 references: 0 jobs" in text, text
    (manifest,) = manifests(out)
    finetune = next(s for s in expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"],
                                           method_args={"finetune": {"epochs": epochs}})))
    checkpoint = cache / "checkpoints" / finetune.key / "fit-0.ckpt"
    deadline = time.time() + DEADLINE_S
    while not checkpoint.exists():        # the task is training
        assert time.time() < deadline and collect(out, only=[manifest]).active_jobs(), "task never trained"
        time.sleep(0.2)
    cancel(manifest)
    wait_until_ended(out, manifest)

    code, text = cli("status", "--out", out)
    assert "done         1" in text and "failed       1" in text, text
    assert f"{finetune.describe()}: job " in text and "CANCELLED" in text
    assert not RecordStore(out).path(finetune.key).exists()

    with watchdog(out):
        code, text = cli(*args, "--wait")
    assert code == 0, text
    assert "1 to run" in text and "done         2" in text
    record = RecordStore(out).read(finetune.key)
    assert record["status"] == "ok"
    assert record["resumed_from_epoch"][0] >= 1      # the rerun went on from the cancelled task's checkpoint


def test_task_hitting_its_time_limit_is_requeued_and_resumes(slurm_sweep, tmp_path):
    """A 2-minute limit; Slurm signals the task 60 s before it (in fact 30-60 s
    after start: slurmctld checks limits every 30 s); submitit calls
    SweepTask.checkpoint() and requeues it; the new attempt resumes training."""
    base, _ = slurm_sweep
    cache = base / "slurm" / "cache"
    # 100 s of training outlasts the signal (30-60 s after start) with room for a
    # calibration that is off by 1.6x (CI once finished 70 s' worth before the signal
    # landed: resumed_from_epoch == epochs); the second attempt has its own 2 minutes.
    epochs = epochs_lasting(100, cache, tmp_path)
    out = tmp_path / "out"
    with watchdog(out):
        code, text = cli("sweep", "--datasets", "digits", "--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
                         "--methods", "finetune", "--method-arg", f"finetune.epochs={epochs}", *SLURM,
                         "--time", "2", "--signal-delay", "60", "--wait", "--out", out, "--cache-dir", cache)
    assert code == 0, text
    (record,) = RecordStore(out).all()
    assert record["status"] == "ok"
    assert record["resumed_from_epoch"] and 0 < record["resumed_from_epoch"][0] < epochs
    logs = "".join(p.read_text() for p in sorted(out.glob("sweeps/*/jobs/*/*_log.*")))
    assert "this job is timed-out" in logs and "Requeued job" in logs   # submitit's own account of it
    assert logs.count("Starting with JobEnvironment") >= 2              # the same job ran again


def test_sbatch_refusal_exits_2_and_leaves_nothing_submitted(cluster, tmp_path):
    out = tmp_path / "out"
    code, _ = cli("sweep", *GRID, *SLURM, "--partition", "no_such_partition", "--out", out)
    assert code == 2
    assert not out.exists()
    queued = subprocess.run(["squeue", "-h", "-n", "unlearnbench-references,unlearnbench-runs"],
                            capture_output=True, text=True).stdout
    assert not queued.strip()


def test_tune_array_workers_complete_exactly_the_budget(cluster, tmp_path):
    """`tune --executor slurm --jobs 2`: two array tasks optimize one SQLite
    study until it has the budget's complete trials, then write the preset."""
    import optuna

    from unlearnbench.harness.tuning import tune as T

    out, presets = tmp_path / "out", tmp_path / "presets"
    presets.mkdir()
    code, text = cli("tune", "ssd", "--scenarios", "random", "--ratios", "0.1", "--trials", "3", "--max-trials", "3",
                     "--tune-seeds", "100",
                     "--presets", presets, "--out", out, "--executor", "slurm", "--jobs", "2", "--cpus-per-task", "1",
                     "--time", "10", "--wait")
    assert code == 0, text
    assert "submitted 2 tuning workers" in text
    (summary,) = optuna.get_all_study_summaries(T.default_storage(out))
    trials = optuna.load_study(study_name=summary.study_name, storage=T.default_storage(out)).trials
    states = Counter(t.state.name for t in trials)
    assert states["COMPLETE"] == 3 and not states["RUNNING"] and not states["FAIL"], states
    record = T.tomllib.loads((presets / "digits-mlp.toml").read_text())["tuning"]["random 10%"]["ssd"]
    assert record["trials"] == 3 and record["history"][0]["defaults"]
    logs = "".join(p.read_text() for p in (out / "tuning" / "jobs").rglob("*.err"))
    assert "ssd digits/mlp random 10% trial" in logs                      # the array tasks ran the trials


def node_states() -> dict[str, str]:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %t"], capture_output=True, text=True, timeout=30).stdout
    return dict(line.split() for line in out.splitlines() if line.strip())


def queued(job_id: str) -> list[str]:
    """States of the job's array tasks still in the queue."""
    return subprocess.run(["squeue", "-h", "-r", "-j", job_id, "-o", "%T"], capture_output=True, text=True,
                          timeout=30).stdout.split()


def test_node_down_in_the_reference_stage_requeues_the_task_and_loses_nothing(cluster, tmp_path):
    """The node goes DOWN while stage 1 trains (after its first checkpoint):
    Slurm kills the task and requeues it (NODE_FAIL; the cluster's
    JobRequeue=1 and submitit's jobs are requeueable), the node comes back,
    the task reruns from the cache and its checkpoints, and the sweep ends
    with every record, equal to a local run's, and each model trained once.
    Marking the node DOWN kills every job on it: the test keeps it short and
    resumes the node whatever happens."""
    out = tmp_path / "out"
    grid = ["--datasets", "digits", "--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
            "--methods", "original,retrain,finetune", "--floor-retrains", "1"]
    code, text = cli("sweep", *grid, *SLURM, "--time", "10", "--out", out)
    assert code == 0 and "stage 1 references: 1 jobs" in text, text
    (manifest,) = manifests(out)
    stages = json.loads(manifest.read_text())["stages"]
    reference_job = stages["references"]["job_id"]
    deadline = time.time() + DEADLINE_S
    while not next(out.glob("cache/*/*/checkpoints/*"), None):    # stage 1 is training
        if time.time() > deadline or not queued(reference_job):
            cancel(manifest)
            pytest.fail("the reference task never trained")
        time.sleep(0.05)
    (node,) = node_states()
    try:
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=down",
                        "reason=unlearnbench test: node down"], check=True, timeout=30)
        requeue_deadline = time.time() + 60
        while "PENDING" not in queued(reference_job):   # killed on the node, back in the queue
            assert time.time() < requeue_deadline, f"task not requeued: {queued(reference_job)}"
            time.sleep(0.2)
    finally:   # (ReturnToService=2 may have brought it back already: then scontrol refuses, harmlessly)
        subprocess.run(["scontrol", "update", f"nodename={node}", "state=resume"], capture_output=True, timeout=30)
        up_deadline = time.time() + 60
        while node_states().get(node, "").strip("*~#!%$@^-") not in ("idle", "mix", "alloc"):
            assert time.time() < up_deadline, f"node {node} did not come back: {node_states()}"
            time.sleep(0.5)
    wait_until_ended(out, manifest)
    while any(queued(stages[s]["job_id"]) for s in stages):         # (accounting may lag the queue)
        assert time.time() < deadline
        wait_until_ended(out, manifest)
        time.sleep(1)

    history = subprocess.run(["sacct", "-n", "-X", "-D", "-P", "-j", reference_job, "-o", "State"],
                             capture_output=True, text=True, timeout=30).stdout.split()
    assert history[0] == "NODE_FAIL" and history[-1] == "COMPLETED", history
    logs = "".join(p.read_text() for p in sorted(out.glob("sweeps/*/jobs/*/*_log.*")))
    assert "DUE TO NODE FAILURE" in logs or logs.count("Starting with JobEnvironment") >= 2
    code, text = cli("status", "--out", out)
    assert "done         3" in text and "failed       0" in text and "missing      0" in text, text
    code, local_text = cli("sweep", *grid, "--executor", "local", "--cpus-per-task", "1", "--no-leaderboard",
                           "--out", tmp_path / "local")
    assert code == 0, local_text
    slurm = {r["key"]: comparable(r) for r in RecordStore(out).all()}
    local = {r["key"]: comparable(r) for r in RecordStore(tmp_path / "local").all()}
    assert len(slurm) == 3 and slurm == local
    trainings = trainings_of(out / "cache")
    entries = {p.parent.name for p in (out / "cache").glob("*/*/meta.json")}
    assert len(entries) == 4 and {t["key"] for t in trainings} == entries
    for key in entries:      # nothing trained to completion twice (a requeue after a training's end resumes at it)
        assert sum(t["resumed_from_epoch"] < t["epochs"] for t in trainings if t["key"] == key) <= 1, key
    assert not list(out.rglob("*.tmp"))
    print(f"\nnode down: reference job {reference_job} states {history}; trainings "
          f"{[(t['kind'], t['resumed_from_epoch'], t['slurm_job']) for t in trainings]}")


def test_per_example_shadow_bank_trains_as_an_array_and_measures_the_same(cluster, tmp_path):
    """`per-example --executor slurm`: the shadow Originals and Retrains are
    trained by array tasks into the cache (each once); the measurements that
    follow here train nothing and equal those of the local executor."""
    args = ["per-example", "--methods", "original", "--scenarios", "random", "--shadows", "8", "--probe-shadows", "1",
            "--train-arg", "epochs=4", "--no-leaderboard"]
    code, text = cli(*args, "--out", tmp_path / "slurm", "--executor", "slurm", "--cpus-per-task", "1", "--time", "10")
    assert code == 0, text
    trainings = trainings_of(tmp_path / "slurm" / "cache")
    assert Counter(t["kind"] for t in trainings) == {"shadow-original": 8, "shadow-retrain": 8}
    assert all(t["slurm_job"] for t in trainings)                 # none trained by the measuring process
    assert cli(*args, "--out", tmp_path / "local", "--cpus-per-task", "1")[0] == 0   # the tasks' thread count
    slurm = {r["config"]["method"]: r for r in RecordStore(tmp_path / "slurm" / "per_example").all()}
    local = {r["config"]["method"]: r for r in RecordStore(tmp_path / "local" / "per_example").all()}
    assert slurm.keys() == local.keys() == {"original", "retrain"}
    for method in slurm:
        assert slurm[method]["metrics"] == local[method]["metrics"], method
