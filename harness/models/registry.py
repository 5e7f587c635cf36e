"""The model registry: architectures by name, each with its default training
of the reference models (:func:`register_model`).  The architectures register
themselves when ``unlearnbench.harness.models`` is imported; an installed
package adds one through the entry-point group ``unlearnbench.models`` (the
idiom of methods and datasets: unlearnbench/methods/_plugins.py)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from unlearnbench.methods import TrainConfig, load_entry_points

from ..errors import UsageError
from .base import Classifier, InputSpec


@dataclass(frozen=True)
class ModelInfo:
    name: str
    build: Callable[..., Classifier]
    train: TrainConfig           # default training of the original / retrain reference
    summary: str


ENTRY_POINT_GROUP = "unlearnbench.models"
_MODELS: dict[str, ModelInfo] = {}
_LOADED_ENTRY_POINTS: set[tuple[str, str]] = set()
_PLUGINS: dict[str, str] = {}


def register_model(name: str, *, train: TrainConfig, summary: str):
    """Decorator: register ``build(spec: InputSpec, **model_args) -> Classifier`` as
    architecture ``name``, with ``train`` the default training of its reference models."""
    def decorate(fn):
        previous = _MODELS.get(name)
        if previous is not None and previous.build.__module__ != fn.__module__:
            raise ValueError(f"model name {name!r} is already registered by {previous.build.__module__}")
        _MODELS[name] = ModelInfo(name, fn, train, summary)
        return fn
    return decorate


def unregister_model(name: str) -> None:
    _MODELS.pop(name, None)
    _PLUGINS.pop(name, None)
    for loaded in [ep for ep in _LOADED_ENTRY_POINTS if ep[0] == name]:
        _LOADED_ENTRY_POINTS.discard(loaded)


def discover_models() -> None:
    """Import the architectures installed packages declare in ``unlearnbench.models``."""
    _PLUGINS.update(load_entry_points(ENTRY_POINT_GROUP, "model", _MODELS.__contains__, _LOADED_ENTRY_POINTS,
                                      UsageError))


def list_models() -> list[str]:
    discover_models()
    return sorted(_MODELS)


def model_origin(name: str) -> str:
    """"built-in", "plugin <dist> <version>" or the module that registered it."""
    module = get_model(name).build.__module__
    if module.startswith(f"{__package__}."):
        return "built-in"
    return f"plugin {_PLUGINS[name]}" if name in _PLUGINS else module


def get_model(name: str) -> ModelInfo:
    if name not in _MODELS:
        discover_models()   # an installed plugin may provide it
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
