"""How many threads torch computes with."""
from __future__ import annotations

import os

import torch


def set_threads(threads: int | None = None) -> None:
    """``threads`` torch threads; None: Slurm's allocation, else an explicit
    OMP_NUM_THREADS, else every core this process may use."""
    if threads is None:
        threads = int(os.environ.get("SLURM_CPUS_PER_TASK") or os.environ.get("OMP_NUM_THREADS") or 0) or (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    torch.set_num_threads(max(1, threads))
