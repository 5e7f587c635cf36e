"""Shared fixtures: a small digits grid run once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch  # noqa: E402

import unlearnbench.harness  # noqa: F401  (before torch: sets the OpenMP wait policy)

torch.set_num_threads(min(2, os.cpu_count() or 1))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def digits_grid(tmp_path_factory):
    """Seed 0 of the default digits grid (all scenarios, the core methods),
    run through the real harness into a temporary results folder."""
    from unlearnbench.harness.protocol.config import Grid, expand
    from unlearnbench.harness.protocol.runner import Harness

    out = tmp_path_factory.mktemp("results")
    grid = Grid(seeds=[0], methods=["original", "retrain", "finetune", "gradient_ascent", "random_relabel"],
                out=str(out))
    harness = Harness(out=out)
    records = {}
    for spec in expand(grid):
        rec = harness.run(spec)
        records[(spec.scenario.label, spec.method)] = rec
    return out, records, harness
