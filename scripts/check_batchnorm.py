"""Whether a trained model's batch-norm running averages match what it learnt: the validation loss of its
run's fixed validation patches (``vocalsep.data.validation_patches``, as training computes ``val_loss``)
with the layers in inference mode (running averages, as separation runs) and in training mode (each
batch's own statistics; dropout on too, which alone raises the loss a little).  A much lower loss in
training mode means inference normalises differently from training (docs/choices.md, the R2 networks).

    python scripts/check_batchnorm.py RUN_DIR [RUN_DIR ...]    # folders with config.yaml and model.vsep
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np


def losses(run: Path, count: int = 64, batch: int = 8) -> tuple[float, float]:
    """(inference-mode, training-mode) mean L1 loss (vocals) per validation patch of ``run``'s model."""
    from vocalsep import data as datamod
    from vocalsep.config import load_config
    from vocalsep.frontend import l1_loss
    from vocalsep.model import ModelFile

    cfg = load_config(run / "config.yaml")
    _, val = datamod.split_songs(datamod.discover_all(cfg.data), cfg.data.validation, cfg.data.validation_fraction)
    mix, voc, _ = datamod.validation_patches(val, cfg.spectral, cfg.model, count)
    if not len(mix):
        raise SystemExit(f"{run}: no validation patches")
    model = ModelFile.load(run / "model.vsep").keras_model()
    out = []
    for training in (False, True):
        total = sum(float(np.sum(l1_loss(model(mix[i:i + batch], training=training), mix[i:i + batch],
                                         voc[i:i + batch]))) for i in range(0, len(mix), batch))
        out.append(total / len(mix))
    return out[0], out[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print("| run | val loss, inference mode | training mode |\n|---|---|---|")
    for run in args.runs:
        inference, training = losses(run)
        print(f"| {run} | {inference:.5f} | {training:.5f} |", flush=True)


if __name__ == "__main__":
    main()
