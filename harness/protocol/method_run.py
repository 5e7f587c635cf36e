"""The run of one method: its context (what it may use), the guard around
its call (harness/protocol/guard.py), the checks of what it returns, its evaluation
against the Retrain reference, and its record."""
from __future__ import annotations

import copy
import functools
import time
import traceback
from contextlib import contextmanager
from datetime import datetime, timezone

import torch

from unlearnbench.methods import Context, Diverged, Split, WriteError, get_method

from ..errors import InvalidResult, UsageError
from ..metrics.definitions import param_distance
from ..metrics.evaluate import (
    EVAL_SPLITS,
    Outputs,
    RetrainReference,
    compare_metrics,
    flags,
    parameters_of,
    standalone_metrics,
)
from ..metrics.floor import floor_ratio_of
from ..models import build_model
from .augment import get_augmentation
from .guard import method_guard
from .records import RecordStore
from .spec import RunSpec, derive_seed

SCHEMA = 1


def fresh_model(name: str, input_spec, model_args: dict, train, device) -> torch.nn.Module:
    return build_model(name, input_spec, model_args, train).to(device)


def make_context(spec: RunSpec, data, split: dict[str, Split], original, theta0, generator, device,
                 progress=None) -> Context:
    """What a method (or the retrain training) gets: never the test split."""
    # Nothing in the context may lead back to the harness (and its test split): make_model is
    # a partial of a module-level function, not a closure over the harness.
    make_model = functools.partial(fresh_model, spec.model, data.spec, dict(spec.model_args), spec.train, device)
    extra = {"progress": progress} if progress else {}
    return Context(
        model=copy.deepcopy(original).requires_grad_(True) if original is not None else None,
        original=original, retain=split["retain"], forget=split["forget"], val=split["val"],
        theta0=theta0, make_model=make_model, train_config=spec.train,
        num_classes=data.ds.num_classes, device=device, generator=generator,
        scenario=spec.scenario.kind, forget_class=spec.scenario.forget_class if spec.scenario.kind == "class" else None,
        augment=get_augmentation(data.ds.augment), seed=spec.seed, **extra)


@contextmanager
def recorded(record: dict, store: RecordStore):
    """Run the body, then write ``record`` with its status: ``diverged`` or
    ``failed`` (with the traceback) if the body raised — a failing method
    must not stop a sweep.  Bad input (UsageError) and a write that failed
    (WriteError: a full disk, which the next write would meet too) propagate,
    unwritten: they stop the run."""
    try:
        yield record
    except (UsageError, WriteError):
        raise
    except Diverged as e:
        record.update(status="diverged", message=str(e))
    except Exception as e:
        record.update(status="failed", message=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
    record["finished"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    store.write(record)


def call_method(spec: RunSpec, refs, context, device, protected_dirs, replicate: int | None = None):
    """Run the method under the guard; returns (model, seconds, ctx.diagnostics).
    The reference rows return the cached models unless ``replicate`` is
    given (the many-model metric's N runs, seeded by the replicate number);
    ``context(generator)`` builds the method's Context."""
    info = get_method(spec.method)
    if replicate is None and info.reference == "original":
        return refs.original, 0.0, {}
    if replicate is None and info.reference == "retrain":
        return refs.retrain, refs.retrain_time, {}
    tags = () if replicate is None else ("replicate", replicate)
    generator = torch.Generator().manual_seed(derive_seed(spec.seed, "unlearn", spec.method, *tags))
    ctx = context(generator)
    hyper = info.hyper(**spec.hyper) if info.hyper is not None else None
    torch.manual_seed(derive_seed(spec.seed, "unlearn-global", spec.method, *tags))
    before = {k: v.clone() for k, v in refs.original.state_dict().items()}
    t0 = time.perf_counter()
    with method_guard(spec.method, protected_dirs=protected_dirs):
        model = info.fn(ctx, hyper)
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    check_result(spec, model, refs.original, before)
    return model, seconds, dict(ctx.diagnostics)


def check_result(spec: RunSpec, model, original, before: dict) -> None:
    """Refuse a result that breaks the protocol (InvalidResult) or is not finite (Diverged)."""
    after = original.state_dict()
    if any(not torch.equal(before[k], after[k]) for k in before):
        original.load_state_dict(before)
        raise InvalidResult(f"method {spec.method!r} modified the original model in place; "
                            "change and return ctx.model (a copy) instead")
    params = dict(model.named_parameters()) if isinstance(model, torch.nn.Module) else {}
    for name in original.frozen_parameters():   # train.trainable = head: θ₀ outside the head
        if name in params and not torch.equal(params[name], before[name]):
            raise InvalidResult(f"method {spec.method!r} changed the frozen parameter {name} "
                                f"(train.trainable = {spec.train.trainable!r}: only the head may change)")
    if not isinstance(model, torch.nn.Module) or type(model) is not type(original):
        raise InvalidResult(f"method {spec.method!r} returned {type(model).__name__}, "
                            f"expected a {type(original).__name__}")
    shapes = {k: tuple(v.shape) for k, v in model.named_parameters()}
    if shapes != {k: tuple(v.shape) for k, v in original.named_parameters()}:
        raise InvalidResult(f"method {spec.method!r} returned a model with different parameters")
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            raise Diverged(f"parameter {name} is not finite after unlearning")


def outputs(model, split: dict[str, Split]) -> Outputs:
    return Outputs.of(model, {name: split[name].tensors for name in EVAL_SPLITS})


def evaluate(spec: RunSpec, model, ref: RetrainReference, split: dict[str, Split], test_forget_mask) -> dict:
    """Every metric of one run."""
    return evaluate_run(spec, model, ref, split, test_forget_mask)[0]


def evaluate_run(spec: RunSpec, model, ref: RetrainReference, split: dict[str, Split],
                 test_forget_mask) -> tuple[dict, dict]:
    """(metrics, flags) of one run: the model's outputs on the evaluation
    splits are computed once and shared by all metrics and by the no-op and
    collapse flags (none for the reference rows)."""
    out = outputs(model, split)
    own = standalone_metrics(out, test_forget_mask=test_forget_mask)
    params = parameters_of(model)
    metrics = {**own, **compare_metrics(out, own, params, ref)}
    metrics["param_dist_floor_ratio"] = floor_ratio_of(get_method(spec.method), metrics["param_dist"], ref.floor)
    reference_row = spec.method in ("original", "retrain") or ref.original is None
    return metrics, ({} if reference_row else flags(out, own, params, ref))


def new_record(spec: RunSpec, env: dict) -> dict:
    return {"schema": SCHEMA, "key": spec.key, "config": spec.to_config(), "status": "ok",
            "message": None, "metrics": {}, "env": env,
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def result_fields(metrics: dict, refs, ref: RetrainReference, split_path: str, split: dict,
                  eval_started: float) -> dict:
    """What a finished run adds to its record (``eval_started``: when its evaluation began)."""
    return {
        "metrics": metrics,
        "reference": {"original_key": refs.original_key, "retrain_key": refs.retrain_key,
                      "original_train_time_s": refs.original_time,
                      "retrain_train_time_s": refs.retrain_time,
                      "original_param_dist": param_distance(parameters_of(refs.original), ref.params)[0],
                      "floor": ref.floor},
        "forget_indices": split_path,
        "sizes": {k: len(v) for k, v in split.items()},
        "model_size": model_size(refs.original),
        "eval_time_s": time.perf_counter() - eval_started,
    }


def model_size(model) -> dict:
    """Parameters, and M: the inputs of the head, its bias counted as a ones column."""
    return {"parameters": sum(p.numel() for p in model.parameters()),
            "head_inputs": model.head.in_features + (model.head.bias is not None)}
