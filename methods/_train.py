"""The one training loop: every method that trains, and the reference models
(original and retrain), go through :func:`fit`.

Data are in-memory tensors already on the model's device; batches are index
slices of a seeded permutation (no per-sample ``Dataset.__getitem__``).  The
loop owns the optimiser, the learning-rate schedule (linear warm-up, then
constant / cosine / step decay, stepped per batch), mixed precision on CUDA
(autocast, with loss scaling for fp16), divergence detection and
optional per-epoch checkpoints that let an interrupted (or pre-empted) job
resume exactly where it stopped.  Inside :func:`auto_checkpoint` every call
checkpoints without being asked, so any method that trains with :func:`fit`
resumes after a Slurm requeue with no code of its own (methods/_checkpoint.py).
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn

from ._checkpoint import active_auto_checkpoint, load_checkpoint, save_checkpoint


class Diverged(RuntimeError):
    """Raised when the loss or the parameters stop being finite."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation hyperparameters shared by reference training and methods."""

    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "sgd"          # sgd | adam | adamw
    lr: float = 0.05
    momentum: float = 0.9           # sgd only
    weight_decay: float = 5e-4
    schedule: str = "cosine"        # constant | cosine | step
    warmup_epochs: float = 0.0
    milestones: tuple[float, ...] = (0.5, 0.75)  # step schedule: fractions of training
    gamma: float = 0.1              # step schedule: factor at each milestone
    augment: bool = True            # apply the dataset's training augmentation, if it has one
    grad_clip: float = 0.0          # > 0: clip the gradient's global L2 norm to this value
    loss: str = "cross_entropy"     # cross_entropy | squared (½‖f(x) − onehot(y)‖², MUSO's theorem's loss)
    trainable: str = "all"          # all | head (every layer but the last frozen at θ₀: a random-feature model)

    OPTIMIZERS = ("sgd", "adam", "adamw")
    SCHEDULES = ("constant", "cosine", "step")
    LOSSES = ("cross_entropy", "squared")
    TRAINABLE = ("all", "head")

    def __post_init__(self):
        if self.optimizer not in self.OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; accepted: {', '.join(self.OPTIMIZERS)}")
        if self.schedule not in self.SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; accepted: {', '.join(self.SCHEDULES)}")
        if self.loss not in self.LOSSES:
            raise ValueError(f"unknown loss {self.loss!r}; accepted: {', '.join(self.LOSSES)}")
        if self.trainable not in self.TRAINABLE:
            raise ValueError(f"unknown trainable {self.trainable!r}; accepted: {', '.join(self.TRAINABLE)}")
        if self.epochs < 0 or self.batch_size < 1 or self.lr < 0:
            raise ValueError("need epochs >= 0, batch_size >= 1, lr >= 0 "
                             f"(got {self.epochs}, {self.batch_size}, {self.lr})")
        object.__setattr__(self, "milestones", tuple(float(m) for m in self.milestones))

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["milestones"] = list(d["milestones"])
        return d

    # options added after records existed: left out of identities while at their defaults, so
    # the keys of every earlier run (and cached reference model) stay what they were
    LATER_OPTIONS = {"loss": "cross_entropy", "trainable": "all"}

    def identity(self) -> dict:
        """What identifies this training in run keys: :meth:`to_dict` less the
        later options at their defaults."""
        return {k: v for k, v in self.to_dict().items() if self.LATER_OPTIONS.get(k, object()) != v}

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ValueError(f"unknown training option(s) {', '.join(map(repr, unknown))}; "
                             f"accepted: {', '.join(sorted(names))}")
        return cls(**d)


def make_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def lr_factor(step: int, total: int, steps_per_epoch: int, cfg: TrainConfig) -> float:
    """Multiplier of the base learning rate at optimisation step ``step``."""
    warmup = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warmup:
        return (step + 1) / warmup
    if cfg.schedule == "constant" or total <= warmup:
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    if cfg.schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return cfg.gamma ** sum(progress >= m for m in cfg.milestones)


LossFn = Callable[[nn.Module, Sequence[torch.Tensor], Sequence[torch.Tensor] | None], torch.Tensor]

# Mixed precision: the dtype forward passes on a CUDA device run under
# (autocast), or None for plain fp32.  Set once per process by the harness
# (``--precision``); never applied on the CPU.
_AUTOCAST_DTYPE: torch.dtype | None = None


def set_autocast(dtype: torch.dtype | None) -> None:
    global _AUTOCAST_DTYPE
    _AUTOCAST_DTYPE = dtype


def autocast(device: torch.device):
    """Context for forward passes: autocast to the configured dtype on CUDA,
    nothing elsewhere.  :func:`fit` and the evaluation use it; a method may
    wrap its own forward passes (e.g. feature extraction) in it too."""
    if _AUTOCAST_DTYPE is None or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=_AUTOCAST_DTYPE)


def _grad_scaler():
    if hasattr(torch.amp, "GradScaler"):          # torch >= 2.3
        return torch.amp.GradScaler("cuda")
    return torch.cuda.amp.GradScaler()


@dataclass
class FitResult:
    steps: int = 0
    epochs: int = 0
    last_loss: float = float("nan")
    losses: list[float] = field(default_factory=list)  # mean loss per epoch
    start_epoch: int = 0   # > 0: resumed from a checkpoint written after that many epochs


def _batches(n: int, batch_size: int, generator: torch.Generator, device) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=generator).to(device)
    return list(perm.split(batch_size))


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    data: Sequence[torch.Tensor],
    cfg: TrainConfig,
    generator: torch.Generator,
    *,
    extra: Sequence[torch.Tensor] | None = None,
    params: Sequence[nn.Parameter] | None = None,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    before_step: Callable[[nn.Module], None] | None = None,
    after_epoch: Callable[[int, nn.Module], None] | None = None,
    checkpoint: Path | None = None,
    train_mode: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
) -> FitResult:
    """Train ``model`` in place for ``cfg.epochs`` epochs over ``data``.

    data:        tensors sharing their first dimension, e.g. ``(x, y)``; an
                 epoch is one pass over them in a seeded random order.
    loss_fn:     ``loss_fn(model, batch, extra_batch) -> scalar``; ``batch`` is
                 the tuple of sliced tensors (images already augmented).
    extra:       optional second stream (e.g. the forget set beside the retain
                 set), sliced alongside from its own permutation and cycled.
    params:      what the optimiser updates (default: every parameter).
    optimizer:   an optimiser to use instead of a new one of ``cfg``'s kind
                 (:func:`make_optimizer`), so that successive calls share its
                 state (e.g. SGD momentum across SCRUB's phases); it updates
                 its own parameters (``params`` is ignored) and this call sets
                 its learning rate from ``cfg.lr`` and the schedule.
    before_step: called after ``backward()`` and before ``optimizer.step()``
                 (e.g. to mask gradients).
    checkpoint:  file for per-epoch resume state; loaded if present (with
                 ``weights_only=True``) and made by this same training (same
                 configuration, data size and parameters), removed when
                 training completes.  Default: one from :func:`auto_checkpoint`
                 when called inside it (kept after the final epoch: see
                 there).  An unreadable one is ignored.  A resumed training
                 first reruns ``after_epoch`` of the epoch it resumes after,
                 then ends with exactly the weights of an uninterrupted one.
    Raises :class:`Diverged` as soon as a loss is NaN or infinite.

    A model that knows where this training ends (``model.sgd_limit(x, targets)``,
    e.g. ``rf_linear``: a linear model on fixed features) is moved straight to
    that point when the run is one whose limit it is: its own
    :func:`supervised_loss`, SGD without weight decay on every parameter, no
    second stream, hooks or augmentation.  Anything else iterates.
    """
    auto = active_auto_checkpoint()
    keep_last = checkpoint is None and auto is not None
    if keep_last:
        checkpoint = auto.next_path()
    n = len(data[0])
    if n == 0:
        raise ValueError("cannot train on an empty dataset")
    if optimizer is None and _reaches_known_limit(model, loss_fn, cfg, extra, params, before_step, after_epoch,
                                                  augment):
        model.sgd_limit(*data[:2])
        model.eval()
        with torch.no_grad():
            loss = float(loss_fn(model, data[:2]))
        return FitResult(steps=0, epochs=cfg.epochs, last_loss=loss, losses=[loss])
    device = data[0].device
    if optimizer is None:
        params = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
        optimizer = make_optimizer(params, cfg)
    else:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for group in optimizer.param_groups:   # the schedule below starts from this call's lr
            group["lr"] = group["initial_lr"] = cfg.lr
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total = steps_per_epoch * cfg.epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, total, steps_per_epoch, cfg))
    extra_gen = torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator)))
    # fp16 needs loss scaling (its range is too small for small gradients); bf16 does not
    scaler = _grad_scaler() if device.type == "cuda" and _AUTOCAST_DTYPE == torch.float16 else None
    result = FitResult()
    extra_queue: list[torch.Tensor] = []
    # what identifies this training: a checkpoint of another one is ignored
    signature = {"config": cfg.to_dict(), "n": n, "extra": len(extra[0]) if extra is not None else None,
                 "params": [list(p.shape) for p in params]}
    state = load_checkpoint(checkpoint, device) if checkpoint is not None else None
    if state is not None and state.get("signature") != signature:
        state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        generator.set_state(state["generator"].cpu())
        extra_gen.set_state(state["extra_generator"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())   # e.g. dropout draws from the global generator
        if device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), device)
        extra_queue = list(state["extra_queue"].to(device).split(cfg.batch_size)) if len(state["extra_queue"]) else []
        result.start_epoch, result.steps, result.losses = state["epoch"], state["steps"], list(state["losses"])
        if scaler is not None and "scaler" in state:
            scaler.load_state_dict(state["scaler"])
    if auto is not None and result.start_epoch:
        auto.resumed_from.append(result.start_epoch)
    model.train(train_mode)
    if result.start_epoch and after_epoch is not None:
        after_epoch(result.start_epoch - 1, model)   # the hook the interrupted attempt ran after its checkpoint
    for epoch in range(result.start_epoch, cfg.epochs):
        total_loss = 0.0
        for idx in _batches(n, cfg.batch_size, generator, device):
            batch = [t.index_select(0, idx) for t in data]   # 3x cheaper per call than t[idx], same values
            if augment is not None and cfg.augment:
                batch[0] = augment(batch[0], generator)
            extra_batch = None
            if extra is not None:
                if not extra_queue:
                    extra_queue = _batches(len(extra[0]), cfg.batch_size, extra_gen, device)
                eidx = extra_queue.pop(0)
                extra_batch = [t.index_select(0, eidx) for t in extra]
                if augment is not None and cfg.augment:
                    extra_batch[0] = augment(extra_batch[0], generator)
            with autocast(device):
                loss = loss_fn(model, batch, extra_batch)
            if not torch.isfinite(loss):
                raise Diverged(f"loss became {loss.item()} at epoch {epoch + 1}, step {result.steps + 1}")
            optimizer.zero_grad(set_to_none=True)
            if scaler is None:
                loss.backward()
            else:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)   # clipping and before_step see the true gradients
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            if before_step is not None:
                before_step(model)
            if scaler is None:
                optimizer.step()
            else:
                scaler.step(optimizer)       # skipped when a gradient overflowed; the scale then shrinks
                scaler.update()
            schedule.step()
            result.steps += 1
            total_loss += loss.item() * len(idx)
        result.losses.append(total_loss / n)
        # checkpoint between the epoch and its hook: a resumed fit replays the hook
        # (which may hold method state, e.g. a penalty schedule) from the same point
        if checkpoint is not None and (epoch + 1 < cfg.epochs or keep_last):
            save_checkpoint({
                "signature": signature, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(), "generator": generator.get_state(),
                "extra_generator": extra_gen.get_state(), "torch_rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                # the forget-stream batches still queued for the next epoch (a partial permutation)
                "extra_queue": torch.cat(extra_queue).cpu() if extra_queue else torch.zeros(0, dtype=torch.long),
                "epoch": epoch + 1, "steps": result.steps, "losses": result.losses,
                **({"scaler": scaler.state_dict()} if scaler is not None else {}),
            }, Path(checkpoint))
        if after_epoch is not None:
            after_epoch(epoch, model)
    result.epochs = cfg.epochs
    result.last_loss = result.losses[-1] if result.losses else float("nan")
    if checkpoint is not None and not keep_last:
        Path(checkpoint).unlink(missing_ok=True)
    model.eval()
    return result


def _reaches_known_limit(model, loss_fn, cfg, extra, params, before_step, after_epoch, augment) -> bool:
    """Whether ``fit`` may replace iterating by ``model.sgd_limit`` (the limit
    of SGD with a convergent step size, i.e. epochs → ∞)."""
    return (callable(getattr(model, "sgd_limit", None)) and loss_fn is supervised_loss and cfg.epochs > 0
            and cfg.optimizer == "sgd" and cfg.weight_decay == 0 and cfg.grad_clip == 0
            and extra is None and params is None and before_step is None and after_epoch is None
            and (augment is None or not cfg.augment))


def cross_entropy(model: nn.Module, batch, extra_batch=None) -> torch.Tensor:
    """The plain supervised loss: mean cross-entropy of ``batch = (x, y)``."""
    x, y = batch[0], batch[1]
    return nn.functional.cross_entropy(model(x), y)


def squared_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``½‖f(x) − t‖²`` summed over outputs, averaged over the batch; class
    indices become one-hot targets ``t``, float targets are used as they are."""
    if not targets.is_floating_point():
        targets = nn.functional.one_hot(targets, outputs.shape[1])
    return 0.5 * (outputs - targets.to(outputs.dtype)).pow(2).sum(dim=1).mean()


def model_loss(model: nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The loss ``(outputs, targets) -> scalar`` a model is trained with: its
    ``training_loss`` if it defines one (``rf_linear``, or a network built with
    ``TrainConfig(loss="squared")``: the squared loss), else cross-entropy.
    Targets are class indices or, as floats, soft targets."""
    return getattr(model, "training_loss", None) or nn.functional.cross_entropy


def supervised_loss(model: nn.Module, batch, extra_batch=None) -> torch.Tensor:
    """The model's own training loss (:func:`model_loss`) on ``batch = (x, y)``:
    what the reference models are trained with and what label-based
    fine-tuning should use, so a method behaves the same on every model."""
    x, y = batch[0], batch[1]
    return model_loss(model)(model(x), y)
