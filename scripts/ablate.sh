#!/usr/bin/env bash
# Ablations of the training recipe (docs/choices.md, "The training recipe measured in 3000-step runs"), run
# from the repo root:
#
#   scripts/ablate.sh [NAME ...]     configs/ablations/NAME.yaml; default: every file there, in the pairs
#                                    they ran in (~3.5 h in all on 2 cores)
#
# Trains each config into runs/ablations/NAME, two at a time (each config asks for one thread, so a pair
# shares the 2 cores: ~32-37 min a pair), then scores the final weights of every run on the held-out songs
# with scripts/eval_default.py.
set -euo pipefail
cd "$(dirname "$0")/.."
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(short noaug moreaug lr3e-4 short-seed1 noaug-seed1 lr2e-3 batch16
                                  batch4 constant-lr batch4-seed1 lr2e-3-seed1)
mkdir -p runs/ablations
for ((i = 0; i < ${#names[@]}; i += 2)); do
    for name in "${names[@]:i:2}"; do
        vocalsep train --config "configs/ablations/$name.yaml" --out "runs/ablations/$name" \
            > "runs/ablations/$name.log" 2>&1 &
    done
    wait
done
models=()
for name in "${names[@]}"; do models+=(--model "runs/ablations/$name/model.vsep"); done
python scripts/eval_default.py "${models[@]}" --no-references
