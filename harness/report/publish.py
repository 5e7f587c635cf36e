"""Publishing a results folder: summary.csv, leaderboard.md and the figures,
regenerated from its records (and, for the tuning figure, the shipped presets)."""
from __future__ import annotations

import sys

from .figures import write_figures
from .leaderboard import write_leaderboard


def publish(out, leaderboard=None, figures: bool = True) -> None:
    """Regenerate summary.csv, leaderboard.md and (unless told not to) the figures."""
    from ..tuning.report import write_figure
    from .per_example import write_figure as per_example_figure

    tuning = write_figure(out) if figures else None     # before the board, which links it
    evidence = per_example_figure(out) if figures else None
    csv_path, md_path = write_leaderboard(out, leaderboard)
    print(f"wrote {csv_path} and {md_path}", file=sys.stderr)
    if figures:
        written = [path for path, _, _ in write_figures(out)] + [p for p in (tuning, evidence) if p]
        if written:
            print(f"drew {len(written)} figures in {written[0].parent}", file=sys.stderr)
