"""What the method guard (harness/protocol/guard.py: a ``sys.audit`` hook active while
a method runs) costs a method's unlearning time: ``Harness.unlearn`` with
the guard against the same call with the guard replaced by a no-op,
interleaved.  The hook is installed for the whole process once a dataset is
loaded, so both sides pay its idle cost (one Python call per audit event;
torch operations raise none)."""
from __future__ import annotations

import contextlib

import pytest
from _bench import interleave, report

from unlearnbench.harness.protocol import method_run as MR
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness

TARGET = 1.05   # the guard may not add more than 5% to a method's time


@pytest.mark.parametrize("method", ["finetune", "muso"])
def test_guard_overhead(benchmark, bench, tmp_path, monkeypatch, method):
    grid = Grid(scenarios=["random"], ratios=[0.1], methods=[method], seeds=[0], floor_retrains=0,
                train={"epochs": bench.size(2, 30, 30)}, out=str(tmp_path))
    spec, = expand(grid)
    harness = Harness(out=tmp_path)
    refs = harness.references(spec)
    guarded = MR.method_guard

    def with_guard():
        monkeypatch.setattr(MR, "method_guard", guarded)
        harness.unlearn(spec, refs)

    def without_guard():
        monkeypatch.setattr(MR, "method_guard", lambda *a, **k: contextlib.nullcontext())
        harness.unlearn(spec, refs)

    t = interleave({"guard": with_guard, "none": without_guard}, bench.rounds(7, 15), benchmark,
                   warmup=bench.enabled)
    ratio = t.ratio("guard", "none")
    report(benchmark, f"method guard, {method}: {t.median('guard') * 1e3:.0f} ms with it, "
                      f"{t.median('none') * 1e3:.0f} ms without -> {ratio:.3f}x (target <= {TARGET})",
           guard_ms=t.median("guard") * 1e3, none_ms=t.median("none") * 1e3, ratio=ratio)
    bench.check(ratio <= TARGET, f"the method guard makes {method} {ratio:.3f}x slower (target <= {TARGET})")
