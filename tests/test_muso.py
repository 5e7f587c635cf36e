"""MUSO: the theorem on a small over-parameterised problem (real digits), the
two forms of the optimal labels, the network relabel step, Π_r, and the
registered methods (`muso`, `muso_released`): their network code path in the
theorem's regime (head-only, squared loss), mutants that must be caught, the
ε schedules, the released projector, and runs through the harness."""
import copy

import pytest
import torch
from torch import nn

from unlearnbench.datasets import load_dataset
from unlearnbench.harness.metrics.definitions import param_distance
from unlearnbench.harness.models import Classifier, InputSpec, build_model
from unlearnbench.methods import Context, Split, TrainConfig, _muso, fit, get_method, supervised_loss
from unlearnbench.methods import muso as muso_module
from unlearnbench.methods._linear import least_squares_limit, project_rows
from unlearnbench.methods.muso import (
    forget_outputs,
    head_weights,
    optimal_labels,
    optimal_labels_label_free,
    penultimate,
    relabel_weights,
    ridge_at,
)


def rel_dist(a: nn.Module, b: nn.Module) -> float:
    return param_distance(dict(a.named_parameters()), dict(b.named_parameters()))[1]


@pytest.fixture(scope="module")
def problem():
    """60 real digits (40 retain, 20 forget), rf_linear with 800 features:
    θ₀, the original and the retrain model, both at the limit of SGD."""
    ds = load_dataset("digits")
    spec = InputSpec.of(ds)
    x, y = ds.x_train[:60], ds.y_train[:60]
    torch.manual_seed(0)
    init = build_model("rf_linear", spec, {"features": 800, "sigma": 3.0})
    cfg = TrainConfig(epochs=1, optimizer="sgd", momentum=0.0, weight_decay=0.0, augment=False)

    def train(start, xs, targets):
        model = copy.deepcopy(start)
        fit(model, supervised_loss, (xs, targets), cfg, torch.Generator().manual_seed(0))
        return model

    original = train(init, x, y)
    retrain = train(init, x[:40], y[:40])
    return dict(spec=spec, x=x, y=y, init=init, original=original, retrain=retrain, train=train, cfg=cfg)


def linear_parts(p):
    z = p["init"].features(p["x"])
    return (z[:40], z[40:], p["init"].encode_targets(p["y"][:40]),
            p["init"].head.weight.detach().T, p["original"].head.weight.detach().T)


def test_references_interpolate_and_share_theta0(problem):
    p = problem
    z_r, _, y_r, w0, wp = linear_parts(p)
    assert torch.allclose(p["original"](p["x"]), p["init"].encode_targets(p["y"]), atol=1e-9)
    assert torch.allclose(p["retrain"](p["x"][:40]), y_r, atol=1e-9)
    # the retrained weights moved from θ₀ only within the row space of Z_r
    wr = p["retrain"].head.weight.detach().T
    assert torch.allclose(project_rows(z_r, wr - w0), wr - w0, atol=1e-10)


def test_muso_fine_tuning_lands_on_the_retrained_weights(problem):
    p = problem
    z_r, z_f, y_r, w0, _ = linear_parts(p)
    labels = optimal_labels(z_f, z_r, y_r, w0)
    muso = p["train"](p["original"], p["x"], torch.cat([y_r, labels]))
    assert rel_dist(muso, p["retrain"]) < 1e-8
    # the retain set must be in the fine-tuning set: optimal labels on D_f alone are not exact
    forget_only = p["train"](p["original"], p["x"][40:], labels)
    assert rel_dist(forget_only, p["retrain"]) > 1e-2
    assert rel_dist(p["original"], p["retrain"]) > 1e-2


@pytest.mark.slow
def test_real_gradient_descent_iterates_reach_the_retrained_weights(problem):
    """Not the closed-form limit: fit iterates (full-batch GD) when the loss is
    not the model's own supervised_loss object."""
    p = problem
    z_r, z_f, y_r, w0, _ = linear_parts(p)
    targets = torch.cat([y_r, optimal_labels(z_f, z_r, y_r, w0)])
    z = torch.cat([z_r, z_f])
    lr = len(z) / float(torch.linalg.eigvalsh(z @ z.T)[-1])      # 1/λ_max of the mean loss
    model = copy.deepcopy(p["original"]).requires_grad_(True)
    result = fit(model, lambda m, b, e=None: supervised_loss(m, b), (p["x"], targets),
                 p["cfg"].replace(epochs=1000, batch_size=len(z), lr=lr, schedule="constant"),
                 torch.Generator().manual_seed(0))
    assert result.steps == 1000
    assert rel_dist(model, p["retrain"]) < 1e-8


def test_label_form_equals_label_free_form(problem):
    z_r, z_f, y_r, w0, wp = linear_parts(problem)
    label_form = optimal_labels(z_f, z_r, y_r, w0)
    label_free = optimal_labels_label_free(z_f, z_r, w0, wp)
    assert torch.allclose(label_form, label_free, rtol=0, atol=1e-9 * label_form.abs().max())
    # and both are the retrained model's predictions on D_f
    assert torch.allclose(label_form, problem["retrain"](problem["x"][40:]), atol=1e-9)


def test_frozen_features_relabel_step_is_the_linear_closed_form():
    """An MLP whose head (with bias: the ones column) was trained to the limit
    on frozen features: the per-batch relabel of the network algorithm, with Π_r
    from all of D_r and no ridge, gives exactly the closed-form labels."""
    ds = load_dataset("digits")
    x, y = ds.x_train[:50], ds.y_train[:50]
    torch.manual_seed(1)
    net = build_model("mlp", InputSpec.of(ds), {"hidden": [200]})
    w0 = head_weights(net.head)
    z = penultimate(net, x)                                  # features + ones column, float64
    assert z.shape == (50, 201)
    targets = nn.functional.one_hot(y, 10).double()
    wp = least_squares_limit(z, targets, w0)
    with torch.no_grad():
        net.head.weight.copy_(wp[:-1].T)
        net.head.bias.copy_(wp[-1])
    z_r, z_f = z[:35], z[35:]
    pretrained_outputs = net(x[35:]).double()
    relabel = forget_outputs(net, x[35:], pretrained_outputs, relabel_weights(z_r, w0, wp), wp)
    closed_form = z_f @ least_squares_limit(z_r, targets[:35], w0)
    assert torch.allclose(relabel, closed_form, atol=1e-4)   # float32 features: the drift term is ~1e-6
    assert torch.allclose(relabel, optimal_labels(z_f, z_r, targets[:35], w0), atol=1e-4)
    assert torch.equal(relabel.argmax(1), closed_form.argmax(1))


@pytest.mark.parametrize("shape", [(30, 80), (80, 30)])   # dual (N < M) and primal (N > M) forms
def test_pi_r_is_a_projector_when_the_ridge_vanishes(shape):
    torch.manual_seed(0)
    z = torch.randn(*shape, dtype=torch.float64)
    eye = torch.eye(shape[1], dtype=torch.float64)
    pi = project_rows(z, eye)
    assert torch.allclose(pi @ pi, pi, atol=1e-10)
    assert torch.allclose(pi, pi.T, atol=1e-10)
    assert abs(float(torch.trace(pi)) - min(shape)) < 1e-8              # rank = dim of the row space
    ridged = project_rows(z, eye, ridge=1.0)
    assert float(torch.linalg.norm(ridged @ ridged - ridged)) > 1e-3    # the ridge makes it a shrinkage
    assert torch.allclose(project_rows(z, eye, ridge=1e-12), pi, atol=1e-8)


def test_ridge_ramp_runs_from_start_to_end():
    assert ridge_at(0, 5, 1e-6, 1e-2) == 1e-6
    assert ridge_at(4, 5, 1e-6, 1e-2) == pytest.approx(1e-2)
    assert ridge_at(2, 5, 1e-6, 1e-2) == pytest.approx((1e-6 + 1e-2) / 2)
    assert ridge_at(0, 1, 1e-6, 1e-2) == 1e-6


class BatchNormNet(Classifier):
    """A network whose train-mode outputs depend on the batch (BatchNorm)."""

    def __init__(self, spec):
        super().__init__(spec)
        self.trunk = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU())
        self.head = nn.Linear(32, spec.num_classes)

    def body(self, x):
        return self.trunk(x)


def test_relabel_does_not_depend_on_the_batch():
    ds = load_dataset("digits")
    torch.manual_seed(0)
    net = BatchNormNet(InputSpec.of(ds))
    net.train()
    net(ds.x_train[:256])                     # non-trivial running statistics
    x_f = ds.x_train[:40]
    wp = head_weights(net.head)
    w_relabel = relabel_weights(penultimate(net, ds.x_train[40:200]), torch.zeros_like(wp), wp, 1e-6)
    pretrained = torch.randn(40, 10, dtype=torch.float64)
    whole = forget_outputs(net, x_f, pretrained, w_relabel, wp)
    for size in (1, 7, 16):
        parts = torch.cat([forget_outputs(net, xb, pb, w_relabel, wp)
                           for xb, pb in zip(x_f.split(size), pretrained.split(size))])
        assert torch.allclose(parts, whole, rtol=1e-5, atol=1e-5)
        assert torch.equal(parts.argmax(1), whole.argmax(1))
    assert net.training                        # the relabel step restores train mode


def check_regime_diagnostics(record, epochs: int):
    d = record["diagnostics"]
    assert d["head_inputs"] == 129                                   # the default mlp: 128 features + the bias
    assert record["sizes"]["retain"] // 5 <= d["proj_rows"] <= 2 * (record["sizes"]["retain"] // 5)
    assert 1 <= d["rank_z_retain"] <= min(d["head_inputs"], d["proj_rows"])
    assert 0.0 <= d["label_change_first"] <= 1.0 and 0.0 <= d["label_change_mean"] <= 1.0
    assert len(d["eps"]) == d["rebuilds"] == epochs


def test_muso_runs_in_the_random_scenario(digits_grid):
    """Through the harness with its registered defaults: ok, regime recorded.
    The default mlp's head has M = 129 inputs against N = 20% of ~1,090
    retain rows: Π_r projects onto the whole span of the head's inputs
    (rank ≤ 129; dead ReLU units lower it), so the first labels are the
    original's own predictions."""
    from unlearnbench.harness.protocol.config import Grid, expand

    _, _, harness = digits_grid
    spec = next(s for s in expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["muso"], tuned=False)))
    record = harness.run(spec)
    assert record["status"] == "ok", record["message"]
    d = record["diagnostics"]
    check_regime_diagnostics(record, epochs=2)
    assert d["proj_rows"] == round(0.2 * record["sizes"]["retain"])
    assert d["rank_z_retain"] <= 129 < d["proj_rows"] and d["label_change_first"] == 0.0
    assert d["eps"] == [1e-6, 1e-2]
    assert record["config"]["hyper"]["lr"] == 3e-5


def test_muso_released_runs_in_both_scenarios(digits_grid):
    from unlearnbench.harness.protocol.config import Grid, expand

    _, _, harness = digits_grid
    ramp5 = cosine_ramp(5, 1e-6, 1e-2)
    for scenario, epochs, eps in (("random", 2, [1e-6, 1e-6]), ("class", 5, ramp5[:1] + ramp5[:4])):
        spec = next(s for s in expand(Grid(seeds=[0], scenarios=[scenario], ratios=[0.1],
                                           methods=["muso_released"], tuned=False)))
        record = harness.run(spec)
        assert record["status"] == "ok", record["message"]
        check_regime_diagnostics(record, epochs)
        assert record["diagnostics"]["eps"] == pytest.approx(eps, rel=1e-12)
        assert record["diagnostics"]["precision"] == "released"
    info = get_method("muso_released")
    # HEAD (8c113dd) of both scripts: the Woodbury projector; class and sub-class AdamW 2.8e-4, cosine, 5 epochs
    assert info.defaults("random")["projector"] == info.defaults("class")["projector"] == "woodbury"
    assert {k: info.defaults("subclass")[k] for k in ("optimizer", "lr", "schedule", "epochs")} == {
        "optimizer": "adamw", "lr": 2.8e-4, "schedule": "cosine", "epochs": 5}


# ---- the network code path where the theorem applies ------------------------------
# Head-only training (every layer but the head frozen at θ₀: a linear model on
# fixed random ReLU features), squared loss, SGD without weight decay, and more
# head inputs than rows: 24 digits (16 retain, 8 forget), one hidden layer of
# 500, M = 501.  The kernel ZZᵀ has condition number ~500 here, so mini-batch
# SGD reaches its limit in a few hundred epochs (a few seconds); with 30+ rows
# it grows fast (900 at 30, 4,000 at 60, 12,000 at 100), whatever the width.
N_ALL, N_RETAIN, WIDTH = 24, 16, 500


@pytest.fixture(scope="module")
def head_only():
    ds = load_dataset("digits")
    x, y = ds.x_train[:N_ALL], ds.y_train[:N_ALL]
    cfg = TrainConfig(loss="squared", trainable="head", optimizer="sgd", momentum=0.9, weight_decay=0.0,
                      schedule="constant", augment=False, batch_size=8)
    torch.manual_seed(0)
    init = build_model("mlp", InputSpec.of(ds), {"hidden": [WIDTH]}, train=cfg)
    z = penultimate(init, x)
    assert z.shape == (N_ALL, WIDTH + 1)
    lr = N_ALL / float(torch.linalg.eigvalsh(z @ z.T)[-1])     # ~1/λ_max of a batch's mean squared loss
    # the original at the SGD limit on all 24 (closed form of the head; the SGD-trained one is in the bridge test)
    w0 = head_weights(init.head)
    wp = least_squares_limit(z, nn.functional.one_hot(y, 10).double(), w0)
    original = copy.deepcopy(init)
    with torch.no_grad():
        original.head.weight.copy_(wp[:-1].T)
        original.head.bias.copy_(wp[-1])
    return dict(x=x, y=y, init=init, theta0=copy.deepcopy(init.state_dict()), cfg=cfg, z=z, w0=w0, lr=lr,
                original=original.requires_grad_(False))


def context(p, original, seed: int = 1) -> Context:
    x, y, n = p["x"], p["y"], N_RETAIN
    return Context(model=copy.deepcopy(original).requires_grad_(True), original=original,
                   retain=Split(x[:n], y[:n]), forget=Split(x[n:], y[n:]), val=Split(x[:0], y[:0]),
                   theta0=p["theta0"], make_model=lambda: copy.deepcopy(p["init"]), train_config=p["cfg"],
                   num_classes=10, device=torch.device("cpu"), generator=torch.Generator().manual_seed(seed))


EXACT = {"optimizer": "sgd", "weight_decay": 0.0, "retain_subset": 1.0, "eps_start": 0.0, "eps_end": 0.0,
         "soft_labels": True, "batch_size": 8}


def first_step_labels(p, monkeypatch):
    """Run `muso` (its registered function, theorem settings) for one epoch and
    capture the training targets of the forget samples of the first batch
    that has any: (their positions in D_f, the targets), and the context."""
    captured = []
    real_targets = _muso.Relabeller.targets

    def spy(self, net, x_forget, fpos):
        targets = real_targets(self, net, x_forget, fpos)
        captured.append((fpos.clone(), targets.detach().clone()))
        return targets

    monkeypatch.setattr(_muso.Relabeller, "targets", spy)
    info = get_method("muso")
    ctx = context(p, p["original"])
    info.fn(ctx, info.resolve({**EXACT, "epochs": 1, "lr": p["lr"]}))
    return captured[0][0], captured[0][1], ctx


def check_first_labels_are_optimal(p, monkeypatch):
    """The labels MUSO trains on at its first step are the closed-form optimal
    labels Z_f w_r (label form: the retrained limit's predictions, from y_r;
    and label-free form) to 1e-6."""
    fpos, targets, ctx = first_step_labels(p, monkeypatch)
    z_r, z_f = p["z"][:N_RETAIN], p["z"][N_RETAIN:]
    y_r = nn.functional.one_hot(p["y"][:N_RETAIN], 10).double()
    assert len(fpos) > 0 and targets.is_floating_point()
    # float32 features recomputed on the batch differ from the whole-set ones by rounding: ~2e-7 measured
    assert torch.allclose(targets.double(), optimal_labels(z_f, z_r, y_r, p["w0"])[fpos], rtol=0, atol=1e-6)
    wp = head_weights(p["original"].head)                     # the float32 head the model holds
    assert torch.allclose(targets.double(), optimal_labels_label_free(z_f, z_r, p["w0"], wp)[fpos], rtol=0, atol=1e-6)
    return ctx


def test_head_only_first_labels_are_the_closed_form_optimal_labels(head_only, monkeypatch):
    ctx = check_first_labels_are_optimal(head_only, monkeypatch)
    d = ctx.diagnostics
    assert (d["head_inputs"], d["proj_rows"], d["rank_z_retain"], d["eps"]) == (WIDTH + 1, N_RETAIN, N_RETAIN, [0.0])
    assert d["label_change_first"] > 0       # M > N: the optimal labels are not the original's predictions


def random_logits(model, x_forget, pretrained, w_relabel, wp):
    return torch.randn(len(x_forget), wp.shape[1], dtype=torch.float64)


def drift_of_shuffled_forget_order(z_forget_p, wp):
    """Z^p of the forget samples in another order: the drift term pairs each
    sample's current features with another sample's original features."""
    return z_forget_p.roll(1, dims=0) @ wp


@pytest.mark.parametrize("target, mutant", [("forget_outputs", random_logits),
                                            ("pretrained_outputs", drift_of_shuffled_forget_order)])
def test_mutants_fail_the_optimal_label_check(head_only, monkeypatch, target, mutant):
    monkeypatch.setattr(_muso, target, mutant)
    with pytest.raises(AssertionError, match="allclose"):     # the label check itself, not another assertion
        check_first_labels_are_optimal(head_only, monkeypatch)


def cosine_ramp(epochs, start, end):
    """The released code's ``rs_values``: start + (end − start)(1 − cos(linspace(0, π, E)))/2."""
    import numpy as np
    return [float(v) for v in start + (end - start) * (1 - np.cos(np.linspace(0, np.pi, epochs))) / 2]


@pytest.mark.parametrize("method", ["muso", "muso_released"])
def test_pi_r_is_rebuilt_once_per_epoch_with_the_scheduled_eps(head_only, monkeypatch, method):
    """4 epochs of 3 batches: Π_r is built exactly once per epoch, with the ε of
    the cosine ramp (muso) or of the released code's loop, where epoch e uses
    the value computed for e − 1 (muso_released)."""
    built = []

    def spy(real):
        def projector(z, v, eps):
            built.append((len(z), eps))
            return real(z, v, eps)
        return projector

    if method == "muso":
        monkeypatch.setattr(muso_module, "ridge_projector", spy(_muso.ridge_projector))
    else:   # the float32 chain; the first build runs twice, the second on permuted rows (the round-off diagnostic)
        real = _muso.released_right_side
        monkeypatch.setattr(_muso, "released_right_side",
                            lambda z, w0, wp, eps: built.append((len(z), eps)) or real(z, w0, wp, eps))
    ramp = cosine_ramp(4, 1e-6, 1e-2)
    expected = ramp if method == "muso" else [ramp[0]] + ramp[:3]
    info = get_method(method)
    ctx = context(head_only, head_only["original"])
    info.fn(ctx, info.resolve({"epochs": 4, "batch_size": 8, "eps_start": 1e-6, "eps_end": 1e-2, "lr": 1e-3}))
    if method == "muso_released":
        assert built[0] == built[1]
        built = built[1:]
    assert [eps for _, eps in built] == pytest.approx(expected, rel=1e-12)
    assert ctx.diagnostics["eps"] == pytest.approx(expected, rel=1e-12) and ctx.diagnostics["rebuilds"] == 4
    assert expected[-1] < 1e-2 if method == "muso_released" else expected[-1] == pytest.approx(1e-2)
    assert {n for n, _ in built} == {ctx.diagnostics["proj_rows"]}


def test_released_projector_is_the_codes_expression_not_the_papers():
    """``Zᵀ(εI + εZZᵀ)⁻¹Z`` (the released code's Woodbury chain of inverses,
    evaluated here in float64) equals ``(1/ε)·Zᵀ(I + ZZᵀ)⁻¹Z`` and is not
    the paper's ``Zᵀ(ZZᵀ + εI)⁻¹Z``."""
    torch.manual_seed(0)
    z = torch.randn(12, 30, dtype=torch.float64)
    v = torch.randn(30, 4, dtype=torch.float64)
    eye_n, eye_d, inv = torch.eye(12, dtype=torch.float64), torch.eye(30, dtype=torch.float64), torch.linalg.inv
    for eps in (1e-3, 1e-1):
        e_n, e_d = eps * eye_n, eps * eye_d
        woodbury = inv(e_n) - inv(e_n) @ z @ inv(inv(e_d) + z.T @ inv(e_n) @ z) @ z.T @ inv(e_n)
        assert torch.allclose(woodbury, inv(eps * eye_n + eps * z @ z.T), rtol=1e-9)
        code = z.T @ woodbury @ z @ v
        ours = _muso.released_projector(z, v, eps)
        assert torch.allclose(ours, code, rtol=1e-8, atol=1e-8 * float(code.abs().max()))
        assert torch.allclose(ours, z.T @ torch.linalg.solve(eye_n + z @ z.T, z @ v) / eps, rtol=1e-9)
        paper = _muso.ridge_projector(z, v, eps)
        assert torch.allclose(paper, z.T @ torch.linalg.solve(z @ z.T + eps * eye_n, z @ v), rtol=1e-9)
        assert float(torch.linalg.norm(ours - paper)) > 5 * float(torch.linalg.norm(paper))   # ~1/ε times larger
    with pytest.raises(ValueError, match="ε > 0"):
        _muso.released_projector(z, v, 0.0)


def test_released_rows_walk_the_retain_set_and_keep_between_k_and_2k():
    for n, batch in ((1092, 128), (607, 128), (1000, 64), (50, 128)):
        k = int(0.2 * n)
        rows = _muso.released_subset(n, 0.2, batch, torch.Generator().manual_seed(0))
        again = _muso.released_subset(n, 0.2, batch, torch.Generator().manual_seed(1))
        assert k <= len(rows) <= 2 * k
        assert len(rows) == len(again) and len(set(rows.tolist())) == len(rows) and int(rows.max()) < n
    # later batches are over-represented: for 1,092 rows (k = 218) the last batch, rows 1024-1091, is kept whole
    rows = _muso.released_subset(1092, 0.2, 128, torch.Generator().manual_seed(0))
    assert set(range(1024, 1092)) <= set(rows.tolist())


def test_bridge_muso_lands_on_the_retrained_head(head_only):
    """Original and Retrain trained by real mini-batch SGD (batch 8, momentum
    0.9, 200 epochs) from θ₀ on the head-only squared-loss network; MUSO
    (its registered function, theorem settings) fine-tunes the Original by
    SGD the same way.  It lands ≥ 100× closer to Retrain in parameter
    space than the Original is (measured: ~10⁴×)."""
    p = head_only
    cfg = p["cfg"].replace(lr=p["lr"], epochs=200)

    def trained(n):
        model = copy.deepcopy(p["init"])
        fit(model, supervised_loss, (p["x"][:n], p["y"][:n]), cfg, torch.Generator().manual_seed(0))
        return model.requires_grad_(False)

    original, retrain = trained(N_ALL), trained(N_RETAIN)
    info = get_method("muso")
    ctx = context(p, original)
    unlearned = info.fn(ctx, info.resolve({**EXACT, "epochs": 200, "lr": p["lr"]}))
    dist = lambda m: param_distance(dict(m.named_parameters()), dict(retrain.named_parameters()))[0]
    assert dist(original) > 0.1
    ratio = dist(original) / dist(unlearned)
    print(f"bridge: original {dist(original):.3g}, muso {dist(unlearned):.3g}, ratio {ratio:.3g}")
    assert ratio >= 100
    frozen = [n for n, _ in unlearned.named_parameters() if not n.startswith("head.")]
    assert frozen and all(torch.equal(dict(unlearned.named_parameters())[n], p["theta0"][n]) for n in frozen)


def script_right_side(z, w_0, w_p, epsilon_rs):
    """NN/random_subset/MUSO.py get_right_side (8c113dd, lines 190-200), transcribed: float32 throughout."""
    eI_N = epsilon_rs * torch.eye(z.shape[0])
    eI_D = epsilon_rs * torch.eye(z.shape[1])
    fast_inv = torch.linalg.inv(eI_N) - torch.linalg.inv(eI_N) @ z @ torch.linalg.inv(
        torch.linalg.inv(eI_D) + torch.t(z) @ torch.linalg.inv(eI_N) @ z) @ torch.t(z) @ torch.linalg.inv(eI_N)
    Pi_r = torch.t(z) @ fast_inv @ z
    return Pi_r @ (w_p - w_0) + w_0 + w_p


def test_released_precision_is_the_scripts_float32_chain_bit_for_bit():
    g = torch.Generator().manual_seed(0)
    z = torch.cat([torch.rand(40, 24, generator=g) * 3, torch.ones(40, 1)], dim=1)   # relu-like features + bias
    w0, wp = torch.randn(25, 10, generator=g) * 0.1, torch.randn(25, 10, generator=g)
    for eps in (1e-6, 1e-3, 1e-2):
        ours = _muso.released_right_side(z.double(), w0.double(), wp.double(), eps)
        assert ours.dtype == torch.float32 and torch.equal(ours, script_right_side(z, w0, wp, eps))
        exact = w0.double() + _muso.released_projector(z.double(), (wp - w0).double(), eps) + wp.double()
        woodbury64 = torch.linalg.inv(eps * torch.eye(40, dtype=torch.float64) + eps * z.double() @ z.double().T)
        assert torch.allclose(exact, z.double().T @ woodbury64 @ z.double() @ (wp - w0).double() + w0 + wp,
                              rtol=1e-9, atol=1e-9 * float(exact.abs().max()))


@pytest.fixture(scope="module")
def ce_mlp():
    """A cross-entropy MLP on 300 digits (32 wide: M = 33 < N): the regime of the benchmark's tables."""
    ds = load_dataset("digits")
    spec = InputSpec.of(ds)
    x, y = ds.x_train[:300], ds.y_train[:300]
    torch.manual_seed(0)
    init = build_model("mlp", spec, {"hidden": [32]})
    theta0 = copy.deepcopy(init.state_dict())
    original = copy.deepcopy(init)
    fit(original, supervised_loss, (x, y), TrainConfig(epochs=30, lr=0.05), torch.Generator().manual_seed(0))
    forget = y == 0
    return dict(x=x, y=y, init=init, theta0=theta0, original=original.requires_grad_(False), forget=forget)


def ce_context(p, seed=0):
    f = p["forget"]
    return Context(model=copy.deepcopy(p["original"]).requires_grad_(True), original=p["original"],
                   retain=Split(p["x"][~f], p["y"][~f]), forget=Split(p["x"][f], p["y"][f]),
                   val=Split(p["x"][:0], p["y"][:0]), theta0=p["theta0"], make_model=lambda: copy.deepcopy(p["init"]),
                   train_config=TrainConfig(epochs=1), num_classes=10, device=torch.device("cpu"),
                   generator=torch.Generator().manual_seed(seed), scenario="class", forget_class=0)


@pytest.mark.parametrize("method", ["muso", "muso_released", "muso_released_exact", "muso_label_form"])
def test_every_muso_variant_records_its_round_off_diagnostics(ce_mlp, method):
    info = get_method(method)
    ctx = ce_context(ce_mlp)
    info.fn(ctx, info.resolve({"epochs": 1}, "class"))
    d = ctx.diagnostics
    assert {"perm_flip_first", "exact_share_first", "proj_cond", "label_change_first"} <= set(d)
    assert d["proj_cond"] >= 1 and 0 <= d["perm_flip_first"] <= 1
    if method != "muso_released":          # float64 stable solves: no round-off to speak of
        assert d["perm_flip_first"] == 0 and d["exact_share_first"] == 1
    if method in ("muso", "muso_released_exact"):
        assert d["label_change_first"] == 0    # M < N: the label-free form keeps the original's predictions
    if method == "muso_label_form":
        assert d["label_change_first"] > 0.5   # the label form relabels the forgotten class


def test_label_form_equals_label_free_where_the_original_interpolates(head_only, monkeypatch):
    """Head-only, squared loss, the original at the interpolating SGD limit: both forms give Z_f w_r."""
    captured = []
    real = _muso.Relabeller.targets
    monkeypatch.setattr(_muso.Relabeller, "targets",
                        lambda self, net, xf, fpos:
                        captured.append((fpos.clone(), real(self, net, xf, fpos))) or captured[-1][1])
    p = head_only
    for labels in ("label_free", "label_form"):
        info = get_method("muso")
        info.fn(context(p, p["original"]), info.resolve({**EXACT, "epochs": 1, "lr": p["lr"], "labels": labels}))
    (pos_a, a), (pos_b, b) = captured[0], next(c for c in captured[1:] if len(c[0]))
    z_r, z_f = p["z"][:N_RETAIN], p["z"][N_RETAIN:]
    y_r = nn.functional.one_hot(p["y"][:N_RETAIN], 10).double()
    expected = optimal_labels(z_f, z_r, y_r, p["w0"])
    assert torch.allclose(a.double(), expected[pos_a], atol=1e-6)
    assert torch.allclose(b.double(), expected[pos_b], atol=1e-6)


def test_label_form_differs_from_label_free_under_cross_entropy(ce_mlp):
    first = {}
    for method in ("muso", "muso_label_form"):
        info = get_method(method)
        ctx = ce_context(ce_mlp)
        info.fn(ctx, info.resolve({"epochs": 1}, "class"))
        first[method] = ctx.diagnostics["label_change_first"]
    assert first["muso"] == 0 < first["muso_label_form"]
