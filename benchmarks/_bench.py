"""Measuring helpers of the benchmarks (a module of its own: ``conftest`` is
not importable by name when tests/ and benchmarks/ run together)."""
from __future__ import annotations

import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]
UNLEARNBENCH = str(Path(sys.executable).with_name("unlearnbench"))   # the installed command
REPORT: list[str] = []   # lines printed at the end of the session (conftest's terminal summary)


@dataclass
class Interleaved:
    """Seconds per round of each named side, measured alternately."""

    times: dict[str, list[float]] = field(default_factory=dict)

    def median(self, name: str) -> float:
        return statistics.median(self.times[name])

    def ratio(self, a: str, b: str) -> float:
        """median(a) / median(b)."""
        return self.median(a) / self.median(b)


def interleave(sides: dict[str, Callable[[], object]], rounds: int, benchmark=None, warmup: bool = True) -> Interleaved:
    """Run every side once per round, in alternating order, ``rounds`` times.
    With ``benchmark`` (the pytest-benchmark fixture) the rounds go through
    it, so its statistics cover one round of all sides together."""
    result = Interleaved({name: [] for name in sides})
    names = list(sides)

    def one_round(order=[0]):
        order[0] += 1
        for name in names if order[0] % 2 else reversed(names):
            t0 = time.perf_counter()
            sides[name]()
            result.times[name].append(time.perf_counter() - t0)

    if warmup:
        for fn in sides.values():   # first calls pay one-off costs (allocations, lazy imports)
            fn()
    if benchmark is None:
        for _ in range(rounds):
            one_round()
    else:
        benchmark.pedantic(one_round, rounds=rounds, iterations=1)
    return result


def report(benchmark, line: str, **info) -> None:
    """Record a measured number: in the benchmark's ``extra_info`` and in the
    summary printed at the end of the session."""
    if benchmark is not None:
        benchmark.extra_info.update(info)
    REPORT.append(line)
