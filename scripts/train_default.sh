#!/usr/bin/env bash
# Rebuild the model shipped in vocalsep/models/default.vsep from ../shared/data (run from the repo root).
# Phase 1 (configs/default.yaml): 9000 steps from scratch, ~55 min on 2 idle cores.
# Phase 2 (configs/default_phase2.yaml): a warm restart from phase 1's best weights, 4000 steps, ~25 min.
# Then score runs/default/best.vsep and runs/default2/best.vsep with scripts/eval_default.py --model ...
# and copy the better one on the validation songs to vocalsep/models/default.vsep.
set -euo pipefail
cd "$(dirname "$0")/.."
vocalsep train --config configs/default.yaml --out runs/default
vocalsep train --config configs/default_phase2.yaml --out runs/default2
