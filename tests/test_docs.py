"""Every fact about a metric lives in its MetricDef: docs/metrics.md's table,
the leaderboard's columns, summary.csv and the figures' metric lists are
generated from DEFINITIONS, and a metric added there reaches all of them."""
import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from unlearnbench.harness.metrics import definitions as M
from unlearnbench.harness.report import figure_plan as FP
from unlearnbench.harness.report import format as F
from unlearnbench.harness.report import leaderboard as L

REPO = Path(__file__).resolve().parents[1]


def _generator():
    spec = importlib.util.spec_from_file_location("generate_docs", REPO / "scripts" / "generate_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_metric_table_is_the_generated_one():
    gen = _generator()
    text = gen.DOC.read_text(encoding="utf-8")
    assert gen.render(text) == text, "docs/metrics.md is stale: run python scripts/generate_docs.py"
    for name, d in M.DEFINITIONS.items():      # every metric is a row, with its column label
        assert f"| `{name}` | {d.column.replace('|', chr(92) + '|')} |" in text, name
    assert gen.main(["--check"]) == 0


def test_a_stale_docs_table_is_reported(tmp_path, monkeypatch):
    gen = _generator()
    doc = tmp_path / "metrics.md"
    doc.write_text(f"# x\n{gen.BEGIN}\n| old | table |\n{gen.END}\ntail\n", encoding="utf-8")
    monkeypatch.setattr(gen, "DOC", doc)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0
    assert doc.read_text(encoding="utf-8").endswith(f"{gen.END}\ntail\n") and "| old |" not in doc.read_text()


def test_columns_and_lists_come_from_the_definitions():
    board = M.metric_names(board=True)
    assert board[:4] == ["retain_acc", "forget_acc", "test_acc", "unlearn_acc"] and "mia_loss_cv" not in board
    assert set(board) <= set(L.METRICS) == set(M.metric_names(summary=True))
    assert "mia_loss_cv" in L.METRICS                                       # in summary.csv, as issue 22 asked
    assert set(FP.CLASS_ONLY) == {"test_acc_forget_class", "test_acc_other_classes"}
    assert not set(FP.CLASS_ONLY) & set(M.metric_names(board=True, scenario_kind="random"))


def test_one_formatter_follows_each_metrics_format():
    assert F.format_cell(12.345, 1.4, "test_acc") == "12.35 ± 1.40"
    assert F.format_cell(3.2, 0.45, "rte") == "3.2× ± 0.5"
    assert F.format_cell(0.00012, 0.00003, "param_dist") == "1.20e-04 ± 3.0e-05"
    assert F.format_cell(192.4, 401.7, "time_s") == "192 ± 402"
    assert F.format_value(51.66, "ulira_auc") == "51.7" and F.format_value(0.123, "klom") == "0.12"
    assert F.format_value(float("nan"), "test_acc") == F.format_value(None, "test_acc") == F.MISSING
    assert F.mean_spread([1.0, 3.0]) == "2 ± 1" and F.mean_spread([]) == F.MISSING
    assert F.compact(2.5e6) == "2.5e+06" and F.compact(float("inf")) == "∞" and F.percent(0.5) == "50.0%"
    for d in M.DEFINITIONS.values():
        assert d.fmt in M.FORMATS


@pytest.fixture
def a_new_metric(monkeypatch):
    """A metric that exists only as a MetricDef plus values in the records."""
    d = M.MetricDef("NEW", "a metric added for this test, %", "lower", better="lower", closer_to_retrain=False,
                    unit="%", fmt="fixed1", summary=True, board=True)
    monkeypatch.setitem(M.DEFINITIONS, "new_metric", d)
    import unlearnbench.harness.report.frame as frame
    import unlearnbench.harness.report.tables as tables
    metrics = M.metric_names(summary=True)
    for module in (tables, frame, L, FP):
        monkeypatch.setattr(module, "METRICS", metrics, raising=False)
    return "new_metric"


def test_a_metric_added_to_the_definitions_reaches_every_output(a_new_metric, tmp_path):
    import json

    out = tmp_path / "results"
    runs = sorted((REPO / "results" / "runs").glob("*.json"))[:60]
    (out / "runs").mkdir(parents=True)
    for path in runs:
        record = json.loads(path.read_text())
        if record.get("metrics"):
            record["metrics"][a_new_metric] = 12.34
        (out / "runs" / path.name).write_text(json.dumps(record))
    df, summary = L.load_summary(out)
    assert f"{a_new_metric}_mean" in summary and np.allclose(summary[f"{a_new_metric}_mean"].dropna(), 12.34)
    board = L.render(out, df, summary)
    headers = [line for line in board.splitlines() if line.startswith("| method | rank |")]
    assert headers and all(" NEW |" in h for h in headers)                # a column of every table
    assert "| 12.3 |" in board                                           # printed with its fixed1 format
    assert f"| `{a_new_metric}` | NEW |" in M.docs_table()
    assert a_new_metric in FP.ratio_metrics(summary.assign(**{f"{a_new_metric}_mean": 1.0}))
    shutil.rmtree(out)


def test_summary_csv_has_every_summary_metric(tmp_path):
    out = tmp_path / "results"
    shutil.copytree(REPO / "results" / "runs", out / "runs")
    csv, _ = L.write_leaderboard(out, tmp_path / "leaderboard.md")
    columns = pd.read_csv(csv, nrows=1).columns
    for m in M.metric_names(summary=True):
        assert f"{m}_mean" in columns, m
