"""One run, end to end: data → forget split → reference models (cached) →
method → metrics → record.

:class:`Harness` composes the pieces, one job per module:

- harness/protocol/data.py: datasets, protocol carve-outs, forget sets and splits;
- harness/protocol/references.py and harness/protocol/cache.py: the reference models, trained
  once and cached on disk, keyed by everything that determines them, so
  later invocations (or other Slurm tasks) reuse them;
- harness/protocol/method_run.py: a method's context, guard, result checks,
  evaluation and record.

It memoises what runs share (datasets, splits, reference models and their
outputs), so a grid trains each reference model once and evaluates it once,
however many methods use it.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import torch

from unlearnbench import datasets as D
from unlearnbench.methods import Context, Split, auto_checkpoint, remove_stale_temporaries

from ..metrics.evaluate import Outputs, RetrainReference, parameters_of, standalone_metrics
from ..metrics.floor import noise_floor
from . import method_run as MR
from .cache import ModelCache
from .data import DataStore, ProtocolData, check_subsets
from .device import configure_backends, precision_name, resolve_device, resolve_precision
from .locks import file_lock
from .records import RecordStore, environment
from .references import ReferenceModels, References
from .spec import RunSpec

__all__ = ["Harness", "ProtocolData", "References"]


def remove_leftovers(out, cache_dir=None) -> None:
    """Remove what killed processes left: the temporary files of writers
    that are gone (a live writer's stay), and the checkpoints of runs whose
    record was written just before the kill."""
    cache_dir = Path(cache_dir) if cache_dir else Path(out) / "cache"
    remove_stale_temporaries(out, cache_dir)
    store = RecordStore(out)
    for folder in (cache_dir / "checkpoints").glob("*"):
        if store.is_done(folder.name):
            shutil.rmtree(folder, ignore_errors=True)


class Harness:
    """Runs :class:`RunSpec` s, sharing data and reference models between them."""

    def __init__(self, out="results", cache_dir=None, data_root=None, device="auto", download=False, log=None,
                 method_progress=None, precision="auto", deterministic=False, evaluate_on="test"):
        self.out = Path(out)
        self.cache_dir = Path(cache_dir) if cache_dir else self.out / "cache"
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.data_store = DataStore(self.out, self.device, data_root, download, evaluate_on)
        self.evaluate_on = evaluate_on   # "val": the tuning protocol, which never touches the test set
        self.amp_dtype = resolve_precision(precision, self.device)
        self.deterministic = deterministic
        configure_backends(self.device, deterministic, self.amp_dtype)
        self.store = RecordStore(self.out)
        self.log = log or (lambda msg: None)
        self.method_progress = method_progress   # receives the methods' ctx.progress(fraction, message) calls
        self.cache = ModelCache(self.cache_dir, self.device, warn=log)
        remove_leftovers(self.out, self.cache_dir)
        self.refs = ReferenceModels(self.data_store, self.cache, self.device, self.log, method_progress)
        self._group: dict = {}
        self.env = None
        self.diagnostics: dict = {}    # the last method's ctx.diagnostics

    @classmethod
    def from_grid(cls, grid, log=None, **options) -> "Harness":
        """A harness for a grid's folders, device and precision, its datasets
        loaded (missing data or too large a subset fails here, before anything is written)."""
        options = {"out": grid.out, "cache_dir": grid.cache_dir, **options}
        harness = cls(data_root=grid.data_root, device=grid.device, download=grid.download, log=log,
                      precision=grid.precision, deterministic=grid.deterministic, **options)
        for part in (*grid.parts, grid):   # the grids it includes, then its own
            for name in part.datasets:
                check_subsets(harness.dataset(name), name, part.train_subset, part.test_subset)
        return harness

    @property
    def reference_trainings(self) -> int:
        """How many reference models this process trained."""
        return self.cache.trainings

    # ---- data (harness/protocol/data.py) ------------------------------------------------
    def dataset(self, name: str) -> D.Dataset:
        return self.data_store.dataset(name)

    def data(self, spec: RunSpec) -> ProtocolData:
        return self.data_store.data(spec)

    def forget_indices(self, spec: RunSpec) -> tuple[np.ndarray, str]:
        return self.data_store.forget_indices(spec)

    def splits(self, spec: RunSpec) -> dict[str, Split]:
        return self.data_store.splits(spec)

    def test_forget_mask(self, spec: RunSpec) -> np.ndarray | None:
        return self.data_store.test_forget_mask(spec)

    # ---- reference models (harness/protocol/references.py) ------------------------------
    def make_model(self, spec: RunSpec, init_seed: int | None = None):
        return self.refs.make_model(spec, init_seed)

    def references(self, spec: RunSpec) -> References:
        return self.refs.get(spec)

    def extra_retrain(self, spec: RunSpec, index: int, vary: str = "order") -> tuple[torch.nn.Module, float]:
        return self.refs.extra_retrain(spec, index, vary)

    def retrain_reference(self, spec: RunSpec) -> RetrainReference:
        """Retrain's outputs, standalone metrics and parameters (computed once per group)."""
        refs = self.references(spec)
        if self._group.get("key") != (refs.retrain_key, spec.floor_retrains):
            out = self.outputs(spec, refs.retrain)
            ref = RetrainReference(out, standalone_metrics(out, test_forget_mask=self.test_forget_mask(spec)),
                                   parameters_of(refs.retrain), original=self.outputs(spec, refs.original),
                                   original_params=parameters_of(refs.original))
            ref.floor = noise_floor(self, spec, ref)
            self._group = {"key": (refs.retrain_key, spec.floor_retrains), "ref": ref}
        return self._group["ref"]

    # ---- one method (harness/protocol/method_run.py) ------------------------------------
    def outputs(self, spec: RunSpec, model) -> Outputs:
        return MR.outputs(model, self.splits(spec))

    def context(self, spec: RunSpec, original, theta0, split, generator) -> Context:
        return MR.make_context(spec, self.data(spec), split, original, theta0, generator, self.device,
                               self.method_progress)

    def evaluate(self, spec: RunSpec, model, ref: RetrainReference) -> dict[str, float]:
        return MR.evaluate(spec, model, ref, self.splits(spec), self.test_forget_mask(spec))

    def unlearn(self, spec: RunSpec, refs: References, replicate: int | None = None):
        """Run the method; returns (model, seconds).  With ``replicate`` the
        method's function always runs (reference rows included), seeded by
        the replicate number: the many-model metric's N runs."""
        self.diagnostics = {}   # what the method reports through ctx.diagnostics
        context = lambda generator: self.context(spec, refs.original, refs.theta0, self.splits(spec), generator)
        model, seconds, self.diagnostics = MR.call_method(spec, refs, context, self.device,
                                                          self.cache.answer_keys(), replicate)
        return model, seconds

    def run(self, spec: RunSpec, force: bool = False) -> dict:
        """Run one spec and write its record (skipped if a final record exists).
        One process at a time per run (a flock): a concurrent duplicate, e.g.
        two sweeps of one grid, waits and then finds the record written."""
        if not force and self.store.is_done(spec.key):
            return self.store.read(spec.key)
        with file_lock(self.cache_dir / "locks" / f"{spec.key}.lock"):
            if not force and self.store.is_done(spec.key):
                return self.store.read(spec.key)
            return self._run(spec)

    def _run(self, spec: RunSpec) -> dict:
        if self.env is None:
            self.env = {**environment(str(self.device)), "precision": precision_name(self.amp_dtype),
                        "deterministic": self.deterministic}
        record = MR.new_record(spec, self.env)
        checkpoints = self.cache_dir / "checkpoints" / spec.key   # the method's fit() calls resume from here
        with MR.recorded(record, self.store):
            refs = self.references(spec)
            forget, split_path = self.forget_indices(spec)
            ref = self.retrain_reference(spec)
            with auto_checkpoint(checkpoints) as ckpt:
                model, seconds = self.unlearn(spec, refs)
            if ckpt.resumed_from:   # time_s then covers only the last attempt
                record["resumed_from_epoch"] = ckpt.resumed_from
            t_eval = time.perf_counter()
            metrics, record["flags"] = MR.evaluate_run(spec, model, ref, self.splits(spec), self.test_forget_mask(spec))
            metrics["time_s"] = seconds
            metrics["rte"] = refs.retrain_time / seconds if seconds > 0 else None
            record.update(MR.result_fields(metrics, refs, ref, split_path, self.splits(spec), t_eval))
            if self.diagnostics:
                record["diagnostics"] = self.diagnostics
        shutil.rmtree(checkpoints, ignore_errors=True)
        return record


DONE_BEFORE = "done before"   # the status run_pending reports for a run whose record was already there


def failed_record(spec: RunSpec, error: BaseException, env: dict | None) -> dict:
    """The record of a run whose call raised outside the harness's own error handling."""
    import traceback
    from datetime import datetime, timezone

    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return {"schema": 1, "key": spec.key, "config": spec.to_config(), "status": "failed",
            "message": f"{type(error).__name__}: {error}", "metrics": {}, "env": env,
            "traceback": "".join(traceback.format_exception(error)), "started": now, "finished": now}


def run_pending(harness, specs, store: RecordStore, *, begin=None, report=None, errors: list | None = None,
                recorded: set | None = None) -> dict[str, int]:
    """The one run loop, of ``unlearnbench run`` and of a sweep's array task.

    Each spec whose record is not in ``store`` is run by ``harness`` (which
    writes its record, a failing method's included); ``begin(spec)`` is called
    before, ``report(spec, status, message)`` after, with ``DONE_BEFORE`` for a
    run already recorded.  With ``errors`` (a list), an exception that escapes a run
    is written as that run's failed record, collected there, and the loop goes
    on; without it, it propagates.  ``recorded`` collects the keys written.
    Returns the count of each status."""
    counts: dict[str, int] = {}
    for spec in specs:
        message = ""
        if store.is_done(spec.key):
            status = DONE_BEFORE
        else:
            if begin is not None:
                begin(spec)
            try:
                record = harness.run(spec)
                status, message = record["status"], record.get("message") or ""
            except Exception as e:
                if errors is None:
                    raise
                record = failed_record(spec, e, harness.env)
                store.write(record)
                status, message = "failed", record["message"]
                errors.append(e)
            if recorded is not None:
                recorded.add(spec.key)
        counts[status] = counts.get(status, 0) + 1
        if report is not None:
            report(spec, status, message)
    return counts
