"""Per-epoch checkpoints: an interrupted training resumes to exactly the
weights of an uninterrupted one — in `fit` itself, and for a method run by
the harness (what a Slurm requeue after a time limit or preemption relies on)."""
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness
from unlearnbench.methods import TrainConfig, auto_checkpoint, fit, register_method, unregister_method


class Interrupt(BaseException):
    """Stands for the job being killed: not an Exception, so nothing catches it."""


def _problem():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(100, 6, generator=g), torch.randint(0, 3, (100,), generator=g)
    xf, yf = torch.randn(37, 6, generator=g), torch.randint(0, 3, (37,), generator=g)   # 37: batches straddle epochs
    return (x, y), (xf, yf)


def _model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3))  # dropout: global RNG


def _train(checkpoint=None, stop_after=None):
    data, extra = _problem()
    model = _model()
    cfg = TrainConfig(epochs=6, batch_size=16, lr=0.05, schedule="cosine", warmup_epochs=1)
    generator = torch.Generator().manual_seed(7)
    state = {"weight": 0.1}     # method state kept by a hook, as l1_sparse or muso keep theirs

    def loss(model, batch, extra_batch):
        ce = nn.functional.cross_entropy
        return ce(model(batch[0]), batch[1]) - state["weight"] * ce(model(extra_batch[0]), extra_batch[1])

    def after_epoch(epoch, m):
        state["weight"] = 0.2 * torch.rand(1, generator=generator).item() / (epoch + 1)
        if stop_after is not None and epoch + 1 == stop_after:
            raise Interrupt
    torch.manual_seed(123)   # the global generator, as the harness seeds it before a method
    result = fit(model, loss, data, cfg, generator, extra=extra, after_epoch=after_epoch, checkpoint=checkpoint)
    return model, result


def test_interrupted_fit_resumes_to_identical_weights(tmp_path):
    reference, ref_result = _train()
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        _train(ckpt, stop_after=4)   # killed in the hook after epoch 4, after its checkpoint
    assert ckpt.exists()
    resumed, result = _train(ckpt)
    assert result.start_epoch == 4 and result.steps == ref_result.steps
    assert result.losses == ref_result.losses
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert not ckpt.exists()   # removed once training completed


def test_checkpoint_of_another_training_is_ignored(tmp_path):
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        _train(ckpt, stop_after=2)
    data, extra = _problem()
    model = _model()
    other = TrainConfig(epochs=6, batch_size=32, lr=0.05)      # another configuration: starts afresh
    loss = lambda m, b, e: nn.functional.cross_entropy(m(b[0]), b[1])
    result = fit(model, loss, data, other, torch.Generator().manual_seed(7), extra=extra, checkpoint=ckpt)
    assert result.start_epoch == 0


def test_auto_checkpoint_gives_each_fit_call_its_own_file(tmp_path):
    with pytest.raises(Interrupt):
        with auto_checkpoint(tmp_path) as auto:
            _train()                      # call 0 completes: its last checkpoint (epoch 6 of 6) stays
            _train(stop_after=5)          # call 1 is interrupted
    assert auto.calls == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["fit-0.ckpt", "fit-1.ckpt"]
    with auto_checkpoint(tmp_path) as auto:
        first, first_result = _train()    # resumes at its end: no epoch trained again
        second, result = _train()
    assert auto.resumed_from == [6, 5] and first_result.start_epoch == 6 and result.start_epoch == 5
    reference, reference_result = _train()
    assert first_result.steps == reference_result.steps and first_result.losses == reference_result.losses
    for model in (first, second):
        for a, b in zip(reference.state_dict().values(), model.state_dict().values()):
            assert torch.equal(a, b)


def test_unreadable_checkpoint_is_ignored(tmp_path):
    """A checkpoint torn by a crash (here: cut in half) must not fail the training: it starts afresh."""
    ckpt = tmp_path / "fit.ckpt"
    with pytest.raises(Interrupt):
        _train(ckpt, stop_after=3)
    ckpt.write_bytes(ckpt.read_bytes()[: ckpt.stat().st_size // 2])
    reference, _ = _train()
    with pytest.warns(UserWarning, match="ignoring the unreadable checkpoint"):
        model, result = _train(ckpt)
    assert result.start_epoch == 0
    assert all(torch.equal(a, b) for a, b in zip(reference.state_dict().values(), model.state_dict().values()))


@dataclass
class _Hyper:
    epochs: int = 8
    interrupt_at: int = 0   # > 0: the first attempt is killed after this many epochs


_attempts = {"count": 0}


def _interrupted_finetune(ctx, hp):
    from unlearnbench.methods import cross_entropy

    _attempts["count"] += 1
    first_attempt = _attempts["count"] == 1

    def after_epoch(epoch, model):
        if hp.interrupt_at and first_attempt and epoch + 1 == hp.interrupt_at:
            raise Interrupt
    cfg = ctx.train_config.replace(epochs=hp.epochs, lr=0.05, warmup_epochs=0)
    fit(ctx.model, cross_entropy, ctx.retain.tensors, cfg, ctx.generator, augment=ctx.augment,
        after_epoch=after_epoch)   # no checkpoint argument: the harness's auto_checkpoint supplies one
    return ctx.model


@pytest.fixture
def interruptible_method():
    register_method("interruptible_for_test", hyper=_Hyper)(_interrupted_finetune)
    _attempts["count"] = 0
    yield "interruptible_for_test"
    unregister_method("interruptible_for_test")


def test_method_killed_mid_training_resumes_in_the_harness(tmp_path, interruptible_method):
    def spec_for(interrupt_at):
        grid = Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=[interruptible_method],
                    train={"epochs": 4}, method_args={interruptible_method: {"interrupt_at": interrupt_at}})
        return expand(grid)[0]

    harness = Harness(out=tmp_path / "a", cache_dir=tmp_path / "cache")
    spec = spec_for(5)
    with pytest.raises(Interrupt):
        harness.run(spec)
    assert not harness.store.path(spec.key).exists()
    assert (tmp_path / "cache" / "checkpoints" / spec.key / "fit-0.ckpt").exists()
    resumed = Harness(out=tmp_path / "a", cache_dir=tmp_path / "cache").run(spec)   # the requeued attempt
    assert resumed["status"] == "ok" and resumed["resumed_from_epoch"] == [5]
    assert not (tmp_path / "cache" / "checkpoints" / spec.key).exists()          # cleaned up with the record

    # the same training uninterrupted (interrupt_at only changes the key) gives the same model
    straight = Harness(out=tmp_path / "b", cache_dir=tmp_path / "cache").run(spec_for(0))
    assert "resumed_from_epoch" not in straight
    strip = lambda m: {k: v for k, v in m.items() if k not in ("time_s", "rte")}
    assert strip(resumed["metrics"]) == strip(straight["metrics"])


# ---- reference models: a training killed after a checkpoint resumes in the next process --------------------

def _crash_after(module, epochs: int, monkeypatch):
    """Make ``module.fit`` (the original's or the retrain's training) die after ``epochs`` epochs,
    after its checkpoint."""
    real_fit = module.fit

    def crashing_fit(*args, **kwargs):
        def after_epoch(epoch, model):
            if epoch + 1 == epochs:
                raise Interrupt
        return real_fit(*args, after_epoch=after_epoch, **kwargs)
    monkeypatch.setattr(module, "fit", crashing_fit)


@pytest.mark.parametrize("kind", ["original", "retrain"])
def test_reference_training_killed_mid_way_resumes_to_the_same_weights(tmp_path, monkeypatch, kind):
    import json

    from unlearnbench.harness.protocol import references as RF
    from unlearnbench.methods import retrain as retrain_module

    spec, = expand(Grid(seeds=[0], scenarios=["random"], ratios=[0.1], methods=["finetune"], floor_retrains=0,
                        train={"epochs": 5}))
    straight = Harness(out=tmp_path / "b", cache_dir=tmp_path / "straight").references(spec)   # uninterrupted

    with monkeypatch.context() as patch:
        _crash_after(RF if kind == "original" else retrain_module, 3, patch)
        with pytest.raises(Interrupt):
            Harness(out=tmp_path / "a", cache_dir=tmp_path / "cache").references(spec)   # the killed attempt
    entry = tmp_path / "cache" / kind / (straight.original_key if kind == "original" else straight.retrain_key)
    checkpoint = entry / "checkpoints" / "fit-0.ckpt"
    assert checkpoint.exists() and not (entry / "model.pt").exists() and not (entry / "meta.json").exists()

    again = Harness(out=tmp_path / "a", cache_dir=tmp_path / "cache")                       # the requeued attempt
    resumed = again.references(spec)
    assert not checkpoint.exists()
    log = [json.loads(line) for line in (tmp_path / "cache" / "trainings.jsonl").read_text().splitlines()]
    assert [(e["kind"], e["resumed_from_epoch"]) for e in log] == (
        [("original", 3), ("retrain", 0)] if kind == "original" else [("original", 0), ("retrain", 3)])
    assert again.reference_trainings == (2 if kind == "original" else 1)
    for name in ("original", "retrain"):
        a, b = getattr(straight, name).state_dict(), getattr(resumed, name).state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name
    assert all(torch.equal(straight.theta0[k], resumed.theta0[k]) for k in straight.theta0)


# ---- a shared optimiser and per-epoch label redraws resume exactly too ----

def _shared_optimizer_training(stop_after=None):
    """Two fit calls sharing one SGD optimiser (momentum carries over), as SCRUB's phases."""
    from unlearnbench.methods._train import make_optimizer

    data, extra = _problem()
    model = _model()
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, momentum=0.9, schedule="constant")
    optimizer = make_optimizer(list(model.parameters()), cfg)
    generator = torch.Generator().manual_seed(7)
    loss = lambda m, b, e=None: nn.functional.cross_entropy(m(b[0]), b[1])

    def after_epoch(epoch, m):
        if stop_after is not None and epoch + 1 == stop_after:
            raise Interrupt
    torch.manual_seed(123)
    fit(model, loss, extra, cfg, generator, optimizer=optimizer)
    fit(model, loss, data, cfg.replace(epochs=5, lr=0.02), generator, optimizer=optimizer, after_epoch=after_epoch)
    return model


def test_fit_with_a_shared_optimizer_resumes_to_identical_weights(tmp_path):
    reference = _shared_optimizer_training()
    with pytest.raises(Interrupt):
        with auto_checkpoint(tmp_path):
            _shared_optimizer_training(stop_after=3)
    with auto_checkpoint(tmp_path) as auto:
        resumed = _shared_optimizer_training()
    assert auto.resumed_from == [1, 3]      # the finished first call resumes at its end (its checkpoint is kept)
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_fit_keeps_a_passed_optimizers_state_and_sets_its_lr():
    from unlearnbench.methods._train import make_optimizer

    data, extra = _problem()
    loss = lambda m, b, e=None: nn.functional.cross_entropy(m(b[0]), b[1])

    def two_calls(momentum, shared, second_lr=0.02):
        model = _model()
        cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, momentum=momentum, schedule="constant")
        optimizer = make_optimizer(list(model.parameters()), cfg)
        generator = torch.Generator().manual_seed(7)
        torch.manual_seed(123)
        fit(model, loss, extra, cfg, generator, optimizer=optimizer if shared else None)
        after_first = [p.detach().clone() for p in model.parameters()]
        fit(model, loss, data, cfg.replace(lr=second_lr), generator, optimizer=optimizer if shared else None)
        return after_first, list(model.parameters())

    # without momentum SGD has no state: a shared optimiser trains exactly as fresh ones (lr taken from cfg)
    _, shared = two_calls(0.0, True)
    _, fresh = two_calls(0.0, False)
    assert all(torch.equal(a, b) for a, b in zip(shared, fresh))
    # with momentum the second call continues the first one's momentum
    _, shared = two_calls(0.9, True)
    _, fresh = two_calls(0.9, False)
    assert any(not torch.equal(a, b) for a, b in zip(shared, fresh))
    # the optimiser was built with lr 0.05; a call with lr 0 does not move the weights
    after_first, final = two_calls(0.9, True, second_lr=0.0)
    assert all(torch.equal(a, b) for a, b in zip(after_first, final))


def _random_relabel(generator_seed=7):
    """RL (uniform labels, redrawn every epoch) on a small synthetic problem."""
    from unlearnbench.methods import Context, Split, get_method

    (x, y), (xf, yf) = _problem()
    model = _model()
    ctx = Context(model=model, original=None, retain=Split(x, y), forget=Split(xf, yf), val=Split(x[:0], y[:0]),
                  theta0={}, make_model=_model, train_config=TrainConfig(batch_size=16), num_classes=3,
                  device=torch.device("cpu"), generator=torch.Generator().manual_seed(generator_seed))
    info = get_method("random_relabel")
    torch.manual_seed(123)
    return info.fn(ctx, info.resolve({"epochs": 6, "lr": 0.05}))


def test_random_relabel_redraws_resume_to_identical_weights(tmp_path, monkeypatch):
    from unlearnbench.methods import random_relabel as RL

    reference = _random_relabel()

    def interrupted_fit(*args, after_epoch=None, **kw):
        def hook(epoch, model):
            after_epoch(epoch, model)          # the labels of epoch 4 are drawn, then the job dies
            if epoch + 1 == 3:
                raise Interrupt
        return fit(*args, after_epoch=hook, **kw)

    with monkeypatch.context() as patch:
        patch.setattr(RL, "fit", interrupted_fit)
        with pytest.raises(Interrupt):
            with auto_checkpoint(tmp_path):
                _random_relabel()
    with auto_checkpoint(tmp_path) as auto:
        resumed = _random_relabel()
    assert auto.resumed_from == [3]
    for a, b in zip(reference.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    other = _random_relabel(generator_seed=8)      # the labels (and order) come from the run's generator
    assert any(not torch.equal(a, b) for a, b in zip(reference.state_dict().values(), other.state_dict().values()))
