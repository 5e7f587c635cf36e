"""Slurm sweeps through submitit: the task plan, submission and collection, and sacct-backed status."""
