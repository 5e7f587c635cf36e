"""Per-example evidence: U-LiRA, KLoM, relearning time and probe recovery on
cases whose answer is known, and `unlearnbench per-example` end to end on a
small digits bank."""
import json
import math

import numpy as np
import pytest
import torch

from unlearnbench.harness.cli import main
from unlearnbench.harness.metrics import per_example as PE
from unlearnbench.harness.studies.per_example import make_design, paired_halves


def bank(shadows=32, n=150, seed=0):
    rng = np.random.default_rng(seed)
    member = paired_halves(shadows, n, rng)
    per_example = rng.normal(0, 2, size=n)              # examples differ in difficulty, as real ones do
    return rng, member, per_example


def test_identical_distributions_give_about_half():
    rng, member, base = bank()
    conf = base + rng.normal(0, 1, size=member.shape)    # membership changes nothing
    m = PE.attack_summary(PE.ulira_scores(conf, member), member)
    assert 46 <= m["ulira_acc"] <= 54 and 45 <= m["ulira_auc"] <= 55
    assert m["ulira_tpr_1"] < 5 and m["ulira_exposed"] < 5


def test_a_clear_membership_signal_is_detected():
    rng, member, base = bank()
    conf = base + rng.normal(0, 1, size=member.shape) + 3.0 * member   # a no-op on memorised members
    m = PE.attack_summary(PE.ulira_scores(conf, member), member)
    assert m["ulira_acc"] > 90 and m["ulira_auc"] > 95 and m["ulira_tpr_1"] > 30 and m["ulira_exposed"] > 80
    # per example: the attack fits each example's own distributions, so a shift small against the spread
    # of difficulties across examples (std 2) but large against each example's own noise is still found
    assert len(m["per_example_acc"]) == member.shape[1]


def test_scores_leave_the_target_out():
    rng, member, base = bank(shadows=8, n=20)
    conf = base + rng.normal(0, 1, size=member.shape)
    scores = PE.ulira_scores(conf, member)
    j, i = 3, 5
    others = np.arange(8) != j
    cin, cout = conf[others & member[:, i], i], conf[others & ~member[:, i], i]
    logpdf = lambda x, s: -0.5 * (math.log(2 * math.pi * s.var()) + (x - s.mean()) ** 2 / s.var())
    assert scores[j, i] == pytest.approx(logpdf(conf[j, i], cin) - logpdf(conf[j, i], cout))


def test_paired_halves_put_every_example_in_exactly_half():
    masks = paired_halves(8, 11, np.random.default_rng(1))
    assert (masks.sum(0) == 4).all()
    assert (masks[0::2] != masks[1::2]).all()


def test_design_of_class_forgetting_takes_the_class():
    pool = np.arange(100)
    labels = np.arange(100) % 10
    from unlearnbench.harness.protocol.spec import Scenario

    d = make_design(pool, labels, Scenario("class", forget_class=3), 10, 8, seed=0)
    assert (labels[d.candidates] == 3).all() and len(d.candidates) == 10
    assert not set(d.canaries) & set(d.candidates) and (labels[d.canaries] != 3).all()
    assert sorted(np.concatenate([d.candidates, d.canaries, d.base]).tolist()) == pool.tolist()


def test_margin_by_hand():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 1.0, -1.0]])
    assert PE.margins(logits, np.array([0, 2])) == pytest.approx([2 - math.log(2), -1 - math.log(1 + math.e)])


def test_binned_kl_follows_the_reference_binning():
    assert PE.binned_kl(np.array([0.3, 1.2, -4.0]), np.array([0.3, 1.2, -4.0])) == 0.0
    # digitize drops the joint maximum, as the reference does: p = {0, 1} vs q = {0, 0} is 0
    assert PE.binned_kl(np.array([0.0, 1.0]), np.array([0.0, 0.0])) == 0.0
    # p: half in the first bin, half in bin 11 (0.5 is an edge); q: all in the first bin, floored at 1e-5
    q = np.array([1.0, 1e-5]) / (1 + 1e-5)
    expected = 0.5 * math.log(0.5 / q[0]) + 0.5 * math.log(0.5 / q[1])
    assert PE.binned_kl(np.array([0.0, 0.5, 1.0]), np.zeros(3)) == pytest.approx(expected)
    assert PE.klom(np.zeros((4, 3)), np.zeros((4, 3))).tolist() == [0.0, 0.0, 0.0]


def test_a_probe_on_random_features_recovers_only_chance():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 16)), rng.integers(0, 10, 600)
    fx, fy = rng.normal(size=(200, 16)), rng.integers(0, 10, 200)
    assert PE.probe_recovery(x, y, fx, fy) < 20          # chance is 10%
    # and features that carry the label are read out
    centres = rng.normal(0, 3, size=(10, 16))
    assert PE.probe_recovery(centres[y] + rng.normal(size=x.shape), y,
                             centres[fy] + rng.normal(size=fx.shape), fy) > 90


@pytest.fixture(scope="module")
def pe_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("pe")
    code = main(["per-example", "--methods", "original,finetune", "--scenarios", "random", "--shadows", "8",
                 "--probe-shadows", "2", "--train-arg", "epochs=8", "--out", str(out), "--no-leaderboard"])
    assert code == 0
    return out


def records(out):
    return {json.loads(p.read_text())["config"]["method"]: json.loads(p.read_text())
            for p in (out / "per_example" / "runs").glob("*.json")}


@pytest.mark.slow
def test_the_bank_and_its_bounds(pe_out):
    recs = records(pe_out)
    assert set(recs) == {"original", "retrain", "finetune"}     # both bounds are always included
    for rec in recs.values():
        assert rec["status"] == "ok" and rec["shadows"] == 8
        assert rec["sizes"]["candidates"] == 2 * rec["sizes"]["forget_per_shadow"]
        assert len(rec["per_example"]["ulira_acc"]) == rec["sizes"]["candidates"] == len(rec["per_example"]["klom"])
    # the Original's relearning time is 0 by construction
    assert recs["original"]["relearn_steps"] == [0] * 8 and recs["original"]["metrics"]["relearn_steps"] == 0
    # Retrain does not depend on which candidates a shadow held: the attack is at chance, up to noise
    assert abs(recs["retrain"]["metrics"]["ulira_acc"] - 50) < 8
    assert len(recs["finetune"]["probe_acc"]) == 2


@pytest.mark.slow
def test_rerun_skips_and_the_section_renders(pe_out):
    from unlearnbench.harness.report.per_example import leaderboard_section, write_figure

    before = {p.name: p.stat().st_mtime_ns for p in (pe_out / "per_example" / "runs").glob("*.json")}
    assert main(["per-example", "--methods", "original,finetune", "--scenarios", "random", "--shadows", "8",
                 "--probe-shadows", "2", "--train-arg", "epochs=8", "--out", str(pe_out), "--no-leaderboard"]) == 0
    assert {p.name: p.stat().st_mtime_ns for p in (pe_out / "per_example" / "runs").glob("*.json")} == before
    text = leaderboard_section(pe_out)
    assert "### digits · mlp · random 10% · seed 0 · S = 8" in text
    assert text.index("| **original** |") < text.index("| **retrain** |") < text.index("| finetune |")
    assert write_figure(pe_out).stat().st_size > 0


def test_relearning_the_original_takes_no_step():
    from unlearnbench.harness.studies.per_example import relearn_steps
    from unlearnbench.methods import Split, TrainConfig

    class Spec:
        seed, train = 0, TrainConfig(lr=0.1)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3))
    forget = Split(torch.randn(20, 4), torch.randint(0, 3, (20,)))
    assert relearn_steps(model, model, forget, Spec, 0) == 0


@pytest.mark.parametrize("argv, message", [
    (["--shadows", "7"], "--shadows 7: accepted an even number >= 8"),
    (["--probe-shadows", "0"], "--probe-shadows 0: accepted an integer >= 1"),
    (["--scenarios", "subclass"], "scenario 'subclass'; accepted: random, class"),
])
def test_bad_input_is_one_message_and_nothing_written(tmp_path, capsys, argv, message):
    assert main(["per-example", *argv, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
