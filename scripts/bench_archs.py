#!/usr/bin/env python3
"""The cost side of the architecture ablation (issue 15): every registered architecture, in one run.

For each architecture, its shipped config (``configs/archs/NAME.yaml``; ``configs/default.yaml`` for the
U-Net) is built with seeded random weights and measured:

- weights (parameters);
- training step: seconds per Adam step on a fixed batch of the config's size (network only, after the
  first, tracing step; the data pipeline is scripts/bench_train.py's);
- separation: the network exported to LiteRT (float16) inside a model file, then ``Separator.separate`` on
  the decoded 166 s song, in this process: seconds of audio per second of wall time (median of ``--runs``).

Quality does not depend on any of this: trained models are scored by scripts/unseen.py.  The figures depend
on what else runs on the machine, so the load average is printed with them.

    python scripts/bench_archs.py [--arch NAME ...] [--steps 5] [--runs 3] [--song PATH]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
SONG = ROOT.parent / "shared" / "data" / "songs" / "Fantasma - Los Rombos.mp3"


def config_of(name: str):
    from vocalsep.config import load_config

    path = ROOT / "configs" / ("default.yaml" if name == "unet" else f"archs/{name}.yaml")
    return load_config(path)


def step_seconds(cfg, model, steps: int) -> float:
    """Seconds per training step of ``model`` on one fixed random batch of the config's size."""
    from vocalsep.frontend import for_model
    from vocalsep.train import make_optimizer, make_steps

    bs = cfg.train.batch_size
    fe = for_model(cfg.spectral, cfg.model)
    step = make_steps(model, make_optimizer(cfg.train, 1e-4), bs, fe.training_loss(cfg.train.loss)).train
    rng = np.random.default_rng(0)
    x = rng.random((bs,) + tuple(model.input_shape[1:])).astype(np.float32)
    y = (rng.random((bs,) + tuple(model.output_shape[1:])) * 0.5).astype(np.float32)
    float(step(x, y, y))  # tracing
    t = time.perf_counter()
    for _ in range(steps):
        float(step(x, y, y))
    return (time.perf_counter() - t) / steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", action="append", help="architectures to measure (default: all registered)")
    ap.add_argument("--steps", type=int, default=5, help="timed training steps per architecture")
    ap.add_argument("--runs", type=int, default=3, help="timed separations per architecture")
    ap.add_argument("--song", type=Path, default=SONG)
    args = ap.parse_args()

    import keras

    from bench_separate import median_seconds  # (scripts/, beside this one)

    from vocalsep import Separator, audio
    from vocalsep.model import ModelFile, build_model
    from vocalsep.models import arch_names

    names = args.arch or arch_names()
    x, sr = audio.read(args.song)
    seconds = len(x) / sr
    print(f"{args.song.name}: {seconds:.0f} s, {x.shape[1]} channels, {sr} Hz; "
          f"load average %.1f %.1f %.1f on %d cores" % (*os.getloadavg(), os.cpu_count() or 0), flush=True)
    print("\n| arch | weights | training step (batch 8) | separation, LiteRT (x real time) |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            cfg = config_of(name)
            keras.utils.set_random_seed(0)
            model = build_model(cfg.model)
            dt_step = step_seconds(cfg, model, args.steps)
            path = Path(tmp) / f"{name}.vsep"
            ModelFile.from_keras(model, cfg.spectral, cfg.model).save(path)
            sep = Separator(path, backend="litert")
            sep.separate(x[: sr * 10], sr)  # warm-up
            m = median_seconds(lambda: sep.separate(x, sr), args.runs)
            print(f"| `{name}` | {model.count_params() / 1e6:.2f} M | {dt_step:.2f} s | "
                  f"{seconds / m:.0f}x |", flush=True)
    print("\nload average after: %.1f %.1f %.1f" % os.getloadavg())


if __name__ == "__main__":
    main()
