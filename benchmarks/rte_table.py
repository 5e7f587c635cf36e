"""Every method's unlearning time against retraining, from a summary CSV
(``unlearnbench leaderboard`` writes it): the rte table of docs/performance.md.

    python benchmarks/rte_table.py                      # print it (results/summary.csv)
    python benchmarks/rte_table.py --readme docs/performance.md   # replace the table in docs/performance.md

rte = Retrain's training time / the method's unlearning time, per run,
mean ± std over seeds (> 1: cheaper than retraining).  The Original row is
left out (it does nothing); Retrain's time is the reference training.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

import pandas as pd

BEGIN = "<!-- rte-table: begin (python benchmarks/rte_table.py --readme docs/performance.md) -->"
END = "<!-- rte-table: end -->"


def _scenario(row) -> str:
    if row["scenario_kind"] == "random":
        return f"random {row['ratio']:.0%}"
    return f"{row['scenario_kind']} {row['forget_class']:.0f}"


def _cell(row) -> str:
    rte = "—" if pd.isna(row["rte_mean"]) else f"{row['rte_mean']:.1f}× ± {row['rte_std']:.1f}"
    return f"{row['time_s_mean']:.2f} s · {rte}"


def rte_markdown(summary_csv) -> str:
    """One markdown table per dataset/model: methods × scenarios, ``time · rte``."""
    df = pd.read_csv(summary_csv, dtype={"variant": str})
    df = df[df["method"] != "original"].copy()
    df["variant"] = df["variant"].fillna("")
    df["name"] = df["method"] + df["variant"].map(lambda v: f" ({v})" if v else "")
    df["scenario"] = df.apply(_scenario, axis=1)
    parts = []
    for (dataset, model), group in df.groupby(["dataset", "model"], sort=False):
        scenarios = sorted(group["scenario"].unique(), key=lambda s: (not s.startswith("random"), s))
        order = (group.groupby("name")["rte_mean"].mean().sort_values(ascending=False).index)
        order = [n for n in order if n != "retrain"] + ["retrain"]
        n_seeds = int(group["n_seeds"].max())
        lines = [f"`{dataset}` / `{model}` (unlearning time · rte, mean ± std over {n_seeds} seeds):", "",
                 "| method | " + " | ".join(scenarios) + " |", "|---" * (len(scenarios) + 1) + "|"]
        for name in order:
            rows = group[group["name"] == name].set_index("scenario")
            lines.append(f"| {name} | " + " | ".join(_cell(rows.loc[s]) if s in rows.index else "—"
                                                     for s in scenarios) + " |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def replace_in_readme(readme: Path, table: str) -> None:
    text = readme.read_text()
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise SystemExit(f"{readme}: no rte table markers ({BEGIN} ... {END})")
    readme.write_text(pattern.sub(lambda _: f"{BEGIN}\n{table}\n{END}", text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("summary", nargs="?", default="results/summary.csv")
    parser.add_argument("--readme", type=Path, help="replace the table between the rte-table markers in this file")
    args = parser.parse_args(argv)
    table = rte_markdown(args.summary)
    if args.readme:
        replace_in_readme(args.readme, table)
    else:
        print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
