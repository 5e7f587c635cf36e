"""The reference models of a forget set, trained once and cached
(harness/protocol/cache.py): θ₀, the Original (trained on the training pool), the
Retrain (on the retain set, from the same θ₀, with the same hyperparameters
and data-order seed) and the extra retrains of the noise floor and of the
many-model metric.  Their cache keys hash everything that determines them.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch

from unlearnbench.methods import auto_checkpoint, fit, supervised_loss
from unlearnbench.methods.retrain import retrain as retrain_method

from ..models import build_model
from .augment import get_augmentation
from .cache import CHECKPOINTS, MODEL, ModelCache
from .data import DataStore
from .method_run import make_context
from .spec import RunSpec, derive_seed, stable_hash

VARY = ("order", "init")
THETA0 = "theta0.pt"    # in the Original's cache entry, beside its model


@dataclass
class References:
    theta0: dict
    original: torch.nn.Module
    retrain: torch.nn.Module
    original_time: float
    retrain_time: float
    original_key: str
    retrain_key: str


def run_label(spec: RunSpec) -> str:
    """The run without its method: what a reference model belongs to."""
    return spec.describe().rsplit(" ", 1)[0]


class ReferenceModels:
    """Reference models from the cache, training the missing ones; the last
    forget set's are kept in memory."""

    def __init__(self, data: DataStore, cache: ModelCache, device, log=None, progress=None):
        self.data, self.cache, self.device = data, cache, device
        self.log = log or (lambda msg: None)
        self.progress = progress      # the training's ctx.progress (the retrain is trained like a method)
        self._refs: dict = {}

    def make_model(self, spec: RunSpec, init_seed: int | None = None):
        """A model of the run's architecture; with ``init_seed``, initialised
        deterministically (on the CPU, so θ₀ is identical on every device)."""
        data = self.data.data(spec)
        if init_seed is None:
            return build_model(spec.model, data.spec, spec.model_args, spec.train).to(self.device)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(init_seed)
            model = build_model(spec.model, data.spec, spec.model_args, spec.train)
        return model.to(self.device)

    @staticmethod
    def data_order(spec: RunSpec) -> torch.Generator:
        return torch.Generator().manual_seed(derive_seed(spec.seed, "data-order"))

    def cached(self, spec: RunSpec, kind: str, entry: Path, train, meta: dict) -> tuple[torch.nn.Module, float, dict]:
        """The model of cache ``entry`` (trained by ``train`` if absent), in
        eval mode, frozen; its training seconds; every state the entry holds."""
        states, seconds = self.cache.load_or_train(entry, train, meta, {"kind": kind, "run": run_label(spec),
                                                                        "epochs": spec.train.epochs})
        model = self.make_model(spec)
        model.load_state_dict(states[MODEL])
        model.eval().requires_grad_(False)
        return model, seconds, states

    def train_retrain(self, spec: RunSpec, theta0: dict, generator: torch.Generator, entry: Path):
        """Train a retrain from ``theta0`` with the ``retrain`` method's own function (resumable, like a method)."""
        data = self.data.data(spec)
        ctx = make_context(spec, data, self.data.splits(spec), None, theta0, generator, self.device, self.progress)
        t0 = time.perf_counter()
        with auto_checkpoint(entry / CHECKPOINTS) as ckpt:
            model = retrain_method(ctx)
        return {MODEL: model.state_dict()}, time.perf_counter() - t0, max(ckpt.resumed_from, default=0)

    def get(self, spec: RunSpec) -> References:
        """θ₀, the original (full training set) and the retrain (retain set,
        same θ₀, same hyperparameters, same data-order seed) models."""
        data = self.data.data(spec)
        forget, _ = self.data.forget_indices(spec)
        okey = stable_hash({**spec.original_identity(), "data": data.fingerprint})
        rkey = stable_hash({"original": okey, "forget": stable_hash(forget.tolist())})
        if (okey, rkey) in self._refs:
            return self._refs[(okey, rkey)]
        odir = self.cache.entry("original", okey)

        def train_original():
            self.log(f"training original ({spec.model_label()} seed={spec.seed})")
            model = self.make_model(spec, derive_seed(spec.seed, "init"))
            theta0 = {k: v.clone() for k, v in model.state_dict().items()}
            pool = torch.as_tensor(data.pool, device=self.device)
            t0 = time.perf_counter()
            with auto_checkpoint(odir / CHECKPOINTS):
                result = fit(model, supervised_loss, (data.x_train[pool], data.y_train[pool]), spec.train,
                             self.data_order(spec), augment=get_augmentation(data.ds.augment))
            return {MODEL: model.state_dict(), THETA0: theta0}, time.perf_counter() - t0, result.start_epoch

        original, otime, states = self.cached(spec, "original", odir, train_original,
                                              {"identity": spec.original_identity(), "data": data.fingerprint})
        theta0 = states[THETA0]
        rdir = self.cache.entry("retrain", rkey)

        def train_reference_retrain():
            self.log(f"training retrain ({run_label(spec)})")
            return self.train_retrain(spec, theta0, self.data_order(spec), rdir)

        retrain, rtime, _ = self.cached(spec, "retrain", rdir, train_reference_retrain,
                                        {"identity": spec.scenario_identity(), "original": okey})
        refs = References(theta0, original, retrain, otime, rtime, okey, rkey)
        self._refs = {(okey, rkey): refs}   # keep one group in memory
        return refs

    def extra_retrain(self, spec: RunSpec, index: int, vary: str = "order") -> tuple[torch.nn.Module, float]:
        """Retrain number ``index`` ≥ 1 beside the reference (cached): the same
        D_r and hyperparameters, with another data-order seed (``vary="order"``)
        or from another θ₀ with the reference's data order (``vary="init"``).
        The noise floor uses the first K, the many-model metric the first N−1."""
        if index < 1 or vary not in VARY:
            raise ValueError(f"extra retrain needs index >= 1 and vary in (order, init), got {index}, {vary!r}")
        refs = self.get(spec)
        variant = derive_seed(spec.seed, "retrain-variant", vary, index)
        key = stable_hash({"retrain": refs.retrain_key, "vary": vary, "seed": variant})
        entry = self.cache.entry("retrain", key)

        def train():
            self.log(f"training extra retrain #{index} (other {vary}) ({run_label(spec)})")
            if vary == "order":
                return self.train_retrain(spec, refs.theta0, torch.Generator().manual_seed(variant), entry)
            return self.train_retrain(spec, self.make_model(spec, variant).state_dict(), self.data_order(spec), entry)

        model, seconds, _ = self.cached(spec, f"retrain-{vary}", entry, train,
                                        {"identity": spec.scenario_identity(), "retrain": refs.retrain_key,
                                         "vary": vary, "index": index})
        return model, seconds
