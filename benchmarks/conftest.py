"""Shared machinery of the performance benchmarks.

Every speed claim here is a *ratio* of two things measured in the same
process, round after round, interleaved (A, B, A, B, ...): on a shared
machine both sides see the same load, so the ratio stays meaningful when the
absolute times do not.

- ``pytest benchmarks/ --benchmark-disable`` (CI, part of ``make test``): every
  benchmark runs once, at its smallest size, and only checks that the code
  path works; the performance targets are not asserted.
- ``pytest benchmarks/``: several rounds; the targets are asserted and the
  measured ratios are printed at the end and stored in each benchmark's
  ``extra_info`` (``--benchmark-json FILE`` keeps them).
- ``--bench-large``: larger sizes (more epochs and rounds, the whole default
  grid for the harness benchmarks; minutes on a 2-core CPU).
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import pytest
import torch  # noqa: E402
from _bench import REPORT

import unlearnbench.harness  # noqa: F401  (before torch: sets the OpenMP wait policy)

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_addoption(parser):
    parser.addoption("--bench-large", action="store_true", default=False,
                     help="unlearnbench benchmarks: larger sizes (minutes on a 2-core CPU)")


@dataclass(frozen=True)
class Bench:
    """How hard to benchmark: ``enabled`` is False under ``--benchmark-disable``
    (run once, assert no target); ``large`` under ``--bench-large``."""

    enabled: bool
    large: bool

    def rounds(self, normal: int, large: int | None = None) -> int:
        if not self.enabled:
            return 1
        return large if self.large and large is not None else normal

    def size(self, small, normal, large):
        """``small`` when disabled (CI), ``normal`` by default, ``large`` with ``--bench-large``."""
        return small if not self.enabled else large if self.large else normal

    def check(self, ok: bool, message: str) -> None:
        """Assert a performance target, only when benchmarking is enabled."""
        if self.enabled:
            assert ok, message


@pytest.fixture(scope="session")
def bench(request) -> Bench:
    return Bench(enabled=not request.config.getoption("benchmark_disable"),
                 large=request.config.getoption("bench_large"))


def pytest_terminal_summary(terminalreporter):
    if REPORT:
        terminalreporter.section("unlearnbench performance (ratios measured in this run)")
        for line in REPORT:
            terminalreporter.write_line(line)
