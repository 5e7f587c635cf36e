"""Every metric, defined once.  Each function documents its source convention,
its unit and which direction is better; the leaderboard prints the same words.

Functions take plain arrays (probabilities, labels, state dicts) so they can
be pinned by tests on hand-computed cases, independent of any model.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

FORMATS = ("fixed1", "fixed2", "sig3", "speedup", "steps")   # how report.format prints a value


class MetricDef(NamedTuple):
    """Everything the suite knows about a metric, in one place: its definition,
    how it is judged, its unit, where it appears and how it is printed.  The
    leaderboard's columns, summary.csv, the figures' metric lists and
    docs/metrics.md's table are generated from these fields (``metric_names``,
    ``docs_table``); adding a metric is its entry here plus its computation."""

    column: str                     # the short column label (RA, FA, ...)
    text: str                       # the definition
    note: str                       # the printed "better" column, in words
    better: str | None              # "higher" | "lower": the value's own direction (None: only Retrain's says)
    closer_to_retrain: bool         # judged by its distance to Retrain's value (decides where both are given)
    unit: str | None = None         # on figure axes
    fmt: str = "fixed2"             # one of FORMATS (report.format.format_value)
    summary: bool = False           # aggregated per table row: the records frame, summary.csv, metric-vs-ratio figures
    board: bool = False             # a column of every leaderboard table (implies summary)
    class_only: bool = False        # defined in the class / sub-class scenarios only (no board column on random)


# metric name -> MetricDef.  The leaderboard, summary.csv, the figures and docs/metrics.md are
# generated from this table; how a metric is judged lives in the explicit fields, never in the words.
DEFINITIONS: dict[str, MetricDef] = {
    "retain_acc": MetricDef(
        "RA", "accuracy on the retain set D_r, %",
        "closer to Retrain (higher is usual)", better="higher", closer_to_retrain=True, unit="%", summary=True,
        board=True),
    "forget_acc": MetricDef(
        "FA", "accuracy on the forget set D_f, %",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", summary=True, board=True),
    "test_acc": MetricDef(
        "TA", "accuracy on the test set, %",
        "higher; closer to Retrain", better="higher", closer_to_retrain=True, unit="%", summary=True, board=True),
    "unlearn_acc": MetricDef(
        "UA", "100 − FA, % (SalUn / Sparse convention)",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", summary=True, board=True),
    "test_acc_forget_class": MetricDef(
        "TA-fc", "class / sub-class scenario: test accuracy on the forgotten class (sub-class), %",
        "closer to Retrain (≈0 for a whole class)", better=None, closer_to_retrain=True, unit="%",
        summary=True, board=True, class_only=True),
    "test_acc_other_classes": MetricDef(
        "TA-rest", "class / sub-class scenario: test accuracy on all other test images, %",
        "higher", better="higher", closer_to_retrain=False, unit="%", summary=True, board=True, class_only=True),
    "mia_efficacy": MetricDef(
        "MIA-eff", "SalUn/Sparse 'SVC_MIA_forget_efficacy[confidence]'×100: RBF SVC (C=3, gamma='auto') on the "
        "true-class confidence p_y, members = first |test| retain samples, non-members = test; % of forget samples "
        "predicted NON-member",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", summary=True, board=True),
    "mia_entropy": MetricDef(
        "MIA-ent", "Bad Teacher / SSD / MUSO convention: class-balanced logistic regression on softmax entropy, "
        "members = retain, non-members = test; % of forget samples predicted MEMBER",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", summary=True, board=True),
    "mia_loss_cv": MetricDef(
        "MIA-loss", "NeurIPS 2023 starting-kit / SCRUB convention: logistic regression on the per-sample "
        "cross-entropy loss, forget (label 1) vs test (label 0), the larger side shuffled and truncated to the "
        "smaller's size; mean accuracy over 10 stratified shuffle splits (test share 0.1, random_state 0), averaged "
        "over 10 seeded truncation subsamples, %; 50 = indistinguishable",
        "closer to Retrain (≈50)", better=None, closer_to_retrain=True, unit="%", summary=True),
    "param_dist": MetricDef(
        "‖θ−θr‖", "L2 distance of all parameters (buffers excluded) to the same-init Retrain model",
        "lower (0 = exact)", better="lower", closer_to_retrain=False, unit="L2", fmt="sig3", summary=True, board=True),
    "param_dist_rel": MetricDef(
        "‖θ−θr‖/‖θr‖", "param_dist divided by the Retrain model's parameter norm",
        "lower", better="lower", closer_to_retrain=False, unit="ratio", fmt="sig3", summary=True, board=True),
    "param_dist_floor_ratio": MetricDef(
        "‖θ−θr‖/floor", "param_dist ÷ the retrain noise floor (the mean L2 distance between pairs of K+1 retrains "
        "from the same θ₀ with different data-order seeds: the Retrain reference and K extra ones); the Retrain row "
        "reports the mean distance of the K extra retrains to the reference ÷ floor, i.e. what a fresh exact "
        "retrain scores (≈1)",
        "lower; ≤ 1 = within retraining's own noise", better="lower", closer_to_retrain=False, unit="ratio",
        fmt="sig3", summary=True),
    "js_forget": MetricDef(
        "JS", "mean Jensen–Shannon divergence (nats, ≤ ln 2) between this model's and Retrain's softmax on D_f",
        "lower", better="lower", closer_to_retrain=False, unit="nats", fmt="sig3", summary=True, board=True),
    "avg_gap": MetricDef(
        "Gap", "SalUn Avg. Gap: mean |method − Retrain| over UA, RA, TA, MIA-eff (percentage points)",
        "lower", better="lower", closer_to_retrain=False, unit="points", summary=True, board=True),
    "avg_gap_muso": MetricDef(
        "Gap-MUSO", "MUSO's Avg. Gap: mean |method − Retrain| over TA, FA, MIA-ent (points)",
        "lower", better="lower", closer_to_retrain=False, unit="points", summary=True, board=True),
    "forgetting_quality": MetricDef(
        "F", "NeurIPS 2023 Machine Unlearning Challenge forget score from N retrained and N unlearned models "
        "(`unlearnbench forgetting-quality`): per forget example ε of the best single-/double-threshold test on the "
        "logit-scaled confidences (δ = 1e-5, cap 50), points 1 for ε < 0.5 halved per further 0.5 and 0 from "
        "⌈ln(N−1)⌉, averaged over D_f; identical distributions score far below 1 (≈0.18-0.20 on synthetic logits)",
        "higher; read against Retrain's (the ceiling)", better="higher", closer_to_retrain=False, unit=None,
        fmt="sig3"),
    "challenge_score": MetricDef(
        "score", "the challenge's final score: F × (RA_u / RA_r) × (TA_u / TA_r), accuracies averaged over the N "
        "models of each bank",
        "higher", better="higher", closer_to_retrain=False, unit=None, fmt="sig3"),
    "ulira_acc": MetricDef(
        "U-LiRA", "per-example U-MIA of Hayes et al. (arXiv 2403.01218) on S shadow models (`unlearnbench "
        "per-example`): per forget candidate, a Gaussian likelihood-ratio test on the margin between shadows that "
        "forgot it and shadows that never saw it, each shadow the target in turn; balanced accuracy of the sign of "
        "the log-ratio over all (target, candidate) pairs, %; 50 = indistinguishable",
        "closer to Retrain (≈50)", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "ulira_auc": MetricDef(
        "AUC", "ROC AUC of the U-LiRA log-ratio over all (target, candidate) pairs, %",
        "closer to Retrain (≈50)", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "ulira_tpr_1": MetricDef(
        "TPR@1%", "U-LiRA true-positive rate at 1% false-positive rate (sklearn ROC curve), %",
        "closer to Retrain (≈1)", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "ulira_tpr_01": MetricDef(
        "TPR@0.1%", "U-LiRA true-positive rate at 0.1% false-positive rate, %",
        "closer to Retrain (≈0.1)", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "ulira_exposed": MetricDef(
        "exposed", "share of forget candidates on which U-LiRA is right for at least 75% of the target shadows, %",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "ulira_acc_retain": MetricDef(
        "U-LiRA-r", "the U-LiRA balanced accuracy on retain canaries (trained on and kept vs never seen) after "
        "unlearning, %: how exposed the retained data are",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "ulira_tpr_1_retain": MetricDef(
        "TPR-r@1%", "U-LiRA on the retain canaries: true-positive rate at 1% false-positive rate, %",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "relearn_steps": MetricDef(
        "relearn", "relearning time: median over shadows of the full-batch gradient steps (training lr, the "
        "model's loss) on a seeded 20% of D_f until the accuracy on the other 80% is within 5 points of the "
        "shadow Original's; capped at 200 steps; the Original's is 0 by construction",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="steps", fmt="steps"),
    "probe_acc": MetricDef(
        "probe", "linear-probe recovery: multinomial logistic regression on standardised frozen penultimate "
        "features, fit on D_r and 4 of 5 folds of D_f, accuracy on the held-out fold's true labels, over the "
        "folds and the first 8 shadows, %",
        "closer to Retrain", better=None, closer_to_retrain=True, unit="%", fmt="fixed1"),
    "klom": MetricDef(
        "KLoM", "KL divergence of margins (RoyRin/data-unlearning-bench, old_teacher_klom.py "
        "compute_binned_KL_div: margins clipped to ±100, 20 bins over the joint range, q floored at 1e-5): "
        "per forget candidate, the shadows that forgot it against the Retrains of the shadows that never saw it; "
        "mean over candidates, nats",
        "lower; read against Retrain's (the estimator's floor)", better="lower", closer_to_retrain=False,
        unit="nats"),
    "time_s": MetricDef(
        "time", "wall time of the unlearning call alone, s (Retrain: its training time; Original: 0)",
        "lower", better="lower", closer_to_retrain=False, unit="s", fmt="sig3", summary=True, board=True),
    "rte": MetricDef(
        "RTE", "Retrain time ÷ method time (speed-up over retraining)",
        "higher", better="higher", closer_to_retrain=False, unit="×", fmt="speedup", summary=True, board=True),
}


for _name, _d in DEFINITIONS.items():   # the fields' rules, checked once at import
    assert _d.fmt in FORMATS, f"{_name}: fmt {_d.fmt!r} not in {FORMATS}"
    assert _d.summary or not _d.board, f"{_name}: a board column must be a summary metric"
    assert _d.better in ("higher", "lower", None), f"{_name}: better {_d.better!r}"


def metric_names(*, summary: bool | None = None, board: bool | None = None,
                 scenario_kind: str | None = None) -> list[str]:
    """The metrics with the given fields, in DEFINITIONS' order; ``scenario_kind``
    "random" leaves out the class-only ones."""
    return [name for name, d in DEFINITIONS.items()
            if (summary is None or d.summary == summary) and (board is None or d.board == board)
            and not (scenario_kind == "random" and d.class_only)]


def _where(d: MetricDef) -> str:
    if d.board:
        return "every table" + (" of a class scenario" if d.class_only else "") + ", summary.csv"
    return "summary.csv, its section" if d.summary else "its section"


def docs_table() -> str:
    """The metric table of docs/metrics.md and of the leaderboard, generated
    from DEFINITIONS (a test checks that docs/metrics.md holds it verbatim)."""
    cell = lambda text: str(text).replace("|", "\\|")   # a literal | (as in |test|) would end the cell
    lines = ["| metric | column | definition | better | unit | shown in |", "|---|---|---|---|---|---|"]
    for name, d in DEFINITIONS.items():
        lines.append(f"| `{name}` | {cell(d.column)} | {cell(d.text)} | {cell(d.note)} | {cell(d.unit or '—')} | "
                     f"{_where(d)} |")
    return "\n".join(lines) + "\n"


def softmax(logits: torch.Tensor) -> np.ndarray:
    return torch.softmax(logits.double(), dim=1).numpy()


def accuracy(logits_or_probs, labels) -> float:
    """Share of argmax predictions equal to the labels, in %."""
    pred = np.asarray(logits_or_probs).argmax(axis=1)
    labels = np.asarray(labels)
    return float(100.0 * (pred == labels).mean()) if len(labels) else float("nan")


def confidence(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Probability assigned to the true class, p_y."""
    return np.asarray(probs)[np.arange(len(labels)), np.asarray(labels)]


def entropy(probs: np.ndarray) -> np.ndarray:
    """Shannon entropy of each row in nats, with 0·log 0 = 0."""
    p = np.asarray(probs, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log(p), 0.0)
    return -terms.sum(axis=1)


def mia_efficacy(member_conf: np.ndarray, nonmember_conf: np.ndarray, target_conf: np.ndarray) -> float:
    """SalUn / Unlearn-Sparse forgetting-efficacy MIA (confidence feature), in %.

    An RBF SVC(C=3, gamma="auto") is fit on members (label 1: the first |test|
    retain samples) vs non-members (label 0: the test set), one feature each:
    the true-class confidence.  Returns the share of target (forget) samples it
    predicts NON-member, ×100.  After perfect unlearning the forget set looks
    like unseen data, so values approach Retrain's (higher than Original's).
    """
    from sklearn.svm import SVC

    x = np.concatenate([member_conf, nonmember_conf]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(member_conf)), np.zeros(len(nonmember_conf))])
    clf = SVC(C=3, gamma="auto", kernel="rbf").fit(x, y)
    return float(100.0 * (1.0 - clf.predict(np.asarray(target_conf).reshape(-1, 1)).mean()))


def mia_entropy(member_entropy: np.ndarray, nonmember_entropy: np.ndarray, target_entropy: np.ndarray) -> float:
    """Bad Teacher / SSD / MUSO membership attack (entropy feature), in %.

    Class-balanced logistic regression (lbfgs) on the softmax entropy of
    members (label 1: the whole retain set) vs non-members (label 0: the test
    set); returns the share of target (forget) samples predicted MEMBER, ×100.
    """
    from sklearn.linear_model import LogisticRegression

    x = np.concatenate([member_entropy, nonmember_entropy]).reshape(-1, 1)
    y = np.concatenate([np.ones(len(member_entropy)), np.zeros(len(nonmember_entropy))])
    clf = LogisticRegression(class_weight="balanced", solver="lbfgs").fit(x, y)
    return float(100.0 * clf.predict(np.asarray(target_entropy).reshape(-1, 1)).mean())


def cross_entropy_loss(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-sample cross-entropy −log p_y in nats (p_y floored at the smallest
    positive double, so a confidently wrong sample has a finite loss)."""
    return -np.log(np.maximum(confidence(probs, labels), np.finfo(np.float64).tiny))


MIA_LOSS_DRAWS = 10   # truncation subsamples mia_loss_cv averages over


def mia_loss_cv(forget_loss: np.ndarray, test_loss: np.ndarray, seed: int = 0, draws: int = MIA_LOSS_DRAWS) -> float:
    """Loss-attack MIA of the NeurIPS 2023 starting kit / SCRUB code, in %,
    averaged over ``draws`` truncation subsamples.

    Members (label 1) are forget samples, non-members (label 0) test samples,
    one feature: the cross-entropy loss.  The starting kit shuffles the forget
    losses and keeps the first |test| of them; when the forget set is the
    smaller side (digits: 121 forget vs 449 test samples) that would leave the
    classes unbalanced and a constant guess would score 79%, so here the
    larger side, whichever it is, is shuffled (seeded) and truncated to the
    smaller's size, as SCRUB-derived code does.  A default
    ``LogisticRegression`` is scored as ``cross_val_score`` scores it over
    ``StratifiedShuffleSplit(n_splits=10, random_state=0)`` (test share 0.1),
    and the mean accuracy ×100 is returned.  One subsample is a noisy
    estimate (on the default benchmark's models its standard deviation is
    several points), so the score is the mean over ``draws`` subsamples: both
    sides reshuffled (``np.random.default_rng(seed)``, draw after draw; the
    first draw is the single-subsample score).  50 = the attack cannot tell
    forgotten from unseen samples.  NaN below 10 samples a side, where a 10%
    test split cannot hold one sample of each class.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedShuffleSplit

    rng = np.random.default_rng(seed)
    n = min(len(forget_loss), len(test_loss))
    if n < 10:
        return float("nan")
    forget_loss, test_loss = np.asarray(forget_loss, dtype=np.float64), np.asarray(test_loss, dtype=np.float64)
    y = np.concatenate([np.zeros(n), np.ones(n)])
    # the splits depend only on the labels (n of each), so every draw uses the same ones
    splits = list(StratifiedShuffleSplit(n_splits=10, random_state=0).split(np.zeros((2 * n, 1)), y))
    scores = []
    for _ in range(draws):
        forget = rng.permutation(forget_loss)[:n]
        x = np.concatenate([rng.permutation(test_loss)[:n], forget]).reshape(-1, 1)
        folds = [np.mean(LogisticRegression().fit(x[train], y[train]).predict(x[held]) == y[held])
                 for train, held in splits]
        scores.append(np.mean(folds))
    return float(100.0 * np.mean(scores))


def js_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Per-row Jensen–Shannon divergence in nats: ½KL(p‖m) + ½KL(q‖m), m = ½(p+q)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    m = 0.5 * (p + q)

    def kl(a, b):
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(a > 0, a * (np.log(a) - np.log(b)), 0.0).sum(axis=1)

    return np.clip(0.5 * kl(p, m) + 0.5 * kl(q, m), 0.0, math.log(2))


def parameter_vector(params: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([t.detach().reshape(-1).double().cpu() for _, t in sorted(params.items())])


def param_distance(params: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(‖θ − θ_r‖₂, ‖θ − θ_r‖₂ / ‖θ_r‖₂) over all parameters (not buffers)."""
    if sorted(params) != sorted(reference):
        raise ValueError("parameter names differ from the reference model's")
    a, b = parameter_vector(params), parameter_vector(reference)
    dist = float(torch.linalg.vector_norm(a - b))
    norm = float(torch.linalg.vector_norm(b))
    return dist, dist / norm if norm > 0 else float("inf")


SALUN_GAP = ("unlearn_acc", "retain_acc", "test_acc", "mia_efficacy")
MUSO_GAP = ("test_acc", "forget_acc", "mia_entropy")


def avg_gap(metrics: dict[str, float], retrain: dict[str, float], keys=SALUN_GAP) -> float:
    """Mean absolute difference to the Retrain model over ``keys`` (points)."""
    return float(np.mean([abs(metrics[k] - retrain[k]) for k in keys]))


def mean_pairwise(items: list, distance) -> float:
    """Mean of ``distance(a, b)`` over the unordered pairs of ``items``."""
    pairs = [(a, b) for i, a in enumerate(items) for b in items[i + 1:]]
    if not pairs:
        raise ValueError("need at least two items for a pairwise mean")
    return float(np.mean([distance(a, b) for a, b in pairs]))


def retrain_noise_floor(params: list[dict[str, torch.Tensor]], forget_probs: list[np.ndarray]) -> dict[str, float]:
    """The noise floor of retraining from K+1 retrains (the reference first):
    mean pairwise parameter distance and forget-set JS divergence, and the
    mean distance of the K extra retrains to the reference (what an exact
    retrain scores as ``param_dist``)."""
    return {
        "param_dist": mean_pairwise(params, lambda a, b: param_distance(a, b)[0]),
        "js_forget": mean_pairwise(forget_probs, lambda a, b: float(js_divergence(a, b).mean())),
        "retrain_param_dist": float(np.mean([param_distance(p, params[0])[0] for p in params[1:]])),
    }


def floor_ratio(distance: float, floor: float) -> float | None:
    """``distance`` in units of the retrain noise floor (None without a floor)."""
    return distance / floor if floor and floor > 0 else None


# ---- run flags: a no-op or a collapsed run keeps its numbers but is named on the board -----------
NOOP_REL_DIST = 1e-6      # relative parameter distance to the Original below which a run changed nothing
COLLAPSE_SHARE = 0.5      # collapsed: retain accuracy below chance + this share of (Retrain's − chance)


def collapse_bound(retrain_retain_acc: float, num_classes: int) -> float:
    """Retain accuracy (%) under which a run has collapsed: halfway between
    chance (100/K) and Retrain's retain accuracy."""
    chance = 100.0 / num_classes
    return chance + COLLAPSE_SHARE * (retrain_retain_acc - chance)


def run_flags(params: dict, original_params: dict, preds: dict, original_preds: dict,
              retain_acc: float, retrain_retain_acc: float, num_classes: int) -> dict:
    """``noop``: the run left the Original unchanged (relative parameter
    distance below NOOP_REL_DIST, or the same predictions on D_f and the test
    set); ``collapsed``: retain accuracy below :func:`collapse_bound`."""
    _, rel = param_distance(params, original_params)
    same = all(np.array_equal(preds[s], original_preds[s]) for s in ("forget", "test"))
    bound = collapse_bound(retrain_retain_acc, num_classes)
    return {"noop": bool(rel < NOOP_REL_DIST or same), "collapsed": bool(retain_acc < bound),
            "param_dist_original_rel": rel, "same_predictions": bool(same), "collapse_bound": bound}
