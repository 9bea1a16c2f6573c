#!/usr/bin/env python3
"""Validation figures of a model, beside the floor (mixture) and the ceiling (oracle ratio mask).

    python scripts/eval_default.py [--model runs/default/best.vsep] [--variants] [--jobs 2]

- MIR-1K protocol (bss_eval v3 on whole mono clips, length-weighted GNSDR/GSIR/GSAR) on the MIR-1K songs
  held out from training (configs/default.yaml: data.validation; both singers);
- museval (BSSEval v4, SiSEC 2018 medians) on the MUSDB18-HQ track in ../shared/data/musdb-hq.

The first row uses the separation defaults (one mask from the mid channel, half-overlapping patches).  With
``--variants`` it also scores other settings of the same model (a mask per channel, quarter overlap), which
is how the defaults in vocalsep/separate.py were chosen.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vocalsep import evaluate as ev
from vocalsep.config import load_config
from vocalsep.separate import Separator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="default: the shipped model")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "default.yaml")
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--no-references", action="store_true", help="skip the mixture and oracle rows")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    val = load_config(args.config).data.validation
    clips = ev.select_tracks(ev.load_tracks(DATA / "mir1k" / "train", "stems"), prefixes=val)
    hq = ev.load_tracks(DATA / "musdb-hq", "musdb-hq", "test")
    settings = {"model": {}}
    if args.variants:
        settings.update({
            "model, mask per channel": {"stereo": "channels"},
            "model, 1/4 patch overlap": {"patch_overlap": 0.25},
            "model, per channel, 1/4 ov.": {"stereo": "channels", "patch_overlap": 0.25},
        })
    rows = []
    estimators = [(name, ev.SeparatorEstimator(Separator(args.model, **kw), args.model)) for name, kw in settings.items()]
    if not args.no_references:
        estimators += [("mixture (floor)", ev.MixtureEstimator()), ("oracle IRM (ceiling)", ev.OracleIRM())]
    for name, est in estimators:
        t = time.perf_counter()
        m = ev.evaluate_mir1k(clips, est, jobs=args.jobs)["aggregate"]
        h = ev.evaluate_museval(hq, est, jobs=args.jobs)["aggregate"]
        rows.append((name, m, h, time.perf_counter() - t))
        print(f"done: {name} ({rows[-1][3]:.0f} s)", flush=True)

    print(f"\nMIR-1K validation: {len(clips)} clips of songs {', '.join(val)}; MUSDB18-HQ: {', '.join(t.name for t in hq)}")
    print(f"{'':28s} | {'MIR-1K vocals':^20s} | {'MIR-1K accomp.':^20s} | {'MUSDB18-HQ SDR':^15s}")
    print(f"{'method':28s} | {'GNSDR':>6s} {'GSIR':>6s} {'GSAR':>6s} | {'GNSDR':>6s} {'GSIR':>6s} {'GSAR':>6s} | "
          f"{'vocals':>7s} {'accomp':>7s}")
    for name, m, h, _ in rows:
        v, a = m["vocals"], m["accompaniment"]
        print(f"{name:28s} | {v['GNSDR']:6.2f} {v['GSIR']:6.2f} {v['GSAR']:6.2f} | {a['GNSDR']:6.2f} {a['GSIR']:6.2f} "
              f"{a['GSAR']:6.2f} | {h['vocals']['SDR']:7.2f} {h['accompaniment']['SDR']:7.2f}")


if __name__ == "__main__":
    main()
