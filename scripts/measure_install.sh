#!/bin/bash
# The README's install table: for each install line, a fresh virtual environment, `pip install` timed with an
# empty pip cache (every wheel fetched from the package index), and the environment's size (du, pip and
# setuptools included).  Run from the repository root on a quiet machine:
#   bash scripts/measure_install.sh            # all four lines
#   bash scripts/measure_install.sh . ".[eval]"  # some of them
set -euo pipefail
specs=("$@")
[ ${#specs[@]} -eq 0 ] && specs=(. ".[train]" ".[eval]" ".[all]")
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
echo "| command | size | time |"
echo "| --- | --- | --- |"
for spec in "${specs[@]}"; do
  v="$root/venv"
  rm -rf "$v"
  python3 -m venv "$v"
  start=$(date +%s.%N)
  PIP_NO_CACHE_DIR=1 "$v/bin/pip" install --quiet --disable-pip-version-check "$spec" >/dev/null
  end=$(date +%s.%N)
  size=$(du -sh "$v" | cut -f1)
  printf '| `pip install %s` | %s | %.0f s |\n' "$spec" "$size" "$(echo "$end - $start" | bc)"
done
