"""Per-example evidence, defined once: the U-LiRA attack (Hayes et al., arXiv
2403.01218) on a bank of shadow models, KLoM (RoyRin/data-unlearning-bench,
``old_teacher_klom.py``), relearning time and linear-probe recovery.

Functions take plain arrays so tests can pin them on cases whose answer is
known; harness/studies/per_example.py trains the models they read.
"""
from __future__ import annotations

import numpy as np
from scipy import stats

FPR_POINTS = (0.01, 0.001)      # TPR is reported at these false-positive rates
EXPOSED_ACCURACY = 0.75         # an example is "exposed" when the attack is right on ≥ 75% of the targets
KLOM_BINS, KLOM_EPS, KLOM_CLIP = 20, 1e-5, 100.0   # data-unlearning-bench's compute_binned_KL_div defaults
VAR_FLOOR = 1e-6                # the Gaussians' variance floor (identical samples)


def margins(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-example margin: the true class's logit minus the log-sum-exp of the
    other logits (the datamodels margin that KLoM compares)."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels)
    rows = np.arange(len(y))
    others = z.copy()
    others[rows, y] = -np.inf
    return z[rows, y] - np.logaddexp.reduce(others, axis=1)


def _gaussian_logpdf(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def ulira_scores(conf: np.ndarray, member: np.ndarray) -> np.ndarray:
    """Leave-one-out per-example likelihood-ratio scores.

    ``conf[k, i]``: shadow model k's logit-scaled confidence on example i;
    ``member[k, i]``: whether example i was in shadow k's training set (and so
    forgotten by it, for the forget candidates).  For each target model j and
    example i, one Gaussian is fit to the confidences of the *other* shadows
    that had i ("unlearned", or kept for retain examples) and one to those
    that never saw i ("never seen"); the score is log N(c_ji; in) − log N(c_ji; out):
    > 0 predicts "was a member".  Returns scores of the same shape as ``conf``.
    """
    c = np.asarray(conf, dtype=np.float64)
    m = np.asarray(member, dtype=bool)
    out = ~m

    def loo_moments(mask):
        n = mask.sum(0) - mask                 # each target leaves itself out of its own group
        s = (c * mask).sum(0) - c * mask
        s2 = (c * c * mask).sum(0) - c * c * mask
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = s / n
            var = np.maximum(s2 / n - mean ** 2, VAR_FLOOR)
        return mean, var

    mi, vi = loo_moments(m)
    mo, vo = loo_moments(out)
    if (m.sum(0) < 3).any() or (out.sum(0) < 3).any():
        raise ValueError("every example needs at least 3 shadows on each side of its membership")
    return _gaussian_logpdf(c, mi, vi) - _gaussian_logpdf(c, mo, vo)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr: float) -> float:
    """The largest true-positive rate at a false-positive rate ≤ ``fpr`` (sklearn's ROC curve), %."""
    from sklearn.metrics import roc_curve

    f, t, _ = roc_curve(labels, scores)
    return float(100.0 * t[f <= fpr].max())


def attack_summary(scores: np.ndarray, member: np.ndarray) -> dict:
    """The attack over all (target model, example) pairs: balanced accuracy of
    the sign of the score (%; 50 = indistinguishable), ROC AUC (%), TPR at 1%
    and 0.1% FPR (%), and per example the accuracy over the targets — its
    mean and the share of examples at ≥ 75% (``exposed``)."""
    from sklearn.metrics import balanced_accuracy_score, roc_auc_score

    s, m = np.asarray(scores).ravel(), np.asarray(member, dtype=bool).ravel()
    per_example = ((np.asarray(scores) > 0) == np.asarray(member, dtype=bool)).mean(0)
    return {
        "ulira_acc": float(100.0 * balanced_accuracy_score(m, s > 0)),
        "ulira_auc": float(100.0 * roc_auc_score(m, s)),
        "ulira_tpr_1": tpr_at_fpr(m, s, FPR_POINTS[0]),
        "ulira_tpr_01": tpr_at_fpr(m, s, FPR_POINTS[1]),
        "ulira_exposed": float(100.0 * (per_example >= EXPOSED_ACCURACY).mean()),
        "per_example_acc": [round(float(a), 4) for a in per_example],
    }


def binned_kl(p_samples: np.ndarray, q_samples: np.ndarray, bins: int = KLOM_BINS, eps: float = KLOM_EPS,
              clip: float = KLOM_CLIP) -> float:
    """D_KL(p ‖ q) of two samples, binned as data-unlearning-bench's
    ``compute_binned_KL_div`` (old_teacher_klom.py at bfd16b5): both clipped
    to ±``clip``, ``bins`` equal bins over their joint range, counts by
    ``np.digitize`` (values equal to the joint maximum fall outside the last
    bin, as there), q floored at ``eps`` where p > 0, scipy's entropy."""
    p = np.clip(np.asarray(p_samples, dtype=np.float64), -clip, clip)
    q = np.clip(np.asarray(q_samples, dtype=np.float64), -clip, clip)
    lo, hi = min(p.min(), q.min()), max(p.max(), q.max())
    if lo >= hi:
        hi = lo + 1
    edges = np.linspace(lo, hi, bins + 1)
    pc = np.bincount(np.digitize(p, edges), minlength=bins + 2)[1:bins + 1]
    qc = np.bincount(np.digitize(q, edges), minlength=bins + 2)[1:bins + 1]
    pp = pc / pc.sum() if pc.sum() else np.zeros(bins)
    qp = qc / qc.sum() if qc.sum() else np.zeros(bins)
    qp = np.where(pp > 0, np.maximum(qp, eps), qp)
    return float(stats.entropy(pk=pp, qk=qp))


def klom(unlearned: np.ndarray, oracle: np.ndarray) -> np.ndarray:
    """KLoM of each example: the binned KL divergence between the margins of
    the unlearned models (``unlearned[:, i]``) and of the oracles
    (``oracle[:, i]``, models never trained on i); 0 = same distribution."""
    u, o = np.asarray(unlearned), np.asarray(oracle)
    if u.shape[1] != o.shape[1]:
        raise ValueError(f"unlearned and oracle margins cover different examples: {u.shape} vs {o.shape}")
    return np.array([binned_kl(u[:, i], o[:, i]) for i in range(u.shape[1])])


def probe_recovery(train_x: np.ndarray, train_y: np.ndarray, forget_x: np.ndarray, forget_y: np.ndarray,
                   folds: int = 5, seed: int = 0) -> float:
    """Linear-probe recovery, %: a multinomial logistic regression on
    standardised frozen features, fit on the retain features and all forget
    features but one fold's, predicts that fold; the share of D_f whose true
    label it recovers, over the folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import KFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    correct = 0
    for keep, held in KFold(min(folds, len(forget_y)), shuffle=True, random_state=seed).split(forget_x):
        x = np.concatenate([train_x, forget_x[keep]])
        y = np.concatenate([train_y, forget_y[keep]])
        probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300))
        probe.fit(x, y)
        correct += int((probe.predict(forget_x[held]) == forget_y[held]).sum())
    return 100.0 * correct / len(forget_y)
