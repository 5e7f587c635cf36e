#!/usr/bin/env bash
# MUSO's regime (issue 12): the whole study, part by part, into results/regime/.
# Each part prints its wall time; a rerun skips every finished run (and reuses
# cached reference models), so an interrupted study resumes where it stopped.
# Presets and measured sizes: configs/regime_*.toml (read their headers).
#   scripts/regime_study.sh            # everything: ~2.2 CPU-hours measured (see the presets' headers)
#   scripts/regime_study.sh bridge     # some parts: bridge | steps | sweep-digits | sweep-fashion
# On 2 cores, two halves in parallel (~1.3 h; runs and cached models are safe to share):
#   UB_ARGS="--cpus-per-task 1" scripts/regime_study.sh sweep-fashion &
#   UB_ARGS="--cpus-per-task 1" scripts/regime_study.sh bridge steps sweep-digits
set -euo pipefail
cd "$(dirname "$0")/.."
UB=${UNLEARNBENCH:-unlearnbench}
read -r -a EXTRA <<< "${UB_ARGS:-}"
part() {   # part NAME COMMAND...: run one command of the study, timed
    local name=$1; shift
    local start=$SECONDS
    echo "== $name: $*" >&2
    "$@" "${EXTRA[@]}" --no-leaderboard
    echo "== $name: $((SECONDS - start)) s" >&2
}
SELECTED=" ${*:-bridge steps sweep-digits sweep-fashion} "
want() { [[ "$SELECTED" == *" $1 "* ]]; }

if want bridge; then   # part 1: head-only bridge, 3 seeds, every method
    part bridge-digits $UB run --config regime_bridge_digits
    part bridge-fashion $UB run --config regime_bridge_fashion
fi
if want steps; then    # part 1: distance against SGD steps (Original, Retrain, MUSO; seed 0)
    for E in 10 30; do      # 100: the preset itself
        part "steps-digits-$E" $UB run --config regime_bridge_digits --seeds 0 --methods original,retrain,muso \
            --train-arg epochs=$E --method-arg muso.epochs=$E
    done
    for E in 30 100; do     # 200: the preset itself
        part "steps-fashion-$E" $UB run --config regime_bridge_fashion --seeds 0 --methods original,retrain,muso \
            --train-arg epochs=$E --method-arg muso.epochs=$E
    done
fi
if want sweep-digits; then   # part 2: width sweep, digits MLP, both losses
    part sweep-digits-ce $UB run --config regime_sweep_digits
    part sweep-digits-squared $UB run --config regime_sweep_digits --train-arg loss=squared
fi
if want sweep-fashion; then  # part 2: width sweep, Fashion-MNIST CNN head, both losses
    part sweep-fashion-ce $UB run --config regime_sweep_fashion
    part sweep-fashion-squared $UB run --config regime_sweep_fashion --train-arg loss=squared
fi
$UB leaderboard --out results/regime   # results/regime/leaderboard.md and its figures
$UB leaderboard                        # the main leaderboard.md, with the "MUSO's regime" section
