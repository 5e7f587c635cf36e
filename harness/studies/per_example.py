"""`unlearnbench per-example`: evidence beyond aggregates, from one bank of
shadow models per forget set (definitions: harness/metrics/per_example.py).

The design in full: docs/design-notes.md#studiesper_example.
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from unlearnbench.methods import Split, fit, get_method, supervised_loss
from unlearnbench.methods.retrain import retrain as retrain_method

from .. import defaults as D
from ..errors import UsageError
from ..metrics import per_example as PE
from ..protocol import method_run as MR
from ..protocol.augment import get_augmentation
from ..protocol.cache import MODEL
from ..protocol.records import RecordStore, environment
from ..protocol.references import THETA0, References
from ..protocol.spec import derive_seed, stable_hash

SCHEMA = 1
FOLDER = "per_example"
DEFAULT_SHADOWS = D.SHADOWS   # harness/defaults.py
PROBE_SHADOWS = D.PROBE_SHADOWS
RELEARN_SHARE = 0.2       # of D_f, seeded
RELEARN_MARGIN = 5.0      # points below the shadow Original's accuracy on the rest of D_f
RELEARN_MAX_STEPS = 200


@dataclass
class Design:
    candidates: np.ndarray      # training-split indices: forgotten when trained on
    canaries: np.ndarray        # training-split indices: kept when trained on
    base: np.ndarray            # in every shadow
    member: np.ndarray          # [S, |candidates|] bool
    canary_member: np.ndarray   # [S, |canaries|] bool


def paired_halves(shadows: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """[shadows, n] membership: pair p's two shadows take complementary random halves."""
    masks = np.zeros((shadows, n), dtype=bool)
    for p in range(shadows // 2):
        half = rng.permutation(n)[: n // 2]
        masks[2 * p, half] = True
        masks[2 * p + 1] = ~masks[2 * p]
    return masks


def make_design(pool: np.ndarray, labels: np.ndarray, scenario, n_forget: int, shadows: int, seed: int) -> Design:
    """The candidates, canaries and memberships of one forget set (``labels``: of ``pool``)."""
    if shadows < 8 or shadows % 2:
        raise UsageError(f"--shadows {shadows}: accepted an even number >= 8")
    rng = np.random.default_rng(derive_seed(seed, "shadow-design"))
    if scenario.kind == "class":
        in_class = labels == scenario.forget_class
        candidates, rest = pool[in_class], pool[~in_class]
    elif scenario.kind == "random":
        order = rng.permutation(len(pool))
        take = min(2 * n_forget, len(pool) // 3)
        candidates, rest = pool[np.sort(order[:take])], pool[np.sort(order[take:])]
    else:
        raise UsageError(f"per-example evidence supports the random and class scenarios, not {scenario.kind!r}")
    canaries = np.sort(rng.choice(rest, size=min(len(candidates), len(rest) // 2), replace=False))
    base = np.setdiff1d(rest, canaries)
    return Design(candidates, canaries, base, paired_halves(shadows, len(candidates), rng),
                  paired_halves(shadows, len(canaries), rng))


def record_key(spec, shadows: int) -> str:
    return stable_hash({**spec.identity(), "metric": "per_example", "shadows": shadows, "schema": SCHEMA})


def store(out) -> RecordStore:
    return RecordStore(Path(out) / FOLDER)


class PerExample:
    """Runs the per-example evidence for RunSpecs (one per method and forget
    set), sharing each forget set's shadow Originals and Retrains."""

    def __init__(self, harness, shadows: int = DEFAULT_SHADOWS, probe_shadows: int = PROBE_SHADOWS, log=None):
        self.harness, self.shadows = harness, shadows
        self.probe_shadows = min(probe_shadows, shadows)
        self.store = store(harness.out)
        self.log = log or (lambda msg: None)
        self._bank: dict = {}

    # ---- the shadow references ---------------------------------------------------------
    def design(self, spec) -> Design:
        data = self.harness.data(spec)
        forget, _ = self.harness.forget_indices(spec)
        labels = data.ds.y_train.numpy()[data.pool]
        return make_design(data.pool, labels, spec.scenario, len(forget), self.shadows, spec.seed)

    def bank(self, spec) -> dict:
        """The design and the S shadows' (References, retain / forget splits) of the spec's forget set."""
        design = self.design(spec)
        key = self.bank_key(spec, design)
        if self._bank.get("key") == key:
            return self._bank
        t0 = time.perf_counter()
        shadows = [self.shadow(spec, design, k, key) for k in range(self.shadows)]
        self._bank = {"key": key, "design": design, "shadows": shadows,
                      "seconds": float(sum(r.original_time + r.retrain_time for r, _ in shadows)),
                      "wall_s": time.perf_counter() - t0}
        return self._bank

    def bank_key(self, spec, design: Design) -> str:
        return stable_hash({**spec.scenario_identity(), "data": self.harness.data(spec).fingerprint,
                            "shadows": self.shadows, "candidates": stable_hash(design.candidates.tolist()),
                            "canaries": stable_hash(design.canaries.tolist())})

    def train_shadows(self, spec, ks) -> None:
        """Shadows ``ks`` of the spec's bank into the cache (one Slurm array task: ShadowTask)."""
        design = self.design(spec)
        key = self.bank_key(spec, design)
        for k in ks:
            self.shadow(spec, design, k, key)

    def shadow(self, spec, design: Design, k: int, bank_key: str):
        h = self.harness
        data = h.data(spec)
        x, y = data.x_train, data.y_train
        to = lambda idx: torch.as_tensor(np.sort(idx), device=h.device)
        forget = design.candidates[design.member[k]]
        retain = np.concatenate([design.base, design.canaries[design.canary_member[k]]])
        split = {"retain": Split(x[to(retain)], y[to(retain)]), "forget": Split(x[to(forget)], y[to(forget)]),
                 "val": h.splits(spec)["val"]}
        order = lambda: torch.Generator().manual_seed(derive_seed(spec.seed, "shadow", k, "order"))
        okey = stable_hash({"bank": bank_key, "shadow": k})
        label = {"kind": "shadow-original", "run": f"{spec.describe().rsplit(' ', 1)[0]} shadow {k}",
                 "epochs": spec.train.epochs}

        def train_original():
            model = h.make_model(spec, derive_seed(spec.seed, "shadow", k, "init"))
            theta0 = {n: v.clone() for n, v in model.state_dict().items()}
            members = (torch.cat([split["retain"].x, split["forget"].x]),
                       torch.cat([split["retain"].y, split["forget"].y]))
            t0 = time.perf_counter()
            fit(model, supervised_loss, members, spec.train, order(), augment=get_augmentation(data.ds.augment))
            return {MODEL: model.state_dict(), THETA0: theta0}, time.perf_counter() - t0, 0

        entry = h.cache.entry("shadow-original", okey)
        states, otime = h.cache.load_or_train(entry, train_original, {"bank": bank_key, "shadow": k}, label)
        original = self._frozen(spec, states[MODEL])
        theta0 = states[THETA0]
        rkey = stable_hash({"original": okey, "retrain": True})

        def train_retrain():
            ctx = MR.make_context(spec, data, split, None, theta0, order(), h.device)
            t0 = time.perf_counter()
            model = retrain_method(ctx)
            return {MODEL: model.state_dict()}, time.perf_counter() - t0, 0

        rstates, rtime = h.cache.load_or_train(h.cache.entry("shadow-retrain", rkey), train_retrain,
                                               {"original": okey}, {**label, "kind": "shadow-retrain"})
        return References(theta0, original, self._frozen(spec, rstates[MODEL]), otime, rtime, okey, rkey), split

    def _frozen(self, spec, state):
        model = self.harness.make_model(spec)
        model.load_state_dict(state)
        return model.eval().requires_grad_(False)

    # ---- one method ----------------------------------------------------------------------
    def unlearned(self, spec, refs: References, split: dict, k: int):
        """The method's model on shadow k (the bounds: the shadow's own Original / Retrain)."""
        h = self.harness
        replicate = None if get_method(spec.method).reference else k
        context = lambda generator: MR.make_context(spec, h.data(spec), split, refs.original, refs.theta0,
                                                    generator, h.device)
        model, seconds, _ = MR.call_method(spec, refs, context, h.device, h.cache.answer_keys(), replicate)
        return model, seconds

    def run(self, spec, force: bool = False) -> dict:
        key = record_key(spec, self.shadows)
        if not force and self.store.is_done(key):
            return self.store.read(key)
        record = {"schema": SCHEMA, "key": key, "metric": "per_example", "config": spec.to_config(),
                  "shadows": self.shadows, "status": "ok", "message": None, "metrics": {},
                  "env": environment(str(self.harness.device)),
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with MR.recorded(record, self.store):
            bank = self.bank(spec)
            record.update(self.measure(spec, bank))
        return record

    def measure(self, spec, bank: dict) -> dict:
        h, design = self.harness, bank["design"]
        data = h.data(spec)
        cx, cy = data.x_train[torch.as_tensor(design.candidates)], data.y_train[torch.as_tensor(design.candidates)]
        qx, qy = data.x_train[torch.as_tensor(design.canaries)], data.y_train[torch.as_tensor(design.canaries)]
        cand, canary, relearn, probe = [], [], [], []
        timing = {"unlearn_s": 0.0, "relearn_s": 0.0, "probe_s": 0.0}
        for k, (refs, split) in enumerate(bank["shadows"]):
            model, seconds = self.unlearned(spec, refs, split, k)
            timing["unlearn_s"] += seconds
            with torch.no_grad():
                cand.append(PE.margins(model(cx).double().cpu().numpy(), cy.cpu().numpy()))
                canary.append(PE.margins(model(qx).double().cpu().numpy(), qy.cpu().numpy()))
            t0 = time.perf_counter()
            relearn.append(relearn_steps(model, refs.original, split["forget"], spec, k))
            timing["relearn_s"] += time.perf_counter() - t0
            if k < self.probe_shadows:
                t0 = time.perf_counter()
                probe.append(probe_accuracy(model, split, spec.seed))
                timing["probe_s"] += time.perf_counter() - t0
            del model
        t0 = time.perf_counter()
        cand, canary = np.stack(cand), np.stack(canary)
        forget_attack = PE.attack_summary(PE.ulira_scores(cand, design.member), design.member)
        retain_attack = PE.attack_summary(PE.ulira_scores(canary, design.canary_member), design.canary_member)
        oracle = np.stack([self._retrain_margins(refs, cx, cy) for refs, _ in bank["shadows"]])
        kl = np.array([PE.binned_kl(cand[design.member[:, i], i], oracle[~design.member[:, i], i])
                       for i in range(cand.shape[1])])
        timing["score_s"] = time.perf_counter() - t0
        steps = np.array([np.inf if s is None else s for s in relearn], dtype=float)
        metrics = {
            **{k: v for k, v in forget_attack.items() if k != "per_example_acc"},
            **{f"{k}_retain": v for k, v in retain_attack.items() if k != "per_example_acc"},
            "relearn_steps": float(np.median(steps)), "relearn_censored": float(100 * np.isinf(steps).mean()),
            "probe_acc": float(np.mean(probe)) if probe else None,
            "klom": float(np.mean(kl)), "klom_median": float(np.median(kl)),
        }
        return {"metrics": metrics,
                "per_example": {"candidates": design.candidates.tolist(),
                                "ulira_acc": forget_attack["per_example_acc"],
                                "ulira_acc_retain": retain_attack["per_example_acc"],
                                "klom": [round(float(v), 4) for v in kl]},
                "relearn_steps": [None if s is None else int(s) for s in relearn],
                "probe_acc": [round(p, 2) for p in probe],
                "sizes": {"candidates": len(design.candidates), "canaries": len(design.canaries),
                          "base": len(design.base), "forget_per_shadow": int(design.member.sum(1).mean())},
                "timing": {**timing, "shadow_bank_train_s": bank["seconds"]}}

    @staticmethod
    def _retrain_margins(refs: References, x, y) -> np.ndarray:
        with torch.no_grad():
            return PE.margins(refs.retrain(x).double().cpu().numpy(), y.cpu().numpy())


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float(100.0 * (model(x).argmax(1) == y).float().mean())


def relearn_steps(model, original, forget: Split, spec, k: int) -> int | None:
    """Steps of full-batch gradient descent (the training lr, the model's
    loss) on a seeded ``RELEARN_SHARE`` of D_f until the accuracy on the rest
    of D_f reaches the Original's minus ``RELEARN_MARGIN``; None past ``RELEARN_MAX_STEPS``."""
    n = len(forget.y)
    g = torch.Generator().manual_seed(derive_seed(spec.seed, "relearn", k))
    order = torch.randperm(n, generator=g).to(forget.y.device)
    m = max(1, int(round(RELEARN_SHARE * n)))
    part, rest = order[:m], order[m:]
    if len(rest) == 0:
        return None
    target = _accuracy(original, forget.x[rest], forget.y[rest]) - RELEARN_MARGIN
    model = copy.deepcopy(model).requires_grad_(True)
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=spec.train.lr)
    for step in range(RELEARN_MAX_STEPS + 1):
        model.eval()
        if _accuracy(model, forget.x[rest], forget.y[rest]) >= target:
            return step
        if step == RELEARN_MAX_STEPS:
            return None
        model.train()
        opt.zero_grad()
        supervised_loss(model, (forget.x[part], forget.y[part])).backward()
        opt.step()
    return None


def probe_accuracy(model, split: dict, seed: int) -> float:
    """Linear-probe recovery of D_f's labels from the model's frozen penultimate features, %."""
    with torch.no_grad():
        features = lambda s: model.features(s.x).double().cpu().numpy()
        return PE.probe_recovery(features(split["retain"]), split["retain"].y.cpu().numpy(),
                                 features(split["forget"]), split["forget"].y.cpu().numpy(), seed=seed)


class ShadowTask:
    """One Slurm array task of ``per-example --executor slurm``: trains shadows
    ``ks`` of one forget set's bank (Original and Retrain) into the shared
    cache, each entry under its own lock; a requeued task loads what is done."""

    def __init__(self, config: dict, settings, shadows: int, ks: list[int]):
        self.config, self.settings, self.shadows, self.ks = config, settings, shadows, list(ks)

    def __call__(self) -> int:
        from ..protocol.guard import lift_in_signal_handlers
        from ..protocol.spec import RunSpec
        from ..protocol.threads import set_threads

        lift_in_signal_handlers()
        set_threads(self.settings.threads)
        harness = self.settings.harness(log=lambda msg: print(msg, flush=True))
        PerExample(harness, self.shadows).train_shadows(RunSpec.from_config(self.config), self.ks)
        return harness.reference_trainings

    def checkpoint(self, *args, **kwargs):
        import submitit

        return submitit.helpers.DelayedSubmission(self)
