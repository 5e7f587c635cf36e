"""The published baselines' defining mechanisms (SCRUB, NegGrad+, SalUn,
ℓ1-sparse, Bad Teacher, SSD), on a small slice of the real digits data with a
small MLP trained once per module."""
from __future__ import annotations

import copy
import importlib
import math
import re

import pytest
import torch
from torch.nn import functional as F

from unlearnbench.datasets import load_dataset
from unlearnbench.harness.models import InputSpec, build_model
from unlearnbench.methods import (
    Context,
    Split,
    TrainConfig,
    cross_entropy,
    fit,
    get_method,
    list_methods,
    supervised_loss,
)
from unlearnbench.methods import bad_teacher as BT
from unlearnbench.methods import finetune as FT
from unlearnbench.methods import gradient_ascent as GA
from unlearnbench.methods import l1_sparse as L1
from unlearnbench.methods import neggrad_plus as NG
from unlearnbench.methods import random_relabel as RL
from unlearnbench.methods import salun as SU
from unlearnbench.methods import scrub as SC
from unlearnbench.methods import ssd as SSD

BASELINES = ("scrub", "neggrad_plus", "salun", "l1_sparse", "bad_teacher", "ssd")
TRAIN = TrainConfig(epochs=15, batch_size=32, lr=0.05)


@pytest.fixture(scope="module")
def tiny():
    """500 digits images: 400 to train on, 100 held out; a 16-unit MLP trained on the 400."""
    ds = load_dataset("digits")
    spec = InputSpec.of(ds)
    x, y = ds.x_train[:500], ds.y_train[:500]

    def make_model():
        return build_model("mlp", spec, {"hidden": (16,)})

    torch.manual_seed(0)
    model = make_model()
    theta0 = copy.deepcopy(model.state_dict())
    fit(model, cross_entropy, (x[:400], y[:400]), TRAIN, torch.Generator().manual_seed(0))
    model.eval().requires_grad_(False)
    return {"x": x, "y": y, "original": model, "theta0": theta0, "make_model": make_model}


def make_context(tiny, scenario="class", seed=0, train=TRAIN) -> Context:
    """A fresh context: forget class 0, or a random 20% of the 400 training samples."""
    x, y = tiny["x"][:400], tiny["y"][:400]
    if scenario == "class":
        forget = y == 0
    else:
        forget = torch.zeros(400, dtype=torch.bool)
        forget[torch.randperm(400, generator=torch.Generator().manual_seed(1))[:80]] = True
    return Context(
        model=copy.deepcopy(tiny["original"]).requires_grad_(True), original=tiny["original"],
        retain=Split(x[~forget], y[~forget]), forget=Split(x[forget], y[forget]),
        val=Split(tiny["x"][400:], tiny["y"][400:]), theta0=tiny["theta0"], make_model=tiny["make_model"],
        train_config=train, num_classes=10, device=torch.device("cpu"),
        generator=torch.Generator().manual_seed(seed), scenario=scenario,
        forget_class=0 if scenario == "class" else None, seed=seed)


def run(name, ctx, **overrides):
    info = get_method(name)
    torch.manual_seed(123)     # the harness seeds the global RNG before every method call
    return info.fn(ctx, info.resolve(overrides, ctx.scenario))


def params(model):
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def kl(p_logits, q_logits):
    """Mean KL(softmax p ‖ softmax q) over rows."""
    return float(F.kl_div(F.log_softmax(q_logits, 1), F.log_softmax(p_logits, 1), log_target=True,
                          reduction="batchmean"))


def test_all_six_are_registered_with_documented_defaults():
    for name in BASELINES:
        assert name in list_methods()
        info = get_method(name)
        assert info.defaults() and info.summary
        doc = importlib.import_module(f"unlearnbench.methods.{name}").__doc__
        assert re.search(r"(NeurIPS|ICLR|AAAI) 20\d\d", doc), f"{name}: the docstring cites the paper"
        assert "github.com/" in doc, f"{name}: the docstring names its reference code"


# Each method's registered defaults, pinned to its reference (the docstring and
# ``defaults_source`` cite the file; none comes from a search of this project).
REFERENCE_DEFAULTS = {
    # SalUn Classification/README.md FT command = arg_parser.py --unlearn_epochs / --unlearn_lr
    "finetune": ({"epochs": 10, "lr": 0.01}, "README.md FT command"),
    # Unlearn-Sparse README l1-sparse command, arg_parser.py --no-l1-epochs; γ the top of the paper's range
    "l1_sparse": ({"epochs": 10, "lr": 0.01, "l1": 5e-4, "no_l1_epochs": 0}, "l1-sparse command"),
    # SCRUB small_scale_unlearning.ipynb: ng_alpha 0.95, ng_epochs 10, ng_lr 0.01; no clipping
    "neggrad_plus": ({"epochs": 10, "lr": 0.01, "beta": 0.95, "grad_clip": 0.0, "prox_weight": 0.1},
                     "small_scale_unlearning.ipynb"),
    # Bad Teacher CIFARSuper20_Rocket_Unlearn.ipynb: Adam lr 1e-4, 1 epoch, τ 1, batch 256, 30% of D_r
    "bad_teacher": ({"epochs": 1, "lr": 1e-4, "temperature": 1.0, "retain_share": 0.3, "batch_size": 256},
                    "CIFARSuper20_Rocket_Unlearn.ipynb"),
    # SalUn arg_parser.py unlearn defaults; README GA and SalUn commands
    "random_relabel": ({"epochs": 10, "lr": 0.01, "labels": "uniform"}, "arg_parser.py"),
    "gradient_ascent": ({"epochs": 5, "lr": 1e-4, "grad_clip": 0.0}, "README.md GA command"),
    "salun": ({"epochs": 10, "lr": 0.013, "mask_share": 0.5, "labels": "uniform"}, "README.md SalUn command"),
    # SCRUB large_scale_unlearning.ipynb SCRUB cell
    "scrub": ({"epochs": 3, "max_epochs": 2, "lr": 5e-4, "lr_decay_epochs": (3, 5, 9), "alpha": 0.001,
               "gamma": 0.99, "temperature": 4.0, "batch_size": 128, "forget_batch_size": 32, "grad_clip": 0.0},
              "large_scale_unlearning.ipynb"),
}


@pytest.mark.parametrize("name", sorted(REFERENCE_DEFAULTS))
@pytest.mark.parametrize("scenario", ["random", "class", "subclass"])
def test_registered_defaults_are_the_reference_codes(name, scenario):
    expected, source = REFERENCE_DEFAULTS[name]
    info = get_method(name)
    defaults = info.defaults(scenario)
    assert {k: defaults[k] for k in expected} == expected
    assert source in info.defaults_source


@pytest.mark.parametrize("name", BASELINES)
@pytest.mark.parametrize("scenario", ["class", "random"])
def test_each_baseline_returns_a_finite_model_and_leaves_the_original(tiny, name, scenario):
    before = params(tiny["original"])
    ctx = make_context(tiny, scenario)
    model = run(name, ctx)
    assert type(model) is type(tiny["original"])
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in params(tiny["original"]).items())


# ---- RL and SalUn: the forget labels ------------------------------------------

def synthetic_context(n_forget: int, num_classes: int = 10) -> Context:
    """Only what the relabelling reads: a tiny retain set and a large forget set."""
    y_forget = torch.randint(0, num_classes, (n_forget,), generator=torch.Generator().manual_seed(0))
    return Context(model=None, original=None, retain=Split(torch.zeros(5, 2), torch.arange(5)),
                   forget=Split(torch.zeros(n_forget, 2), y_forget), val=Split(torch.zeros(0, 2), torch.arange(0)),
                   theta0={}, make_model=None, train_config=TRAIN, num_classes=num_classes,
                   device=torch.device("cpu"), generator=torch.Generator().manual_seed(1))


def test_uniform_rule_draws_over_all_classes_true_one_included_anew_every_epoch():
    n, k = 20000, 10
    ctx = synthetic_context(n, k)
    (x, y), redraw = RL.relabelled_union(ctx, "uniform")
    assert torch.equal(y[:5], ctx.retain.y) and len(x) == len(y) == 5 + n
    draws = [y[5:].clone()]
    for epoch in range(3):
        redraw(epoch, None)
        draws.append(y[5:].clone())
        assert torch.equal(y[:5], ctx.retain.y)
    for labels in draws:
        true_rate = float((labels == ctx.forget.y).float().mean())
        assert abs(true_rate - 1 / k) < 4 * math.sqrt((1 / k) * (1 - 1 / k) / n)   # the true class too, at 1/K
        assert torch.bincount(labels, minlength=k).min() > 0.9 * n / k               # every class
    for before, after in zip(draws, draws[1:]):
        assert float((before == after).float().mean()) < 1.5 / k                    # redrawn, independently


def test_amnesiac_rule_is_one_fixed_wrong_class_per_sample():
    n, k = 20000, 10
    ctx = synthetic_context(n, k)
    (x, y), redraw = RL.relabelled_union(ctx, "amnesiac")
    assert redraw is None                                   # nothing redraws them: fixed for every epoch
    labels = y[5:]
    assert not (labels == ctx.forget.y).any()
    shifts = torch.bincount((labels - ctx.forget.y) % k, minlength=k)
    assert shifts[0] == 0 and shifts[1:].min() > 0.9 * n / (k - 1)                  # uniform over the others


def test_unknown_label_rule_is_refused(tiny):
    with pytest.raises(Exception, match="labels"):
        run("random_relabel", make_context(tiny, "random"), labels="fixed")


@pytest.mark.parametrize("name", ["random_relabel", "salun"])
@pytest.mark.parametrize("rule", ["uniform", "amnesiac"])
def test_rl_and_salun_train_each_epoch_on_that_epochs_labels(tiny, monkeypatch, name, rule):
    record = {}

    def spy(model, loss_fn, data, cfg, generator, *, after_epoch=None, **kw):
        labels, seen, batches = [data[1].clone()], [], []

        def recording_loss(m, batch, extra_batch=None):
            batches.append(batch[1].clone())
            return loss_fn(m, batch, extra_batch)

        def hook(epoch, m):
            seen.append(torch.cat(batches))
            batches.clear()
            if after_epoch is not None:
                after_epoch(epoch, m)
            labels.append(data[1].clone())
        result = fit(model, recording_loss, data, cfg, generator, after_epoch=hook, **kw)
        record.update(labels=labels[:-1], seen=seen)
        return result

    monkeypatch.setattr(RL if name == "random_relabel" else SU, "fit", spy)
    ctx = make_context(tiny, "random")
    run(name, ctx, epochs=4, labels=rule)
    n_retain = len(ctx.retain)
    assert len(record["labels"]) == len(record["seen"]) == 4
    for labels, seen in zip(record["labels"], record["seen"]):
        assert torch.equal(labels[:n_retain], ctx.retain.y)
        assert torch.equal(seen.sort().values, labels.sort().values)   # each epoch trains on its own labels
    forget = [labels[n_retain:] for labels in record["labels"]]
    if rule == "uniform":
        assert all(not torch.equal(a, b) for a, b in zip(forget, forget[1:]))
        assert any(bool((f == ctx.forget.y).any()) for f in forget)
    else:
        assert all(torch.equal(forget[0], f) for f in forget)
        assert not (forget[0] == ctx.forget.y).any()


SALUN_CODE = {"random_relabel": RL, "salun": SU, "gradient_ascent": GA, "finetune": FT, "l1_sparse": L1}


@pytest.mark.parametrize("name", sorted(SALUN_CODE))
def test_salun_codes_methods_train_with_its_sgd_whatever_the_originals_optimiser(tiny, monkeypatch, name):
    configs = []

    def spy(model, loss_fn, data, cfg, generator, **kw):
        configs.append(cfg)
        return fit(model, loss_fn, data, cfg, generator, **kw)

    monkeypatch.setattr(SALUN_CODE[name], "fit", spy)
    train = TRAIN.replace(optimizer="adam", momentum=0.5, weight_decay=0.0, schedule="cosine", warmup_epochs=1,
                          grad_clip=2.0)
    run(name, make_context(tiny, "random", train=train), epochs=2, lr=1e-3)
    (cfg,) = configs
    settings = (cfg.optimizer, cfg.momentum, cfg.schedule, cfg.warmup_epochs, cfg.grad_clip)
    assert settings == ("sgd", 0.9, "constant", 0, 0)
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (2, 1e-3, train.batch_size)
    # SalUn folds the weight decay into the masked gradient instead (see its docstring)
    assert cfg.weight_decay == (0.0 if name == "salun" else 5e-4)


def test_gradient_ascent_clips_only_when_asked(tiny):
    plain = run("gradient_ascent", make_context(tiny, "random"), epochs=2, lr=0.05)
    clipped = run("gradient_ascent", make_context(tiny, "random"), epochs=2, lr=0.05, grad_clip=1e-3)
    assert get_method("gradient_ascent").defaults()["grad_clip"] == 0
    moved = lambda m: sum(float((a - b).detach().norm()) for a, b in zip(m.parameters(), tiny["original"].parameters()))
    assert moved(clipped) < 0.1 * moved(plain)


# ---- SalUn -------------------------------------------------------------------

@pytest.mark.parametrize("share", [0.1, 0.5, 0.77, 1.0])
def test_salun_mask_keeps_exactly_the_share_with_the_largest_gradients(tiny, share):
    ctx = make_context(tiny)
    model = ctx.model
    masks = SU.saliency_mask(model, ctx.forget.x, ctx.forget.y, share, batch_size=len(ctx.forget))
    total = sum(p.numel() for p in model.parameters())
    kept = sum(int(m.sum()) for m in masks.values())
    assert kept == round(share * total)
    # the kept entries are the largest |∇ CE(D_f)| (one batch = the full-batch gradient)
    grads = torch.autograd.grad(F.cross_entropy(model(ctx.forget.x), ctx.forget.y), list(model.parameters()))
    saliency = torch.cat([g.abs().flatten() for g in grads])
    keep = torch.cat([masks[n].flatten() for n, _ in model.named_parameters()])
    if share < 1:
        assert saliency[keep].min() >= saliency[~keep].max()


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_salun_updates_only_salient_weights_bit_identically(tiny, optimizer):
    train = TRAIN.replace(optimizer=optimizer)     # SalUn's own SGD (momentum, weight decay) whatever the original's
    ctx = make_context(tiny, train=train)
    masks = SU.saliency_mask(copy.deepcopy(tiny["original"]).requires_grad_(True), ctx.forget.x, ctx.forget.y,
                             0.3, train.batch_size)
    original = params(tiny["original"])
    after = params(run("salun", ctx, mask_share=0.3, epochs=2, lr=0.01))
    for name, mask in masks.items():
        assert torch.equal(after[name][~mask], original[name][~mask]), name   # frozen: bit-identical
    moved = sum(int((after[n][m] != original[n][m]).sum()) for n, m in masks.items())
    assert moved > 0.9 * sum(int(m.sum()) for m in masks.values())        # salient: trained


def test_salun_rejects_a_share_outside_0_1(tiny):
    with pytest.raises(ValueError, match="mask_share"):
        run("salun", make_context(tiny), mask_share=1.5)


# ---- SCRUB -------------------------------------------------------------------

def test_scrub_kl_is_teacher_to_student_and_temperature_scaled():
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 5), 3 * torch.randn(6, 5)
    tau = 4.0
    p_t, p_s = F.softmax(teacher / tau, 1), F.softmax(student / tau, 1)
    expected = tau ** 2 * (p_t * (p_t.log() - p_s.log())).sum(1).mean()
    reverse = tau ** 2 * (p_s * (p_s.log() - p_t.log())).sum(1).mean()
    got = SC.distill_kl(student, teacher, tau)
    assert got == pytest.approx(float(expected), rel=1e-5)
    assert abs(float(got) - float(reverse)) > 1e-3


def test_scrub_runs_max_steps_on_the_forget_set_only_in_its_max_epochs(tiny, monkeypatch):
    calls = []

    def spy(model, loss_fn, data, cfg, generator, **kw):
        calls.append((loss_fn.__qualname__.split(".")[0], data[0].data_ptr(), len(data[0])))
        return fit(model, loss_fn, data, cfg, generator, **kw)

    monkeypatch.setattr(SC, "fit", spy)
    ctx = make_context(tiny, "random")
    run("scrub", ctx, epochs=4, max_epochs=2)
    forget = ("max_step_loss", ctx.forget.x.data_ptr(), len(ctx.forget))
    retain = ("min_step_loss", ctx.retain.x.data_ptr(), len(ctx.retain))
    assert calls == [forget, retain, forget, retain, retain, retain]


def test_scrub_max_steps_push_the_student_away_and_min_steps_pull_it_back(tiny):
    ctx = make_context(tiny, "random")
    hp = get_method("scrub").resolve({"lr": 0.01, "grad_clip": 0.0})
    teacher = ctx.original
    with torch.no_grad():      # the max-step gradient vanishes at student = teacher: start nearby
        for p in ctx.model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    cfg = TRAIN.replace(epochs=1, lr=0.01, schedule="constant")
    div = lambda split: kl(teacher(split.x), ctx.model(split.x).detach())
    before = div(ctx.forget)
    fit(ctx.model, SC.max_step_loss(teacher, hp), ctx.forget.tensors, cfg, ctx.generator)
    assert div(ctx.forget) > before
    before = div(ctx.retain)
    fit(ctx.model, SC.min_step_loss(teacher, hp), ctx.retain.tensors, cfg.replace(epochs=3), ctx.generator)
    assert div(ctx.retain) < before


def test_scrub_shares_one_optimiser_across_phases_and_decays_its_lr_in_steps(tiny, monkeypatch):
    calls = []

    def spy(model, loss_fn, data, cfg, generator, *, optimizer=None, **kw):
        calls.append((loss_fn.__qualname__.split(".")[0], cfg.lr, cfg.grad_clip, optimizer,
                      sum(len(s) for s in optimizer.state.values())))   # state entries when the call starts
        return fit(model, loss_fn, data, cfg, generator, optimizer=optimizer, **kw)

    monkeypatch.setattr(SC, "fit", spy)
    run("scrub", make_context(tiny, "random"), epochs=5, max_epochs=2, lr=0.01, lr_decay_epochs=(1, 3),
        lr_decay_rate=0.5)
    kinds = [c[0] for c in calls]
    assert kinds == ["max_step_loss", "min_step_loss"] * 2 + ["min_step_loss"] * 3
    assert [c[1] for c in calls] == pytest.approx([0.01, 0.01, 0.005, 0.005, 0.005, 0.0025, 0.0025])
    assert all(c[2] == 0 for c in calls)                                 # no clipping by default
    optimizer = calls[0][3]
    assert isinstance(optimizer, torch.optim.SGD) and all(c[3] is optimizer for c in calls)
    assert optimizer.defaults["momentum"] == 0.9 and optimizer.defaults["weight_decay"] == 5e-4
    assert calls[0][4] == 0 and all(c[4] > 0 for c in calls[1:])       # momentum carried into every later phase


def test_scrub_rewind_returns_the_earlier_epoch_closest_to_held_out_error(tiny):
    hp = {"epochs": 6, "max_epochs": 2, "lr": 0.1}
    # the student after epoch k is SCRUB run for k epochs: its first k epochs are the same training
    students = [run("scrub", make_context(tiny, "random"), **{**hp, "epochs": k}) for k in range(1, 7)]
    ctx = make_context(tiny, "random")
    target = SC.error_rate(students[-1], SC.held_out_forget(ctx))
    gaps = [abs(SC.error_rate(m, ctx.forget) - target) for m in students]
    best = min(range(len(gaps)), key=gaps.__getitem__)
    assert gaps[best] < gaps[-1], "the setting must make an earlier epoch strictly closer than the last"
    rewound = run("scrub", ctx, **hp, rewind=True)
    for name, p in rewound.named_parameters():
        assert torch.equal(p, dict(students[best].named_parameters())[name]), name
    assert any(not torch.equal(a, b) for a, b in zip(rewound.parameters(), students[-1].parameters()))


def test_scrub_rewind_uses_held_out_forget_class_samples(tiny):
    ctx = make_context(tiny)
    held_out = SC.held_out_forget(ctx)
    assert len(held_out) > 0 and held_out.y.eq(0).all()


# ---- NegGrad+ ----------------------------------------------------------------

PLAIN_SGD = dict(optimizer="sgd", momentum=0.0, weight_decay=0.0, schedule="constant", warmup_epochs=0, grad_clip=0.0)


def test_neggrad_plus_with_beta_1_is_plain_sgd_fine_tuning(tiny):
    ctx = make_context(tiny, "random")
    tuned = copy.deepcopy(ctx.model)
    fit(tuned, supervised_loss, ctx.retain.tensors, TRAIN.replace(epochs=3, lr=0.05, **PLAIN_SGD),
        torch.Generator().manual_seed(0))
    neg = run("neggrad_plus", ctx, epochs=3, lr=0.05, beta=1.0, prox_weight=0.0)
    for (name, a), b in zip(tuned.named_parameters(), neg.parameters()):
        assert torch.equal(a, b), name
    ascent = run("neggrad_plus", make_context(tiny, "random"), epochs=3, lr=0.05, beta=0.5)
    assert not torch.equal(ascent.head.weight, tuned.head.weight)


def test_neggrad_plus_loss_has_the_notebooks_proximal_term(tiny):
    """run_neggrad_epoch: β·(CE_r + (wd/2)·‖θ − θ_start‖²) − (1 − β)·CE_f, wd = 0.1 by default."""
    ctx = make_context(tiny, "random")
    model = ctx.model
    start = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    r, f = (ctx.retain.x[:32], ctx.retain.y[:32]), (ctx.forget.x[:16], ctx.forget.y[:16])
    sq = sum(((p - p0) ** 2).sum() for p, p0 in zip(model.parameters(), start))
    expected = 0.95 * (F.cross_entropy(model(r[0]), r[1]) + 0.05 * sq) - 0.05 * F.cross_entropy(model(f[0]), f[1])
    got = NG.neggrad_plus_loss(0.95, start, get_method("neggrad_plus").defaults("random")["prox_weight"])(model, r, f)
    assert float(sq.detach()) > 0 and torch.allclose(got, expected, rtol=1e-6)


def test_neggrad_plus_trains_with_the_references_plain_sgd_whatever_the_originals_optimiser(tiny, monkeypatch):
    calls = []

    def spy(model, loss_fn, data, cfg, generator, **kw):
        calls.append((cfg, data, kw))
        return fit(model, loss_fn, data, cfg, generator, **kw)

    monkeypatch.setattr(NG, "fit", spy)
    train = TRAIN.replace(optimizer="adam", momentum=0.5, weight_decay=1e-3, schedule="cosine", warmup_epochs=1,
                          grad_clip=2.0)
    ctx = make_context(tiny, "random", train=train)
    ctx.augment = lambda x, generator: x + 1.0
    run("neggrad_plus", ctx)
    (cfg, data, kw), = calls
    assert {k: getattr(cfg, k) for k in PLAIN_SGD} == PLAIN_SGD
    assert (cfg.epochs, cfg.lr, cfg.batch_size) == (10, 0.01, train.batch_size)
    assert data[0] is ctx.retain.x and kw["extra"][0] is ctx.forget.x
    assert kw.get("augment") is None                         # the notebooks' loaders do not augment


# ---- ℓ1-sparse ---------------------------------------------------------------

def test_l1_sparse_shrinks_the_l1_norm_relative_to_plain_fine_tuning(tiny):
    plain = run("l1_sparse", make_context(tiny), l1=0.0, epochs=4, lr=0.05)
    tuned = run("finetune", make_context(tiny), epochs=4, lr=0.05)
    assert all(torch.equal(a, b) for a, b in zip(plain.parameters(), tuned.parameters()))   # γ = 0 is FT
    sparse = run("l1_sparse", make_context(tiny), l1=5e-3, epochs=4, lr=0.05)
    with torch.no_grad():
        assert float(L1.l1_norm(sparse)) < 0.9 * float(L1.l1_norm(plain))


def test_l1_strength_decays_linearly_to_zero():
    assert [L1.l1_strength(e, 5, 1.0, 0) for e in range(5)] == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    assert [L1.l1_strength(e, 5, 1.0, 2) for e in range(5)] == pytest.approx([1.0, 2 / 3, 1 / 3, 0.0, 0.0])


# ---- Bad Teacher -------------------------------------------------------------

def test_bad_teacher_targets_come_from_the_incompetent_teacher_on_forget_samples(tiny):
    ctx = make_context(tiny)
    torch.manual_seed(5)
    incompetent = ctx.make_model().eval()
    x = torch.cat([ctx.retain.x[:7], ctx.forget.x[:5]])
    is_forget = torch.arange(12) >= 7
    targets = BT.distillation_targets(x, is_forget, ctx.original, incompetent, temperature=2.0)
    assert torch.allclose(targets[is_forget], F.softmax(incompetent(x[is_forget]) / 2.0, 1))
    assert torch.allclose(targets[~is_forget], F.softmax(ctx.original(x[~is_forget]) / 2.0, 1))


def test_bad_teacher_moves_forget_outputs_towards_a_random_network(tiny):
    ctx = make_context(tiny)
    made = []

    def make_model():
        made.append(tiny["make_model"]())
        return made[-1]

    ctx.make_model = make_model
    student = run("bad_teacher", ctx, epochs=40, lr=1e-3)
    bad = made[0]
    with torch.no_grad():
        to_bad = lambda m: kl(bad(ctx.forget.x), m(ctx.forget.x))
        assert to_bad(student) < 0.5 * to_bad(ctx.original)
        assert kl(ctx.original(ctx.retain.x), student(ctx.retain.x)) < 0.25


def test_bad_teacher_trains_with_the_notebooks_adam_on_the_forget_set_and_30_percent_of_the_retain_set(
        tiny, monkeypatch):
    calls = []

    def spy(model, loss_fn, data, cfg, generator, **kw):
        calls.append((cfg, data))
        return fit(model, loss_fn, data, cfg, generator, **kw)

    monkeypatch.setattr(BT, "fit", spy)
    ctx = make_context(tiny, "random", train=TRAIN.replace(weight_decay=1e-3, schedule="cosine", warmup_epochs=1))
    run("bad_teacher", ctx)
    (cfg, (x, is_forget)), = calls
    assert (cfg.optimizer, cfg.lr, cfg.epochs, cfg.batch_size) == ("adam", 1e-4, 1, 256)
    assert (cfg.weight_decay, cfg.schedule, cfg.warmup_epochs) == (0.0, "constant", 0)
    assert int(is_forget.sum()) == len(ctx.forget) and int((~is_forget).sum()) == round(0.3 * len(ctx.retain))
    assert torch.equal(x[is_forget], ctx.forget.x)


# ---- SSD ---------------------------------------------------------------------

def test_ssd_dampens_exactly_the_selected_parameters_by_the_stated_factor(tiny):
    model = copy.deepcopy(tiny["original"])
    before = params(model)
    gen = torch.Generator().manual_seed(3)
    global_imp = {n: torch.rand(p.shape, generator=gen) + 0.1 for n, p in model.named_parameters()}
    forget_imp = {n: 20 * torch.rand(p.shape, generator=gen) for n, p in model.named_parameters()}
    alpha, lam = 2.0, 4.0      # λ > α, so both branches of min(λ·global/forget, 1) occur
    share = SSD.dampen(model, global_imp, forget_imp, alpha, lam)
    n_selected, branches = 0, set()
    for name, p in model.named_parameters():
        g, f = global_imp[name], forget_imp[name]
        chosen = f > alpha * g
        n_selected += int(chosen.sum())
        assert torch.equal(p[~chosen], before[name][~chosen])                 # below threshold: untouched
        factor = torch.clamp(lam * g / f, max=1.0)
        assert torch.allclose(p[chosen], before[name][chosen] * factor[chosen], rtol=1e-6, atol=0)
        branches |= {bool(v) for v in factor[chosen] < 1}
    assert branches == {True, False}          # both branches of the min occurred
    assert 0 < n_selected and share == pytest.approx(n_selected / sum(p.numel() for p in model.parameters()))


def test_ssd_importance_is_the_squared_gradient_averaged_over_batches(tiny):
    ctx = make_context(tiny)
    model = ctx.model
    imp = SSD.importance(model, ctx.forget.x, ctx.forget.y, len(ctx.forget))
    grads = torch.autograd.grad(F.cross_entropy(model(ctx.forget.x), ctx.forget.y), list(model.parameters()))
    for (name, _), g in zip(model.named_parameters(), grads):
        assert torch.allclose(imp[name], g ** 2, rtol=1e-5, atol=1e-12)


@pytest.mark.parametrize("scenario", ["class", "random"])
def test_ssd_batches_follow_the_references_unshuffled_loaders(tiny, scenario, monkeypatch):
    """forget_full_class_main.py: D_r class-sorted (dataset order within a class), then D_f, batch 64;
    forget_random_main.py: both parts in a random_split order, batch 128; never reshuffled."""
    ctx = make_context(tiny, scenario)
    calls = []

    def spy(model, x, y, batch_size):
        calls.append((x, y, batch_size))
        return {n: torch.ones_like(p) for n, p in model.named_parameters()}

    monkeypatch.setattr(SSD, "importance", spy)
    run("ssd", ctx)
    (xf, yf, bf), (xa, ya, ba) = calls
    assert bf == ba == (64 if scenario == "class" else 128)
    n_r = len(ctx.retain)
    assert torch.equal(xa[n_r:], xf) and torch.equal(ya[n_r:], yf)
    if scenario == "class":
        assert torch.equal(xf, ctx.forget.x)
        order = torch.sort(ctx.retain.y, stable=True).indices
        assert torch.equal(xa[:n_r], ctx.retain.x[order]) and bool((ya[:n_r].diff() >= 0).all())
    else:
        assert not torch.equal(xa[:n_r], ctx.retain.x)           # a random order, not the dataset's
        assert sorted(ya[:n_r].tolist()) == sorted(ctx.retain.y.tolist())
        assert sorted(yf.tolist()) == sorted(ctx.forget.y.tolist())


def test_ssd_forgets_a_class_without_training(tiny):
    ctx = make_context(tiny)
    acc = lambda m, s: float((m(s.x).argmax(1) == s.y).float().mean())
    model = run("ssd", ctx)
    with torch.no_grad():
        assert acc(model, ctx.forget) < 0.5 * acc(ctx.original, ctx.forget)
        assert acc(model, ctx.retain) > acc(ctx.original, ctx.retain) - 0.1
    assert not math.isnan(acc(model, ctx.val))
