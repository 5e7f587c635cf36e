"""`unlearnbench forgetting-quality` end to end on digits, with few models."""
import json

import pytest

from unlearnbench.harness.cli import main


@pytest.fixture(scope="module")
def fq_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("fq")
    code = main(["forgetting-quality", "--methods", "original,finetune", "--num-models", "4",
                 "--out", str(out), "--no-leaderboard"])
    assert code == 0
    return out


def records(out):
    return {json.loads(p.read_text())["config"]["method"]: json.loads(p.read_text())
            for p in (out / "forgetting_quality" / "runs").glob("*.json")}


@pytest.mark.slow
def test_banks_scores_and_the_ceiling(fq_out):
    recs = records(fq_out)
    assert set(recs) == {"retrain", "original", "finetune"}      # the ceiling is always included
    for method, rec in recs.items():
        assert rec["status"] == "ok" and rec["num_models"] == 4
        assert rec["config"]["scenario"] == {"kind": "random", "ratio": 0.1} and rec["config"]["seed"] == 0
        assert len(rec["epsilons"]) == rec["sizes"]["forget"]
        assert 0.0 <= rec["metrics"]["forgetting_quality"] <= 1.0
    # the original run 4 times is 4 identical models: trivially told apart
    assert recs["original"]["metrics"]["distinct_models"] == 1
    assert recs["original"]["metrics"]["forgetting_quality"] == 0.0
    assert recs["original"]["metrics"]["share_capped"] == 1.0
    # retrain vs retrain: different models, a positive score
    assert recs["retrain"]["metrics"]["distinct_models"] == 4
    assert recs["retrain"]["metrics"]["forgetting_quality"] > 0.0
    assert recs["finetune"]["metrics"]["distinct_models"] == 4
    m = recs["finetune"]["metrics"]
    assert m["challenge_score"] == pytest.approx(m["forgetting_quality"] * m["retain_acc_ratio"] * m["test_acc_ratio"])


@pytest.mark.slow
def test_rerun_skips_and_the_section_renders(fq_out, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in (fq_out / "forgetting_quality" / "runs").glob("*.json")}
    assert main(["forgetting-quality", "--methods", "finetune", "--num-models", "4", "--out", str(fq_out)]) == 0
    after = {p.name: p.stat().st_mtime_ns for p in (fq_out / "forgetting_quality" / "runs").glob("*.json")}
    assert after == before
    text = (fq_out / "leaderboard.md").read_text()
    assert "## Forgetting quality (NeurIPS 2023 challenge metric)" in text
    assert "### digits · mlp · random 10% · N = 4" in text
    assert "| **retrain** (ceiling) |" in text and "| **original** | 0.000 |" in text
    assert "Cost: the retrained bank" in text


def test_too_few_models_is_a_usage_error(tmp_path, capsys):
    assert main(["forgetting-quality", "--num-models", "2", "--out", str(tmp_path / "o")]) == 2
    assert "--num-models 2 is too small" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
