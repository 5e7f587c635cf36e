"""What `muso` (the paper's formula) and `muso_released` (the authors'
released network code) share: the head as one weight matrix, the head's
inputs as features, the ε schedules, the projector rules, and one relabelling
routine (:class:`Relabeller`, run by :func:`unlearn`) parametrised by the
projector rule, the per-epoch ε list and the rule that picks Π_r's rows.

Notation: ``Z`` = the head's inputs (penultimate features plus a ones column
when the head has a bias; ``M`` columns), ``w`` = the head as an ``M × C``
matrix, so outputs are ``Z w``; ``w₀`` = the head of θ₀, ``w_p`` = the
original's.  Every batch of D_r ∪ D_f, each forget sample gets
``y_f = Z_f^cur [w₀ + Π_r(w_p − w₀)] + (Z_f^cur − Z_f^p) w_p`` with ``Z^p``
the original's features (the drift term; zero at the first step).
"""
from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ._api import Context
from ._linear import project_rows, ridge_fit
from ._train import fit, model_loss

# NN/full_and_sub_class/MUSO.py get_args (8c113dd): the class and sub-class setting of every MUSO variant
CLASS_DEFAULTS = {kind: {"optimizer": "adamw", "lr": 2.8e-4, "schedule": "cosine", "epochs": 5}
                  for kind in ("class", "subclass")}

Projector = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]   # (Z_r, V, ε) -> Π_r V


# ---- the head and its inputs ------------------------------------------------------
def head_weights(head: nn.Linear) -> torch.Tensor:
    """The last layer as one float64 matrix ``w`` (inputs [+ bias row] × outputs)."""
    w = head.weight.detach().double().T
    return torch.cat([w, head.bias.detach().double()[None]]) if head.bias is not None else w


@torch.no_grad()
def penultimate(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
    """Eval-mode features of ``x`` in float64, with a ones column when the
    head has a bias (so that outputs = ``penultimate(x) @ head_weights``)."""
    was_training = model.training
    model.eval()
    z = torch.cat([model.features(xb).double() for xb in x.split(batch_size)])
    model.train(was_training)
    if model.head.bias is not None:
        z = torch.cat([z, z.new_ones(len(z), 1)], dim=1)
    return z


def pretrained_outputs(z_forget_p: torch.Tensor, wp: torch.Tensor) -> torch.Tensor:
    """``Z_f^p w_p``: the original's outputs on D_f, row i for forget sample i
    (what the drift term subtracts)."""
    return z_forget_p @ wp


def forget_outputs(model: nn.Module, x_forget: torch.Tensor, pretrained: torch.Tensor,
                   w_relabel: torch.Tensor, wp: torch.Tensor) -> torch.Tensor:
    """``y_f = Z_f^cur w_relabel + (Z_f^cur − Z_f^p) w_p`` with
    ``Z_f^p w_p = pretrained`` (the original's outputs on the same samples)."""
    z = penultimate(model, x_forget)
    return z @ (w_relabel + wp) - pretrained.double()


def soft_targets(model: nn.Module, outputs: torch.Tensor) -> torch.Tensor:
    """The targets whose loss minimiser is ``outputs``: the model's
    ``soft_targets`` if it defines them (squared loss: the outputs
    themselves), else softmax (cross-entropy)."""
    own = getattr(model, "soft_targets", None)
    return own(outputs) if own is not None else outputs.softmax(dim=1)


# ---- ε schedules --------------------------------------------------------------------
def ridge_at(epoch: int, epochs: int, start: float, end: float) -> float:
    """Cosine ramp from ``start`` (first epoch) to ``end`` (last epoch):
    ``start + (end − start)(1 − cos(π e/(E−1)))/2``."""
    if epochs <= 1:
        return start
    return start + (end - start) * (1.0 - math.cos(math.pi * epoch / (epochs - 1))) / 2.0


def ramp(epochs: int, start: float, end: float) -> list[float]:
    """The ε of each epoch on the cosine ramp: epoch e uses ``ridge_at(e)``."""
    return [ridge_at(e, epochs, start, end) for e in range(epochs)]


def shifted_ramp(epochs: int, start: float, end: float) -> list[float]:
    """The released code's ε per epoch: Π_r for epoch e is built at the end of
    epoch e−1 with that epoch's ramp value, the first one before training
    with ``start``: ``[r₀, r₀, r₁, …, r_{E−2}]`` — the last ramp value
    ``r_{E−1} = end`` is never used."""
    values = ramp(epochs, start, end)
    return values[:1] + values[:-1]


# ---- projector rules ----------------------------------------------------------------
def ridge_projector(z: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """The paper's ``Π_r v = Zᵀ(ZZᵀ + εI)⁻¹Z v`` (a projector at ε = 0),
    Cholesky in float64."""
    return project_rows(z, v, eps)


def released_projector(z: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    """The released code's ``Zᵀ(εI + εZZᵀ)⁻¹Z v`` (its "Woodbury" rewrite),
    which equals ``(1/ε)·Zᵀ(I + ZZᵀ)⁻¹Z v``: a ridge fixed at 1, scaled by 1/ε."""
    if not eps > 0:
        raise ValueError(f"the released projector needs ε > 0 (got {eps!r})")
    return project_rows(z, v, 1.0) / eps


def released_right_side(z: torch.Tensor, w0: torch.Tensor, wp: torch.Tensor, eps: float) -> torch.Tensor:
    """``get_right_side`` of NN/random_subset/MUSO.py and NN/full_and_sub_class/MUSO.py
    (Yruikk/MUSO 8c113dd, lines 192-200 / 223-233) as the script computes it: float32,
    explicit inverses, its order of operations; returns ``Π_r(w_p − w₀) + w₀ + w_p``."""
    z, w0, wp = z.float(), w0.float(), wp.float()
    inv = torch.linalg.inv
    eI_N = eps * torch.eye(z.shape[0], device=z.device)
    eI_D = eps * torch.eye(z.shape[1], device=z.device)
    fast_inv = inv(eI_N) - inv(eI_N) @ z @ inv(inv(eI_D) + torch.t(z) @ inv(eI_N) @ z) @ torch.t(z) @ inv(eI_N)
    pi_r = torch.t(z) @ fast_inv @ z
    return pi_r @ (wp - w0) + w0 + wp


def label_form_weights(z: torch.Tensor, y: torch.Tensor, w0: torch.Tensor, eps: float) -> torch.Tensor:
    """The label form's relabelling weights ``w₀ + Z_rᵀ(Z_r Z_rᵀ + εI)⁻¹(Y_r − Z_r w₀)``, so that
    ``Z_f·(them) = Z_f w₀ + K_fr(K_rr + εI)⁻¹(Y_r − Z_r w₀)``; Y_r one-hot (float64, stable solve)."""
    w0 = w0.double()
    onehot = torch.nn.functional.one_hot(y, w0.shape[1]).double()
    return w0 + ridge_fit(z, onehot - z.double() @ w0, eps)


def inverted_condition(z: torch.Tensor, eps: float, rule: str) -> float:
    """Condition number of the matrix the projector inverts: ``ZZᵀ + εI_N`` (ridge, label form) or
    the Woodbury chain's inner ``(1/ε)(I_M + ZᵀZ)`` (woodbury), from Z's singular values."""
    s2 = torch.linalg.svdvals(z.double()) ** 2
    n, m = z.shape
    if rule == "woodbury":
        low = s2.min() if n >= m else s2.new_zeros(())
        return float((1 + s2.max()) / (1 + low))
    low = s2.min() if n <= m else s2.new_zeros(())
    return float((s2.max() + eps) / (low + eps))


# ---- rules for the rows Π_r is built from -----------------------------------------
def sample_subset(n: int, share: float, generator: torch.Generator) -> torch.Tensor:
    """A uniform random ``round(share·n)`` of ``range(n)`` (at least one)."""
    k = min(n, max(1, round(share * n)))
    return torch.randperm(n, generator=generator)[:k]


def released_subset(n: int, share: float, batch_size: int, generator: torch.Generator) -> torch.Tensor:
    """The released code's rows: walk D_r in order, ``batch_size`` rows at a
    time, and whenever more than ``2k`` rows are held (``k = int(share·n)``)
    keep a random ``k`` of them.  Ends with between ``k`` and ``2k`` rows,
    later batches over-represented."""
    k = max(1, int(share * n))
    kept = torch.zeros(0, dtype=torch.long)
    for start in range(0, n, batch_size):
        kept = torch.cat([kept, torch.arange(start, min(start + batch_size, n))])
        if len(kept) > 2 * k:
            kept = kept[torch.randperm(len(kept), generator=generator)[:k]]
    return kept


# ---- the relabelling routine ------------------------------------------------------
class Relabeller:
    """Π_r once per epoch, forget labels every batch, and the regime and
    round-off diagnostics (see :func:`unlearn`).

    ``rule`` names the relabelling weights: "ridge" (the paper's
    ``w₀ + Zᵀ(ZZᵀ + εI)⁻¹Z(w_p − w₀)``), "woodbury" (the released code's
    expression) or "label_form" (``w₀ + Zᵀ(ZZᵀ + εI)⁻¹(Y_r − Z w₀)``);
    ``projector`` computes Π_r v for the first two.  ``precision`` "exact":
    float64, stable solves; "released": the released script's float32
    chain of explicit inverses (woodbury only)."""

    def __init__(self, ctx: Context, *, projector: Projector, epsilons: list[float],
                 rows: Callable[[int, torch.Generator], torch.Tensor], soft: bool,
                 rule: str = "ridge", precision: str = "exact"):
        if precision == "released" and rule != "woodbury":
            raise ValueError(f"precision 'released' reproduces the released woodbury expression, not {rule!r}")
        self.model, self.generator = ctx.model, ctx.generator
        self.projector, self.epsilons, self.rows, self.soft = projector, list(epsilons), rows, soft
        self.rule, self.precision = rule, precision
        init = ctx.make_model()
        init.load_state_dict(ctx.theta0)
        self.w0, self.wp = head_weights(init.head), head_weights(ctx.original.head)
        self.x_retain, self.y_retain = ctx.retain.x, ctx.retain.y
        self.z_forget_p = penultimate(ctx.original, ctx.forget.x)            # Z_f^p
        self.pretrained = pretrained_outputs(self.z_forget_p, self.wp)       # Z_f^p w_p
        self.pretrained32 = self.z_forget_p.float() @ self.wp.float()        # the same, as the script computes it
        self.original_pred = (self.z_forget_p @ self.wp).argmax(dim=1)       # the original's predictions on D_f
        self.w_relabel: torch.Tensor | None = None
        self.right32: torch.Tensor | None = None
        self.eps_used: list[float] = []
        self.changed = self.relabelled = 0
        self.diagnostics: dict = {"head_inputs": int(self.w0.shape[0])}

    def weights(self, z_r: torch.Tensor, y_r: torch.Tensor, eps: float, exact: bool = False,
                projector: Projector | None = None):
        """("float64 w_relabel", None) or (None, "float32 right side") for these retain rows."""
        if self.precision == "released" and not exact:
            return None, released_right_side(z_r, self.w0, self.wp, eps)
        if self.rule == "label_form":
            return label_form_weights(z_r, y_r, self.w0, eps), None
        return self.w0 + (projector or self.projector)(z_r, self.wp - self.w0, eps), None

    def first_labels(self, w_relabel, right32) -> torch.Tensor:
        """Argmax forget labels at the first step (the original's features: drift term 0)."""
        if right32 is not None:
            return (self.z_forget_p.float() @ right32 - self.pretrained32).argmax(dim=1)
        return (self.z_forget_p @ (w_relabel + self.wp) - self.pretrained).argmax(dim=1)

    def rebuild(self, epoch: int) -> None:
        """Π_r from the current model's features of this epoch's retain rows, with this epoch's ε."""
        eps = float(self.epsilons[epoch])
        rows = self.rows(len(self.x_retain), self.generator).to(self.x_retain.device)
        z_r, y_r = penultimate(self.model, self.x_retain[rows]), self.y_retain[rows]
        self.w_relabel, self.right32 = self.weights(z_r, y_r, eps)
        if not self.eps_used:
            self.diagnose(z_r, y_r, eps)
        self.eps_used.append(eps)

    def diagnose(self, z_r: torch.Tensor, y_r: torch.Tensor, eps: float) -> None:
        """First-step diagnostics: the regime (M, N, rank), the labels changed, and how much of that
        is round-off: the share of labels that flip when only Π_r's rows are reordered (a fixed
        permutation; the matrix is mathematically the same), the share equal to the float64 stable
        solve of the same expression, and the condition number of the matrix inverted."""
        first = self.first_labels(self.w_relabel, self.right32)
        perm = torch.randperm(len(z_r), generator=torch.Generator().manual_seed(0)).to(z_r.device)
        stable = {"ridge": ridge_projector, "woodbury": released_projector}.get(self.rule)
        permuted = self.first_labels(*self.weights(z_r[perm], y_r[perm], eps, projector=stable))
        exact = self.first_labels(*self.weights(z_r, y_r, eps, exact=True, projector=stable))
        share = lambda mask: float(mask.double().mean()) if len(mask) else 0.0
        self.diagnostics.update({
            "proj_rows": int(z_r.shape[0]),
            "rank_z_retain": int(torch.linalg.matrix_rank(z_r)),
            "label_change_first": share(first != self.original_pred),
            "perm_flip_first": share(permuted != first),
            "exact_share_first": share(exact == first),
            "proj_cond": inverted_condition(z_r, eps, "woodbury" if self.rule == "woodbury" else "ridge"),
            "precision": self.precision, "labels": "label_form" if self.rule == "label_form" else "label_free"})

    def targets(self, net: nn.Module, x_forget: torch.Tensor, fpos: torch.Tensor) -> torch.Tensor:
        """The training targets of these forget samples (positions ``fpos`` in D_f)."""
        if self.right32 is not None:   # the script: Z_u_wbias @ right_side - Z_u_p_wbias @ w_p, float32
            y_f = penultimate(net, x_forget).float() @ self.right32 - self.pretrained32[fpos]
        else:
            y_f = forget_outputs(net, x_forget, self.pretrained[fpos], self.w_relabel, self.wp)
        self.changed += int((y_f.argmax(dim=1) != self.original_pred[fpos]).sum())
        self.relabelled += len(fpos)
        return soft_targets(net, y_f.double()) if self.soft else y_f.argmax(dim=1)

    def finish(self) -> dict:
        self.diagnostics.update({
            "label_change_mean": self.changed / self.relabelled if self.relabelled else None,
            "eps": list(self.eps_used), "rebuilds": len(self.eps_used),
            "rank_tol": "torch.linalg.matrix_rank default on float64 Z_r: σ > max(N, M)·eps64·σ_max"})
        return self.diagnostics


def unlearn(ctx: Context, hp, relabeller: Relabeller, momentum: float | None = None) -> nn.Module:
    """Fine-tune ``ctx.model`` on D_r ∪ D_f (shuffled together) with the
    model's own loss: retain samples keep their labels, forget samples get
    ``relabeller.targets``; Π_r is rebuilt before each epoch.  ``hp``
    supplies epochs, lr, optimizer, schedule, weight_decay and batch_size.

    Fills ``ctx.diagnostics`` with the regime: ``head_inputs`` (M, bias
    included), ``proj_rows`` (N, rows of Z_r at the first build),
    ``rank_z_retain`` (numerical rank of that Z_r, tolerance in ``rank_tol``),
    ``label_change_first`` (share of D_f whose label at the first step —
    every forget sample relabelled by the initial model with the first Π_r —
    has an argmax other than the original's prediction), ``label_change_mean``
    (the same share over every per-batch relabelling during training,
    weighted by samples), ``eps`` (the ε of each epoch's Π_r) and
    ``rebuilds``.  Hard labels are the argmax of ``y_f``; soft labels are
    compared through the argmax of ``y_f`` too.  After a resumed run they
    cover the epochs the last attempt ran."""
    model = ctx.model
    x_retain, x_forget = ctx.retain.x, ctx.forget.x
    x = torch.cat([x_retain, x_forget])
    y = torch.cat([ctx.retain.y, ctx.forget.y])
    # position in D_f of each training sample (-1: a retain sample)
    forget_pos = torch.cat([torch.full((len(x_retain),), -1, device=x.device),
                            torch.arange(len(x_forget), device=x.device)])
    loss_of = model_loss(model)

    def loss_fn(net, batch, extra_batch=None):
        xb, yb, pos = batch
        is_forget = pos >= 0
        outputs = net(xb)
        if not is_forget.any():
            return loss_of(outputs, yb)
        target_f = relabeller.targets(net, xb[is_forget], pos[is_forget])
        if target_f.is_floating_point():
            target_f = target_f.to(outputs.dtype)
        loss = loss_of(outputs[is_forget], target_f) * is_forget.sum()
        if (~is_forget).any():
            loss = loss + loss_of(outputs[~is_forget], yb[~is_forget]) * (~is_forget).sum()
        return loss / len(yb)

    changes = dict(epochs=hp.epochs, lr=hp.lr, optimizer=hp.optimizer, schedule=hp.schedule,
                   weight_decay=hp.weight_decay, batch_size=hp.batch_size,
                   warmup_epochs=0, augment=False, grad_clip=0.0)
    if momentum is not None:
        changes["momentum"] = momentum
    relabeller.rebuild(0)
    fit(model, loss_fn, (x, y, forget_pos), ctx.train_config.replace(**changes), ctx.generator,
        after_epoch=lambda epoch, _: relabeller.rebuild(epoch + 1) if epoch + 1 < hp.epochs else None)
    ctx.diagnostics.update(relabeller.finish())
    return model
