"""The unlearning protocol end to end on the embedded digits data."""
from dataclasses import dataclass

import pytest
import torch

from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness
from unlearnbench.methods import register_method, unregister_method


def test_retrain_row_is_the_reference(digits_grid):
    _, records, _ = digits_grid
    for scenario in ("random 10%", "random 50%", "class 0"):
        m = records[(scenario, "retrain")]["metrics"]
        assert m["param_dist"] == 0.0 and m["param_dist_rel"] == 0.0
        assert m["avg_gap"] == 0.0 and m["avg_gap_muso"] == 0.0
        assert m["js_forget"] == pytest.approx(0.0, abs=1e-12)
        assert m["rte"] == pytest.approx(1.0)


def test_original_is_far_from_retrain_and_remembers(digits_grid):
    _, records, _ = digits_grid
    orig = records[("class 0", "original")]["metrics"]
    retr = records[("class 0", "retrain")]["metrics"]
    assert orig["forget_acc"] > 95 and retr["forget_acc"] < 5       # the class is forgotten only by retraining
    assert orig["param_dist"] > 0.05 * 1 and orig["avg_gap"] > 30
    assert records[("class 0", "original")]["reference"]["original_param_dist"] == pytest.approx(orig["param_dist"])


def test_retrain_shares_theta0_with_original(digits_grid):
    out, records, harness = digits_grid
    from unlearnbench.harness.protocol.spec import RunSpec, derive_seed

    spec = RunSpec.from_config(records[("random 10%", "finetune")]["config"])
    refs = harness.references(spec)
    init = harness.make_model(spec, derive_seed(spec.seed, "init"))
    for k, v in init.state_dict().items():
        assert torch.equal(v, refs.theta0[k])
    assert (out / "cache" / "original" / refs.original_key / "theta0.pt").exists()


def test_methods_move_forget_accuracy_the_right_way(digits_grid):
    _, records, _ = digits_grid
    fa = lambda sc, m: records[(sc, m)]["metrics"]["forget_acc"]
    # class forgetting: the forgotten class must lose accuracy under every method
    for method in ("finetune", "random_relabel"):
        assert fa("class 0", method) < fa("class 0", "original") - 15, method
    # GA at SalUn's reference setting (lr 1e-4, 5 epochs; the tuned preset keeps it) moves little on digits: never up
    assert fa("class 0", "gradient_ascent") <= fa("class 0", "original")
    # random forgetting: no method may *increase* forget accuracy, RL must lower it
    for method in ("finetune", "gradient_ascent", "random_relabel"):
        assert fa("random 10%", method) <= fa("random 10%", "original"), method
    assert fa("random 50%", "random_relabel") < fa("random 50%", "original")
    # and FT keeps most of the retain set.  Not "> 95": the tuned preset (lr 0.155,
    # 13 epochs) amplifies kernel rounding, so seed 0 ends at 99.91 on an AVX-512 CPU
    # (the committed record) and at 92.68 on AVX2 (bit-identical references, same key).
    assert records[("class 0", "finetune")]["metrics"]["retain_acc"] > 90


def test_same_seed_same_numbers(digits_grid, tmp_path):
    _, records, _ = digits_grid
    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune", "random_relabel"])
    harness = Harness(out=tmp_path)   # fresh cache: references retrained from scratch
    for spec in expand(grid):
        again = harness.run(spec)
        first = records[("random 10%", spec.method)]
        assert again["key"] == first["key"]
        strip = lambda m: {k: v for k, v in m.items() if k not in ("time_s", "rte")}
        assert strip(again["metrics"]) == strip(first["metrics"])


@dataclass
class _Hyper:
    lr: float = 1e6


def _explode(ctx, hp):
    from torch.nn import functional as F

    from unlearnbench.methods import fit

    cfg = ctx.train_config.replace(epochs=3, lr=hp.lr, weight_decay=0.0)
    fit(ctx.model, lambda m, b, e: -F.cross_entropy(m(b[0]), b[1]) * 1e6, ctx.forget.tensors, cfg, ctx.generator)
    return ctx.model


@pytest.fixture
def exploding_method():
    register_method("explode_for_test", hyper=_Hyper)(_explode)
    yield "explode_for_test"
    unregister_method("explode_for_test")


def test_diverging_method_is_recorded_and_the_sweep_goes_on(tmp_path, exploding_method):
    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=[exploding_method, "finetune"])
    harness = Harness(out=tmp_path)
    statuses = {s.method: harness.run(s) for s in expand(grid)}
    assert statuses[exploding_method]["status"] == "diverged"
    message = statuses[exploding_method]["message"]
    assert "not finite" in message or "loss became" in message
    assert statuses["finetune"]["status"] == "ok"
    # a diverged record is final: the rerun skips it
    assert harness.store.is_done(statuses[exploding_method]["key"])


def _modify_original(ctx, hp):
    with torch.no_grad():
        next(ctx.original.parameters()).add_(1.0)
    return ctx.model


def test_method_that_modifies_the_original_fails_cleanly(tmp_path):
    register_method("vandal_for_test")(_modify_original)
    try:
        grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["vandal_for_test", "original"])
        harness = Harness(out=tmp_path)
        recs = [harness.run(s) for s in expand(grid)]
        assert recs[0]["status"] == "failed" and "modified the original" in recs[0]["message"]
        assert recs[1]["status"] == "ok" and recs[1]["metrics"]["param_dist"] > 0   # original restored
        assert not harness.store.is_done(recs[0]["key"])    # failed runs are retried
    finally:
        unregister_method("vandal_for_test")


@pytest.mark.slow
def test_reference_models_are_trained_once_per_group(tmp_path):
    grid = Grid(seeds=[0], scenarios=["random", "class"], ratios=[0.1],
                methods=["original", "retrain", "finetune", "random_relabel"])
    harness = Harness(out=tmp_path)
    for spec in expand(grid):
        harness.run(spec)
    # one original + a retrain per scenario, + 2K noise-floor retrains per scenario
    assert harness.reference_trainings == 3 + 2 * 2 * grid.floor_retrains
    again = Harness(out=tmp_path)
    grid.methods = ["gradient_ascent"]     # a new method on a finished grid
    for spec in expand(grid):
        again.run(spec)
    assert again.reference_trainings == 0
