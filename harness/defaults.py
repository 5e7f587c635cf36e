"""Every default the command line shows, in one torch-free module: the commands
build their options from these names (so ``--help`` never imports torch) and
the code they call takes the same names as its own defaults."""
from __future__ import annotations

RESULTS = "results"                 # the results folder of every command

# run / sweep: the benchmark's seeds (configs/default.toml says the same; a test compares them)
SEEDS = tuple(range(10))

# tune: the equal budget every method gets (harness/tuning/tune.py)
TUNE_TRIALS = 24
TUNE_SEEDS = (100, 101)             # validation seeds, disjoint from the benchmark's
TUNE_SAMPLER_SEED = 0
TUNE_JOBS = 1

# exactness (harness/studies/exactness.py)
EXACTNESS_FEATURES = 5000           # random features M of rf_linear
EXACTNESS_CONVERGENCE_SIGMA = 2.0

# forgetting-quality and per-example banks (harness/studies/)
FORGETTING_QUALITY_MODELS = 32      # N retrained and N unlearned models
SHADOWS = 32                        # S paired shadow models of per-example evidence
PROBE_SHADOWS = 8                   # the first P shadows the linear probe reads

# Slurm (harness/cluster/slurm.py, SlurmOptions)
SLURM_TIME_MIN = 60
SLURM_GPUS_PER_TASK = 0
SLURM_ARRAY_PARALLELISM = 64
SLURM_RUNS_PER_TASK = 0             # 0: sized automatically
SLURM_SIGNAL_DELAY_S = 90           # the job is told to checkpoint this long before its time limit
