"""Reading Slurm's job states (harness/cluster/status.py: one ``sacct`` call through
submitit's watcher, ``squeue`` for jobs accounting does not know yet), fed
real-format text: no cluster needed."""
import subprocess

import pytest

from unlearnbench.harness.cluster import status as status_mod

# `sacct -o JobID,State,NodeList --parsable2 -j ...` as this project's one-node cluster (slurm-wlm 22.05.8)
# printed it: array tasks and plain jobs, each with its .batch and .0 steps, a job cancelled by root.
CAPTURED = """JobID|State|NodeList
1_0|COMPLETED|localhost
1_0.batch|COMPLETED|localhost
1_0.0|COMPLETED|localhost
1_1|COMPLETED|localhost
1_1.batch|COMPLETED|localhost
1_1.0|COMPLETED|localhost
5|CANCELLED by 0|localhost
5.batch|CANCELLED|localhost
5.0|CANCELLED|localhost
"""
# the same format for states that history lacked: a throttled pending array range, a requeued task, a timeout
OTHER_STATES = """16_[2-5%2]|PENDING|None assigned
16_0|RUNNING|localhost
16_0.batch|RUNNING|localhost
16_1|REQUEUED|localhost
17|TIMEOUT|localhost
17.batch|CANCELLED|localhost
"""
SQUEUE = "30_0|PENDING\n30_1|RUNNING\n"     # `squeue -h -r -o %i|%T -j 30`


@pytest.fixture
def slurm_text(monkeypatch):
    calls = []

    def check_output(command, shell=False):
        calls.append(command)
        assert command[:4] == ["sacct", "-o", "JobID,State,NodeList", "--parsable2"] and not shell
        return (CAPTURED + OTHER_STATES).encode()

    def run(command, **kwargs):
        calls.append(command)
        assert command[:5] == ["squeue", "-h", "-r", "-o", "%i|%T"]
        return subprocess.CompletedProcess(command, 0, stdout=SQUEUE, stderr="")

    monkeypatch.setattr(status_mod.shutil, "which", lambda name: f"/usr/bin/{name}")
    monkeypatch.setattr(subprocess, "check_output", check_output)
    monkeypatch.setattr(status_mod.subprocess, "run", run)
    return calls


def test_job_states_are_read_from_sacct_text(slurm_text):
    ids = ["1_0", "1_1", "5", "16_0", "16_1", "16_3", "17", "30_1", "99"]
    states = status_mod.job_states(ids)
    assert states == {"1_0": "COMPLETED", "1_1": "COMPLETED", "5": "CANCELLED by 0", "16_0": "RUNNING",
                      "16_1": "REQUEUED", "16_3": "PENDING", "17": "TIMEOUT",
                      "30_1": "RUNNING",        # not in accounting yet: from squeue
                      "99": "UNKNOWN"}          # neither knows it
    sacct, squeue = slurm_text
    assert sorted(sacct[sacct.index("-j") + 1::2]) == ["1", "16", "17", "30", "5", "99"]   # one call, by job
    assert squeue[-1].split(",") == ["30", "99"]                 # only the unknown ones are asked
    # what each state means for the runs of the job
    assert {j: status_mod.base_state(s) in status_mod.ACTIVE_STATES for j, s in states.items()} == {
        "1_0": False, "1_1": False, "5": False, "16_0": True, "16_1": True, "16_3": True, "17": False,
        "30_1": True, "99": False}
    assert {status_mod.base_state(states[j]) for j in ("5", "17")} <= status_mod.FAILED_STATES


def test_without_slurm_every_state_is_unknown(monkeypatch):
    monkeypatch.setattr(status_mod.shutil, "which", lambda name: None)
    assert status_mod.job_states(["1_0", "5"]) == {"1_0": "UNKNOWN", "5": "UNKNOWN"}
