"""Planning a sweep: which runs still need doing, grouped by the reference
models they share, and which groups need their references trained first.
Read from the records and the cache's metadata only: no data, no torch."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..protocol.records import RecordStore
from ..protocol.spec import RunSpec, stable_hash


def group_of(spec: RunSpec) -> str:
    """Runs with the same group share θ₀, the original and the retrain."""
    return stable_hash(spec.scenario_identity())


def cached_groups(cache_dir: Path) -> set[str]:
    """Groups whose retrain (hence also original) is in the cache, read from
    the cache's metadata: no data loading, no torch."""
    groups = set()
    for meta in Path(cache_dir).glob("retrain/*/meta.json"):
        try:
            groups.add(stable_hash(json.loads(meta.read_text())["identity"]))
        except (OSError, ValueError, KeyError):
            continue
    return groups


@dataclass
class Plan:
    specs: list                       # every run of the grid
    done: int                         # runs with a final record
    active: int                       # runs a queued or running job of an earlier sweep already covers
    reference_tasks: list             # list of lists of RunSpec (one reference group each)
    run_tasks: list                   # list of lists of RunSpec

    @property
    def pending(self) -> int:
        return sum(len(t) for t in self.run_tasks)


def make_plan(grid, specs: list, runs_per_task: int = 0, active_keys=frozenset()) -> Plan:
    store = RecordStore(grid.out)
    done = [s for s in specs if store.is_done(s.key)]
    active = [s for s in specs if s.key in active_keys and not store.is_done(s.key)]
    skip = {s.key for s in done} | {s.key for s in active}
    groups: dict[str, list] = {}
    for spec in specs:
        if spec.key not in skip:
            groups.setdefault(group_of(spec), []).append(spec)
    cache_dir = Path(grid.cache_dir) if grid.cache_dir else Path(grid.out) / "cache"
    cached = cached_groups(cache_dir)
    reference_tasks = [runs for g, runs in groups.items() if g not in cached]
    size = runs_per_task if runs_per_task > 0 else max([len(g) for g in groups.values()], default=1)
    run_tasks = [runs[i:i + size] for runs in groups.values() for i in range(0, len(runs), size)]
    return Plan(specs, len(done), len(active), reference_tasks, run_tasks)
