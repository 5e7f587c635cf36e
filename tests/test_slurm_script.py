"""scripts/slurm_localhost.sh stop cancels the cluster's jobs and clears its
state, so that a restart starts with an empty queue (and job ids that go on
where they stopped).

It stops and restarts the cluster: on a machine where others use it, run it
only on purpose (``UNLEARNBENCH_SLURM_RESTART=1``; `.ci/run` sets it).
"""
import os
import subprocess
import time
from pathlib import Path

import pytest
from test_slurm import cluster_problem

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "slurm_localhost.sh"
STATE_DIRS = (Path("/var/spool/slurmctld"), Path("/var/spool/slurmd"))


def sh(*args, timeout=120) -> str:
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(map(str, args))}: {proc.stderr}"
    return proc.stdout


def queue() -> list[str]:
    return sh("squeue", "-h", "-o", "%i %T").split("\n")[:-1]


def wait_until(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    pytest.fail(f"{what} within {seconds:.0f} s", pytrace=False)


@pytest.fixture
def restartable_cluster():
    problem = cluster_problem()
    if not problem and os.geteuid() != 0:
        problem = "the script must run as root"
    if not problem and not Path("/etc/slurm/slurm.conf").read_text().startswith("# written by unlearnbench"):
        problem = "the cluster was not started by scripts/slurm_localhost.sh"
    if problem:
        message = f"no cluster of scripts/slurm_localhost.sh to restart: {problem}"
        if os.environ.get("CI") or os.environ.get("UNLEARNBENCH_REQUIRE_SLURM"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    if not os.environ.get("UNLEARNBENCH_SLURM_RESTART"):
        pytest.skip("stops and restarts the shared Slurm cluster: set UNLEARNBENCH_SLURM_RESTART=1 to run it")
    yield
    if cluster_problem():     # whatever happened, leave a running cluster behind
        subprocess.run(["bash", str(SCRIPT), "start"], capture_output=True, timeout=300)


def test_stop_cancels_the_jobs_and_clears_the_state_so_a_restart_is_empty(restartable_cluster, tmp_path):
    job = sh("sbatch", "--parsable", "-o", tmp_path / "%j.out", "--job-name", "unlearnbench-stop-test",
             "--wrap", "sleep 600").strip().split(";")[0]
    wait_until(lambda: any(line.startswith(f"{job} ") for line in queue()), 30, f"job {job} did not show in squeue")

    sh("bash", SCRIPT, "stop", timeout=300)
    for folder in STATE_DIRS:
        assert not any(folder.iterdir()), f"{folder} still holds {sorted(p.name for p in folder.iterdir())}"

    sh("bash", SCRIPT, "start", timeout=300)
    assert queue() == []                                          # nothing restored, no slot held
    wait_until(lambda: sh("sacct", "-n", "-X", "-P", "-j", job, "-o", "State").startswith("CANCELLED"), 60,
               f"job {job} not CANCELLED in accounting")
    after = sh("sbatch", "--parsable", "-o", tmp_path / "%j.out", "--wrap", "true").strip().split(";")[0]
    assert int(after) > int(job)                                  # ids go on: sacct never mixes two jobs
    wait_until(lambda: not queue(), 60, f"job {after} did not finish")
