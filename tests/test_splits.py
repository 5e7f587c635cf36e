import numpy as np
import pytest

from unlearnbench.datasets import splits as S


def labels(n_per_class=(50, 30, 20)):
    return np.concatenate([np.full(n, c) for c, n in enumerate(n_per_class)])


def test_random_forget_is_seeded_class_balanced_and_sized():
    y = labels()
    a = S.random_forget(y, 0.1, seed=3)
    b = S.random_forget(y, 0.1, seed=3)
    c = S.random_forget(y, 0.1, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert len(a) == 10
    assert np.bincount(y[a], minlength=3).tolist() == [5, 3, 2]   # exactly proportional
    assert len(np.unique(a)) == len(a)


def test_largest_remainder_allocation_hits_the_total():
    y = labels((7, 7, 7))
    idx = S.random_forget(y, 0.5, seed=0)
    assert len(idx) == 10 or len(idx) == 11
    counts = np.bincount(y[idx], minlength=3)
    assert counts.max() - counts.min() <= 1


def test_stratified_split_is_a_partition():
    y = labels()
    rest, part = S.stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(rest, part)) == 0
    assert np.array_equal(np.sort(np.concatenate([rest, part])), np.arange(len(y)))
    assert np.bincount(y[part]).tolist() == [10, 6, 4]


def test_class_forget_takes_every_sample_of_the_class():
    y = labels()
    idx = S.class_forget(y, 1)
    assert set(y[idx]) == {1} and len(idx) == 30


@pytest.mark.parametrize("ratio", [0.0, 1.0, -0.1, 1.5])
def test_ratio_outside_open_interval_is_rejected(ratio):
    with pytest.raises(ValueError, match="ratio"):
        S.random_forget(labels(), ratio, seed=0)


def test_protocol_splits_are_disjoint_and_saved(digits_grid):
    import json

    out, records, harness = digits_grid
    rec = records[("random 10%", "finetune")]
    saved = json.loads((out / rec["forget_indices"]).read_text())
    forget = np.array(saved["indices"])
    from unlearnbench.harness.protocol.spec import RunSpec

    data = harness.data(RunSpec.from_config(rec["config"]))
    assert len(np.intersect1d(forget, data.val)) == 0          # forget ⊂ training pool
    assert set(forget) <= set(data.pool.tolist())
    assert rec["sizes"]["forget"] == len(forget)
    assert rec["sizes"]["retain"] + rec["sizes"]["forget"] == len(data.pool)
    y = data.ds.y_train.numpy()
    pool_counts = np.bincount(y[data.pool], minlength=10) / len(data.pool)
    forget_counts = np.bincount(y[forget], minlength=10) / len(forget)
    assert np.abs(pool_counts - forget_counts).max() < 0.01       # class-balanced
