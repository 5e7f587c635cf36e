"""Metric definitions pinned on cases whose answer is known."""
import math

import numpy as np
import pytest
import torch

from unlearnbench.harness.metrics import definitions as M


def test_accuracy_and_confidence_by_hand():
    p = np.array([[0.7, 0.3], [0.4, 0.6], [0.9, 0.1]])
    y = np.array([0, 0, 1])
    assert M.accuracy(p, y) == pytest.approx(100 / 3)
    assert M.confidence(p, y).tolist() == [0.7, 0.4, 0.1]


def test_entropy_by_hand():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert M.entropy(p).tolist() == pytest.approx([0.0, math.log(2)])


def test_mia_efficacy_separable_and_identical():
    rng = np.random.default_rng(0)
    members = rng.uniform(0.95, 1.0, 300)          # training samples: confident
    nonmembers = rng.uniform(0.0, 0.5, 300)        # unseen samples: not
    # forget samples that still look like members -> predicted member -> efficacy ~0
    assert M.mia_efficacy(members, nonmembers, rng.uniform(0.95, 1.0, 200)) == pytest.approx(0.0, abs=1)
    # forget samples that look unseen -> efficacy ~100
    assert M.mia_efficacy(members, nonmembers, rng.uniform(0.0, 0.5, 200)) == pytest.approx(100.0, abs=1)
    # identical member / non-member distributions: the attack is a coin flip
    same = rng.uniform(0, 1, 2000)
    other = rng.uniform(0, 1, 2000)
    assert 25 <= M.mia_efficacy(same, other, rng.uniform(0, 1, 2000)) <= 75


def test_mia_entropy_separable_and_identical():
    rng = np.random.default_rng(1)
    members = rng.uniform(0.0, 0.1, 300)           # low entropy
    nonmembers = rng.uniform(1.0, 2.0, 300)        # high entropy
    assert M.mia_entropy(members, nonmembers, rng.uniform(0.0, 0.1, 100)) == pytest.approx(100.0)
    assert M.mia_entropy(members, nonmembers, rng.uniform(1.0, 2.0, 100)) == pytest.approx(0.0)
    same = rng.uniform(0, 1, 3000)
    rate = M.mia_entropy(same, rng.uniform(0, 1, 3000), rng.uniform(0, 1, 3000))
    assert 20 <= rate <= 80


def test_mia_hand_computed_small_case():
    # Members at 1.0, non-members at 0.0: any sensible classifier splits at
    # 0.5.  Targets 0.9, 0.8, 0.2 -> member, member, non-member.
    members = np.array([1.0, 1.0, 1.0, 1.0])
    nonmembers = np.array([0.0, 0.0, 0.0, 0.0])
    target = np.array([0.9, 0.8, 0.2])
    assert M.mia_efficacy(members, nonmembers, target) == pytest.approx(100 / 3)    # share NON-member
    # entropy attack: low entropy = member; targets 0.1, 0.2 (members), 1.9 (non-member)
    assert M.mia_entropy(np.zeros(4), np.full(4, 2.0), np.array([0.1, 0.2, 1.9])) == pytest.approx(200 / 3)


def test_js_divergence_bounds_and_hand_value():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    q = np.array([[0.0, 1.0], [0.5, 0.5]])
    js = M.js_divergence(p, q)
    assert js[0] == pytest.approx(math.log(2))      # disjoint supports: the maximum
    assert js[1] == pytest.approx(0.0)
    p2, q2 = np.array([[0.75, 0.25]]), np.array([[0.25, 0.75]])
    expected = 0.5 * (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)) * 2
    assert M.js_divergence(p2, q2)[0] == pytest.approx(expected)


def test_param_distance_by_hand():
    a = {"w": torch.tensor([3.0, 0.0]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([0.0, 0.0]), "b": torch.tensor([4.0])}
    dist, rel = M.param_distance(a, b)
    assert dist == pytest.approx(5.0)
    assert rel == pytest.approx(5.0 / 4.0)
    assert M.param_distance(b, b) == (0.0, 0.0)


def test_avg_gap_by_hand():
    r = {"unlearn_acc": 10, "retain_acc": 100, "test_acc": 90, "mia_efficacy": 20, "forget_acc": 90, "mia_entropy": 50}
    m = {"unlearn_acc": 0, "retain_acc": 100, "test_acc": 94, "mia_efficacy": 10, "forget_acc": 100, "mia_entropy": 80}
    assert M.avg_gap(m, r) == pytest.approx((10 + 0 + 4 + 10) / 4)
    assert M.avg_gap(m, r, M.MUSO_GAP) == pytest.approx((4 + 10 + 30) / 3)
