"""The harness: models, reference training and its cache, metrics, records,
leaderboard and the command line.  Import submodules directly (this package
imports nothing heavy, so ``unlearnbench --help`` stays fast)."""
