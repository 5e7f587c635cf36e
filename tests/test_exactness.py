"""`unlearnbench exactness` on a tiny configuration, and its leaderboard section."""
import pandas as pd
import pytest

from unlearnbench.harness.cli import main
from unlearnbench.harness.report.leaderboard import write_leaderboard
from unlearnbench.harness.studies import exactness as E


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("exactness")
    code = main(["exactness", "--out", str(out), "--datasets", "digits_3v7", "--ratios", "0.1,0.3",
                 "--seeds", "0", "--features", "1000", "--convergence-sigma", "0"])
    assert code == 0
    return out


def test_exactness_meets_the_target_on_real_data(tiny_run):
    df = pd.read_csv(tiny_run / "exactness.csv")
    assert set(E.COLUMNS) <= set(df.columns)
    assert len(df) == 2 * len(E.METHODS)
    assert set(df["method"]) == set(E.METHODS)
    muso = df[df["method"] == "muso"]
    assert (muso["param_dist_rel"] <= E.TARGET_MUSO).all()
    assert (muso["label_forms_rel_diff"] < 1e-8).all()
    others = df[~df["method"].isin(["muso", "retrain"])]
    assert (others["param_dist_rel"] >= E.TARGET_OTHERS).all()
    assert (df[df["method"] == "retrain"]["param_dist"] == 0).all()
    # FT (SalUn's SGD: its weight decay rules out the closed-form SGD limit, so it iterates) stays at the
    # original: the retain loss has zero gradient where the original interpolates; only the decay moves it
    ft = df[df["method"] == "finetune"]["param_dist"].to_numpy()
    original = df[df["method"] == "original"]["param_dist"].to_numpy()
    assert ft == pytest.approx(original, rel=0.01) and (ft != original).all()
    # MUSO predicts like the retrained model (binary ±1 task, 2 output columns)
    assert muso["test_acc"].to_numpy() == pytest.approx(df[df["method"] == "retrain"]["test_acc"].to_numpy())


def test_section_renders_in_the_leaderboard(tiny_run):
    _, md = write_leaderboard(tiny_run)
    text = md.read_text()
    assert "## MUSO exactness" in text
    assert "| MUSO |" in text and "target ≤ 1e-06: met" in text and "target ≥ 0.01: met" in text


def test_iterates_converge_to_the_closed_form_on_a_well_conditioned_kernel():
    task = E.load_task("digits_3v7")
    rows = pd.DataFrame(E.convergence(task, 0.1, 0, features=1000, sigma=2.0, gd_steps=1500, sgd_epochs=60))
    last = rows.sort_values("step").groupby(["run", "algorithm"]).last()["param_dist_rel"]
    assert (last.xs("GD", level="algorithm") < 1e-8).all(), last      # linear convergence, to round-off
    assert (last.xs("SGD", level="algorithm") < 1e-5).all(), last     # 60 epochs; 100 reach 1e-15 (σ = 2, M = 5000)
    first = rows[rows["step"] == 0].groupby("run")["param_dist_rel"].first()
    assert (first > 0.1).all()
    assert "GD" in E.convergence_markdown(rows)


@pytest.mark.parametrize("args, needle", [
    (["--datasets", "cifar10"], "unknown exactness dataset 'cifar10'; accepted: digits, digits_3v7, fashion_mnist"),
    (["--ratios", "1.5"], "must lie strictly between 0 and 1"),
    (["--features", "7"], "--features 7 must be an even number"),
])
def test_bad_input_exits_2(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert main(["exactness", "--out", str(out), *args]) == 2
    assert needle in capsys.readouterr().err
    assert not out.exists()
