"""`rf_linear` through the real harness, and the training loop's SGD-limit hook."""
import copy

import pytest
import torch

from unlearnbench.datasets import load_dataset
from unlearnbench.harness.models import InputSpec, build_model
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness
from unlearnbench.methods import TrainConfig, fit, supervised_loss
from unlearnbench.methods.gradient_ascent import ascent_loss


@pytest.fixture(scope="module")
def digits():
    ds = load_dataset("digits")
    return ds, InputSpec.of(ds)


def test_features_are_fixed_unit_norm_float64_buffers(digits):
    ds, spec = digits
    torch.manual_seed(0)
    model = build_model("rf_linear", spec, {"features": 400})
    assert [name for name, _ in model.named_parameters()] == ["head.weight"]     # Ω is a buffer
    assert model.head.bias is None and model.head.weight.dtype == torch.float64
    z = model.features(ds.x_train[:20])
    assert z.shape == (20, 400) and z.dtype == torch.float64
    assert torch.allclose(z.norm(dim=1), torch.ones(20, dtype=torch.float64))
    assert model.sigma == pytest.approx(8.0)                                      # √64
    torch.manual_seed(0)
    assert torch.equal(build_model("rf_linear", spec, {"features": 400}).frequencies, model.frequencies)


def test_bad_model_arguments_are_usage_errors(digits):
    from unlearnbench.harness.errors import UsageError

    _, spec = digits
    for args in ({"features": 401}, {"targets": "hinge"}, {"sigma": -1.0}, {"width": 3}):
        with pytest.raises(UsageError, match="rf_linear"):
            build_model("rf_linear", spec, args)


def test_fit_jumps_to_the_sgd_limit_only_when_it_is_the_limit(digits):
    ds, spec = digits
    x, y = ds.x_train[:100], ds.y_train[:100]
    torch.manual_seed(0)
    init = build_model("rf_linear", spec, {"features": 600, "targets": "pm1"})
    cfg = TrainConfig(epochs=3, optimizer="sgd", lr=0.5, momentum=0.0, weight_decay=0.0, augment=False)
    model = copy.deepcopy(init)
    result = fit(model, supervised_loss, (x, y), cfg, torch.Generator().manual_seed(0))
    assert result.steps == 0 and result.last_loss < 1e-20
    assert torch.allclose(model(x), 2.0 * torch.nn.functional.one_hot(y, 10).double() - 1.0, atol=1e-9)
    # the limit does not depend on the order or the step size: a second call does not move it
    again = copy.deepcopy(model)
    fit(again, supervised_loss, (x.flip(0), y.flip(0)), cfg.replace(lr=0.01, momentum=0.9), torch.Generator())
    assert torch.allclose(again.head.weight, model.head.weight, atol=1e-12)
    # runs whose limit this is not iterate: Adam, weight decay, another loss
    for other_cfg, loss in ((cfg.replace(optimizer="adam", lr=1e-3), supervised_loss),
                            (cfg.replace(weight_decay=1e-3), supervised_loss), (cfg, ascent_loss)):
        moved = copy.deepcopy(init)
        result = fit(moved, loss, (x, y), other_cfg, torch.Generator().manual_seed(0))
        assert result.steps == 3 * 2
        assert not torch.allclose(moved.head.weight, model.head.weight, atol=1e-3)


@pytest.mark.slow
def test_rf_linear_runs_the_harness_grid(tmp_path):
    grid = Grid(models=["rf_linear"], model_args={"rf_linear": {"features": 2000}}, scenarios=["random"],
                ratios=[0.1], seeds=[0], methods=["original", "retrain", "finetune", "random_relabel", "muso"],
                method_args={"muso": {"epochs": 1}}, out=str(tmp_path))
    harness = Harness(out=tmp_path, device="cpu")
    records = {spec.method: harness.run(spec) for spec in expand(grid)}
    assert all(r["status"] == "ok" for r in records.values()), {k: r["message"] for k, r in records.items()}
    m = {k: r["metrics"] for k, r in records.items()}
    assert m["retrain"]["param_dist"] == 0.0
    assert m["original"]["retain_acc"] == 100.0 and m["original"]["test_acc"] > 90
    # FT (SalUn's SGD, with weight decay: no closed-form limit, it iterates) barely moves: the original already
    # interpolates the retain set, so only the weight decay pulls on it
    assert m["finetune"]["param_dist"] == pytest.approx(m["original"]["param_dist"], rel=0.02)
    assert m["finetune"]["param_dist"] != m["original"]["param_dist"]
    # RL redraws its forget labels every epoch (SalUn's rule) with SalUn's SGD (momentum, weight decay): no fixed
    # SGD limit, so it iterates, and moves the head
    assert m["random_relabel"]["param_dist"] != pytest.approx(m["original"]["param_dist"], rel=1e-6)
