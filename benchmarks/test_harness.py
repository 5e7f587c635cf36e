"""The harness around the work: ``unlearnbench run``'s own overhead (wall
time minus time inside training, unlearning and evaluation; target <= 5%),
re-running a finished benchmark (everything cached; target < 5 s), adding a
method to a finished grid (no reference model trained), and every method's
unlearning time against retraining (the ``rte`` column).

The grid: seed 0 of the default benchmark (every method, every scenario) by
default, the whole default grid with ``--bench-large``, three methods on one
scenario under ``--benchmark-disable``.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import time

import pytest
from _bench import REPO, UNLEARNBENCH, report
from rte_table import rte_markdown

from unlearnbench.harness import cli
from unlearnbench.harness.protocol import references as RF
from unlearnbench.harness.protocol import runner as R
from unlearnbench.harness.report.publish import publish as publish_results

OVERHEAD_TARGET = 0.05
RERUN_TARGET_S = 5.0


class Stopwatch:
    """Exclusive time per category over instrumented functions: time spent
    in a nested instrumented call (e.g. the extra retrains trained inside the
    reference's evaluation) counts for the inner one only."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._stack: list[list[float]] = []   # [start, time of instrumented children]

    def wrap(self, category: str, fn):
        def timed(*args, **kwargs):
            self._stack.append([time.perf_counter(), 0.0])
            try:
                return fn(*args, **kwargs)
            finally:
                start, children = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.seconds[category] = self.seconds.get(category, 0.0) + elapsed - children
                if self._stack:
                    self._stack[-1][1] += elapsed
        return timed


def grid_args(bench) -> list[str]:
    if not bench.enabled:
        return ["--seeds", "0", "--scenarios", "random", "--ratios", "0.1",
                "--methods", "original,retrain,finetune"]
    return [] if bench.large else ["--seeds", "0"]


@pytest.fixture(scope="module")
def finished_grid(bench, tmp_path_factory):
    """The grid run once by ``unlearnbench run`` (in this process, with the
    training, unlearning and evaluation functions timed)."""
    out = tmp_path_factory.mktemp("grid")
    args = grid_args(bench) + ["--out", str(out)]
    watch = Stopwatch()
    mp = pytest.MonkeyPatch()
    mp.setattr(RF, "fit", watch.wrap("training", RF.fit))                # the original model
    mp.setattr(RF.ReferenceModels, "train_retrain", watch.wrap("training", RF.ReferenceModels.train_retrain))
    mp.setattr(R.Harness, "unlearn", watch.wrap("unlearning", R.Harness.unlearn))
    mp.setattr(R.Harness, "evaluate", watch.wrap("evaluation", R.Harness.evaluate))
    # the reference's outputs and metrics, and the noise floor (its trainings count as training)
    mp.setattr(R.Harness, "retrain_reference", watch.wrap("evaluation", R.Harness.retrain_reference))
    try:
        t0 = time.perf_counter()
        assert cli.main(["run", *args, "--no-leaderboard"]) == 0
        wall = time.perf_counter() - t0
    finally:
        mp.undo()
    t0 = time.perf_counter()
    publish_results(out, out / "leaderboard.md")
    publish = time.perf_counter() - t0
    return {"out": out, "args": args, "wall": wall, "publish": publish, "seconds": watch.seconds}


def test_harness_overhead(bench, finished_grid):
    wall, seconds, publish = finished_grid["wall"], finished_grid["seconds"], finished_grid["publish"]
    work = sum(seconds.values())
    share = (wall - work) / wall
    share_with_publish = (wall + publish - work) / (wall + publish)
    runs = len(list((finished_grid["out"] / "runs").glob("*.json")))
    report(None, f"harness overhead, {runs} runs: {wall:.1f} s wall, "
                 f"of which training {seconds.get('training', 0):.1f} s, "
                 f"unlearning {seconds.get('unlearning', 0):.1f} s, evaluation {seconds.get('evaluation', 0):.1f} s "
                 f"-> overhead {share:.1%} (target <= {OVERHEAD_TARGET:.0%}); leaderboard + figures afterwards "
                 f"{publish:.1f} s ({share_with_publish:.1%} with them)")
    assert seconds.get("training", 0) > 0 and seconds.get("unlearning", 0) > 0 and seconds.get("evaluation", 0) > 0
    bench.check(share <= OVERHEAD_TARGET, f"harness overhead {share:.1%} (target <= {OVERHEAD_TARGET:.0%})")


def run_cli(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([UNLEARNBENCH, *args], capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    return seconds, proc.stderr


def reference_trainings(stderr: str) -> int:
    return int(re.search(r"(\d+) reference models trained", stderr).group(1))


def test_rerun_of_a_finished_grid(benchmark, bench, finished_grid):
    out = finished_grid["out"]
    args = [*finished_grid["args"], "--leaderboard", str(out / "leaderboard.md")]
    times: list[float] = []

    def rerun():
        seconds, stderr = run_cli("run", *args)
        assert reference_trainings(stderr) == 0 and "nothing new" in stderr, stderr
        times.append(seconds)

    benchmark.pedantic(rerun, rounds=bench.rounds(3), iterations=1)
    median = sorted(times)[len(times) // 2]
    report(benchmark, f"re-running the finished grid (everything cached; nothing new, so nothing redrawn): "
                      f"{median:.2f} s (target < {RERUN_TARGET_S:.0f} s)", rerun_s=median)
    bench.check(median < RERUN_TARGET_S, f"a cached rerun took {median:.2f} s (target < {RERUN_TARGET_S} s)")


def test_rerun_of_the_committed_default_benchmark(benchmark, bench, tmp_path):
    """The committed records of the default benchmark, rerun in a copy of results/."""
    if not bench.enabled:
        pytest.skip("timing only (the grid's cached rerun above runs under --benchmark-disable)")
    shutil.copytree(REPO / "results", tmp_path / "results")
    dry = subprocess.run([UNLEARNBENCH, "run", "--dry-run"], capture_output=True, text=True, cwd=REPO).stdout
    keys = {line.split()[0] for line in dry.splitlines()[:-1]}
    done = {p.stem for p in (tmp_path / "results" / "runs").glob("*.json")}
    if not keys <= done:
        pytest.skip(f"the committed results/ lack {len(keys - done)} of the default grid's {len(keys)} runs")
    times: list[float] = []

    def rerun():
        seconds, stderr = run_cli("run", "--out", str(tmp_path / "results"),
                                  "--leaderboard", str(tmp_path / "leaderboard.md"))
        assert reference_trainings(stderr) == 0, stderr
        times.append(seconds)

    benchmark.pedantic(rerun, rounds=3, iterations=1)
    median = sorted(times)[len(times) // 2]
    report(benchmark, f"re-running the committed default benchmark ({len(keys)} runs, all cached): {median:.2f} s "
                      f"(target < {RERUN_TARGET_S:.0f} s)", rerun_s=median)
    bench.check(median < RERUN_TARGET_S, f"the cached default benchmark took {median:.2f} s to rerun")


def test_adding_a_method_trains_no_reference_model(benchmark, finished_grid, tmp_path):
    """A copy of the finished grid without finetune's records: running finetune
    then is adding a method to a finished grid.  Its runs reuse the cached
    references and noise-floor retrains: no line is added to trainings.jsonl."""
    out = tmp_path / "grid"
    shutil.copytree(finished_grid["out"], out)
    for path in (out / "runs").glob("*.json"):
        if json.loads(path.read_text())["config"]["method"] == "finetune":
            path.unlink()
    log = out / "cache" / "trainings.jsonl"
    trained_before = log.read_text().count("\n")
    args = [*finished_grid["args"], "--methods", "finetune", "--no-leaderboard"]
    args[args.index("--out") + 1] = str(out)

    seconds, stderr = benchmark.pedantic(lambda: run_cli("run", *args), rounds=1, iterations=1)
    assert reference_trainings(stderr) == 0 and re.search(r"[1-9]\d* ok", stderr), stderr
    assert log.read_text().count("\n") == trained_before
    report(benchmark, f"adding a method (finetune) to the finished grid: {seconds:.1f} s, "
                      f"0 reference models trained", seconds=seconds)


def test_unlearning_cost_against_retraining(bench, finished_grid):
    """Every method's unlearning time and rte (retrain time / unlearning time) on the grid."""
    summary = finished_grid["out"] / "summary.csv"
    table = rte_markdown(summary)
    report(None, "unlearning time vs retraining on the benchmark grid (rte = retrain time / method time):\n" + table)
    import pandas as pd

    df = pd.read_csv(summary)
    methods = df[~df["method"].isin(["original", "retrain"])]
    assert len(methods) and (methods["time_s_mean"] > 0).all() and (methods["rte_mean"] > 0).all()


def test_fsync_cost(bench, tmp_path):
    """What durable writes (methods/_files.py: an fsync of each file before
    its rename and of its folder after) cost: the time inside ``os.fsync``
    over the wall time of a fresh run of the grid, then of its cached rerun,
    both in this process."""
    import os

    calls, seconds = [0], [0.0]
    real_fsync = os.fsync

    def timed_fsync(fd):
        t0 = time.perf_counter()
        try:
            return real_fsync(fd)
        finally:
            seconds[0] += time.perf_counter() - t0
            calls[0] += 1

    lines, counts = [], []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "fsync", timed_fsync)
        for label in ("fresh run", "cached rerun"):
            calls[0], seconds[0] = 0, 0.0
            t0 = time.perf_counter()
            assert cli.main(["run", *grid_args(bench), "--out", str(tmp_path), "--no-leaderboard"]) == 0
            wall = time.perf_counter() - t0
            counts.append(calls[0])
            lines.append(f"{label}: {calls[0]} fsyncs, {seconds[0]:.3f} s of {wall:.2f} s wall "
                         f"({seconds[0] / wall:.2%})")
    # records, models, splits are fsynced; a cached rerun writes less
    assert counts[0] > 0 and counts[1] < counts[0]
    report(None, "fsync cost (durable writes), " + "; ".join(lines))
