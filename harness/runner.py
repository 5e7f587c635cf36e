"""One run, end to end: data → forget split → reference models (cached) →
method → metrics → record.

:class:`Harness` memoises what runs share (datasets, splits, reference models
and their outputs) so a grid trains each reference model once and evaluates it
once, however many methods use it.  Reference models are also cached on disk,
keyed by everything that determines them, so later invocations (or other
Slurm tasks) reuse them.
"""
from __future__ import annotations

import copy
import functools
import json
import os
import shutil
import socket
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from unlearnbench import datasets as D
from unlearnbench.datasets import splits as S
from unlearnbench.methods import Context, Diverged, Split, auto_checkpoint, fit, get_method, supervised_loss
from unlearnbench.methods.retrain import retrain as train_retrain

from .augment import get_augmentation
from .device import configure_backends, precision_name, resolve_device, resolve_precision
from .errors import InvalidResult, UsageError
from .guard import method_guard, recording_data_files
from .locks import file_lock
from .evaluate import (EVAL_SPLITS, Outputs, RetrainReference, compare_metrics, parameters_of,
                       standalone_metrics)
from .floor import floor_ratio_of, noise_floor
from .metrics import param_distance
from .models import InputSpec, build_model
from .records import RecordStore, append_json_line, environment, write_json_atomic
from .spec import RunSpec, derive_seed, stable_hash


@dataclass
class ProtocolData:
    """A dataset on the device, with its fixed validation carve-out."""

    ds: D.Dataset
    fingerprint: str
    pool: np.ndarray        # training indices used for training (train minus validation)
    val: np.ndarray         # held-out validation indices (never trained on)
    test: np.ndarray        # test indices evaluated (all, or the test subset)
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    spec: InputSpec


@dataclass
class References:
    theta0: dict
    original: torch.nn.Module
    retrain: torch.nn.Module
    original_time: float
    retrain_time: float
    original_key: str
    retrain_key: str


def _fresh_model(name: str, input_spec: InputSpec, model_args: dict, train, device) -> torch.nn.Module:
    return build_model(name, input_spec, model_args, train).to(device)


@contextmanager
def recorded(record: dict, store: RecordStore):
    """Run the body, then write ``record`` with its status: ``diverged`` or
    ``failed`` (with the traceback) if the body raised — a failing method
    must not stop a sweep.  Bad input (UsageError) propagates, unwritten."""
    try:
        yield record
    except UsageError:
        raise
    except Diverged as e:
        record.update(status="diverged", message=str(e))
    except Exception as e:
        record.update(status="failed", message=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.write(record)


def _load_state(path: Path, device) -> dict:
    return torch.load(path, map_location=device, weights_only=True)


def _save_state(state: dict, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    tmp.replace(path)


class Harness:
    """Runs :class:`RunSpec` s, sharing data and reference models between them."""

    def __init__(self, out="results", cache_dir=None, data_root=None, device="auto", download=False, log=None,
                 method_progress=None, precision="auto", deterministic=False, evaluate_on="test"):
        if evaluate_on not in ("test", "val"):
            raise ValueError(f"evaluate_on must be 'test' or 'val', got {evaluate_on!r}")
        self.evaluate_on = evaluate_on   # "val": the tuning protocol, which never touches the test set
        self.out = Path(out)
        self.cache_dir = Path(cache_dir) if cache_dir else self.out / "cache"
        self.data_root = data_root
        self.download = download
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.amp_dtype = resolve_precision(precision, self.device)
        self.deterministic = deterministic
        configure_backends(self.device, deterministic, self.amp_dtype)
        self.store = RecordStore(self.out)
        self.log = log or (lambda msg: None)
        self.method_progress = method_progress   # receives the methods' ctx.progress(fraction, message) calls
        self._datasets: dict = {}
        self._data: dict = {}
        self._forget: dict = {}
        self._refs: dict = {}
        self._splits: dict = {}
        self._group: dict = {}
        self.reference_trainings = 0   # how many reference models this process trained
        self.env = None
        self.diagnostics: dict = {}    # the last method's ctx.diagnostics

    @classmethod
    def from_grid(cls, grid, log=None, **options) -> "Harness":
        """A harness for a grid's folders, device and precision, its datasets
        loaded (missing data fails here, before anything is written)."""
        options = {"out": grid.out, "cache_dir": grid.cache_dir, **options}
        harness = cls(data_root=grid.data_root, device=grid.device, download=grid.download, log=log,
                      precision=grid.precision, deterministic=grid.deterministic, **options)
        for name in grid.datasets:
            harness.dataset(name)
        return harness

    # ---- data ----------------------------------------------------------
    def dataset(self, name: str) -> D.Dataset:
        if name not in self._datasets:
            try:
                with recording_data_files():   # the files read here are off limits to methods
                    self._datasets[name] = D.load_dataset(name, root=self.data_root, download=self.download)
            except D.DataError as e:
                raise UsageError(f"dataset {name!r}: {e}") from None
        return self._datasets[name]

    def data(self, spec: RunSpec) -> ProtocolData:
        key = (spec.dataset, spec.val_frac, spec.train_subset, spec.test_subset)
        if key not in self._data:
            ds = self.dataset(spec.dataset)
            for name, n, split in (("train_subset", spec.train_subset, ds.y_train),
                                   ("test_subset", spec.test_subset, ds.y_test)):
                if n is not None and n > len(split):
                    raise UsageError(f"{name} {n} exceeds the {len(split)} images of {spec.dataset!r}")
            pool, val = S.training_pool(ds.y_train.numpy(), spec.val_frac, spec.train_subset)
            test = (np.arange(len(ds.y_test)) if spec.test_subset is None
                    else S.class_balanced_sample(ds.y_test.numpy(), spec.test_subset, seed=0))
            dev = self.device
            self._data[key] = ProtocolData(
                ds=ds, fingerprint=ds.fingerprint(), pool=pool, val=val, test=test,
                x_train=ds.x_train.to(dev), y_train=ds.y_train.to(dev),
                x_test=ds.x_test[test].to(dev), y_test=ds.y_test[test].to(dev), spec=InputSpec.of(ds))
        return self._data[key]

    def forget_indices(self, spec: RunSpec) -> tuple[np.ndarray, str]:
        """The forget set (indices into the dataset's training split), saved
        as JSON under ``<out>/splits/``; returns (indices, relative path)."""
        ident = {**spec.data_identity(), "scenario": spec.scenario.to_dict(), "seed": spec.seed}
        key = stable_hash(ident)
        if key not in self._forget:
            data = self.data(spec)
            labels = data.ds.y_train.numpy()[data.pool]
            sc = spec.scenario
            if sc.kind == "random":
                rel = S.random_forget(labels, sc.ratio, derive_seed(spec.seed, "forget"))
            elif sc.kind == "class":
                if not 0 <= sc.forget_class < data.ds.num_classes:
                    raise UsageError(f"class {sc.forget_class} does not exist in {spec.dataset!r}; "
                                     f"accepted: 0..{data.ds.num_classes - 1}")
                rel = S.class_forget(labels, sc.forget_class)
            elif sc.kind == "subclass":
                fine_names = data.ds.extras.get("fine_names")
                if fine_names is None or not 0 <= sc.forget_class < len(fine_names):
                    raise UsageError(f"sub-class {sc.forget_class} does not exist in {spec.dataset!r}")
                try:
                    rel = S.class_forget(data.ds.extras["fine_train"].numpy()[data.pool], sc.forget_class)
                except ValueError as e:
                    raise UsageError(f"{spec.dataset!r}: {e}") from None
            else:
                raise UsageError(f"unknown scenario {sc.kind!r}")
            idx = data.pool[rel]
            rel_path = f"splits/{spec.dataset}-{sc.label.replace(' ', '-').replace('%', 'pct')}-seed{spec.seed}-{key[:8]}.json"
            path = self.out / rel_path
            payload = {**ident, "n_forget": int(len(idx)), "n_pool": int(len(data.pool)),
                       "indices": [int(i) for i in idx]}
            if not path.exists() or json.loads(path.read_text()).get("indices") != payload["indices"]:
                write_json_atomic(path, payload)
            self._forget[key] = (idx, rel_path)
        return self._forget[key]

    def splits(self, spec: RunSpec) -> dict[str, Split]:
        """Retain / forget / validation / test tensors of the run, on the device."""
        data = self.data(spec)
        forget, path = self.forget_indices(spec)
        if path in self._splits:
            return self._splits[path]
        retain = np.setdiff1d(data.pool, forget)
        to = lambda idx: torch.as_tensor(idx, device=self.device)
        val, test = data.val, Split(data.x_test, data.y_test)
        self._test_rows = ("test", data.test)   # which images play the test set: (split, indices)
        if self.evaluate_on == "val":
            # Tuning protocol: a fixed class-balanced half of the validation split
            # plays the test set; the method sees only the other half as ctx.val.
            keep, held = S.stratified_split(data.ds.y_train.numpy()[data.val], 0.5, seed=0)
            val, test = data.val[keep], Split(data.x_train[to(data.val[held])], data.y_train[to(data.val[held])])
            self._test_rows = ("train", data.val[held])
        self._splits = {path: {
            "retain": Split(data.x_train[to(retain)], data.y_train[to(retain)]),
            "forget": Split(data.x_train[to(forget)], data.y_train[to(forget)]),
            "val": Split(data.x_train[to(val)], data.y_train[to(val)]),
            "test": test,
        }}
        return self._splits[path]

    # ---- reference models -----------------------------------------------
    def make_model(self, spec: RunSpec, init_seed: int | None = None):
        """A model of the run's architecture; with ``init_seed``, initialised
        deterministically (on the CPU, so θ₀ is identical on every device)."""
        data = self.data(spec)
        if init_seed is None:
            return build_model(spec.model, data.spec, spec.model_args, spec.train).to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            model = build_model(spec.model, data.spec, spec.model_args, spec.train)
        return model.to(self.device)

    def _train_generator(self, spec: RunSpec) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(spec.seed, "data-order"))

    def _cached(self, spec: RunSpec, kind: str, folder: Path, train, meta: dict) -> tuple[torch.nn.Module, float]:
        """The model cached in ``folder``, trained first by ``train() -> (model,
        seconds, resumed_from_epoch)`` if absent: one trainer per entry (flock),
        across processes and nodes; every training is logged (``_trained``)."""
        with file_lock(folder / "lock"):
            if not (folder / "meta.json").exists():
                model, seconds, resumed_from = train()
                self._trained(kind, folder.name, spec, seconds, resumed_from)
                _save_state(model.state_dict(), folder / "model.pt")
                write_json_atomic(folder / "meta.json", {**meta, "train_time_s": seconds})
        model = self.make_model(spec)
        model.load_state_dict(_load_state(folder / "model.pt", self.device))
        model.eval().requires_grad_(False)
        return model, json.loads((folder / "meta.json").read_text())["train_time_s"]

    def _train_retrain(self, spec: RunSpec, theta0: dict, generator: torch.Generator, folder: Path):
        ctx = self._context(spec, None, theta0, self.splits(spec), generator=generator)
        t0 = time.perf_counter()
        with auto_checkpoint(folder / "checkpoints") as ckpt:  # resumable, like a method
            model = train_retrain(ctx)  # the same function the `retrain` method is
        return model, time.perf_counter() - t0, max(ckpt.resumed_from, default=0)

    def references(self, spec: RunSpec) -> References:
        """θ₀, the original (full training set) and the retrain (retain set,
        same θ₀, same hyperparameters, same data-order seed) models."""
        data = self.data(spec)
        forget, _ = self.forget_indices(spec)
        okey = stable_hash({**spec.original_identity(), "data": data.fingerprint})
        rkey = stable_hash({"original": okey, "forget": stable_hash(forget.tolist())})
        if (okey, rkey) in self._refs:
            return self._refs[(okey, rkey)]
        odir = self.cache_dir / "original" / okey

        def train_original():
            self.log(f"training original ({spec.dataset}/{spec.model} seed={spec.seed})")
            model = self.make_model(spec, derive_seed(spec.seed, "init"))
            _save_state(model.state_dict(), odir / "theta0.pt")
            pool = torch.as_tensor(data.pool, device=self.device)
            t0 = time.perf_counter()
            result = fit(model, supervised_loss, (data.x_train[pool], data.y_train[pool]), spec.train,
                         self._train_generator(spec), augment=get_augmentation(data.ds.augment),
                         checkpoint=odir / "train.ckpt")
            return model, time.perf_counter() - t0, result.start_epoch

        original, otime = self._cached(spec, "original", odir, train_original,
                                       {"identity": spec.original_identity(), "data": data.fingerprint})
        theta0 = _load_state(odir / "theta0.pt", self.device)
        rdir = self.cache_dir / "retrain" / rkey

        def train_reference_retrain():
            self.log(f"training retrain ({spec.describe().rsplit(' ', 1)[0]})")
            return self._train_retrain(spec, theta0, self._train_generator(spec), rdir)

        retrain, rtime = self._cached(spec, "retrain", rdir, train_reference_retrain,
                                      {"identity": spec.scenario_identity(), "original": okey})
        refs = References(theta0, original, retrain, otime, rtime, okey, rkey)
        self._refs = {(okey, rkey): refs}   # keep one group in memory
        return refs

    def _trained(self, kind: str, key: str, spec: RunSpec, seconds: float, resumed_from_epoch: int) -> None:
        """Count a reference training and log it to ``<cache>/trainings.jsonl``
        (one line per model trained, by whom: proof that none is trained twice)."""
        self.reference_trainings += 1
        append_json_line(self.cache_dir / "trainings.jsonl", {
            "kind": kind, "key": key, "run": spec.describe().rsplit(" ", 1)[0], "train_time_s": seconds,
            "resumed_from_epoch": resumed_from_epoch, "host": socket.gethostname(), "pid": os.getpid(),
            "slurm_job": os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID")),
            "slurm_task": os.environ.get("SLURM_ARRAY_TASK_ID"),
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")})

    def extra_retrain(self, spec: RunSpec, index: int, vary: str = "order") -> tuple[torch.nn.Module, float]:
        """Retrain number ``index`` ≥ 1 beside the reference (cached): the same
        D_r and hyperparameters, with another data-order seed (``vary="order"``)
        or from another θ₀ with the reference's data order (``vary="init"``).
        The noise floor uses the first K, the many-model metric the first N−1."""
        if index < 1 or vary not in ("order", "init"):
            raise ValueError(f"extra retrain needs index >= 1 and vary in (order, init), got {index}, {vary!r}")
        refs = self.references(spec)
        variant = derive_seed(spec.seed, "retrain-variant", vary, index)
        key = stable_hash({"retrain": refs.retrain_key, "vary": vary, "seed": variant})
        folder = self.cache_dir / "retrain" / key

        def train():
            self.log(f"training extra retrain #{index} (other {vary}) ({spec.describe().rsplit(' ', 1)[0]})")
            if vary == "order":
                return self._train_retrain(spec, refs.theta0, torch.Generator().manual_seed(variant), folder)
            return self._train_retrain(spec, self.make_model(spec, variant).state_dict(), self._train_generator(spec),
                                       folder)

        return self._cached(spec, f"retrain-{vary}", folder, train,
                            {"identity": spec.scenario_identity(), "retrain": refs.retrain_key,
                             "vary": vary, "index": index})

    def retrain_reference(self, spec: RunSpec) -> RetrainReference:
        """Retrain's outputs, standalone metrics and parameters (computed once per group)."""
        refs = self.references(spec)
        if self._group.get("key") != (refs.retrain_key, spec.floor_retrains):
            out = self.outputs(spec, refs.retrain)
            ref = RetrainReference(out, standalone_metrics(out, test_forget_mask=self._test_forget_mask(spec)),
                                   parameters_of(refs.retrain))
            ref.floor = noise_floor(self, spec, ref)
            self._group = {"key": (refs.retrain_key, spec.floor_retrains), "ref": ref}
        return self._group["ref"]

    # ---- evaluation ---------------------------------------------------------
    def outputs(self, spec: RunSpec, model) -> Outputs:
        split = self.splits(spec)
        return Outputs.of(model, {name: split[name].tensors for name in EVAL_SPLITS})

    @staticmethod
    def _forget_class(spec: RunSpec):
        return spec.scenario.forget_class if spec.scenario.kind == "class" else None

    def _test_forget_mask(self, spec: RunSpec) -> np.ndarray | None:
        """Test images of the forgotten class (class) or sub-class (subclass)."""
        sc, ds = spec.scenario, self.data(spec).ds
        if sc.kind not in ("class", "subclass"):
            return None
        self.splits(spec)
        source, rows = self._test_rows
        if sc.kind == "class":
            labels = (ds.y_train if source == "train" else ds.y_test).numpy()
        else:
            labels = ds.extras[f"fine_{source}"].numpy()
        return labels[rows] == sc.forget_class

    def _context(self, spec: RunSpec, original, theta0, split, generator) -> Context:
        data = self.data(spec)
        # Nothing in the context may lead back to the harness (and its test split): make_model is
        # a partial of a module-level function, not a closure over self.
        make_model = functools.partial(_fresh_model, spec.model, data.spec, dict(spec.model_args), spec.train,
                                       self.device)
        extra = {"progress": self.method_progress} if self.method_progress else {}
        return Context(
            model=copy.deepcopy(original).requires_grad_(True) if original is not None else None,
            original=original, retain=split["retain"], forget=split["forget"], val=split["val"],
            theta0=theta0, make_model=make_model, train_config=spec.train,
            num_classes=data.ds.num_classes, device=self.device, generator=generator,
            scenario=spec.scenario.kind, forget_class=self._forget_class(spec),
            augment=get_augmentation(data.ds.augment), seed=spec.seed, **extra)

    def evaluate(self, spec: RunSpec, model, ref: RetrainReference) -> dict[str, float]:
        """Every metric of one run: the model's outputs on the evaluation
        splits are computed once and shared by all metrics."""
        out = self.outputs(spec, model)
        own = standalone_metrics(out, test_forget_mask=self._test_forget_mask(spec))
        metrics = {**own, **compare_metrics(out, own, parameters_of(model), ref)}
        metrics["param_dist_floor_ratio"] = floor_ratio_of(get_method(spec.method), metrics["param_dist"], ref.floor)
        return metrics

    # ---- one run ---------------------------------------------------------
    def unlearn(self, spec: RunSpec, refs: References, replicate: int | None = None):
        """Run the method; returns (model, seconds).  With ``replicate`` the
        method's function always runs (reference rows included), seeded by
        the replicate number: the many-model metric's N runs."""
        info = get_method(spec.method)
        self.diagnostics = {}   # what the method reports through ctx.diagnostics
        if replicate is None and info.reference == "original":
            return refs.original, 0.0
        if replicate is None and info.reference == "retrain":
            return refs.retrain, refs.retrain_time
        split = self.splits(spec)
        tags = () if replicate is None else ("replicate", replicate)
        generator = torch.Generator().manual_seed(derive_seed(spec.seed, "unlearn", spec.method, *tags))
        ctx = self._context(spec, refs.original, refs.theta0, split, generator)
        hyper = info.hyper(**spec.hyper) if info.hyper is not None else None
        torch.manual_seed(derive_seed(spec.seed, "unlearn-global", spec.method, *tags))
        before = {k: v.clone() for k, v in refs.original.state_dict().items()}
        t0 = time.perf_counter()
        with method_guard(spec.method, protected_dirs=[self.cache_dir / "retrain"]):
            model = info.fn(ctx, hyper)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        self._check_result(spec, model, refs, before)
        self.diagnostics = dict(ctx.diagnostics)
        return model, seconds

    def _check_result(self, spec, model, refs, before) -> None:
        after = refs.original.state_dict()
        if any(not torch.equal(before[k], after[k]) for k in before):
            refs.original.load_state_dict(before)
            raise InvalidResult(f"method {spec.method!r} modified the original model in place; "
                                "change and return ctx.model (a copy) instead")
        params = dict(model.named_parameters()) if isinstance(model, torch.nn.Module) else {}
        for name in refs.original.frozen_parameters():   # train.trainable = head: θ₀ outside the head
            if name in params and not torch.equal(params[name], before[name]):
                raise InvalidResult(f"method {spec.method!r} changed the frozen parameter {name} "
                                    f"(train.trainable = {spec.train.trainable!r}: only the head may change)")
        if not isinstance(model, torch.nn.Module) or type(model) is not type(refs.original):
            raise InvalidResult(f"method {spec.method!r} returned {type(model).__name__}, "
                                f"expected a {type(refs.original).__name__}")
        shapes = {k: tuple(v.shape) for k, v in model.named_parameters()}
        if shapes != {k: tuple(v.shape) for k, v in refs.original.named_parameters()}:
            raise InvalidResult(f"method {spec.method!r} returned a model with different parameters")
        for name, p in model.named_parameters():
            if not torch.isfinite(p).all():
                raise Diverged(f"parameter {name} is not finite after unlearning")

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
        record = {"schema": 1, "key": spec.key, "config": spec.to_config(), "status": "ok",
                  "message": None, "metrics": {}, "env": self.env,
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        checkpoints = self.cache_dir / "checkpoints" / spec.key   # the method's fit() calls resume from here
        with recorded(record, self.store):
            refs = self.references(spec)
            forget, split_path = self.forget_indices(spec)
            ref = self.retrain_reference(spec)
            with auto_checkpoint(checkpoints) as ckpt:
                model, seconds = self.unlearn(spec, refs)
            if ckpt.resumed_from:   # time_s then covers only the last attempt
                record["resumed_from_epoch"] = ckpt.resumed_from
            t_eval = time.perf_counter()
            metrics = self.evaluate(spec, model, ref)
            metrics["time_s"] = seconds
            metrics["rte"] = refs.retrain_time / seconds if seconds > 0 else None
            split = self.splits(spec)
            record.update({
                "metrics": metrics,
                "reference": {"original_key": refs.original_key, "retrain_key": refs.retrain_key,
                              "original_train_time_s": refs.original_time,
                              "retrain_train_time_s": refs.retrain_time,
                              "original_param_dist": param_distance(
                                  parameters_of(refs.original), ref.params)[0],
                              "floor": ref.floor},
                "forget_indices": split_path,
                "sizes": {k: len(v) for k, v in split.items()},
                "eval_time_s": time.perf_counter() - t_eval,
            })
            if self.diagnostics:
                record["diagnostics"] = self.diagnostics
        shutil.rmtree(checkpoints, ignore_errors=True)
        return record
