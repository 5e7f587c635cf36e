"""leaderboard.md (best values marked, overall ranking, header, figure links)
and the figures, from a fixture of real run records (the committed default
benchmark, copied to a temporary folder)."""
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from unlearnbench.harness.metrics.definitions import DEFINITIONS
from unlearnbench.harness.metrics.statistics import TEST_NAME
from unlearnbench.harness.report import leaderboard as L

REPO = Path(__file__).resolve().parents[1]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    """The committed records of the default benchmark in a fresh results folder."""
    out = tmp_path_factory.mktemp("lb") / "results"
    shutil.copytree(REPO / "results" / "runs", out / "runs")
    return out


def test_every_metric_has_an_explicit_direction_that_its_words_state():
    for name, d in DEFINITIONS.items():
        assert d.better in ("higher", "lower", None) and isinstance(d.closer_to_retrain, bool), name
        assert L.direction(name) == ("closer" if d.closer_to_retrain else d.better) is not None, name
        assert d.closer_to_retrain == ("closer to Retrain" in d.note), name     # the printed words say the same
        assert (d.better in d.note) if d.better else not {"higher", "lower"} & set(d.note.replace(";", " ").split())
    directions = {m: L.direction(m) for m in DEFINITIONS}
    assert directions["test_acc"] == directions["forget_acc"] == directions["mia_loss_cv"] == "closer"
    assert directions["param_dist"] == directions["avg_gap"] == directions["time_s"] == "lower"
    assert directions["rte"] == directions["forgetting_quality"] == directions["test_acc_other_classes"] == "higher"


def _rows(values: dict, metric: str) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, f"{metric}_mean": v} for m, v in values.items()])


def test_best_value_is_the_closest_to_retrain_or_the_extreme():
    rows = _rows({"original": 100.0, "retrain": 60.0, "a": 70.0, "b": 55.0, "c": 40.0}, "forget_acc")
    assert L.best_rows(rows, "forget_acc") == {3}                       # |55 − 60| is the smallest gap
    rows = _rows({"original": 99.0, "retrain": 90.0, "a": 95.0, "b": 97.0}, "test_acc_other_classes")
    assert L.best_rows(rows, "test_acc_other_classes") == {3}           # "higher"
    rows = _rows({"original": 0.0, "retrain": 1.0, "a": 0.5, "b": 0.2, "c": 0.2}, "time_s")
    assert L.best_rows(rows, "time_s") == {3, 4}                         # "lower", ties share it
    rows = _rows({"retrain": 100.0, "a": 100.0, "b": 100.0}, "retain_acc")
    assert L.best_rows(rows, "retain_acc") == set()                      # nothing to tell apart


def test_tables_mark_the_best_values_and_rank_overall(records):
    df, summary = L.load_summary(records)
    ranking = L.overall_ranking(summary)
    tables = [t for t in ranking.columns if " · " in t]
    n_tables = len(summary.groupby(L.TABLE_KEYS, dropna=False))
    assert len(tables) == n_tables
    for _, r in ranking.iterrows():                                      # mean rank = mean of the table ranks
        ranks = [r[t] for t in tables if not pd.isna(r[t])]
        assert r["mean_rank"] == pytest.approx(np.mean(ranks)) and r["tables"] == len(ranks)
    for _, rows in summary.groupby(L.TABLE_KEYS, dropna=False):         # rank 1 = the smallest Avg. Gap
        methods = rows[~rows["method"].isin(list(L.REFERENCE_ORDER))]
        best = methods.loc[methods["avg_gap_mean"].idxmin(), "method"]
        label = L.table_label(rows.iloc[0])
        assert ranking.loc[ranking["method"] == best, label].iloc[0] == 1
    assert list(ranking["mean_rank"]) == sorted(ranking["mean_rank"])

    text = L.render(Path("results"), df, summary)
    seeds = sorted(set(int(s) for s in df["seed"]))
    assert f"seeds {', '.join(map(str, seeds))}" in text and "## Overall ranking" in text
    for _, rows in summary.groupby(L.TABLE_KEYS, dropna=False):
        methods = rows[~rows["method"].isin(list(L.REFERENCE_ORDER))]
        retrain = rows[rows["method"] == "retrain"].iloc[0]
        gaps = (methods["forget_acc_mean"] - retrain["forget_acc_mean"]).abs()
        if gaps.nunique() > 1:                                           # the closest FA is bold
            best = methods.loc[gaps.idxmin()]
            starts = (f"| {L.method_label(best)} |", f"| {L.method_label(best)} · ")   # MUSO rows: "· M/N = …"
            retain = L.format_cell(best["retain_acc_mean"], best["retain_acc_ci95"], "retain_acc")
            line = next(row for row in text.splitlines() if row.startswith(starts) and retain in row)
            assert f"**{L.format_cell(best['forget_acc_mean'], best['forget_acc_ci95'], 'forget_acc')}**" in line
    for _, r in ranking.iterrows():                                      # the interval holds the mean rank
        assert r["low"] <= r["mean_rank"] <= r["high"]
    assert TEST_NAME in text and "t₀.₉₇₅,ₙ₋₁ · s/√n" in text
    assert "| method | Gap | Gap-MUSO | ‖θ−θr‖/floor |" in text


def test_cells_carry_the_student_t_interval_over_seeds(records):
    df, summary = L.load_summary(records)
    row = summary[summary["method"] == "finetune"].iloc[0]
    table = np.ones(len(df), dtype=bool)
    for k in L.TABLE_KEYS:
        table &= (df[k].isna() if pd.isna(row[k]) else df[k] == row[k]).to_numpy()
    values = df[table & (df["method"] == "finetune").to_numpy()]["test_acc"].to_numpy()
    low, high = stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=stats.sem(values))
    assert row["test_acc_ci95"] == pytest.approx((high - low) / 2)
    assert L.format_cell(12.345, 1.4, "test_acc") == "12.35 ± 1.40"
    assert L.format_cell(12.345, np.nan, "test_acc") == "12.35"
    assert L.format_cell(3.2, 0.45, "rte") == "3.2× ± 0.5"
    assert L.format_cell(0.00012, 0.00003, "param_dist") == "1.20e-04 ± 3.0e-05"
    assert L.format_cell(192.4, 401.7, "time_s") == "192 ± 402"
    assert L.format_cell(0.0491, 0.0035, "time_s") == "0.0491 ± 0.0035"


def _record(method: str, seed: int, gap: float) -> dict:
    config = {"dataset": "digits", "model": "mlp", "scenario": {"kind": "random", "ratio": 0.1}, "method": method,
              "seed": seed, "hyper": {}}
    return {"key": f"{method}-{seed}", "config": config, "status": "ok",
            "metrics": {"avg_gap": gap, "avg_gap_muso": 2 * gap, "test_acc": 90.0 + seed}}


def test_tied_ranks_from_hand_made_records():
    """a and c (whose seeds disagree) cannot be separated; b is worse than
    both on every seed: ranks 1, 1, 3 (a is the control, Holm over 2 comparisons)."""
    a = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    noise = np.array([0.3, -0.2, 0.1, -0.1, 0.2])
    gaps = {"original": a + 20, "retrain": np.zeros(5), "a": a, "b": a + 5 + noise / 10, "c": a + noise}
    records = [_record(m, seed, float(g[seed])) for m, g in gaps.items() for seed in range(5)]
    summary = L.summarize(L.records_frame(records))
    ranks = dict(zip(summary["method"], summary["rank_avg_gap"]))
    assert ranks["a"] == ranks["c"] == 1 and ranks["b"] == 3
    assert np.isnan(ranks["original"]) and np.isnan(ranks["retrain"])
    p = {j: stats.ttest_rel(gaps[j], gaps["a"], alternative="greater").pvalue for j in ("b", "c")}
    assert p["c"] > 0.05 and p["b"] < 0.05 / 2                                          # Holm by hand
    ranking = L.overall_ranking(summary)
    assert ranking.set_index("method").loc[["a", "c", "b"], "mean_rank"].tolist() == [1, 1, 3]
    text = L.table_markdown(summary, L.records_frame(records))
    assert "| c | 1 |" in text and "| b | 3 |" in text and "| **original** | ref |" in text


def test_leaderboard_is_a_pure_function_of_the_records(records, tmp_path):
    _, first = L.write_leaderboard(records, tmp_path / "a.md")
    _, second = L.write_leaderboard(records, tmp_path / "b.md")
    from unlearnbench.harness.report.figure_plan import plan_figures

    text = first.read_text()
    assert text == second.read_text()
    names = [plan.name for plan in plan_figures(L.load_summary(records)[1])]
    expected = {"tradeoff_forget_vs_test.png", "gap_vs_time.png", "param_dist.png", "metrics_vs_ratio_digits_mlp.png"}
    assert expected <= set(names)
    for name in names:
        assert f"](results/figures/{name})" in text


def test_plot_draws_valid_pngs_with_one_panel_per_table_or_metric(records, capsys):
    """`unlearnbench plot`: every figure the records give, in OUT/figures/."""
    import re

    import matplotlib.image
    from PIL import Image

    from unlearnbench.harness.cli import main
    from unlearnbench.harness.report.figure_plan import CLASS_ONLY, slug

    df, _ = L.load_summary(records)
    ok = df[df["status"] == "ok"]
    n_tables = len(ok.groupby(L.TABLE_KEYS, dropna=False))
    expected = {"tradeoff_forget_vs_test.png": n_tables, "gap_vs_time.png": n_tables, "param_dist.png": n_tables}
    for (dataset, model), random in ok[ok["scenario_kind"] == "random"].groupby(["dataset", "model"]):
        if random["ratio"].nunique() > 1:   # one figure per setting with two forget ratios at least
            expected[f"metrics_vs_ratio_{slug(dataset)}_{slug(model)}.png"] = sum(
                m not in CLASS_ONLY and random[m].notna().any() for m in L.METRICS)
    assert expected["metrics_vs_ratio_digits_mlp.png"] >= 10
    if L.R.friedman_over_blocks(L.method_runs(df)) is not None:     # the overall test's diagram
        expected["critical_difference.png"] = 1
    assert "critical_difference.png" in expected
    folder = records / "figures"
    folder.mkdir(exist_ok=True)
    (folder / "param_dist_of_an_old_table.png").write_bytes(b"")

    assert main(["plot", "--out", str(records)]) == 0
    printed = dict(re.findall(r"wrote .*/figures/(\S+\.png) \((\d+) panels\)", capsys.readouterr().out))
    assert {name: int(n) for name, n in printed.items()} == expected
    assert {p.name for p in folder.iterdir()} == set(expected)          # the stale figure is gone
    for name in expected:
        path = folder / name
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        with Image.open(path) as image:
            image.verify()
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] >= 300 and 600 <= pixels.shape[1] <= 1300     # readable at embedded width
        assert pixels[..., :3].std() > 0.05                                  # not blank


def test_reproduce_compares_cells_ranks_and_environments():
    from unlearnbench.harness.report import reproduce as RP

    a = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    noise = np.array([0.3, -0.2, 0.1, -0.1, 0.2])
    gaps = {"original": a + 20, "retrain": np.zeros(5), "a": a, "b": a + 5 + noise / 10, "c": a + noise}
    committed = [_record(m, seed, float(g[seed])) for m, g in gaps.items() for seed in range(5)]
    same = L.summarize(L.records_frame(committed))
    (v,) = RP.compare(same, same)
    assert (v.cells, v.within, v.inverted, v.moved) == (4, 4, [], [])
    assert RP.verdict([v]) == ("4/4 cells within their 95% intervals; ranks equal", True)
    # b and a swap places: b's cell leaves its interval and the order inverts
    swapped = {**gaps, "a": a + 5 + noise / 10, "b": a}
    rerun = L.summarize(L.records_frame([_record(m, seed, float(g[seed])) for m, g in swapped.items()
                                         for seed in range(5)]))
    (v,) = RP.compare(same, rerun)
    assert v.within == 2 and {o[0] for o in v.outside} == {"a", "b"} and v.inverted
    line, agree = RP.verdict([v])
    assert line.startswith("2/4 cells within") and "rank inversions" in line and not agree
    # environments: what differs is named
    env = {"cpu_model": "X", "cpu_capability": "AVX2", "torch_threads": 2, "blas": "mkl", "deterministic": False,
           "torch": "2", "device": "cpu"}
    note = RP.environment_note([{"env": env}], [{"env": {**env, "cpu_model": "Y"}}])
    assert note.startswith("runs cannot be bit-identical") and "cpu_model (X vs Y)" in note
    assert "should be bit-identical" in RP.environment_note([{"env": env}], [{"env": env}])
    assert RP.identical_share(committed, committed) == (len(committed), len(committed))
    timed = [{**r, "metrics": {**r["metrics"], "time_s": 1.0 + i}} for i, r in enumerate(committed)]
    assert RP.identical_share(committed, timed) == (len(committed), len(committed))   # timings never count
    moved = [{**r, "metrics": {**r["metrics"], "avg_gap": r["metrics"]["avg_gap"] + 1e-9}} for r in committed]
    assert RP.identical_share(committed, moved) == (0, len(committed))


def test_records_store_what_decides_bit_reproducibility():
    from unlearnbench.harness.protocol.records import REPRODUCIBILITY_KEYS, environment

    env = environment("cpu")
    assert set(REPRODUCIBILITY_KEYS) <= set(env)
    assert env["cpu_model"] and env["blas"] and isinstance(env["deterministic"], bool) and env["torch_threads"] >= 1
