#!/usr/bin/env python3
"""Average the weights of several model files of one network into one model file (checkpoint averaging):

    python scripts/average_models.py RUN/step-007000.vsep RUN/step-008000.vsep RUN/model.vsep OUT.vsep

Issue 14's other post-processing candidate beside an ensemble: where an ensemble of N models costs N times
the network's time at separation, the average of N snapshots of one run costs one (Izmailov et al. 2018's
stochastic weight averaging, applied to the snapshots a run keeps with ``train.snapshot_every``).  The
inputs must hold the same settings (architecture, its parameters, the STFT); every weight array, the batch
norms' running means and variances included, becomes the mean of the inputs' (computed in float32, stored
in float16 as every model file is).  The running statistics are averaged, not measured again on the data:
an approximation that holds for snapshots close in weights, as those of one run's low-learning-rate end are.

Needs TensorFlow (the ``train`` extra) for the LiteRT conversion.  OUT must not exist; it gets the first
input's info less its per-weights figures (steps, validation loss and SDR), with the averaged files and
their steps under ``averaged``; models of runs with different seeds are averaged with a warning (their units
need not line up).  Errors are one line and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


#: training's figures in a model file's info that describe one set of weights, not their average
PER_WEIGHTS = ("steps", "val_loss", "best_val_loss", "val_sdr")


def average_weights(files) -> list[np.ndarray]:
    """The element-wise mean of the ``weights`` of ``files`` (ModelFile objects of the same settings and
    weight shapes), in float32: one array per weight, of that weight's shape.  Raises VocalsepError if their
    settings or shapes differ, or a file is given twice."""
    from dataclasses import asdict

    from vocalsep.errors import VocalsepError

    first = files[0]
    seen = set()
    for f in files:
        key = Path(f.path).resolve()
        if key in seen:
            raise VocalsepError(f"{f.path}: given twice; each snapshot counts once")
        seen.add(key)
        if f.model.to_dict() != first.model.to_dict() or asdict(f.spectral) != asdict(first.spectral):
            raise VocalsepError(f"{f.path}: its settings differ from {first.path}'s; only snapshots of one "
                                "network can be averaged")
        if [w.shape for w in f.weights] != [w.shape for w in first.weights]:
            raise VocalsepError(f"{f.path}: its weight arrays differ in number or shape from {first.path}'s")
    return [np.mean([f.weights[i].astype(np.float32) for f in files], axis=0) for i in range(len(first.weights))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("models", type=Path, nargs="+", help="two or more model files, then OUT")
    args = ap.parse_args()
    *inputs, out = args.models
    os.environ["KERAS_BACKEND"] = "tensorflow"  # before Keras is imported: only TensorFlow converts

    from vocalsep.errors import VocalsepError
    from vocalsep.extras import import_tensorflow, require

    try:
        if len(inputs) < 2:
            raise VocalsepError("give two or more model files to average, then the output file")
        if out.exists():
            raise VocalsepError(f"{out}: exists; give a new file")
        require("train", "scripts/average_models.py", ("tensorflow", "keras"))
        import_tensorflow()
        from vocalsep.export import to_tflite
        from vocalsep.model import ModelFile

        files = [ModelFile.load(p) for p in inputs]
        mean = average_weights(files)
        seeds = {f.info.get("seed") for f in files}
        if len(seeds) > 1:  # independent runs' units do not line up: their average is rarely a network
            print(f"warning: the models come from runs of different seeds ({sorted(map(str, seeds))}); "
                  "averaging is meant for snapshots of one run", file=sys.stderr)
        info = {k: v for k, v in files[0].info.items() if k not in PER_WEIGHTS}
        info["averaged"] = [f"{p} (step {f.info.get('steps', '?')})" for p, f in zip(inputs, files)]
        mf = ModelFile(files[0].spectral, files[0].model, mean, None, info)
        mf.tflite = to_tflite(mf.keras_model(), mf.model)
        mf.save_new(out)  # never over OUT, also if it appeared meanwhile
    except VocalsepError as e:
        raise SystemExit(f"error: {e}")
    print(f"{out}: written, the mean of {len(inputs)} models")


if __name__ == "__main__":
    main()
