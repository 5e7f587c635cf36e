"""MUSO: the theorem on a small over-parameterised problem (real digits), the
two forms of the optimal labels, the network relabel step, Π_r, and the
registered method through the harness."""
import copy

import pytest
import torch
from torch import nn

from unlearnbench.datasets import load_dataset
from unlearnbench.harness.metrics import param_distance
from unlearnbench.harness.models import Classifier, InputSpec, build_model
from unlearnbench.methods import TrainConfig, fit, get_method, supervised_loss
from unlearnbench.methods._linear import least_squares_limit, project_rows
from unlearnbench.methods.muso import (forget_outputs, head_weights, optimal_labels, optimal_labels_label_free,
                                       penultimate, relabel_weights, ridge_at)


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


def test_muso_method_runs_in_the_harness(digits_grid):
    from unlearnbench.harness.config import Grid, expand

    _, records, harness = digits_grid
    spec = next(s for s in expand(Grid(seeds=[0], scenarios=["class"], methods=["muso"])))
    record = harness.run(spec)
    assert record["status"] == "ok", record["message"]
    m = record["metrics"]
    retrain = records[("class 0", "retrain")]["metrics"]
    assert m["forget_acc"] < 20 and m["test_acc"] > retrain["test_acc"] - 5     # forgets the class, keeps the rest
    assert get_method("muso").defaults("class")["eps_end"] > get_method("muso").defaults("random")["eps_end"]
