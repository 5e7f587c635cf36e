"""The one evaluation pass: each model's outputs on each split are computed
once (batched, under ``torch.inference_mode``) and every metric is derived
from them."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from unlearnbench.methods import autocast

from . import definitions as M

EVAL_SPLITS = ("retain", "forget", "test")


@torch.inference_mode()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int | None = None) -> torch.Tensor:
    """Logits of ``model`` on ``x`` (float32, on the CPU; autocast on CUDA when configured)."""
    if batch_size is None:
        # CPU: batches that stay in cache (measured, small CNN on 28x28, 1 thread:
        # 0.57 ms/image at 256 vs 0.94 at 2048); GPU: large batches
        batch_size = 2048 if x.device.type == "cuda" else 256
    was_training = model.training
    model.eval()
    with autocast(x.device):
        out = torch.cat([model(xb).float().cpu() for xb in x.split(batch_size)]) if len(x) else torch.empty(0)
    model.train(was_training)
    return out


@dataclass
class Outputs:
    """Softmax outputs, the logits they come from (as :func:`predict` returns
    them, float32) and labels of one model on the evaluation splits."""

    probs: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    logits: dict[str, np.ndarray] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, model: nn.Module, splits: dict[str, tuple[torch.Tensor, torch.Tensor]]) -> "Outputs":
        logits = {name: predict(model, x) for name, (x, _) in splits.items()}
        probs = {name: M.softmax(z) for name, z in logits.items()}
        labels = {name: y.cpu().numpy() for name, (_, y) in splits.items()}
        return cls(probs, labels, {name: z.numpy() for name, z in logits.items()})


def parameters_of(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters only (buffers such as normalisation or BN
    statistics are excluded from parameter distances)."""
    return {k: v.detach().cpu().clone() for k, v in model.named_parameters()}


def standalone_metrics(out: Outputs, forget_class: int | None = None,
                       test_forget_mask: np.ndarray | None = None) -> dict[str, float]:
    """Metrics that need only the model's own outputs.  The test images of the
    forgotten class (or sub-class) are ``test_forget_mask``, by default those
    labelled ``forget_class``."""
    p, y = out.probs, out.labels
    m = {
        "retain_acc": M.accuracy(p["retain"], y["retain"]),
        "forget_acc": M.accuracy(p["forget"], y["forget"]),
        "test_acc": M.accuracy(p["test"], y["test"]),
    }
    m["unlearn_acc"] = 100.0 - m["forget_acc"]
    if test_forget_mask is None and forget_class is not None:
        test_forget_mask = y["test"] == forget_class
    if test_forget_mask is not None:
        in_class = np.asarray(test_forget_mask, dtype=bool)
        m["test_acc_forget_class"] = M.accuracy(p["test"][in_class], y["test"][in_class])
        m["test_acc_other_classes"] = M.accuracy(p["test"][~in_class], y["test"][~in_class])
    n_test = len(y["test"])
    m["mia_efficacy"] = M.mia_efficacy(
        M.confidence(p["retain"][:n_test], y["retain"][:n_test]),
        M.confidence(p["test"], y["test"]),
        M.confidence(p["forget"], y["forget"]))
    m["mia_entropy"] = M.mia_entropy(M.entropy(p["retain"]), M.entropy(p["test"]), M.entropy(p["forget"]))
    m["mia_loss_cv"] = M.mia_loss_cv(M.cross_entropy_loss(p["forget"], y["forget"]),
                                     M.cross_entropy_loss(p["test"], y["test"]))
    return m


@dataclass
class RetrainReference:
    """What every method's metrics are measured against."""

    outputs: Outputs
    metrics: dict[str, float]
    params: dict[str, torch.Tensor]
    floor: dict | None = None      # the retrain noise floor (harness/metrics/floor.py), when measured
    original: Outputs | None = None                       # the Original's outputs and parameters: the no-op flag
    original_params: dict[str, torch.Tensor] | None = None


def flags(out: Outputs, own: dict[str, float], params: dict[str, torch.Tensor], ref: RetrainReference) -> dict:
    """The run's no-op and collapse flags (definitions.run_flags)."""
    preds = {s: out.probs[s].argmax(1) for s in ("forget", "test")}
    original = {s: ref.original.probs[s].argmax(1) for s in ("forget", "test")}
    return M.run_flags(params, ref.original_params, preds, original, own["retain_acc"],
                       ref.metrics["retain_acc"], out.probs["test"].shape[1])


def compare_metrics(out: Outputs, own: dict[str, float], params: dict[str, torch.Tensor],
                    ref: RetrainReference) -> dict[str, float]:
    """Metrics relative to the same-init Retrain model."""
    dist, rel = M.param_distance(params, ref.params)
    return {
        "param_dist": dist,
        "param_dist_rel": rel,
        "js_forget": float(M.js_divergence(out.probs["forget"], ref.outputs.probs["forget"]).mean()),
        "avg_gap": M.avg_gap(own, ref.metrics, M.SALUN_GAP),
        "avg_gap_muso": M.avg_gap(own, ref.metrics, M.MUSO_GAP),
    }
