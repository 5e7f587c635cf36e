"""Training options that belong to every run (``train.loss``, ``train.trainable``),
hyperparameter bounds and method diagnostics, through the real harness."""
from dataclasses import dataclass

import pytest
import torch

from unlearnbench.harness.errors import UsageError
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness
from unlearnbench.methods import Context, TrainConfig, bounded, fit, get_method, register_method, unregister_method
from unlearnbench.methods._api import UnknownMethod
from unlearnbench.methods._train import squared_loss, supervised_loss

HEAD_ONLY = {"epochs": 3, "loss": "squared", "trainable": "head", "weight_decay": 0.0}


def test_squared_loss_is_half_the_squared_distance_to_one_hot():
    outputs = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 0.0]])
    # sample 1: (1-0)² + 0 + (2-1)² = 2; sample 2: target class 0: 1
    assert squared_loss(outputs, torch.tensor([2, 0])).item() == pytest.approx(0.5 * (2 + 1) / 2)
    assert squared_loss(outputs, outputs.clone()).item() == 0.0   # float targets are used as they are


def test_unknown_loss_or_trainable_is_refused():
    with pytest.raises(ValueError, match="accepted: cross_entropy, squared"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="accepted: all, head"):
        TrainConfig(trainable="trunk")
    with pytest.raises(UsageError, match="train: unknown trainable 'half'"):
        expand(Grid(methods=["original"], seeds=[0], train={"trainable": "half"}))


def test_head_only_training_keeps_theta0_outside_the_head(tmp_path):
    grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["original", "finetune", "ssd"],
                train=HEAD_ONLY, floor_retrains=0, out=str(tmp_path))
    specs = expand(grid)
    harness = Harness(out=tmp_path)
    records = {s.method: harness.run(s) for s in specs}
    assert all(r["status"] == "ok" for r in records.values()), records
    assert records["finetune"]["config"]["train"]["trainable"] == "head"
    assert records["finetune"]["config"]["train"]["loss"] == "squared"
    refs = harness.references(specs[0])
    for model in (refs.original, refs.retrain):
        assert model.training_loss is squared_loss
        for name, p in model.named_parameters():
            if name.startswith("head."):
                assert not torch.equal(p, refs.theta0[name]), name      # the head trained ...
            else:
                assert torch.equal(p, refs.theta0[name]), name          # ... nothing else did
    # a method's copy cannot be unfrozen, and the loss is the squared one
    ctx = harness.context(specs[1], refs.original, refs.theta0, harness.splits(specs[1]), torch.Generator())
    ctx.model.requires_grad_(True)
    assert {n for n, p in ctx.model.named_parameters() if p.requires_grad} == {"head.weight", "head.bias"}
    assert supervised_loss(ctx.model, ctx.retain.tensors) > 0


def test_a_method_that_changes_a_frozen_layer_is_refused(tmp_path):
    @register_method("_trunk_toucher")
    def trunk_toucher(ctx: Context, hp=None):
        with torch.no_grad():
            next(p for n, p in ctx.model.named_parameters() if not n.startswith("head.")).add_(1.0)
        return ctx.model

    try:
        spec = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["_trunk_toucher"],
                           train=HEAD_ONLY, floor_retrains=0, out=str(tmp_path)))[0]
        record = Harness(out=tmp_path).run(spec)
    finally:
        unregister_method("_trunk_toucher")
    assert record["status"] == "failed"
    assert "changed the frozen parameter" in record["message"] and "trainable = 'head'" in record["message"]


def test_hyperparameters_outside_their_bounds_are_refused():
    with pytest.raises(UnknownMethod, match=r"scrub.epochs=-3 is out of range; accepted: >= 1"):
        get_method("scrub").resolve({"epochs": "-3"})
    with pytest.raises(UnknownMethod, match=r"muso.optimizer='rmsprop' is out of range; accepted: one of"):
        get_method("muso").resolve({"optimizer": "rmsprop"})
    with pytest.raises(UsageError, match="finetune.lr=0.0 is out of range; accepted: > 0"):
        expand(Grid(methods=["finetune"], seeds=[0], method_args={"finetune": {"lr": "0"}}))


def test_every_registered_hyperparameter_default_lies_within_its_bounds():
    from unlearnbench.methods import list_methods

    for name in list_methods():
        for scenario in ("random", "class"):
            get_method(name).resolve({}, scenario)   # raises if a default leaves its bounds


def test_a_search_space_must_lie_within_the_bounds():
    @dataclass
    class Hyper:
        lr: float = bounded(0.1, above=0, high=1)

    from unlearnbench.methods import LogUniform

    with pytest.raises(TypeError, match="leaves its bounds"):
        register_method("_too_wide", hyper=Hyper, search_space={"lr": LogUniform(0.01, 10.0)})(lambda ctx, hp: None)


def test_diagnostics_reach_the_record(tmp_path):
    @register_method("_reporter")
    def reporter(ctx: Context, hp=None):
        ctx.diagnostics.update(head_inputs=ctx.model.head.in_features + 1, note="hello")
        return ctx.model

    try:
        spec = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["_reporter"],
                           floor_retrains=0, out=str(tmp_path)))[0]
        record = Harness(out=tmp_path).run(spec)
    finally:
        unregister_method("_reporter")
    assert record["status"] == "ok"
    assert record["diagnostics"] == {"head_inputs": 129, "note": "hello"}


def test_fit_trains_only_what_requires_grad():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    model[0].requires_grad_(False)
    before = model[0].weight.clone()
    x, y = torch.randn(32, 4), torch.randint(0, 3, (32,))
    fit(model, supervised_loss, (x, y), TrainConfig(epochs=2, batch_size=8), torch.Generator().manual_seed(0))
    assert torch.equal(model[0].weight, before)
