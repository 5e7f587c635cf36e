"""Equal-budget tuning: search spaces next to the methods, the validation
protocol, presets in TOML and their use by the benchmark grid."""
from dataclasses import dataclass

import numpy as np
import pytest

from unlearnbench.harness.cli import main
from unlearnbench.harness.config import Grid, expand
from unlearnbench.harness.runner import Harness
from unlearnbench.harness import tuning as T
from unlearnbench.methods import IntRange, LogUniform, get_method, list_methods, register_method, unregister_method


def test_search_spaces_are_declared_next_to_the_methods():
    for name in list_methods():
        info = get_method(name)
        assert set(info.search_space) <= set(info.defaults()), name
    assert get_method("original").search_space == {} and get_method("retrain").search_space == {}
    assert get_method("finetune").search_space["lr"] == LogUniform(0.01, 0.3)


@dataclass
class _Hyper:
    lr: float = 0.1


def test_search_space_must_name_hyperparameters():
    with pytest.raises(TypeError, match="must be a hyperparameter"):
        register_method("bad_space_for_test", hyper=_Hyper,
                        search_space={"epochs": IntRange(1, 3)})(lambda c, h: c.model)
    unregister_method("bad_space_for_test")


def test_candidates_start_from_the_defaults_and_stay_in_the_space():
    info = get_method("gradient_ascent")
    draws = T.candidates(info, "class", 12, seed=5)
    assert draws[0] == {"epochs": 5, "lr": 1e-4}                 # the registered (SalUn README) default
    assert len(draws) == 12 and len({tuple(sorted(d.items())) for d in draws}) == 12
    for d in draws[1:]:
        assert 1 <= d["epochs"] <= 10 and 1e-5 <= d["lr"] <= 0.1
    assert T.candidates(info, "class", 12, seed=5) == draws     # seeded


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
    code = main(["tune", "finetune", "--scenarios", "random", "--ratios", "0.1", "--trials", "2",
                 "--tune-seeds", "100", "--presets", str(presets), "--out", str(tmp_path / "out")])
    assert code == 0
    path = presets / "digits-mlp.toml"
    doc = T.tomllib.loads(path.read_text())
    tuned = doc["hyper"]["random 10%"]["finetune"]
    record = doc["tuning"]["random 10%"]["finetune"]
    assert record["trials"] == 2 and len(record["history"]) == 2 and record["seeds"] == [100]
    assert record["history"][0]["epochs"] == 10 and record["history"][0]["lr"] == 0.1    # trial 0: defaults
    assert record["best"] == min(h["avg_gap"] for h in record["history"])
    assert "lr: log-uniform [0.01, 0.3]" in record["search_space"]
    # the benchmark grid picks the preset up for that table only; explicit arguments still win
    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1, 0.5], methods=["finetune"], tuned=str(presets))
    hypers = {s.scenario.label: s.hyper for s in expand(grid)}
    assert hypers["random 10%"] == tuned and hypers["random 50%"] == {"epochs": 10, "lr": 0.1}
    grid.method_args = {"finetune": {"lr": 0.01}}
    assert {s.scenario.label: s.hyper["lr"] for s in expand(grid)}["random 10%"] == 0.01
    grid.tuned, grid.method_args = False, {}
    assert expand(grid)[0].hyper == {"epochs": 10, "lr": 0.1}
    # tuning another method keeps the first one's entry
    assert main(["tune", "gradient_ascent", "--scenarios", "random", "--ratios", "0.1", "--trials", "1",
                 "--tune-seeds", "100", "--presets", str(presets), "--out", str(tmp_path / "out")]) == 0
    doc = T.tomllib.loads(path.read_text())
    assert set(doc["hyper"]["random 10%"]) == {"finetune", "gradient_ascent"}


def test_stale_preset_is_a_usage_error(tmp_path):
    (tmp_path / "digits-mlp.toml").write_text('[hyper."random 10%".finetune]\nlearning_rate = 0.1\n')
    from unlearnbench.harness.errors import UsageError

    with pytest.raises(UsageError, match="finetune has no hyperparameter 'learning_rate'"):
        expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"], tuned=str(tmp_path)))


@pytest.mark.parametrize("args, needle", [
    (["tune", "nope"], "unknown method 'nope'"),
    (["tune", "original"], "method 'original' declares no search space; tunable: bad_teacher, finetune"),
    (["tune", "finetune", "--trials", "0"], "--trials 0 is not a positive integer"),
    (["tune", "finetune", "--tune-seeds", "x"], "--tune-seeds: 'x' is not a comma-separated list of ints"),
])
def test_tune_bad_input_exits_2(tmp_path, capsys, args, needle):
    assert main([*args, "--out", str(tmp_path / "out"), "--presets", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_tuning_section_states_budget_and_spaces(tmp_path):
    text = T.leaderboard_section(tmp_path)
    assert f"{T.DEFAULT_TRIALS} configurations" in text
    assert "| finetune | epochs: integer 3..15; lr: log-uniform [0.01, 0.3] |" in text
