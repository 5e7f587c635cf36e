"""`unlearnbench forgetting-quality`: the many-model ε score of the NeurIPS
2023 Machine Unlearning Challenge (definition: harness/metrics/challenge.py).

For one forget set (dataset × model × scenario × seed) two banks of N models:

- **retrained**: the Retrain reference and N − 1 extra retrains from the same
  θ₀ with other data-order seeds (cached with the references; the first K are
  the noise-floor retrains);
- **unlearned**: the method's function run N times on the same original with
  N different seeds, as the challenge does.  A method whose output does not
  depend on its seed (the Original row, a deterministic method) gives N
  identical models, which the metric's peakiness rule scores as perfectly
  distinguishable (F = 0) — reported as such, not hidden.

The Retrain method run N times gives a second, independent retrained bank:
its score is the *ceiling* — what an exact unlearning method reaches at this
N (≈0.18-0.20 for identical distributions, not 1).  It is always included.

One JSON record per method and forget set under
``<out>/forgetting_quality/runs/<key>.json``; a rerun skips finished records.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from .. import defaults as D
from ..metrics import challenge as FS
from ..metrics import definitions as M
from ..metrics.evaluate import Outputs
from ..protocol.method_run import recorded
from ..protocol.records import RecordStore, environment
from ..protocol.spec import stable_hash
from ..report.tables import variant_label

SCHEMA = 1
DEFAULT_NUM_MODELS = D.FORGETTING_QUALITY_MODELS   # harness/defaults.py
FOLDER = "forgetting_quality"


@dataclass
class Bank:
    """Forget-set confidences and accuracies of N models."""

    confs: list = field(default_factory=list)          # [N][|D_f|] logit-scaled confidences
    retain_acc: list = field(default_factory=list)
    test_acc: list = field(default_factory=list)
    forget_acc: list = field(default_factory=list)
    seconds: list = field(default_factory=list)        # training / unlearning time of each model

    def add(self, out: Outputs, seconds: float) -> None:
        p, y = out.probs, out.labels
        # from logits, as the challenge
        self.confs.append(FS.logit_scaled_confidence(out.logits["forget"], y["forget"]))
        self.retain_acc.append(M.accuracy(p["retain"], y["retain"]))
        self.test_acc.append(M.accuracy(p["test"], y["test"]))
        self.forget_acc.append(M.accuracy(p["forget"], y["forget"]))
        self.seconds.append(seconds)

    @property
    def matrix(self) -> np.ndarray:
        return np.stack(self.confs)


def record_key(spec, num_models: int) -> str:
    return stable_hash({**spec.identity(), "metric": "forgetting_quality", "num_models": num_models,
                        "schema": SCHEMA})


def store(out) -> RecordStore:
    return RecordStore(Path(out) / FOLDER)


def score_banks(unlearned: Bank, retrained: Bank) -> tuple[dict, list[float], float]:
    """(metrics, per-example ε, seconds spent on ε) of two banks."""
    t0 = time.perf_counter()
    u, r = unlearned.matrix, retrained.matrix
    eps = FS.epsilons(u, r)
    seconds = time.perf_counter() - t0
    n = u.shape[0]
    forget = float(FS.points(eps, n).mean())
    mean = lambda v: float(np.mean(v))
    ra_u, ra_r = mean(unlearned.retain_acc), mean(retrained.retain_acc)
    ta_u, ta_r = mean(unlearned.test_acc), mean(retrained.test_acc)
    metrics = {
        "forgetting_quality": forget,
        "challenge_score": FS.final_score(forget, ra_u, ra_r, ta_u, ta_r),
        "retain_acc_ratio": ra_u / ra_r, "test_acc_ratio": ta_u / ta_r,
        "retain_acc_u": ra_u, "retain_acc_r": ra_r, "test_acc_u": ta_u, "test_acc_r": ta_r,
        "forget_acc_u": mean(unlearned.forget_acc), "forget_acc_r": mean(retrained.forget_acc),
        "epsilon_median": float(np.median(eps)), "epsilon_mean": float(np.mean(eps)),
        "share_capped": float(np.mean(eps >= FS.EPSILON_CAP)),
        "share_unresolvable": float(np.mean(eps >= FS.max_resolvable_epsilon(n))),
        "distinct_models": int(len(np.unique(u, axis=0))),
    }
    return metrics, [round(float(e), 4) for e in eps], seconds


class ForgettingQuality:
    """Runs the many-model metric for a list of RunSpecs (one per method and
    forget set), sharing each forget set's retrained bank between methods."""

    def __init__(self, harness, num_models: int = DEFAULT_NUM_MODELS, log=None):
        if num_models < 3:
            raise ValueError(f"num_models must be at least 3, got {num_models}")
        self.harness = harness
        self.num_models = num_models
        self.store = store(harness.out)
        self.log = log or (lambda msg: None)
        self._retrained: dict = {}

    def retrained_bank(self, spec) -> Bank:
        refs = self.harness.references(spec)
        if refs.retrain_key not in self._retrained:
            bank = Bank()
            bank.add(self.harness.outputs(spec, refs.retrain), refs.retrain_time)
            for i in range(1, self.num_models):
                model, seconds = self.harness.extra_retrain(spec, i, "order")
                bank.add(self.harness.outputs(spec, model), seconds)
            self._retrained = {refs.retrain_key: bank}     # one forget set in memory
        return self._retrained[refs.retrain_key]

    def unlearned_bank(self, spec) -> Bank:
        refs = self.harness.references(spec)
        bank = Bank()
        for i in range(self.num_models):
            model, seconds = self.harness.unlearn(spec, refs, replicate=i)
            bank.add(self.harness.outputs(spec, model), seconds)
            del model
        return bank

    def run(self, spec, force: bool = False) -> dict:
        key = record_key(spec, self.num_models)
        if not force and self.store.is_done(key):
            return self.store.read(key)
        record = {"schema": SCHEMA, "key": key, "metric": "forgetting_quality", "config": spec.to_config(),
                  "num_models": self.num_models, "status": "ok", "message": None, "metrics": {},
                  "env": environment(str(self.harness.device)),
                  "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
        with recorded(record, self.store):
            retrained = self.retrained_bank(spec)
            t0 = time.perf_counter()
            unlearned = self.unlearned_bank(spec)
            metrics, eps, score_s = score_banks(unlearned, retrained)
            _, split_path = self.harness.forget_indices(spec)
            record.update({
                "metrics": metrics, "epsilons": eps, "forget_indices": split_path,
                "sizes": {k: len(v) for k, v in self.harness.splits(spec).items()},
                "timing": {"unlearn_s": float(np.sum(unlearned.seconds)),
                           "retrained_bank_train_s": float(np.sum(retrained.seconds)),
                           "score_s": score_s, "wall_s": time.perf_counter() - t0},   # this method's bank + ε
            })
        return record


def with_ceiling(methods: list[str]) -> list[str]:
    """The methods, with every retrain-reference method first (the ceiling)."""
    from unlearnbench.methods import get_method, list_methods

    ceiling = [m for m in list_methods() if get_method(m).reference == "retrain"]
    return ceiling + [m for m in methods if m not in ceiling]


# ---- leaderboard section ---------------------------------------------------------

def _role(method: str) -> str:
    """'ceiling' (a retrain reference), 'reference' (another reference row) or 'method'."""
    from unlearnbench.methods import UnknownMethod, get_method

    try:
        reference = get_method(method).reference
    except UnknownMethod:
        return "method"
    return "ceiling" if reference == "retrain" else ("reference" if reference else "method")


def _mean_std(values, digits: int = 3) -> str:
    v = np.asarray(values, dtype=float)
    return f"{v.mean():.{digits}f}" + (f" ± {v.std():.{digits}f}" if len(v) > 1 else "")


def _scenario_label(sc: dict) -> str:
    return f"random {sc['ratio'] * 100:g}%" if sc["kind"] == "random" else f"{sc['kind']} {sc.get('forget_class')}"


NOTE = (
    "The NeurIPS 2023 Machine Unlearning Challenge metric (`unlearnbench forgetting-quality`; definitions: "
    "`forgetting_quality` and `challenge_score` above).  Each method is run N times from the same original with N "
    "seeds and compared with N retrained models (the Retrain reference and N − 1 retrains from the same θ₀ with "
    "other data-order seeds).  F = 1 would mean indistinguishable, but ε is a maximum over thousands of threshold "
    "tests estimated from N samples, so two banks drawn from the same distribution score far below 1 (≈0.18-0.20 "
    "on synthetic logits for N = 8…128): the **retrain** row — a second, independent bank of N retrains — is the "
    "measured ceiling any method can reach at this N.  "
    "A method whose N runs give identical models (`distinct` 1/N, e.g. **original**) is told apart by the metric's "
    "peakiness rule (ε = 50 on every example) and scores 0.  `unresolvable`: share of forget examples with "
    "ε ≥ ⌈ln(N − 1)⌉, which earn no points.  `time`: the N unlearning runs.")


def leaderboard_section(out) -> str | None:
    """Markdown tables of the forgetting-quality records under ``out``."""
    records = [r for r in store(out).all() if r.get("metric") == "forgetting_quality"]
    if not records:
        return None
    groups: dict = {}
    for r in records:
        c = r["config"]
        groups.setdefault((c["dataset"], c["model"], _scenario_label(c["scenario"]), r["num_models"]), []).append(r)
    lines = [NOTE, ""]
    header = ["method", "F", "score", "RA_u/RA_r", "TA_u/TA_r", "FA_u", "median ε", "unresolvable", "distinct",
              "time (s)", "seeds"]
    for (dataset, model, label, n), recs in sorted(groups.items()):
        ok = [r for r in recs if r["status"] == "ok"]
        rows: dict = {}          # (method, hyperparameters) -> records over seeds
        for r in ok:
            rows.setdefault((r["config"]["method"], json.dumps(r["config"]["hyper"], sort_keys=True)), []).append(r)
        hypers: dict = {}
        for method, hyper in rows:
            hypers.setdefault(method, []).append(json.loads(hyper))
        score = {row: float(np.mean([r["metrics"]["challenge_score"] for r in rs])) for row, rs in rows.items()}
        rank = {"ceiling": 0, "reference": 1, "method": 2}
        order = sorted(rows, key=lambda row: (rank[_role(row[0])], -score[row], row))

        def name(row):   # the method, and its hyperparameters where several variants ran
            method, hyper = row
            variant = variant_label(json.loads(hyper), hypers[method]) if len(hypers[method]) > 1 else ""
            text = method + (f" ({variant})" if variant else "")
            return {"ceiling": f"**{text}** (ceiling)", "reference": f"**{text}**", "method": text}[_role(method)]

        lines += [f"### {dataset} · {model} · {label} · N = {n}", "",
                  "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in order:
            rs = rows[row]
            get = lambda k: [r["metrics"][k] for r in rs]
            lines.append("| " + " | ".join([
                name(row), _mean_std(get("forgetting_quality")), _mean_std(get("challenge_score")),
                _mean_std(get("retain_acc_ratio")), _mean_std(get("test_acc_ratio")),
                f"{np.mean(get('forget_acc_u')):.1f}", f"{np.mean(get('epsilon_median')):.2f}",
                f"{100 * np.mean(get('share_unresolvable')):.0f}%", f"{min(get('distinct_models'))}/{n}",
                f"{np.mean([r['timing']['unlearn_s'] for r in rs]):.1f}", str(len(rs))]) + " |")
        for r in recs:
            if r["status"] != "ok":
                message = (r.get("message") or "").splitlines()
                lines.append(f"\n*{r['config']['method']} (seed {r['config']['seed']}): {r['status']}"
                             f"{' — ' + message[0] if message else ''}*")
        lines.append("")
        methods = [row for row in order if _role(row[0]) == "method"]
        ceilings = [row for row in order if _role(row[0]) == "ceiling"]
        if methods and ceilings:
            best = max(methods, key=lambda row: score[row])
            forget = np.mean([r["metrics"]["forgetting_quality"] for r in rows[best]])
            lines.append(f"Best method by challenge score: {name(best)} ({score[best]:.3f}, F {forget:.3f}); "
                         f"the retrain ceiling: {score[ceilings[0]]:.3f}.")
        if ok:
            seeds = sorted({r["config"]["seed"] for r in ok})
            bank = sum(max(r["timing"]["retrained_bank_train_s"] for r in ok if r["config"]["seed"] == s)
                       for s in seeds)
            wall = bank + sum(r["timing"]["wall_s"] for r in ok)
            env = ok[0]["env"]
            lines.append(f"Cost: the retrained bank{'s' if len(seeds) > 1 else ''} ({len(seeds)} × N models) took "
                         f"{bank:.0f} s to train, the whole table {wall:.0f} s of wall time "
                         f"({env.get('processor') or 'CPU'}, {env.get('torch_threads')} torch threads, "
                         f"device {env.get('device')}).")
        lines.append("")
    return "\n".join(lines)
