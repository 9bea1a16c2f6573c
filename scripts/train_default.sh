#!/usr/bin/env bash
# Rebuild the model shipped in vocalsep/models/default.vsep from ../shared/data (run from the repo root).
# Wall time: ~100 minutes on 2 CPU cores.  Then pick runs/default/best.vsep (lowest validation loss),
# score it with scripts/eval_default.sh, and copy it to vocalsep/models/default.vsep if it beats the old one.
set -euo pipefail
cd "$(dirname "$0")/.."
vocalsep train --config configs/default.yaml --out "${1:-runs/default}" "${@:2}"
