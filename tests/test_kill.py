"""Fault injection: SIGKILL a real `unlearnbench run` at random moments (at
least ten times, each moment drawn from a seeded generator) on a small grid,
rerunning it after each kill, then check what a long sweep needs:

- every record exists exactly once;
- the metrics equal those of an uninterrupted run with the same thread count (times aside);
- no temporary file is left anywhere under the results and cache folders;
- no reference model was trained to completion twice (``trainings.jsonl``).

Where each kill landed is read from the progress output the killed process
had written and the files it left; the test prints the list.
"""
from __future__ import annotations

import json
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from unlearnbench.harness.protocol.records import RecordStore

SEED = 14
KILLS = 10
GRID = ["--datasets", "digits", "--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
        "--methods", "original,retrain,finetune,gradient_ascent,random_relabel", "--floor-retrains", "1",
        # registered defaults: the test must not depend on the shipped presets
        "--train-arg", "epochs=10", "--no-tuned", "--cpus-per-task", "1", "--no-leaderboard"]
UPDATE = re.compile(r"\] (\d+)/(\d+) .* (\S+) (ok|\(done\)|failed|diverged)$")


def command(out: Path) -> list[str]:
    return [sys.executable, "-m", "unlearnbench.harness.cli", "run", *GRID, "--out", str(out)]


def run_until(out: Path, log: Path, moment: float | None) -> tuple[int | None, float, float | None]:
    """Run `unlearnbench run`; SIGKILL it ``moment`` seconds after its start
    unless it ended first.  Returns (exit status or None if killed, seconds
    it ran, seconds until it wrote its first training checkpoint or None)."""
    with open(log, "w") as err:
        proc = subprocess.Popen(command(out), stdout=subprocess.DEVNULL, stderr=err)
        start, first_checkpoint = time.monotonic(), None
        while proc.poll() is None:
            elapsed = time.monotonic() - start
            if first_checkpoint is None and next(out.glob("cache/*/*/checkpoints/*"), None):
                first_checkpoint = elapsed
            if moment is not None and elapsed >= moment:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return None, elapsed, first_checkpoint
            assert elapsed < 600, "unlearnbench run did not end in 10 minutes"
            time.sleep(0.01)
        return proc.returncode, time.monotonic() - start, first_checkpoint


def stage_of(log: Path, out: Path, methods: list[str]) -> str:
    """Where a kill landed: the last line the process wrote, and what it left half-done."""
    lines = [line.strip() for line in log.read_text().splitlines() if line.strip()]
    if not lines:
        stage = "start-up (imports, data, cached references)"
    elif lines[-1].startswith("training "):
        stage = re.sub(r" \([^()]*\)$", "", lines[-1]).replace(" #1", "")   # without the run
    elif match := UPDATE.search(lines[-1]):
        done, total = int(match.group(1)), int(match.group(2))
        stage = f"run of {methods[done]} (references, method, evaluation, record)" if done < total else "exit"
    elif re.match(r"\d+ runs: ", lines[-1]):
        stage = "exit (summary printed)"
    else:
        stage = f"after {lines[-1][:60]!r}"
    mid_write = sorted({re.sub(r"\.[a-z0-9_]+\.\d+@.*", "", p.name.lstrip(".")) for p in out.rglob("*.tmp")})
    return stage + (f" — mid-write of {', '.join(mid_write)}" if mid_write else "")


def comparable(record: dict) -> dict:
    return {"status": record["status"], "config": record["config"], "sizes": record.get("sizes"),
            "forget_indices": record.get("forget_indices"), "floor": record["reference"]["floor"],
            "metrics": {k: v for k, v in record["metrics"].items() if k not in ("time_s", "rte")}}


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing_and_trains_nothing_twice(tmp_path):
    t_start = time.monotonic()
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    code, duration, working = run_until(straight, tmp_path / "straight.log", None)
    assert code == 0, (tmp_path / "straight.log").read_text()
    timeline = (tmp_path / "straight.log").read_text().splitlines()
    methods = [UPDATE.search(line).group(3) for line in timeline if UPDATE.search(line)]

    # moments: from half the start-up (imports, data, the first optimiser's torch._dynamo import: until the
    # first checkpoint) to 30% of the work past it.  Each attempt redoes the start-up, then goes on where the
    # last one stopped: the kills spread over the stages, and the grid is done near the tenth.
    rng = random.Random(SEED)
    landed, attempts = [], 0
    while len(landed) < KILLS:
        attempts += 1
        assert attempts <= 3 * KILLS, f"only {len(landed)} of {attempts} attempts were killed before they ended"
        moment = rng.uniform(0.5 * working, working + 0.3 * (duration - working))
        log = tmp_path / f"attempt-{attempts}.log"
        code, _, _ = run_until(killed, log, moment)
        if code is None:
            landed.append((round(moment, 2), stage_of(log, killed, methods)))
        else:
            assert code == 0, log.read_text()
            break   # the grid is complete: a later attempt has nothing left to interrupt
    assert len(landed) >= KILLS // 2, f"only {len(landed)} of {attempts} attempts were killed before the grid ended"
    code, _, _ = run_until(killed, tmp_path / "final.log", None)
    assert code == 0, (tmp_path / "final.log").read_text()
    seconds = time.monotonic() - t_start

    print(f"\n{len(landed)} kills in {attempts} attempts (uninterrupted run {duration:.1f} s, its first checkpoint "
          f"at {working:.1f} s; test {seconds:.0f} s):")
    for moment, stage in landed:
        print(f"  at {moment:5.2f} s: {stage}")
    print("  by stage: " + ", ".join(f"{n} {s}" for s, n in Counter(s.split(" — ")[0] for _, s in landed).items()))

    # every record exists exactly once, with the uninterrupted run's numbers
    a = {r["key"]: r for r in RecordStore(straight).all()}
    b = {r["key"]: r for r in RecordStore(killed).all()}
    assert len(a) == len(methods) == 5 and a.keys() == b.keys()
    assert sorted(p.name for p in (killed / "runs").iterdir()) == sorted(f"{k}.json" for k in a)
    for key in a:
        assert comparable(b[key]) == comparable(a[key]), a[key]["config"]["method"]
    # nothing temporary or half-done left behind
    assert not list(killed.rglob("*.tmp")) and not list(killed.rglob("checkpoints/*"))
    # each reference model trained to completion once (a kill after the end of a training resumes at its end)
    log = [json.loads(line) for line in (killed / "cache" / "trainings.jsonl").read_text().splitlines()]
    entries = {p.parent.name for p in (killed / "cache").glob("*/*/meta.json")}
    assert len(entries) == 4 and {t["key"] for t in log} == entries
    for key in entries:
        assert sum(t["resumed_from_epoch"] < t["epochs"] for t in log if t["key"] == key) <= 1, key
    resumed = [t for t in log if t["resumed_from_epoch"]]
    print(f"  trainings logged: {len(log)}, of which resumed from a checkpoint: "
          + (", ".join(f"{t['kind']} at epoch {t['resumed_from_epoch']}/{t['epochs']}" for t in resumed) or "none"))
