"""Throughput of the shared training loop (``methods._train.fit``) against a
bare hand-written PyTorch loop: the same in-memory digits tensors, model,
batch size, optimiser (SGD, momentum, weight decay) and per-step cosine
schedule.  Target: fit's samples/s >= 0.95x the bare loop's, for mlp and cnn."""
from __future__ import annotations

import copy
import math

import pytest
import torch
from _bench import interleave, report
from torch import nn

from unlearnbench import datasets as D
from unlearnbench.harness.models import InputSpec, build_model, get_model
from unlearnbench.methods._train import cross_entropy, fit

TARGET = 0.95


def bare_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, batch_size: int, lr: float,
              momentum: float, weight_decay: float, generator: torch.Generator) -> float:
    """What one would write by hand: shuffle, index-slice, step; per-step cosine decay."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = math.ceil(len(x) / batch_size) * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps)))
    model.train()
    total = 0.0
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(batch_size):
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item()
    return total


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_fit_throughput_vs_bare_loop(benchmark, bench, model_name):
    ds = D.load_dataset("digits")
    x, y = ds.x_train, ds.y_train
    model0 = build_model(model_name, InputSpec.of(ds))
    cfg = get_model(model_name).train.replace(epochs=bench.size(1, 3, 10), augment=False)
    rounds = bench.rounds(7, 15)

    def run_fit():
        fit(copy.deepcopy(model0), cross_entropy, (x, y), cfg, torch.Generator().manual_seed(0))

    def run_bare():
        bare_loop(copy.deepcopy(model0), x, y, cfg.epochs, cfg.batch_size, cfg.lr, cfg.momentum, cfg.weight_decay,
                  torch.Generator().manual_seed(0))

    t = interleave({"fit": run_fit, "bare": run_bare}, rounds, benchmark, warmup=bench.enabled)
    samples = len(x) * cfg.epochs
    ratio = t.ratio("bare", "fit")   # fit's throughput / the bare loop's
    report(benchmark, f"training loop, {model_name}: fit {samples / t.median('fit'):,.0f} samples/s, bare loop "
                      f"{samples / t.median('bare'):,.0f} samples/s -> {ratio:.3f}x (target >= {TARGET})",
           fit_samples_per_s=samples / t.median("fit"), bare_samples_per_s=samples / t.median("bare"),
           throughput_ratio=ratio, batch_size=cfg.batch_size, epochs=cfg.epochs, n=len(x))
    bench.check(ratio >= TARGET, f"fit runs at {ratio:.3f}x the bare loop's throughput (target >= {TARGET})")
