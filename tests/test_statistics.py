"""Intervals, tied ranks and the bootstrap of the overall ranking, on cases
whose answer is known (scipy.stats directly, hand-made data)."""
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from unlearnbench.harness.metrics import statistics as S


def test_t_interval_is_scipys_student_t_interval():
    x = [12.1, 13.4, 11.8, 12.9, 13.0]
    mean, half = S.t_interval(x)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert mean == pytest.approx(np.mean(x)) and half == pytest.approx((high - low) / 2)
    # by hand: t_{0.975,4} = 2.776 (tables), s = 0.6745 (ddof 1)
    assert half == pytest.approx(2.776 * np.std(x, ddof=1) / np.sqrt(5), rel=1e-3)


def test_t_interval_needs_two_values():
    assert S.t_interval([3.0])[0] == 3.0 and np.isnan(S.t_interval([3.0])[1])
    assert S.t_interval([3.0, np.nan, 5.0]) == pytest.approx((4.0, stats.t.ppf(0.975, 1) * np.sqrt(2) / np.sqrt(2)))
    assert np.isnan(S.t_interval([])[0])
    assert S.t_interval([2.0, 2.0, 2.0]) == (2.0, 0.0)


def test_paired_p_value_is_scipys_ttest_rel():
    a, b = np.array([1.0, 2.1, 2.9, 4.2, 5.0]), np.array([1.3, 2.0, 3.5, 4.6, 5.9])
    assert S.paired_p_value(a, b) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    # seeds one side lacks are left out, pairs stay pairs
    a2, b2 = np.append(a, np.nan), np.append(b, 7.0)
    assert S.paired_p_value(a2, b2) == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert S.paired_p_value([1.0], [2.0]) == 1.0                       # one pair: nothing to tell
    assert S.paired_p_value(a, a) == 1.0                               # identical
    assert S.paired_p_value(a, a + 0.5) == 0.0                         # every seed: exactly 0.5 better


def test_wilcoxon_cannot_separate_five_seeds():
    """Why the leaderboard uses the paired t-test: Wilcoxon's smallest
    two-sided p on 5 pairs is 2/2^5 = 0.0625 > 0.05."""
    differences = [1.0, 2.0, 3.0, 4.0, 5.0]                           # all of one sign: its most extreme case
    assert stats.wilcoxon(differences).pvalue == pytest.approx(2 / 2 ** 5)
    assert stats.ttest_1samp(differences, 0.0).pvalue < 0.05


def test_holm_by_hand():
    # sorted: 0.005 <= 0.05/4 and 0.01 <= 0.05/3 are rejected; 0.03 > 0.05/2 stops the procedure
    assert S.holm([0.01, 0.04, 0.03, 0.005]).tolist() == [True, False, False, True]
    assert S.holm([0.01, 0.02, 0.03, 0.04]).tolist() == [True, False, False, False]   # 0.02 > 0.05/3
    assert S.holm([0.0124, 0.0166, 0.0249, 0.0499]).tolist() == [True] * 4
    assert S.holm([0.02, 0.001]).tolist() == [True, True]             # 0.001 <= 0.025, then 0.02 <= 0.05
    assert S.holm([0.04, 0.04, 0.04]).tolist() == [False] * 3         # each alone would pass at 0.05
    assert S.holm([]).tolist() == []


SEED_NOISE = np.array([0.3, -0.2, 0.1, -0.1, 0.2])


@pytest.mark.filterwarnings("ignore:Precision loss")
def test_control_ranks_share_what_the_seeds_cannot_separate():
    a = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    b = a + SEED_NOISE                       # mean 0.06 worse, differences swing both ways: not separable
    c = a + 5 + SEED_NOISE / 10              # 5 worse on every seed
    d = a + 10 + SEED_NOISE / 10             # worse than c on every seed
    values = np.stack([a, b, c, d], axis=1)
    assert S.control_ranks(values).tolist() == [1, 1, 3, 4]
    # by hand: a is the control; the one-sided p-values of b, c, d against it, Holm over 3 at 0.05
    p = [stats.ttest_rel(values[:, j], a, alternative="greater").pvalue for j in (1, 2, 3)]
    assert S.holm(p).tolist() == [False, True, True]
    # below the top group, c is the next control and d is worse than it
    assert stats.ttest_rel(d, c, alternative="greater").pvalue < 0.05


def test_control_ranks_with_missing_seeds_and_rows():
    a = np.array([1.0, 1.1, 0.9, 1.05, 0.95])
    values = np.stack([a + 5 + SEED_NOISE / 10, a, np.full(5, np.nan)], axis=1)
    values[4, 0] = np.nan                    # one failed seed: the pair uses the other four
    ranks = S.control_ranks(values)
    assert ranks[:2].tolist() == [2, 1] and np.isnan(ranks[2])
    one_seed = S.control_ranks(values[:1])    # a single seed separates nothing
    assert one_seed[:2].tolist() == [1, 1]


def test_control_ranks_separate_scrub_from_ssd_on_the_committed_class_0_records():
    """Issue 19: on the digits class-0 records of commit f685d57, SCRUB's Avg.
    Gap (16.93 ± 8.78) and SSD's (0.12 ± 0.13) both had rank 1 under the
    all-pairs test (Holm over 55 pairs).  Compared with the best, they separate."""
    data = json.loads((Path(__file__).parent / "data" / "digits_class0_f685d57.json").read_text())["avg_gap"]
    names = sorted(data)
    values = np.array([[data[m][str(seed)] for m in names] for seed in range(5)])
    ranks = dict(zip(names, S.control_ranks(values)))
    assert ranks["ssd"] == 1 and ranks["scrub"] > 1
    assert round(values[:, names.index("scrub")].mean(), 2) == 16.93
    mde = S.detectable_difference(values)
    assert 0 < mde < 16.93 - 0.12           # the test can detect a difference far smaller than theirs


def test_detectable_difference_has_the_stated_power():
    """At the detectable difference, the one-sided paired t-test at α/(k−1)
    rejects in 80% of seeded simulations with the same spread and seeds."""
    rng = np.random.default_rng(0)
    n, k, spread = 10, 5, 2.0
    base = rng.normal(size=(n, 1))
    noise = rng.normal(size=(n, k))
    noise = (noise - noise.mean(axis=0)) / noise.std(axis=0, ddof=1) * spread / np.sqrt(2)
    values = base + noise + np.arange(k) * 10.0
    mde = S.detectable_difference(values)
    sd = np.median([np.std(values[:, j] - values[:, 0], ddof=1) for j in range(1, k)])
    crit = stats.t.ppf(1 - 0.05 / (k - 1), n - 1)
    sims = rng.normal(mde, sd, size=(20000, n))
    t = sims.mean(axis=1) / (sims.std(axis=1, ddof=1) / np.sqrt(n))
    assert np.mean(t > crit) == pytest.approx(0.8, abs=0.015)
    assert np.isnan(S.detectable_difference(values[:, :1])) and np.isnan(S.detectable_difference(values[:1]))


def test_friedman_matches_scipy_and_finds_the_consistent_best():
    rng = np.random.default_rng(1)
    blocks = rng.normal(size=(12, 4)) * 0.3 + np.array([0.0, 0.0, 3.0, 6.0])
    result = S.friedman(blocks, ["a", "b", "c", "d"])
    stat, p = stats.friedmanchisquare(*blocks.T)
    assert result["statistic"] == pytest.approx(stat) and result["p"] == pytest.approx(p) and result["blocks"] == 12
    assert result["mean_ranks"]["d"] == 4.0 and result["mean_ranks"][["a", "b"]].mean() == pytest.approx(1.5)
    post = result["posthoc"]
    assert post.loc["a", "d"] < 0.05 and post.loc["a", "b"] > 0.05 and np.allclose(post, post.T)


def test_bootstrap_of_identical_tables_has_no_width():
    ranks = np.array([[1, 3, 2]] * 4)
    point, low, high = S.bootstrap_mean_rank(ranks, replicates=200)
    assert point.tolist() == low.tolist() == high.tolist() == [1, 3, 2]


def test_bootstrap_interval_by_hand_and_seeded():
    """Two tables where rows 0 and 1 swap places: a replicate draws (t0, t0),
    (t0, t1), (t1, t0) or (t1, t1), so row 0's mean rank is 1, 1.5 or 2 with
    probabilities 1/4, 1/2, 1/4; its 95% interval is [1, 2] and row 2,
    always last, has none."""
    ranks = np.array([[1, 2, 3], [2, 1, 3]])
    point, low, high = S.bootstrap_mean_rank(ranks, replicates=4000, seed=3)
    assert point.tolist() == [1.5, 1.5, 3] and low.tolist() == [1, 1, 3] and high.tolist() == [2, 2, 3]
    chosen = np.random.default_rng(3).integers(0, 2, size=(4000, 2))
    row0 = ranks[chosen, 0].mean(axis=1)
    assert np.mean(row0 == 1.5) == pytest.approx(0.5, abs=0.03)         # the draws are what we think
    again = S.bootstrap_mean_rank(ranks, replicates=4000, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((point, low, high), again))


def test_bootstrap_rows_missing_from_a_table():
    """A row that ran in one table only is averaged over that table only."""
    ranks = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, np.nan]])
    point, low, high = S.bootstrap_mean_rank(ranks, replicates=300)
    assert point.tolist() == low.tolist() == high.tolist() == [1, 2, 3]
