#!/usr/bin/env python3
"""Validation figures of a model, beside the floor (mixture) and the ceiling (oracle ratio mask).

    python scripts/eval_default.py [--model runs/default/best.vsep ...] [--ensemble A.vsep --ensemble B.vsep]
                                   [--snapshots runs/holdout]
                                   [--config configs/holdout.yaml] [--variants] [--jobs 2]

- MIR-1K protocol (bss_eval v3 on whole mono clips, length-weighted GNSDR/GSIR/GSAR) on the MIR-1K songs
  held out from training (``data.validation`` of ``--config``; both singers);
- museval (BSSEval v4, SiSEC 2018 medians) on the MUSDB18-HQ track in ../shared/data/musdb-hq;
- museval on the MUSDB18 previews that ``--config`` holds out, if it holds any out (configs/holdout.yaml
  holds out 14).

The shipped models (configs/default.yaml, two seeds) have trained on the previews; a model trained on everything
(configs/all.yaml) has seen all of these songs but the MUSDB18-HQ track.  Such figures are training-set
figures.

Each model is scored with the separation defaults (one mask from the mid channel, patches overlapping by a
quarter).  ``--snapshots DIR`` scores the step-*.vsep files a run kept (train.snapshot_every) and its
best.vsep.  With ``--variants`` it also scores other settings of the first model (a mask per channel, half
overlap), which is how the defaults in vocalsep/separate.py were chosen.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from vocalsep import evaluate as ev
from vocalsep.config import load_config
from vocalsep.data import matches_name
from vocalsep.separate import Separator

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


class SoftenedSeparator(Separator):
    """A Separator whose model masks are raised to ``power`` (< 1: softer masks).  An experiment, not an
    option of vocalsep: docs/choices.md, "How sharp the mask is"."""

    def __init__(self, *args, power: float = 1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.power = power

    def _block_masks(self, x, sr):
        return super()._block_masks(x, sr) ** self.power


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="a model file to score (repeatable); default: the shipped models, as the ensemble they ship as")
    ap.add_argument("--ensemble", type=Path, action="append", default=[],
                    help="a model file of one ensemble (repeat it for each member): scored as one model, their "
                         "masks averaged, as vocalsep separate -m A -m B does; beside the shipped pair unless "
                         "--model is given")
    ap.add_argument("--snapshots", type=Path, default=None, help="score a run folder's step-*.vsep and best.vsep")
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "holdout.yaml",
                    help="whose data.validation names the held-out songs (default: the validation run's)")
    ap.add_argument("--variants", action="store_true")
    ap.add_argument("--no-references", action="store_true", help="skip the mixture and oracle rows")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    val = load_config(args.config).data.validation
    mir1k = ev.load_tracks(DATA / "mir1k" / "train", "stems")
    in_mir1k = [v for v in val if any(matches_name(t.name, v) for t in mir1k)]
    if not in_mir1k:
        raise SystemExit(f"{args.config}: data.validation holds out no MIR-1K song; use configs/holdout.yaml")
    clips = ev.select_tracks(mir1k, prefixes=in_mir1k)
    hq = ev.load_tracks(DATA / "musdb-hq", "musdb-hq", "test")
    previews = []
    if len(in_mir1k) < len(val):  # the rest are MUSDB18 previews
        previews = ev.select_tracks(ev.load_tracks(DATA / "musdb", "musdb", "train"),
                                    names=[v for v in val if v not in in_mir1k])
    models = list(args.model)
    if args.snapshots:
        models += sorted(args.snapshots.glob("step-*.vsep")) + [args.snapshots / "best.vsep"]
    settings = [(str(m) if m else "model", m, {}) for m in models or [None]]  # no --model: the shipped pair
    if args.ensemble:
        settings.append((" + ".join(map(str, args.ensemble)), list(args.ensemble), {}))
    if args.variants:
        settings += [(f"model, {name}", models[0] if models else None, kw) for name, kw in [
            ("mask per channel", {"stereo": "channels"}),
            ("1/2 patch overlap", {"patch_overlap": 0.5}),
            ("per channel, 1/2 ov.", {"stereo": "channels", "patch_overlap": 0.5}),
            ("mask ** 0.85", {"power": 0.85}),
            ("mask ** 0.7", {"power": 0.7}),
        ]]
    rows = []
    estimators = [(name, ev.SeparatorEstimator(SoftenedSeparator(m, **kw), m)) for name, m, kw in settings]
    if not args.no_references:
        estimators += [("mixture (floor)", ev.MixtureEstimator()), ("oracle IRM (ceiling)", ev.OracleIRM())]
    for name, est in estimators:
        t = time.perf_counter()
        m = ev.evaluate_mir1k(clips, est, jobs=args.jobs)["aggregate"]
        h = ev.evaluate_museval(hq, est, jobs=args.jobs)["aggregate"]
        p = ev.evaluate_museval(previews, est, jobs=args.jobs)["aggregate"] if previews else None
        rows.append((name, m, h, p, time.perf_counter() - t))
        print(f"done: {name} ({rows[-1][-1]:.0f} s)", flush=True)

    print(f"\nMIR-1K validation: {len(clips)} clips of songs {', '.join(in_mir1k)}; "
          f"MUSDB18-HQ: {', '.join(t.name for t in hq)}"
          + (f"; {len(previews)} held-out MUSDB18 previews" if previews else ""))
    width = max(28, *(len(r[0]) for r in rows))
    print(f"{'':{width}s} | {'MIR-1K vocals':^20s} | {'MIR-1K accomp.':^20s} | {'MUSDB18-HQ SDR':^15s}"
          + (f" | {'previews SDR':^15s}" if previews else ""))
    print(f"{'method':{width}s} | {'GNSDR':>6s} {'GSIR':>6s} {'GSAR':>6s} | {'GNSDR':>6s} {'GSIR':>6s} {'GSAR':>6s} | "
          f"{'vocals':>7s} {'accomp':>7s}" + (f" | {'vocals':>7s} {'accomp':>7s}" if previews else ""))
    for name, m, h, p, _ in rows:
        v, a = m["vocals"], m["accompaniment"]
        print(f"{name:{width}s} | {v['GNSDR']:6.2f} {v['GSIR']:6.2f} {v['GSAR']:6.2f} | {a['GNSDR']:6.2f} "
              f"{a['GSIR']:6.2f} {a['GSAR']:6.2f} | {h['vocals']['SDR']:7.2f} {h['accompaniment']['SDR']:7.2f}"
              + (f" | {p['vocals']['SDR']:7.2f} {p['accompaniment']['SDR']:7.2f}" if p else ""))


if __name__ == "__main__":
    main()
