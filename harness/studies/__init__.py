"""Studies beyond the main tables — MUSO's regime, linear exactness, the noise
floor, forgetting quality, per-example evidence, tuning — each one module that
owns its leaderboard section and its figures, registered by one line in
:data:`STUDIES`.

A study's module provides

- ``leaderboard_section(out) -> str | None``: its section of leaderboard.md from
  the records under ``out`` (None: nothing to say, no section);
- optionally ``plan_figures(summary) -> list[FigurePlan]`` (pure: no matplotlib)
  and ``DRAW = {kind: draw(rows, style, legend, **plan.select) -> (fig, labels)}``
  for the kinds its plans name; the leaderboard links the planned figures and
  ``unlearnbench plot`` draws them beside the main ones;
- optionally ``FIGURE_PREFIX``: the file-name prefix of its figures, so that a
  stale one (a figure its records no longer give) is removed.

Modules are imported on first use, so a leaderboard without a study's records
costs nothing of it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Study:
    name: str
    title: str       # the heading of its leaderboard section
    module: str      # the module providing leaderboard_section (and its figures)

    def load(self):
        return importlib.import_module(self.module)


# In the order of their leaderboard sections.
STUDIES: list[Study] = [
    Study("regime", "MUSO's regime: where exact unlearning holds in networks", "unlearnbench.harness.studies.regime"),
    Study("exactness", "MUSO exactness: the linear theorem on real data", "unlearnbench.harness.studies.exactness"),
    Study("floor", "Loss-attack MIA and the retrain noise floor", "unlearnbench.harness.metrics.floor"),
    Study("forgetting_quality", "Forgetting quality (NeurIPS 2023 challenge metric)",
          "unlearnbench.harness.studies.forgetting_quality"),
    Study("per_example", "Per-example evidence", "unlearnbench.harness.report.per_example"),
    Study("tuning", "Hyperparameter tuning (equal budget)", "unlearnbench.harness.tuning.report"),
]


def get_study(name: str) -> Study:
    for study in STUDIES:
        if study.name == name:
            return study
    raise KeyError(f"unknown study {name!r}; registered: {', '.join(s.name for s in STUDIES)}")


def sections(out) -> list[tuple[str, str]]:
    """(title, markdown) of every study with something to say about the records under ``out``."""
    found = []
    for study in STUDIES:
        text = study.load().leaderboard_section(out)
        if text:
            found.append((study.title, text))
    return found


def study_figure_plans(summary) -> list:
    """Every study's planned figures for this summary, in registry order."""
    plans = []
    for study in STUDIES:
        plan = getattr(study.load(), "plan_figures", None)
        if plan is not None:
            plans += plan(summary)
    return plans


def all_figure_plans(summary) -> list:
    """The main figures (harness/report/figure_plan.py) and then every study's."""
    from ..report.figure_plan import plan_figures

    return plan_figures(summary) + study_figure_plans(summary)


def study_drawers() -> dict:
    """Figure kind -> drawing function, over every study that draws figures."""
    draw = {}
    for study in STUDIES:
        for kind, fn in getattr(study.load(), "DRAW", {}).items():
            if kind in draw:
                raise ValueError(f"figure kind {kind!r} is drawn by two studies (the second: {study.name})")
            draw[kind] = fn
    return draw


def study_figure_prefixes() -> tuple[str, ...]:
    return tuple(p for p in (getattr(s.load(), "FIGURE_PREFIX", None) for s in STUDIES) if p)
