"""Loss-attack MIA and the retrain noise floor: known cases, and the real
harness on the digits grid."""
import inspect
import math

import numpy as np
import pytest

from unlearnbench.harness.metrics import definitions as M


def test_cross_entropy_loss_by_hand():
    p = np.array([[0.5, 0.5], [0.9, 0.1], [1.0, 0.0]])
    assert M.cross_entropy_loss(p, np.array([0, 0, 1])).tolist() == pytest.approx(
        [math.log(2), -math.log(0.9), -math.log(np.finfo(np.float64).tiny)])


def test_mia_loss_cv_separable_and_identical():
    rng = np.random.default_rng(0)
    # memorised forget samples (loss ~0) vs unseen test samples (loss ~2): the attack is always right
    assert M.mia_loss_cv(rng.uniform(0, 0.1, 100), rng.uniform(1.5, 2.5, 100)) == pytest.approx(100.0)
    # the same loss distribution on both sides: a coin flip
    assert 40 <= M.mia_loss_cv(rng.exponential(1, 300), rng.exponential(1, 300)) <= 60


def _one_subsample_score(forget, test, rng):
    """The starting kit's score of one truncation subsample, with sklearn's own cross_val_score."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit, cross_val_score

    n = min(len(forget), len(test))
    forget, test = rng.permutation(forget)[:n], rng.permutation(test)[:n]
    x, y = np.concatenate([test, forget]).reshape(-1, 1), np.concatenate([np.zeros(n), np.ones(n)])
    cv = StratifiedShuffleSplit(n_splits=10, random_state=0)
    return 100.0 * cross_val_score(LogisticRegression(), x, y, cv=cv, scoring="accuracy").mean()


def test_mia_loss_cv_is_the_mean_over_its_truncation_subsamples():
    rng = np.random.default_rng(2)
    forget, test = rng.exponential(0.5, 150), rng.exponential(1.0, 400)     # partly separable
    assert M.MIA_LOSS_DRAWS == 10
    assert M.mia_loss_cv(forget, test, seed=3, draws=1) == _one_subsample_score(forget, test, np.random.default_rng(3))
    stream = np.random.default_rng(3)
    expected = np.mean([_one_subsample_score(forget, test, stream) for _ in range(4)])
    assert M.mia_loss_cv(forget, test, seed=3, draws=4) == pytest.approx(expected, abs=1e-12)
    # the draws differ (else averaging would be pointless); by default 10 are averaged
    assert len({M.mia_loss_cv(forget, test, seed=s, draws=1) for s in range(3)}) > 1
    assert inspect.signature(M.mia_loss_cv).parameters["draws"].default == M.MIA_LOSS_DRAWS
    assert math.isnan(M.mia_loss_cv(forget[:9], test))


def test_mia_loss_cv_balances_the_smaller_forget_set():
    """The starting kit truncates the forget losses to |test| and would leave
    121 forget vs 449 test samples unbalanced, where always answering 'test'
    is 79% accurate.  Truncating the larger side keeps chance at 50%."""
    rng = np.random.default_rng(1)
    forget, test = rng.exponential(1, 121), rng.exponential(1, 449)
    assert 35 <= M.mia_loss_cv(forget, test) <= 65
    # and when the forget set is the larger side it is truncated to |test|, as in the starting kit
    assert 35 <= M.mia_loss_cv(rng.exponential(1, 900), rng.exponential(1, 100)) <= 65
    # deterministic: a fixed shuffle and fixed splits
    assert M.mia_loss_cv(forget, test, draws=2) == M.mia_loss_cv(forget, test, draws=2)


def test_mean_pairwise_and_floor_ratio_by_hand():
    points = [np.array([0.0]), np.array([3.0]), np.array([4.0])]
    assert M.mean_pairwise(points, lambda a, b: abs(float(a[0] - b[0]))) == pytest.approx((3 + 4 + 1) / 3)
    assert M.floor_ratio(3.0, 1.5) == 2.0
    assert M.floor_ratio(3.0, 0.0) is None


def test_every_run_records_the_loss_mia_and_the_floor(digits_grid):
    _, records, _ = digits_grid
    for (scenario, method), rec in records.items():
        m = rec["metrics"]
        assert 0 <= m["mia_loss_cv"] <= 100, (scenario, method)
        floor = rec["reference"]["floor"]
        assert floor["k"] == 2 and floor["order"]["param_dist"] > 0 and floor["init"]["param_dist"] > 0
        if method != "retrain":
            assert m["param_dist_floor_ratio"] == pytest.approx(m["param_dist"] / floor["order"]["param_dist"])
    # forgetting a whole class: the retrained model's forget losses are far above test losses
    assert records[("class 0", "retrain")]["metrics"]["mia_loss_cv"] > 90
    assert records[("class 0", "original")]["metrics"]["mia_loss_cv"] < 70


def test_retrain_ratio_is_about_one_and_the_original_is_above_it(digits_grid):
    _, records, _ = digits_grid
    for scenario in ("random 10%", "random 50%", "class 0"):
        assert 0.6 <= records[(scenario, "retrain")]["metrics"]["param_dist_floor_ratio"] <= 1.4, scenario
    for scenario in ("random 50%", "class 0"):
        assert records[(scenario, "original")]["metrics"]["param_dist_floor_ratio"] > 1.2, scenario
    # without a shared θ₀, retrains are an order of magnitude further apart
    floor = records[("random 10%", "finetune")]["reference"]["floor"]
    assert floor["init"]["param_dist"] > 4 * floor["order"]["param_dist"]


def test_floor_retrains_are_cached_and_shared(digits_grid):
    out, records, harness = digits_grid
    from unlearnbench.harness.protocol.spec import RunSpec

    spec = RunSpec.from_config(records[("random 10%", "finetune")]["config"])
    before = harness.reference_trainings
    model, seconds = harness.extra_retrain(spec, 1, "order")
    again, _ = harness.extra_retrain(spec, 1, "order")
    assert harness.reference_trainings == before and seconds > 0
    import torch
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    other, _ = harness.extra_retrain(spec, 1, "init")
    assert not torch.equal(next(model.parameters()), next(other.parameters()))


def test_no_floor_when_k_is_zero(tmp_path):
    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.runner import Harness

    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["original"], floor_retrains=0)
    harness = Harness(out=tmp_path)
    rec = harness.run(expand(grid)[0])
    assert rec["metrics"]["param_dist_floor_ratio"] is None and rec["reference"]["floor"] is None
    assert harness.reference_trainings == 2


def test_evidence_section_renders_every_table(digits_grid):
    from unlearnbench.harness.metrics.floor import leaderboard_section

    out, _, _ = digits_grid
    text = leaderboard_section(out)
    for heading in ("### digits · mlp · random 10%", "### digits · mlp · random 50%", "### digits · mlp · class 0"):
        assert heading in text
    assert "| **retrain** |" in text and "Floor (K = 2)" in text
