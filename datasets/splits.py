"""Seeded, class-balanced index splits: validation carve-outs and forget sets.

Every function is a pure function of (labels, parameters, seed) and returns
sorted int64 numpy indices, so a split can be re-derived and checked from
what a record stores.
"""
from __future__ import annotations

import numpy as np


def _allocate(counts: np.ndarray, total: int) -> np.ndarray:
    """Split ``total`` across classes proportionally to ``counts``
    (largest-remainder rounding, ties to the lower class index)."""
    exact = counts * (total / counts.sum())
    base = np.floor(exact).astype(np.int64)
    remainder = exact - base
    order = np.lexsort((np.arange(len(counts)), -remainder))
    base[order[: total - base.sum()]] += 1
    return np.minimum(base, counts)


def class_balanced_sample(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """``size`` indices drawn without replacement, each class represented in
    proportion to its frequency (exactly, up to rounding)."""
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    take = _allocate(counts, size)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), size=k, replace=False)
              for c, k in zip(classes, take)]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(rest, part): ``part`` is a class-balanced ``fraction`` of the indices."""
    labels = np.asarray(labels)
    part = class_balanced_sample(labels, int(round(fraction * len(labels))), seed)
    rest = np.setdiff1d(np.arange(len(labels)), part)
    return rest.astype(np.int64), part


def random_forget(labels: np.ndarray, ratio: float, seed: int) -> np.ndarray:
    """Scenario `random`: a class-balanced share ``ratio`` of the training set."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"forget ratio must lie in (0, 1), got {ratio}")
    labels = np.asarray(labels)
    size = int(round(ratio * len(labels)))
    size = min(max(size, 1), len(labels) - 1)
    return class_balanced_sample(labels, size, seed)


def class_forget(labels: np.ndarray, forget_class: int) -> np.ndarray:
    """Scenario `class`: every training sample of one class."""
    idx = np.flatnonzero(np.asarray(labels) == forget_class).astype(np.int64)
    if len(idx) == 0:
        raise ValueError(f"class {forget_class} has no training samples")
    return idx


def training_pool(labels: np.ndarray, val_frac: float, subset: int | None = None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(pool, val): indices trained on and the held-out validation split.

    ``subset``: first restrict the training split to a fixed class-balanced
    subset of that many images (a smaller benchmark of the same data); the
    validation share is then carved from the subset.  Both draws use ``seed``,
    not a run's seed: they define the data every run of a grid shares.
    """
    labels = np.asarray(labels)
    chosen = np.arange(len(labels), dtype=np.int64)
    if subset is not None:
        if not 0 < subset <= len(labels):
            raise ValueError(f"subset of {subset} images requested from {len(labels)}")
        chosen = class_balanced_sample(labels, subset, seed)
    if val_frac <= 0:
        return chosen, np.array([], dtype=np.int64)
    rest, val = stratified_split(labels[chosen], val_frac, seed)
    return chosen[rest], chosen[val]
