"""Model architectures, registered by name (harness/models/registry.py).

Every model is a :class:`Classifier` (harness/models/base.py): ``features(x)``
is the penultimate representation, ``head`` the final ``nn.Linear``.  Each
architecture is a module of this package that registers itself; importing
the package imports them all, here, in one place.
"""
from . import convnets, mlp, rf_linear  # noqa: E402,F401  (register cnn, resnet18, mlp, rf_linear)
from .base import Classifier, InputSpec, Normalize
from .registry import (
                       ModelInfo,
                       build_model,
                       check_model_arguments,
                       get_model,
                       list_models,
                       model_arguments,
                       model_origin,
                       register_model,
                       unregister_model,
)

__all__ = ["Classifier", "InputSpec", "ModelInfo", "Normalize", "build_model", "check_model_arguments", "get_model",
           "list_models", "model_arguments", "model_origin", "register_model", "unregister_model"]
