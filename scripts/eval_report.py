#!/usr/bin/env python
"""Print the tables for a note from ``vocalsep evaluate --out`` JSON files.

    python scripts/eval_report.py results/*.json            # one summary table per protocol (markdown)
    python scripts/eval_report.py --tracks results/irm.json  # and each file's per-track table

SiSEC 2018 files give the median SDR / SIR / SAR / ISR over tracks; MIR-1K files give GNSDR / GSIR / GSAR
(length-weighted means over clips).  Each row names the method (and the model file or estimates folder).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from vocalsep.evaluate import TARGETS, V3_AGGREGATES, V4_METRICS, format_table


def _label(r: dict) -> str:
    m = r["method"]
    extra = m.get("model") or m.get("estimates")
    return f"{m['method']} ({Path(extra).name})" if extra else m["method"]


def _held(r: dict) -> str:
    s = str(r["n_tracks"])
    return s + (f" (+{r['n_left_out']} left out)" if r["n_left_out"] else "")


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.2f}"


def summary(results: list[dict], protocol: str) -> str:
    metrics = V3_AGGREGATES[:3] if protocol == "mir1k" else V4_METRICS
    unit = "clips" if protocol == "mir1k" else "tracks"
    cols = [f"{t[:3]}. {m}" for t in TARGETS for m in metrics]
    lines = ["| method | data | " + unit + " | " + " | ".join(cols) + " |",
             "|---|---|---|" + "---:|" * len(cols)]
    for r in results:
        agg = r["aggregate"] or {t: {} for t in TARGETS}
        data = r.get("data", {})
        path = Path(data.get("path", "?"))
        where = "/".join(path.parts[-2:]) if data.get("dataset") == "stems" else f"{path.name}/{data.get('subset')}"
        vals = [_fmt(agg[t].get(m)) for t in TARGETS for m in metrics]
        lines.append(f"| {_label(r)} | {where} | {_held(r)} | " + " | ".join(vals) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--tracks", action="store_true", help="also print each file's per-track table")
    args = ap.parse_args(argv)
    results = []
    for f in args.files:
        try:
            results.append(json.loads(f.read_text()))
        except (OSError, json.JSONDecodeError) as e:
            print(f"{f}: cannot read ({e})", file=sys.stderr)
            return 1
    for protocol, title in (("sisec18", "BSSEval v4, median over tracks of per-track medians over 1 s windows "
                                        "(SiSEC 2018), dB"),
                            ("mir1k", "bss_eval v3 on whole mono clips, length-weighted means (MIR-1K), dB")):
        rs = [r for r in results if r.get("protocol") == protocol]
        if rs:
            print(f"{title}\n\n{summary(rs, protocol)}\n")
    if args.tracks:
        for f, r in zip(args.files, results):
            print(f"{f}:\n{format_table(r)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
