"""The model registry: architectures by name, each with its default training
of the reference models (:func:`register_model`).  The architectures register
themselves when ``unlearnbench.harness.models`` is imported."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from unlearnbench.methods import TrainConfig

from ..errors import UsageError
from .base import Classifier, InputSpec


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[..., Classifier]
    train: TrainConfig           # default training of the original / retrain reference
    summary: str


_MODELS: dict[str, ModelInfo] = {}


def register_model(name: str, *, train: TrainConfig, summary: str):
    def decorate(fn):
        _MODELS[name] = ModelInfo(name, fn, train, summary)
        return fn
    return decorate


def list_models() -> list[str]:
    return sorted(_MODELS)


def get_model(name: str) -> ModelInfo:
    try:
        return _MODELS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; accepted: {', '.join(list_models())}") from None


def model_arguments(name: str) -> list[str]:
    """The keyword arguments model ``name`` accepts (its builder's, less the data spec)."""
    import inspect

    params = list(inspect.signature(get_model(name).build).parameters.values())[1:]
    return [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def check_model_arguments(name: str, args) -> None:
    """UsageError naming an argument model ``name`` does not accept, and those it does."""
    accepted = model_arguments(name)
    for key in args:
        if key not in accepted:
            raise UsageError(f"model {name!r} does not accept argument {key!r}; accepted: "
                             f"{', '.join(accepted) or '(none)'}")


def build_model(name: str, spec: InputSpec, model_args: dict | None = None,
                train: TrainConfig | None = None) -> Classifier:
    """A new model; with ``train``, configured for it (:meth:`Classifier.configure`)."""
    info = get_model(name)
    check_model_arguments(name, model_args or {})
    try:
        model = info.build(spec, **(model_args or {}))
    except (TypeError, ValueError) as e:
        raise UsageError(f"bad arguments {model_args} for model {name!r}: {e}") from None
    return model.configure(train) if train is not None else model
