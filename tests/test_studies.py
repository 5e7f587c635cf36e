"""Adding a study is one module plus one line in harness/studies/__init__.py's
STUDIES: its section reaches the leaderboard and its figure is planned, linked
and drawn with the main ones."""
import shutil
import sys
import types
from pathlib import Path

import pytest

from unlearnbench.harness import studies as S
from unlearnbench.harness.report import leaderboard as L
from unlearnbench.harness.report.figure_plan import FigurePlan

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def a_new_study(monkeypatch):
    module = types.ModuleType("toy_study")

    def leaderboard_section(out):
        return f"The toy study read {len(list((Path(out) / 'runs').glob('*.json')))} records."

    def plan_figures(summary):
        return [FigurePlan("toy_study_methods.png", "Toy study", "One bar per row.", 1, "toy_bars")]

    def draw(rows, style, legend):
        from unlearnbench.harness.report.plotting import panels

        fig, (ax,) = panels(1, 1, 3.0, 2.0)
        ax.bar(range(len(rows)), rows["avg_gap_mean"].fillna(0))
        return fig, []

    module.leaderboard_section, module.plan_figures = leaderboard_section, plan_figures
    module.DRAW, module.FIGURE_PREFIX = {"toy_bars": draw}, "toy_study_"
    monkeypatch.setitem(sys.modules, "toy_study", module)
    monkeypatch.setattr(S, "STUDIES", S.STUDIES + [S.Study("toy", "A toy study", "toy_study")])
    return module


def test_a_registered_study_adds_its_section_and_figure(a_new_study, tmp_path):
    out = tmp_path / "results"
    shutil.copytree(REPO / "results" / "runs", out / "runs")
    _, md = L.write_leaderboard(out, tmp_path / "leaderboard.md")
    text = md.read_text()
    n = len(list((out / "runs").glob("*.json")))
    assert f"## A toy study\n\nThe toy study read {n} records." in text
    assert "### Toy study" in text and "toy_study_methods.png" in text
    from unlearnbench.harness.report.figures import write_figures

    (out / "figures").mkdir()
    (out / "figures" / "toy_study_stale.png").write_bytes(b"")      # ours by its prefix, no longer planned
    written = {path.name for path, _, _ in write_figures(out)}
    assert "toy_study_methods.png" in written and (out / "figures" / "toy_study_methods.png").stat().st_size > 0
    assert not (out / "figures" / "toy_study_stale.png").exists()


def test_the_registry_names_every_section_once():
    names = [s.name for s in S.STUDIES]
    assert len(names) == len(set(names)) and "regime" in names
    for study in S.STUDIES:
        assert callable(study.load().leaderboard_section), study.name
    assert set(S.study_drawers()) == {"regime_distance", "regime_gap"}
    with pytest.raises(KeyError, match="unknown study 'nope'"):
        S.get_study("nope")
