"""The Optuna studies behind `unlearnbench tune` (harness/tuning/search.py), on a
synthetic objective: seeded TPE, trial 0 = defaults, the budget counted in
complete trials, resuming, crashed trials, workers sharing one SQLite file."""
import math
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from optuna.trial import TrialState

from unlearnbench.harness.errors import UsageError
from unlearnbench.harness.protocol.spec import Scenario
from unlearnbench.harness.tuning import search as St
from unlearnbench.methods import Choice, IntRange, LogUniform, Uniform

SPACE = {"lr": LogUniform(0.01, 0.3), "epochs": IntRange(3, 15), "share": Uniform(0.1, 1.0),
         "alpha": Choice(0.001, 0.5)}
DEFAULTS = {"lr": 0.1, "epochs": 10, "share": 0.5, "alpha": 0.001}


def make_study(name="s", target=6, space=SPACE, defaults=DEFAULTS) -> St.Study:
    return St.Study(name=name, method="m", dataset="digits", model="mlp", scenario=Scenario("random", 0.1),
                    target=target, defaults={k: defaults[k] for k in space},
                    space=St.distributions(space, defaults))


def gap(study, values):
    """A smooth synthetic Avg. Gap with its minimum at lr 0.05, 8 epochs."""
    return ((math.log(values.get("lr", 0.05) / 0.05)) ** 2 + (values.get("epochs", 8) - 8) ** 2 / 10
            + values.get("alpha", 0.5)), {"pid": os.getpid()}


def storage_at(tmp_path, name="studies.db"):
    return St.open_storage(f"sqlite:///{tmp_path / name}")


def run(storage, study, evaluate=gap, seed=0, **kw):
    St.prepare(storage, study)
    St.optimize(storage, [study], evaluate, seed=seed, poll_s=0.1, **kw)
    return St.load(storage, study).get_trials(deepcopy=False)


def complete(trials):
    return sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)


def test_declared_spaces_map_to_optuna_distributions():
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    d = St.distributions(SPACE, DEFAULTS)
    assert d["lr"] == FloatDistribution(0.01, 0.3, log=True) and d["share"] == FloatDistribution(0.1, 1.0)
    assert d["epochs"] == IntDistribution(3, 15) and d["alpha"] == CategoricalDistribution((0.001, 0.5))
    # a numeric default outside the declared window leaves the window as it is (trial 0 lies outside);
    # a categorical one joins the choices
    wide = St.distributions(SPACE, {"lr": 1e-3, "epochs": 20, "share": 0.5, "alpha": 0.1})
    assert wide["lr"] == FloatDistribution(0.01, 0.3, log=True) and wide["epochs"] == IntDistribution(3, 15)
    assert wide["alpha"] == CategoricalDistribution((0.001, 0.5, 0.1))
    with pytest.raises(UsageError, match="log-uniform"):
        St.distributions({"l1": LogUniform(3e-4, 5e-3)}, {"l1": 0.0})


def test_trial_0_is_the_defaults_and_the_budget_counts_complete_trials(tmp_path):
    trials = run(storage_at(tmp_path), make_study(target=6))
    done = complete(trials)
    assert len(done) == 6 and len(trials) == 6
    assert done[0].number == 0 and done[0].user_attrs["defaults"] and done[0].user_attrs["values"] == DEFAULTS
    for t in done[1:]:
        v = t.user_attrs["values"]
        assert 0.01 <= v["lr"] <= 0.3 and 3 <= v["epochs"] <= 15 and v["alpha"] in (0.001, 0.5)
        assert v["lr"] == float(f"{v['lr']:.3g}")                   # rounded as the presets show it
    assert len({tuple(sorted(t.user_attrs["values"].items())) for t in done}) == 6


def test_defaults_outside_the_window_run_as_trial_0_and_the_draws_stay_inside(tmp_path):
    """A reference default in a no-op region (GA's lr 1e-4 below its window)
    is trial 0 exactly, while every other trial is drawn inside the declared space."""
    outside = {**DEFAULTS, "lr": 1e-4, "epochs": 1}
    trials = run(storage_at(tmp_path), make_study(target=8, defaults=outside))
    done = complete(trials)
    assert done[0].user_attrs["values"] == outside and done[0].value == gap(None, outside)[0]
    for t in done[1:]:
        assert 0.01 <= t.user_attrs["values"]["lr"] <= 0.3 and 3 <= t.user_attrs["values"]["epochs"] <= 15


def test_nothing_to_tune_runs_trial_0_only(tmp_path):
    study = make_study(target=1, space={})
    trials = run(storage_at(tmp_path), study)
    assert [(t.state, t.user_attrs["values"]) for t in trials] == [(TrialState.COMPLETE, {})]


def test_the_sampler_is_seeded(tmp_path):
    values = lambda trials: [t.user_attrs["values"] for t in complete(trials)]   # noqa: E731
    first = values(run(storage_at(tmp_path, "a.db"), make_study(target=5), seed=7))
    again = values(run(storage_at(tmp_path, "b.db"), make_study(target=5), seed=7))
    other = values(run(storage_at(tmp_path, "c.db"), make_study(target=5), seed=8))
    assert first == again
    assert first[0] == other[0] == DEFAULTS and first[1:] != other[1:]


@pytest.mark.slow
def test_tpe_uses_the_history(tmp_path):
    """After the random start-up trials, TPE concentrates near the optimum
    of the synthetic gap (lr 0.05, 8 epochs, alpha 0.001)."""
    trials = complete(run(storage_at(tmp_path), make_study(target=30), seed=0))
    late = [t.value for t in trials[-10:]]
    start = [t.value for t in trials[1:St.startup_trials(30)]]
    assert sorted(late)[len(late) // 2] < sorted(start)[len(start) // 2]


def test_resume_continues_without_duplicating(tmp_path):
    storage, study = storage_at(tmp_path), make_study(target=5)
    calls = []

    def crash_on_third(study_, values):
        calls.append(values)
        if len(calls) == 3:
            raise RuntimeError("killed")
        return gap(study_, values)

    with pytest.raises(RuntimeError, match="killed"):
        run(storage, study, crash_on_third)
    trials = St.load(storage, study).get_trials(deepcopy=False)
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL]
    trials = run(storage, study, crash_on_third)                      # the same command again
    done = complete(trials)
    assert len(done) == 5 and sum(t.state == TrialState.FAIL for t in trials) == 1
    assert sum(bool(t.user_attrs.get("defaults")) for t in trials) == 1    # trial 0 not queued again
    assert len(calls) == 3 + 3 and done[0].user_attrs["values"] == DEFAULTS
    before = len(trials)
    assert len(run(storage, study, crash_on_third)) == before and len(calls) == 6   # complete: nothing to do


def test_failed_defaults_trial_is_queued_again(tmp_path):
    storage, study = storage_at(tmp_path), make_study(target=3)

    calls = []

    def fail_first(study_, values):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("crash")
        return gap(study_, values)

    with pytest.raises(RuntimeError):
        run(storage, study, fail_first)
    done = complete(run(storage, study, fail_first))
    assert len(done) == 3 and done[0].user_attrs.get("defaults") and done[0].user_attrs["values"] == DEFAULTS


def test_a_space_smaller_than_the_budget_is_exhausted(tmp_path, monkeypatch):
    monkeypatch.setattr(St, "DUPLICATE_LIMIT", 2)                           # 8 duplicates: exhausted
    study = make_study(target=4, space={"alpha": Choice(0.001, 0.5)})
    trials = run(storage_at(tmp_path), study)
    c = St.counts(trials)
    assert c.complete == 2 and c.exhausted(4)
    assert {t.user_attrs["values"]["alpha"] for t in complete(trials)} == {0.001, 0.5}


def test_result_reports_best_history_and_trial_0(tmp_path):
    storage, study = storage_at(tmp_path), make_study(target=5)
    trials = complete(run(storage, study))
    r = St.result(storage, study, "avg_gap")
    best = min(trials, key=lambda t: t.value)
    assert r["best"] == best.user_attrs["values"] and r["best_score"] == best.value
    assert r["default_score"] == trials[0].value and r["history"][0]["defaults"] is True
    assert [h["trial"] for h in r["history"]] == [t.number for t in trials]
    assert [h["avg_gap"] for h in r["history"]] == [t.value for t in trials]


WORKER = textwrap.dedent("""
    import os, sys, time
    from unlearnbench.harness.tuning import search as St
    from unlearnbench.harness.protocol.spec import Scenario
    from unlearnbench.methods import IntRange, LogUniform

    url, target, worker, sleep = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    space, defaults = {"lr": LogUniform(0.01, 0.3), "epochs": IntRange(3, 15)}, {"lr": 0.1, "epochs": 10}
    study = St.Study("shared", "m", "digits", "mlp", Scenario("random", 0.1), target, defaults,
                     St.distributions(space, defaults))

    def evaluate(study, values):
        time.sleep(sleep)
        return values["lr"] + values["epochs"], {"pid": os.getpid()}

    St.optimize(St.open_storage(url), [study], evaluate, seed=0, worker=worker, poll_s=0.2)
""")


def start_worker(url, target, worker, sleep):
    return subprocess.Popen([sys.executable, "-c", WORKER, url, str(target), str(worker), str(sleep)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_worker_processes_share_one_sqlite_study(tmp_path):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    storage = St.open_storage(url)
    study = make_study(name="shared", target=8, space={"lr": LogUniform(0.01, 0.3), "epochs": IntRange(3, 15)},
                       defaults={"lr": 0.1, "epochs": 10})
    St.prepare(storage, study)
    workers = [start_worker(url, 8, i, 0.3) for i in range(2)]
    for w in workers:
        _, err = w.communicate(timeout=240)
        assert w.returncode == 0, err
    trials = St.load(storage, study).get_trials(deepcopy=False)
    done = complete(trials)
    assert len(done) == 8 and not any(t.state in (TrialState.RUNNING, TrialState.FAIL) for t in trials)
    assert len({t.user_attrs["pid"] for t in done}) == 2                    # both contributed
    assert len({tuple(sorted(t.user_attrs["values"].items())) for t in done}) == 8
    assert sum(bool(t.user_attrs.get("defaults")) for t in done) == 1


@pytest.mark.slow
def test_a_killed_workers_trial_is_failed_and_not_counted(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'studies.db'}"
    space, defaults = {"lr": LogUniform(0.01, 0.3), "epochs": IntRange(3, 15)}, {"lr": 0.1, "epochs": 10}
    study = make_study(name="shared", target=3, space=space, defaults=defaults)
    St.prepare(St.open_storage(url), study)
    worker = start_worker(url, 3, 0, 600)                                   # its first trial never ends
    storage = St.open_storage(url)
    deadline = time.monotonic() + 120
    while not any(t.state == TrialState.RUNNING for t in St.load(storage, study).get_trials()):
        assert time.monotonic() < deadline and worker.poll() is None, worker.stderr.read() if worker.poll() else ""
        time.sleep(0.2)
    time.sleep(1.0)                                                         # its first heartbeat is written
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    monkeypatch.setattr(St, "GRACE_S", 2)                                    # no heartbeat for 2 s: stale
    monkeypatch.setattr(St, "HEARTBEAT_S", 1)
    storage = St.open_storage(url)
    time.sleep(3)
    trials = run(storage, study)                                            # the same command again
    assert [t.state for t in trials] == [TrialState.FAIL] + [TrialState.COMPLETE] * 3
    assert trials[0].user_attrs["defaults"] and trials[1].user_attrs["defaults"]   # the defaults, queued again
    assert trials[1].user_attrs["values"] == defaults


@pytest.mark.filterwarnings("ignore:Heartbeat of storage")
def test_a_trial_killed_before_its_first_heartbeat_is_failed(tmp_path, monkeypatch):
    """A worker can die between taking a trial and its first heartbeat: the
    trial then has no configuration, and is failed once it is GRACE_S old."""
    storage, study = storage_at(tmp_path), make_study(target=2)
    St.prepare(storage, study)
    St.load(storage, study).ask()                                           # taken, never evaluated
    monkeypatch.setattr(St, "GRACE_S", 0.5)
    time.sleep(1.0)
    trials = run(storage, study)
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE, TrialState.COMPLETE]
    assert St.result(storage, study)["default_score"] is not None
