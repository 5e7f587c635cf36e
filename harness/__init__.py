"""The harness: models, reference training and its cache, metrics, records,
leaderboard and the command line.  Import submodules directly (this package
imports nothing heavy, so ``unlearnbench --help`` stays fast)."""
import os

# Idle OpenMP threads sleep instead of spinning.  torch's intra-op threads
# spin-wait between parallel regions by default; on a machine shared with
# other jobs (a busy workstation, an oversubscribed cluster node) a spinning
# thread loses the scheduler's favour and every small operation then waits
# for it: measured on 2 cores beside other jobs, digits/mlp training ran 85x
# and the small CNN 30x slower with 2 threads than with this setting, which
# changes no number (it is read once, when torch loads OpenMP, so it must be
# set before torch is imported; an explicit OMP_WAIT_POLICY wins).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
