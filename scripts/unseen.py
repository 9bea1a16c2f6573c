#!/usr/bin/env python3
"""The unseen-voice validation: does a training recipe separate singers it has never heard?

    python scripts/unseen.py RECIPE.yaml --name NAME [--seed 0] [--steps 3000]   # train both folds, score
    python scripts/unseen.py --score NAME [NAME ...]                              # score (and compare) runs
    python scripts/unseen.py --model FILE.vsep ...                                # score a model as it is
    python scripts/unseen.py --ensemble A.vsep --ensemble B.vsep                  # ... an ensemble of models
    python scripts/unseen.py --score NAME --variant wiener --variant power-0.8    # post-processing candidates

MIR-1K's training clips hold two singers, so a recipe is trained twice, leaving one singer out each time
(two folds), and each fold's model is scored on voices it never heard:

``no-amy``       trains on abjones' songs 1, 2, 4, 5 (33 clips) and 80 MUSDB18 previews; holds out all
                 of amy (16 songs, 132 clips: the unseen singer) and abjones_3 (10 clips: a held-out song
                 of the singer it heard).
``no-abjones``   trains on amy's songs but amy_6 and amy_13 (114 clips) and the same 80 previews; holds out
                 all of abjones (5 songs, 43 clips: the unseen singer) and amy_6, amy_13 (18 clips).

Both folds hold out the same 14 MUSDB18 previews (every 7th by name, configs/holdout.yaml) and never see
the two SiSEC 2011 songs (../shared/data/sisec2011, singers found nowhere else) nor the MUSDB18-HQ track.
Figures: MIR-1K GNSDR (bss_eval v3, length-weighted) on the unseen singer and on the heard singer's held-out
song(s); museval (BSSEval v4) median vocals / accompaniment SDR on the previews, the two SiSEC songs and
the HQ track.  The headline is the mean over the two folds of the unseen-singer vocals GNSDR.

Training runs the two folds side by side, one TensorFlow thread each (``train.threads: 1``), into
``--runs/NAME/<fold>`` (default ``runs/unseen``); a fold whose ``model.vsep`` exists is not trained again.
``--steps`` shortens the recipe (its cosine decay with it) so that several recipes fit into a session.
Scores are written to ``--runs/NAME/scores.json`` and printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

FOLDS = {
    # fold: (MIR-1K songs held out as the unseen singer, held-out songs of the singer it trains on)
    "no-amy": (["amy"], ["abjones_3"]),
    "no-abjones": (["abjones"], ["amy_6", "amy_13"]),
}


def previews() -> list[str]:
    """The 14 MUSDB18 previews that configs/holdout.yaml holds out (every 7th by name)."""
    from vocalsep.config import load_config

    return [v for v in load_config(ROOT / "configs" / "holdout.yaml").data.validation
            if not v.startswith(("abjones", "amy"))]


def fold_config(recipe: Path, fold: str, seed: int | None, steps: int | None, threads: int = 1) -> str:
    """The YAML of one fold: the recipe with the fold's songs held out and ``threads`` TensorFlow threads."""
    import yaml

    unseen, heard = FOLDS[fold]
    train: dict = {"threads": threads, "snapshot_every": 0}
    if seed is not None:
        train["seed"] = seed
    if steps is not None:
        train.update(steps=steps, lr_decay_steps=steps)
    return yaml.safe_dump({"extends": str(recipe.resolve()),
                           "data": {"validation": unseen + heard + previews()}, "train": train}, sort_keys=False)


def make_copies(recipe: Path, folds) -> None:
    """The shifted copies of the recipe's ``data.shift_copies`` (vocalsep/shifted.py) for every fold's training
    songs, made here once on both cores: the folds, side by side, would each make the songs they share."""
    from vocalsep import data, shifted
    from vocalsep.config import load_config

    cfg = load_config(recipe)
    if cfg.data.shift_copies <= 0:
        return
    songs = data.discover_all(cfg.data)
    todo = {}
    for fold in folds:
        unseen, heard = FOLDS[fold]
        for s in data.split_songs(songs, unseen + heard + previews())[0]:
            todo[(s.dataset, s.name)] = s
    t0 = time.time()
    shifted.with_copies(list(todo.values()), cfg.data, cfg.data.cache_dir or None, threads=os.cpu_count() or 1)
    print(f"shifted copies of {len(todo)} training songs ready in {time.time() - t0:.0f} s", flush=True)


def train_folds(recipe: Path, out: Path, seed: int | None, steps: int | None, folds=tuple(FOLDS),
                threads: int = 1) -> None:
    """Train the folds that have no model.vsep yet, side by side, each logging to <fold>.log."""
    out.mkdir(parents=True, exist_ok=True)
    make_copies(recipe, [f for f in folds if not (out / f / "model.vsep").exists()])
    procs = []
    for fold in folds:
        if (out / fold / "model.vsep").exists():
            print(f"{out / fold}: trained already", flush=True)
            continue
        cfg = out / f"{fold}.yaml"
        cfg.write_text(fold_config(recipe, fold, seed, steps, threads))
        resume = ["--resume"] if (out / fold / "checkpoint.npz").exists() else []
        log = open(out / f"{fold}.log", "a")
        cmd = [sys.executable, "-m", "vocalsep.cli", "train", "--config", str(cfg), "--out", str(out / fold)] + resume
        procs.append((fold, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), time.time()))
        print(f"training {fold}: {' '.join(cmd)}", flush=True)
    for fold, p, t0 in procs:
        if p.wait() != 0:
            for _, other, _ in procs:  # no fold left training without its script; killed, not stopped
                if other.poll() is None:  # (SIGTERM would save a model.vsep that a rerun takes for finished);
                    other.kill()          # its checkpoint stays, and a rerun resumes from it
                    other.wait()
            raise SystemExit(f"{out / fold}: training failed (exit {p.returncode}); see {out / fold}.log")
        print(f"{fold}: trained in {(time.time() - t0) / 60:.1f} min", flush=True)


def score_model(model: Path | None, fold: str, jobs: int, variant: str = "base", mir1k_only: bool = False) -> dict:
    """Every figure of one model, scored as the ``fold`` it was trained in (which MIR-1K songs count as
    unseen and as heard); ``variant``: a post-processing candidate of scripts/variants.py; ``mir1k_only``:
    the two MIR-1K columns alone (where the other data sets are not at hand)."""
    from vocalsep import evaluate as ev

    sys.path.insert(0, str(ROOT / "scripts"))
    import variants

    if variant == "mixture":      # the floor: the mixture as both estimates
        est = ev.MixtureEstimator()
    elif variant == "oracle":     # the ceiling of a magnitude mask: the ideal ratio mask at full resolution
        est = ev.OracleIRM()
    else:
        est = ev.SeparatorEstimator(variants.make(variant, model), model)
    mir1k = ev.load_tracks(DATA / "mir1k" / "train", "stems")
    unseen, heard = FOLDS[fold]
    out = {}
    for key, prefixes in (("unseen", unseen), ("heard", heard)):
        agg = ev.evaluate_mir1k(ev.select_tracks(mir1k, prefixes=prefixes), est, jobs=jobs)["aggregate"]
        out[key] = {t: {m: agg[t][m] for m in ("GNSDR", "GSIR", "GSAR")} for t in ("vocals", "accompaniment")}
    if mir1k_only:
        return out
    sets = {
        "previews": ev.select_tracks(ev.load_tracks(DATA / "musdb", "musdb", "train"), names=previews()),
        "sisec2011": ev.load_tracks(DATA / "sisec2011", "stems"),
        "musdb-hq": ev.load_tracks(DATA / "musdb-hq", "musdb-hq", "test"),
    }
    for key, tracks in sets.items():
        agg = ev.evaluate_museval(tracks, est, jobs=jobs)["aggregate"]
        out[key] = {t: {"SDR": agg[t]["SDR"], "SIR": agg[t]["SIR"]} for t in ("vocals", "accompaniment")}
    return out


COLUMNS = [("unseen", "GNSDR"), ("heard", "GNSDR"), ("previews", "SDR"), ("sisec2011", "SDR"), ("musdb-hq", "SDR")]


def table(rows: list[tuple[str, dict]]) -> str:
    """Rows of (label, scores) as a Markdown table: vocals / accompaniment per column."""
    head = "| run | fold | unseen singer GNSDR | heard singer GNSDR | 14 previews SDR | SiSEC 2011 SDR | MUSDB18-HQ SDR |"
    lines = [head, "|" + "---|" * 7]
    for label, scores in rows:
        for fold in [f for f in FOLDS if f in scores] + (["mean"] if all(f in scores for f in FOLDS) else []):
            if fold == "mean":
                s = {k: {t: {m: sum(scores[f][k][t][m] for f in FOLDS) / len(FOLDS) for m in (metric,)}
                         for t in ("vocals", "accompaniment")} for k, metric in COLUMNS
                     if all(k in scores[f] for f in FOLDS)}
            else:
                s = scores[fold]
            cells = [f"{s[k]['vocals'][m]:.2f} / {s[k]['accompaniment'][m]:.2f}" if k in s else "-"
                     for k, m in COLUMNS]
            lines.append(f"| {label} | {'**mean**' if fold == 'mean' else fold} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("recipe", type=Path, nargs="?", help="the training recipe (a YAML config) to validate")
    ap.add_argument("--name", help="run name: folds go to RUNS/NAME/<fold>")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--steps", type=int, default=None, help="shorten the recipe to this many steps")
    ap.add_argument("--score", nargs="+", default=[], metavar="NAME", help="score these runs (no training)")
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="score a model file in both folds' roles (e.g. the shipped one: it heard both singers)")
    ap.add_argument("--ensemble", type=Path, action="append", default=[],
                    help="a model file of one ensemble (repeat it for each member), scored like --model as one "
                         "model, their masks averaged (e.g. the two shipped seeds)")
    ap.add_argument("--variant", action="append", default=[],
                    help="post-processing to score (scripts/variants.py: power-P, shifts-N, wiener); repeatable; "
                         "default: base, separation as it ships")
    ap.add_argument("--fold", action="append", choices=list(FOLDS), default=[],
                    help="only this fold (repeatable; default: both): a run cut short, or a quick look")
    ap.add_argument("--references", action="store_true",
                    help="score the mixture (floor) and the oracle ratio mask (ceiling) in both folds' roles")
    ap.add_argument("--threads", type=int, default=1,
                    help="TensorFlow threads of each fold's training (default 1: the two folds side by side on "
                         "two cores; 2 for one --fold alone, e.g. a run too long to train as a pair)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "unseen")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--mir1k-only", action="store_true",
                    help="score the two MIR-1K columns alone (where the other data sets are not at hand); "
                         "runs and folds only (not --model, --ensemble, --references); a later run without it "
                         "scores such folds again in full")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    if args.ensemble and any(v.startswith("ensemble-") for v in args.variant):
        ap.error("--ensemble is one model already: score it without an ensemble-RUN variant")
    names = list(args.score)
    folds = args.fold or list(FOLDS)
    if args.recipe:
        if not args.name:
            ap.error("a recipe needs --name")
        if args.threads < 1:
            ap.error("--threads must be at least 1")
        train_folds(args.recipe, args.runs / args.name, args.seed, args.steps, folds, args.threads)
        names.append(args.name)
    rows = []
    for name in names:
        path = args.runs / name / "scores.json"
        scores = json.loads(path.read_text()) if path.exists() else {}  # variant -> fold -> figures
        for variant in args.variant or ["base"]:
            got = scores.setdefault(variant, {})
            for fold in folds:
                partial = fold in got and any(k not in got[fold] for k, _ in COLUMNS)  # scored --mir1k-only
                if fold not in got or (partial and not args.mir1k_only):
                    t = time.time()
                    got[fold] = score_model(args.runs / name / fold / "model.vsep", fold, args.jobs, variant,
                                            args.mir1k_only)
                    print(f"scored {name}/{fold} ({variant}) in {time.time() - t:.0f} s", flush=True)
                    path.write_text(json.dumps(scores, indent=1))
            rows.append((name if variant == "base" else f"{name}, {variant}", got))
    for model in args.model + ([args.ensemble] if args.ensemble else []):
        for variant in args.variant or ["base"]:
            label = " + ".join(map(str, model)) if isinstance(model, list) else str(model)
            rows.append((label + ("" if variant == "base" else f", {variant}"),
                         {f: score_model(model, f, args.jobs, variant) for f in folds}))
    if args.references:
        for ref in ("mixture", "oracle"):
            rows.append((f"({ref})", {f: score_model(None, f, args.jobs, ref) for f in folds}))
    if not rows:
        ap.error("nothing to do: give a recipe, --score NAME or --model FILE")
    print()
    print(table(rows))


if __name__ == "__main__":
    main()
