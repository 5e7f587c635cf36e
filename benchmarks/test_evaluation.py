"""The evaluation pass (every metric of one run: ``Harness.evaluate``)
against the bare forward passes it needs (the model on retain, forget and
test under ``torch.inference_mode``), on digits.  Target: <= 1.5x.  And no
model output is computed twice: the evaluated model sees each sample once,
the Retrain reference's outputs are computed once per forget set."""
from __future__ import annotations

import pytest
import torch
from _bench import interleave, report

from unlearnbench.harness.metrics.evaluate import EVAL_SPLITS
from unlearnbench.harness.protocol.config import Grid, expand
from unlearnbench.harness.protocol.runner import Harness

TARGET = 1.5


class SampleCounter:
    """Counts the samples a model's forward pass sees."""

    def __init__(self, model: torch.nn.Module):
        self.samples = 0
        self.handle = model.register_forward_pre_hook(self)

    def __call__(self, module, inputs):
        self.samples += len(inputs[0])


@pytest.mark.parametrize("model_name", ["mlp", "cnn"])
def test_evaluation_pass_vs_forward_passes(benchmark, bench, tmp_path, model_name):
    grid = Grid(models=[model_name], scenarios=["random"], ratios=[0.1], methods=["finetune"], seeds=[0],
                floor_retrains=0, train={"epochs": bench.size(2, 10, 30)}, out=str(tmp_path))
    spec, = expand(grid)
    harness = Harness(out=tmp_path)
    refs = harness.references(spec)
    split = harness.splits(spec)
    n_eval = sum(len(split[name].x) for name in EVAL_SPLITS)

    retrain_seen = SampleCounter(refs.retrain)
    ref = harness.retrain_reference(spec)
    assert harness.retrain_reference(spec) is ref          # a second run of the group reuses it
    assert retrain_seen.samples == n_eval, "the Retrain reference's outputs were computed more than once"

    model = refs.original
    seen = SampleCounter(model)
    metrics = harness.evaluate(spec, model, ref)
    assert seen.samples == n_eval, f"the evaluation pass ran the model on {seen.samples} samples, not {n_eval}"
    assert {"retain_acc", "mia_efficacy", "mia_loss_cv", "js_forget", "param_dist"} <= set(metrics)

    def forward_passes():
        with torch.inference_mode():
            for name in EVAL_SPLITS:
                model(split[name].x)

    t = interleave({"evaluate": lambda: harness.evaluate(spec, model, ref), "forward": forward_passes},
                   bench.rounds(15, 40), benchmark, warmup=bench.enabled)
    ratio = t.ratio("evaluate", "forward")
    report(benchmark, f"evaluation pass, digits/{model_name}: {t.median('evaluate') * 1e3:.1f} ms vs bare forward "
                      f"passes {t.median('forward') * 1e3:.1f} ms -> {ratio:.2f}x (target <= {TARGET})",
           evaluate_ms=t.median("evaluate") * 1e3, forward_ms=t.median("forward") * 1e3, ratio=ratio,
           samples=n_eval)
    bench.check(ratio <= TARGET, f"the evaluation pass costs {ratio:.2f}x the bare forward passes "
                                 f"(target <= {TARGET})")
