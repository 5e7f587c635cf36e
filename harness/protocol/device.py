"""Where and how runs compute: the device, mixed precision and determinism.

These settings change speed (and, on a GPU, the last bits of the numbers) but
not what a run *is*, so they are not part of run keys; every record stores
them under ``env``.
"""
from __future__ import annotations

import os

import torch

from unlearnbench.methods import set_autocast

from ..errors import UsageError

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {name!r} requested but CUDA is not available; accepted here: auto, cpu")
    return torch.device(name)


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of forward passes, or None for plain fp32.

    ``auto``: bf16 on a CUDA device that supports it, else fp16 (with loss
    scaling in the training loop); fp32 on the CPU, where autocast would
    make the small models slower, not faster.
    """
    if name == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if name not in PRECISIONS:
        raise UsageError(f"unknown precision {name!r}; accepted: auto, {', '.join(PRECISIONS)}")
    if PRECISIONS[name] is not None and device.type != "cuda":
        raise UsageError(f"precision {name!r} is for CUDA devices; on {device.type} use auto or fp32")
    return PRECISIONS[name]


def precision_name(dtype: torch.dtype | None) -> str:
    return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]


def configure_backends(device: torch.device, deterministic: bool, amp_dtype: torch.dtype | None = None) -> None:
    """Mixed precision for the training loop and evaluation (``amp_dtype``,
    CUDA only); deterministic kernels on request, otherwise let cuDNN pick the
    fastest convolution algorithms (they can differ from run to run)."""
    set_autocast(amp_dtype)
    if deterministic and device.type == "cuda":
        # cuBLAS needs this before its first handle is created to be deterministic
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if deterministic or torch.are_deterministic_algorithms_enabled():
        # only when it changes something: the call imports torch._inductor (~1-2 s at start-up)
        torch.use_deterministic_algorithms(deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.deterministic = deterministic
        torch.backends.cudnn.benchmark = not deterministic
