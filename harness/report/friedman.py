"""The leaderboard's overall test across tables: Friedman over blocks
(table × seed), Conover's post-hoc with Holm (harness/metrics/statistics.py)
and the link to the critical-difference diagram (drawn by figures.py)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..metrics.statistics import ALPHA
from . import ranking as R
from .figure_plan import figure_link

CD_FIGURE = "critical_difference.png"


def friedman_markdown(out: Path, runs: pd.DataFrame) -> list[str]:
    """The overall test across blocks (table × seed): Friedman, Conover's
    post-hoc with Holm, and the critical-difference diagram's link."""
    result = R.friedman_over_blocks(runs)
    if result is None:
        return []
    ranks = result["mean_ranks"].sort_values()
    best = ranks.index[0]
    tied = [m for m in ranks.index[1:] if not result["posthoc"].loc[best, m] < ALPHA]
    lines = ["### Friedman test over blocks (table × seed)", "",
             f"Every block — one of the {len(result['tables'])} tables and one seed, {result['blocks']} blocks — ranks "
             f"the {len(result['methods'])} methods that ran in every table by Avg. Gap (1 = lowest; ties share the "
             f"average rank).  Friedman's test: χ² = {result['statistic']:.1f}, p = {result['p']:.2g}.  Conover's "
             "post-hoc test (scikit-posthocs `posthoc_conover_friedman`, Holm-adjusted p) compares every pair; "
             f"the diagram links methods it cannot tell apart at α = {ALPHA}.  **{best}** has the best mean block "
             "rank; not significantly different from it: " + (", ".join(tied) if tied else "none") + ".  This "
             "stands beside the bootstrap ranking above: the bootstrap says how the mean of the per-table ranks "
             "would move with another choice of tables, the Friedman test pools the seeds of every table into "
             "blocks and says which differences in rank are real.", "",
             "| method | mean block rank | Holm p vs the best |", "|---|---|---|"]
    for m, r in ranks.items():
        p = "—" if m == best else f"{result['posthoc'].loc[best, m]:.2g}"
        lines.append(f"| {m} | {r:.2f} | {p} |")
    lines += ["", f"![critical-difference diagram]({figure_link(out, CD_FIGURE)})", ""]
    return lines
