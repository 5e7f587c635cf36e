"""Equal-budget tuning: search spaces next to the methods, the validation
protocol, presets in TOML and their use by the benchmark grid."""
from dataclasses import dataclass

import numpy as np
import pytest

from unlearnbench.harness.cli import main
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness
from unlearnbench.harness.protocol.spec import SCENARIOS
from unlearnbench.harness.tuning import tune as T
from unlearnbench.methods import (
    Choice,
    IntRange,
    LogUniform,
    get_method,
    list_methods,
    method_origin,
    register_method,
    unregister_method,
)


def test_search_spaces_are_declared_next_to_the_methods():
    for name in list_methods():
        info = get_method(name)
        assert set(info.search_space) <= set(info.defaults()), name
    assert get_method("original").search_space == {} and get_method("retrain").search_space == {}
    assert get_method("finetune").search_space["lr"] == LogUniform(0.01, 0.5)


def contains(dist, value) -> bool:
    """Whether a declared search distribution can draw ``value``."""
    if isinstance(dist, Choice):
        return value in dist.values
    return dist.low <= value <= dist.high


# Reference defaults that lie below their method's measured working window (a no-op region on the
# saturated digits original; scripts/tuning_windows.py): trial 0 still evaluates them exactly.
BELOW_WINDOW = {("gradient_ascent", "lr"), ("scrub", "lr")}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_registered_defaults_lie_in_their_space_unless_named_below_the_window(scenario):
    """Trial 0 is the registered defaults.  A space is the measured working
    window and is not widened to reach a default; the only defaults outside
    their space are the ones named here (and in docs/metrics.md, "Tuning")."""
    outside = set()
    for name in list_methods():
        info = get_method(name)
        defaults = info.defaults(scenario)
        outside |= {(name, key) for key, dist in info.search_space.items() if not contains(dist, defaults[key])}
    assert outside == BELOW_WINDOW
    for method, key in BELOW_WINDOW:
        assert get_method(method).defaults(scenario)[key] < get_method(method).search_space[key].low


def test_contains_sees_a_default_outside_its_space():
    assert contains(LogUniform(1e-4, 1e-3), 1e-3) and not contains(LogUniform(1e-4, 1e-3), 3e-5)
    assert contains(IntRange(2, 8), 8) and not contains(IntRange(2, 8), 10)
    assert contains(Choice(64, 256), 256) and not contains(Choice(64, 256), 128)


def test_every_built_in_method_cites_where_its_defaults_come_from():
    uncited = [name for name in list_methods() if get_method(name).hyper is not None
               and method_origin(name) == "built-in" and not get_method(name).defaults_source]
    assert not uncited, uncited
    for name in list_methods():
        source = get_method(name).defaults_source or ""
        assert "|" not in source and len(source) <= 120, name   # a cell of the leaderboard's tuning table


@dataclass
class _Hyper:
    lr: float = 0.1


def test_search_space_must_name_hyperparameters():
    with pytest.raises(TypeError, match="must be a hyperparameter"):
        register_method("bad_space_for_test", hyper=_Hyper,
                        search_space={"epochs": IntRange(1, 3)})(lambda c, h: c.model)
    unregister_method("bad_space_for_test")


def test_studies_of_a_grid(tmp_path):
    """One study per method x table, named by both, its budget and a hash of
    what its trials depend on; trial 0 = the scenario's registered defaults."""
    grid = Grid(scenarios=["random", "class"], ratios=[0.1], out=str(tmp_path))
    studies = T.make_studies(grid, ["gradient_ascent", "ssd"], [100, 101], 12)
    assert [s.name.rsplit("/", 1)[0] for s in studies] == [
        "digits/mlp/random 10%/gradient_ascent/12 trials", "digits/mlp/class 0/gradient_ascent/12 trials",
        "digits/mlp/random 10%/ssd/12 trials", "digits/mlp/class 0/ssd/12 trials"]
    assert studies[1].defaults == studies[0].defaults == {"epochs": 5, "lr": 1e-4}   # SalUn's GA defaults, one for both
    assert all(s.target == 12 for s in studies)
    other_seeds = T.make_studies(grid, ["gradient_ascent"], [100], 12)[0]
    assert other_seeds.name != studies[0].name                         # another objective: another study


def test_validation_protocol_never_touches_the_test_set(tmp_path):
    spec = expand(Grid(seeds=[100], scenarios=["random"], ratios=[0.1], methods=["finetune"]))[0]
    bench, tune = Harness(out=tmp_path / "a"), Harness(out=tmp_path / "b", evaluate_on="val")
    full_val, splits = bench.splits(spec)["val"], tune.splits(spec)
    # the tuning 'test' split and the method's val are the two halves of the validation split
    assert len(splits["val"]) + len(splits["test"]) == len(full_val)
    rows = lambda s: {tuple(r) for r in s.x.reshape(len(s), -1).tolist()}
    assert rows(splits["val"]) | rows(splits["test"]) == rows(full_val)
    assert not rows(splits["val"]) & rows(splits["test"])
    assert np.bincount(splits["test"].y.numpy()).min() >= 5         # class-balanced halves


def test_validation_protocol_scores_class_forgetting(tmp_path):
    """Class forgetting under the tuning protocol: TA-fc and TA-rest are read
    on the validation half that plays the test set (not on the test set)."""
    grid = Grid(seeds=[100], scenarios=["class"], classes=[3], methods=["retrain", "finetune"], floor_retrains=0,
                train={"epochs": 3}, method_args={"finetune": {"epochs": 1}})
    harness, specs = Harness(out=tmp_path, evaluate_on="val"), expand(grid)
    records = {s.method: harness.run(s) for s in specs}
    assert all(r["status"] == "ok" for r in records.values()), [r.get("message") for r in records.values()]
    test = harness.splits(specs[0])["test"]
    assert records["finetune"]["sizes"]["test"] == len(test) and 0 < (test.y == 3).sum() < len(test)
    assert records["retrain"]["metrics"]["test_acc_forget_class"] == 0.0   # never saw class 3
    assert records["retrain"]["metrics"]["test_acc_other_classes"] > 50.0
    assert np.isfinite(records["finetune"]["metrics"]["avg_gap"])


def test_tune_writes_presets_that_the_grid_uses(tmp_path, capsys):
    presets = tmp_path / "presets"
    presets.mkdir()
    args = ["tune", "finetune", "--scenarios", "random", "--ratios", "0.1", "--trials", "2", "--tune-seeds", "100",
            "--max-trials", "2", "--presets", str(presets), "--out", str(tmp_path / "out")]
    assert main(args) == 0
    path = presets / "digits-mlp.toml"
    doc = T.tomllib.loads(path.read_text())
    tuned = doc["hyper"]["random 10%"]["finetune"]
    record = doc["tuning"]["random 10%"]["finetune"]
    assert record["trials"] == record["budget"] == 2 and len(record["history"]) == 2 and record["seeds"] == [100]
    first = record["history"][0]
    assert first["defaults"] and first["epochs"] == 10 and first["lr"] == 0.01   # trial 0: SalUn's FT defaults
    assert record["trial0"] == {"epochs": 10, "lr": 0.01} and record["default"] == first["avg_gap"]
    assert record["defaults_source"] == get_method("finetune").defaults_source
    assert record["best"] == min(h["avg_gap"] for h in record["history"])
    assert tuned == {k: v for k, v in record["history"][record["best_trial"]].items() if k in ("epochs", "lr")}
    assert "lr: log-uniform [0.01, 0.5]" in record["search_space"] and "TPESampler" in record["sampler"]
    assert (tmp_path / "out" / "tuning" / "studies.db").is_file()
    assert record["converged"] == (record["best_at_half"] - record["best"] <= record["noise"])
    assert record["half_trials"] == 1 and record["best_at_half"] == record["default"] and record["noise"] == 0.0
    assert record["best_noop"] == all(record["history"][record["best_trial"]]["noop"])
    # rerunning the same command continues the study: it is complete, nothing runs, the preset stays
    text = path.read_text()
    assert main(args) == 0 and path.read_text() == text
    # the benchmark grid picks the preset up for that table only; explicit arguments still win
    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1, 0.5], methods=["finetune"], tuned=str(presets))
    hypers = {s.scenario.label: s.hyper for s in expand(grid)}
    assert hypers["random 10%"] == tuned and hypers["random 50%"] == {"epochs": 10, "lr": 0.01}
    grid.method_args = {"finetune": {"lr": 0.0123}}
    assert tuned["lr"] != 0.0123
    assert {s.scenario.label: s.hyper["lr"] for s in expand(grid)}["random 10%"] == 0.0123
    grid.tuned, grid.method_args = False, {}
    assert expand(grid)[0].hyper == {"epochs": 10, "lr": 0.01}
    # tuning another method keeps the first one's entry
    assert main(["tune", "gradient_ascent", "--scenarios", "random", "--ratios", "0.1", "--trials", "1",
                 "--tune-seeds", "100", "--presets", str(presets), "--out", str(tmp_path / "out")]) == 0
    doc = T.tomllib.loads(path.read_text())
    assert set(doc["hyper"]["random 10%"]) == {"finetune", "gradient_ascent"}
    capsys.readouterr()
    assert main([*args[:-2], "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    assert "finetune digits/mlp random 10%: 2/2 trials x 1 seeds" in capsys.readouterr().out


@dataclass
class _Fixed:
    unused: int = 1


def test_a_method_with_nothing_to_tune_runs_trial_0_only(tmp_path):
    register_method("fixed_for_tuning_test", hyper=_Fixed)(lambda ctx, hp: ctx.model)
    try:
        assert T.tunable_methods("fixed_for_tuning_test") == ["fixed_for_tuning_test"]
        assert "fixed_for_tuning_test" in T.tunable_methods("all") and "original" not in T.tunable_methods("all")
        assert main(["tune", "fixed_for_tuning_test", "--scenarios", "random", "--ratios", "0.1", "--trials", "3",
                     "--tune-seeds", "100", "--presets", str(tmp_path), "--out", str(tmp_path / "out")]) == 0
        record = T.tomllib.loads((tmp_path / "digits-mlp.toml").read_text())["tuning"]["random 10%"]
        record = record["fixed_for_tuning_test"]
        assert record["trials"] == 1 and record["budget"] == 3 and record["search_space"] == "nothing to tune"
        assert len(record["history"]) == 1 and record["history"][0]["defaults"]
    finally:
        unregister_method("fixed_for_tuning_test")


@pytest.mark.slow
def test_two_local_workers_complete_exactly_the_budget(tmp_path):
    """--jobs 2: two processes share the SQLite study and stop at the budget."""
    import optuna

    out = tmp_path / "out"
    assert main(["tune", "ssd", "--scenarios", "random", "--ratios", "0.1", "--trials", "4", "--tune-seeds", "100",
                 "--presets", str(tmp_path), "--out", str(out), "--jobs", "2"]) == 0
    storage = T.default_storage(out)
    (summary,) = optuna.get_all_study_summaries(storage)
    trials = optuna.load_study(study_name=summary.study_name, storage=storage).trials
    states = [t.state.name for t in trials]
    assert states.count("COMPLETE") == 4 and "RUNNING" not in states and "FAIL" not in states
    assert len({tuple(sorted(t.user_attrs["values"].items())) for t in trials if t.state.name == "COMPLETE"}) == 4
    record = T.tomllib.loads((tmp_path / "digits-mlp.toml").read_text())["tuning"]["random 10%"]["ssd"]
    assert record["trials"] == 4 and [h["trial"] for h in record["history"]][0] == 0


def test_stale_preset_is_a_usage_error(tmp_path):
    (tmp_path / "digits-mlp.toml").write_text('[hyper."random 10%".finetune]\nlearning_rate = 0.1\n')
    from unlearnbench.harness.errors import UsageError

    with pytest.raises(UsageError, match="finetune has no hyperparameter 'learning_rate'"):
        expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"], tuned=str(tmp_path)))


@pytest.mark.parametrize("args, needle", [
    (["tune", "nope"], "unknown method 'nope'"),
    (["tune", "original"], "method 'original' is a reference model, nothing to tune; accepted: bad_teacher, finetune"),
    (["tune", "finetune", "--trials", "0"], "--trials 0 is not a positive integer"),
    (["tune", "finetune", "--jobs", "0"], "--jobs 0 is not a positive integer"),
    (["tune", "finetune", "--tune-seeds", "x"], "--tune-seeds: 'x' is not a comma-separated list of ints"),
    (["tune", "finetune", "--storage", "nosuchdb://x"], "--storage 'nosuchdb://x' cannot be opened"),
    (["tune", "finetune", "--storage", "not a url"], "--storage 'not a url' cannot be opened"),
])
def test_tune_bad_input_exits_2(tmp_path, capsys, args, needle):
    assert main([*args, "--out", str(tmp_path / "out"), "--presets", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists() and not list(tmp_path.iterdir())


def test_tuning_section_states_budget_and_spaces(tmp_path):
    from unlearnbench.harness.tuning.report import leaderboard_section

    text = leaderboard_section(tmp_path)
    assert f"same budget of {T.DEFAULT_TRIALS} complete trials" in text
    assert "| finetune | epochs: integer 3..15; lr: log-uniform [0.01, 0.5] |" in text
    assert "| trial 0 | trial 0's defaults from | best trial | best | at half | noise | converged |" in text
    assert "Studies whose best trial is a no-op:" in text and "Studies not converged:" in text


def _history(*scores, per_seed=None):
    return [{"trial": i, T.OBJECTIVE: v, "per_seed": per_seed or [v, v]} for i, v in enumerate(scores)]


def test_convergence_compares_the_best_at_half_the_budget_with_the_noise():
    # the best (1.0, seeds 0.9/1.1: standard error 0.1) came late; at half the budget the best was 1.05: converged
    h = _history(3.0, 1.05, 2.0, 1.0)
    h[3]["per_seed"] = [0.9, 1.1]
    c = T.convergence(h)
    assert c["half"] == 2 and c["best_at_half"] == 1.05 and abs(c["noise"] - 0.1) < 1e-12 and c["converged"]
    # the same late best with no seed-to-seed spread: 1.05 is worse than 1.0 by more than the noise (0)
    assert not T.convergence(_history(3.0, 1.05, 2.0, 1.0))["converged"]
    # a best found in the first half is converged whatever the noise
    assert T.convergence(_history(0.5, 2.0, 3.0, 4.0))["converged"]
    assert not T.convergence([])["converged"]


def test_a_study_that_has_not_converged_is_extended_up_to_the_cap(tmp_path):
    """A study whose scores keep improving grows by the step until the cap; a flat one stops at its budget."""
    from unlearnbench.harness.protocol.spec import Scenario
    from unlearnbench.harness.tuning import search as St

    storage = St.open_storage(f"sqlite:///{tmp_path / 'studies.db'}")
    space = {"lr": LogUniform(0.01, 0.3)}
    studies = {kind: St.Study(name=kind, method="m", dataset="digits", model="mlp", scenario=Scenario("random", 0.1),
                              target=4, defaults={"lr": 0.1}, space=St.distributions(space, {"lr": 0.1}))
               for kind in ("improving", "flat")}
    calls = {"improving": 0, "flat": 0}

    def evaluate(study, values):
        calls[study.name] += 1
        score = 10.0 - calls[study.name] if study.name == "improving" else 1.0
        return score, {"per_seed": [score, score]}

    running = list(studies.values())
    for study in running:
        St.prepare(storage, study)
    rounds = 0
    while running:
        St.optimize(storage, running, evaluate, poll_s=0.1)
        running = T.extend(storage, running, max_trials=8, step=2)
        rounds += 1
    assert calls == {"improving": 8, "flat": 4} and rounds == 3
    assert studies["improving"].target == 8 and studies["flat"].target == 4
