#!/usr/bin/env python
"""Training throughput and memory on this machine.

1. data pipeline alone: patches/s of the example sampler in this process, and of BatchStream with 1 and 2
   worker processes (consumed as fast as they come);
2. full training steps (the paper model of the config, batch 8): steps/s and patches/s on fixed batches
   (network only) and fed by BatchStream (end to end);
3. peak RSS of a short ``vocalsep train`` run (own process, data workers included) on 10 synthetic songs and
   on 2,000, to show that memory does not grow with the number of songs.

    python scripts/bench_train.py [--config configs/unet.yaml] [--data ../shared/data/mir1k/train ...]
                                  [--steps 20] [--rss-steps 10] [--songs 2000]

The figures depend on what else runs on the machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from vocalsep import data as datamod  # noqa: E402
from vocalsep.config import load_config  # noqa: E402
from vocalsep.shifted import with_copies  # noqa: E402


def load_avg() -> str:
    return "load average %.1f %.1f %.1f on %d cores" % (*os.getloadavg(), os.cpu_count() or 0)


def bench_pipeline(cfg, batches: int) -> None:
    songs = datamod.discover_all(cfg.data)
    train, _ = datamod.split_songs(songs, cfg.data.validation, cfg.data.validation_fraction)
    train = with_copies(train, cfg.data, cfg.data.cache_dir or None)  # data.shift_copies, as training makes them
    sampler = datamod.PatchSampler(train, cfg.spectral, cfg.model, cfg.data)
    bs = cfg.train.batch_size
    print(f"data: {len(train)} training songs from {', '.join(cfg.data.datasets)}; "
          f"examples {sampler.frontend.example_shapes()[0]} at {cfg.spectral.sample_rate} Hz, batch {bs}")
    t = time.perf_counter()
    for _ in datamod.iter_batches(sampler, bs, seed=0, count=batches):
        pass
    dt = time.perf_counter() - t
    print(f"  pipeline, in process:      {batches * bs / dt:7.1f} patches/s ({dt / batches * 1000:.0f} ms per batch)")
    for workers in (1, 2):
        with datamod.BatchStream(sampler, bs, seed=0, workers=workers) as stream:
            next(stream)  # start-up
            t = time.perf_counter()
            for _ in range(batches):
                next(stream)
            dt = time.perf_counter() - t
        print(f"  pipeline, {workers} worker process{'es' if workers > 1 else '  '}: {batches * bs / dt:7.1f} patches/s")
    return sampler


def bench_steps(cfg, sampler, steps: int) -> None:
    import keras

    from vocalsep.model import build_model, dtype_policy
    from vocalsep.train import make_optimizer, make_steps

    bs = cfg.train.batch_size
    keras.utils.set_random_seed(0)
    with dtype_policy(cfg.train.precision):  # as vocalsep.train builds it
        model = build_model(cfg.model)
    opt = make_optimizer(cfg.train, cfg.train.learning_rate)
    step = make_steps(model, opt, bs, sampler.frontend.training_loss(cfg.train.loss)).train
    mix, voc, acc = sampler.batch(np.random.default_rng(0), bs)
    t = time.perf_counter()
    step(mix, voc, acc)
    print(f"training: {model.count_params() / 1e6:.2f} M parameters, {cfg.model.arch} ({cfg.train.precision}), "
          f"input {model.input_shape[1:]}, "
          f"first step (tracing) {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    for _ in range(steps):
        float(step(mix, voc, acc))
    dt = time.perf_counter() - t
    print(f"  steps on a fixed batch:    {steps / dt:6.2f} steps/s = {steps * bs / dt:6.1f} patches/s")
    with datamod.BatchStream(sampler, bs, seed=0, workers=cfg.data.workers) as stream:
        next(stream)
        t = time.perf_counter()
        for _ in range(steps):
            m, v, a = next(stream)
            float(step(m, v, a))
        dt = time.perf_counter() - t
    print(f"  steps fed by {cfg.data.workers} data worker: {steps / dt:6.2f} steps/s = {steps * bs / dt:6.1f} patches/s")


def make_songs(root: Path, n: int, seconds: float = 5.0, sr: int = 8000) -> None:
    rng = np.random.default_rng(0)
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    for i in range(n):
        d = root / f"song{i:05d}"
        d.mkdir(parents=True)
        f0 = rng.uniform(150, 500)
        v = 0.2 * np.sin(2 * np.pi * f0 * t) * (1 + 0.3 * np.sin(2 * np.pi * rng.uniform(1, 4) * t))
        a = 0.1 * np.sin(2 * np.pi * rng.uniform(50, 120) * t) + 0.03 * rng.standard_normal(len(t))
        sf.write(d / "vocals.flac", v.astype(np.float32), sr)
        sf.write(d / "accompaniment.flac", a.astype(np.float32), sr)


def _children_hwm() -> int:
    """Largest peak RSS (VmHWM, KiB) among this process's live children, from /proc."""
    me, best = str(os.getpid()), 0
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[1] != me:
                    continue
            with open(f"/proc/{d}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        best = max(best, int(line.split()[1]))
        except (OSError, IndexError, ValueError):
            pass
    return best


def rss_child(config: str, data: str, out: str, steps: int) -> None:
    """Runs in its own process: a short training, then the peak RSS of it and of its data worker.

    (getrusage's RUSAGE_CHILDREN would count the parent's pages that a spawned child holds between fork and
    exec, so the workers' peaks are read from /proc while they run.)"""
    import threading

    from vocalsep.config import load_config
    from vocalsep.train import train

    # the same held-out song in both runs: only the number of training songs differs
    cfg = load_config(config, {"data": {"datasets": [data], "workers": 1, "validation": ["song00000"]},
                               "train": {"steps": steps, "steps_per_epoch": steps, "checkpoint_every": steps}})
    peak = [0]
    done = threading.Event()

    def poll():
        while not done.wait(0.2):
            peak[0] = max(peak[0], _children_hwm())

    th = threading.Thread(target=poll, daemon=True)
    th.start()
    # the peak before the first model export (the LiteRT conversion has a peak of its own, which varies)
    from vocalsep import model as modelmod

    export = modelmod.ModelFile.from_keras.__func__
    before_export = [0]

    def from_keras(cls, *args, **kwargs):
        if not before_export[0]:
            with open("/proc/self/status") as f:
                before_export[0] = next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
        return export(cls, *args, **kwargs)

    modelmod.ModelFile.from_keras = classmethod(from_keras)
    t = time.perf_counter()
    train(cfg, out, progress=False)
    dt = time.perf_counter() - t
    done.set()
    th.join()
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"RSS {me:.0f} {peak[0] / 1024:.0f} {dt:.1f} {before_export[0] / 1024:.0f}")


def bench_rss(config: str, steps: int, many: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="vocalsep-bench-"))
    try:
        t = time.perf_counter()
        make_songs(tmp / "many", many)
        (tmp / "few").mkdir()
        for p in sorted((tmp / "many").iterdir())[:10]:
            (tmp / "few" / p.name).symlink_to(p)
        print(f"memory: {many} synthetic 5 s songs written in {time.perf_counter() - t:.0f} s; "
              f"{steps} training steps each (paper model, batch 8, 1 data worker)")
        for name, n in (("few", 10), ("many", many)):
            r = subprocess.run([sys.executable, __file__, "--rss-child", config, str(tmp / name), str(tmp / f"run-{name}"),
                                str(steps)], capture_output=True, text=True)
            line = [ln for ln in r.stdout.splitlines() if ln.startswith("RSS ")]
            if r.returncode or not line:
                print(f"  {n} songs: failed\n{r.stderr[-2000:]}")
                continue
            me, kids, dt, steps_peak = line[-1].split()[1:]
            print(f"  {n:5d} songs: peak RSS of the training process {steps_peak:>5} MiB during the steps, "
                  f"{me:>5} MiB with the model export (LiteRT conversion); data worker {kids:>4} MiB; "
                  f"run {float(dt):.0f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(ROOT / "configs" / "unet.yaml"))
    ap.add_argument("--data", action="append", default=None,
                    help="data folders (default: the config's, else ../shared/data/mir1k/train)")
    ap.add_argument("--batches", type=int, default=20, help="batches for the pipeline figures")
    ap.add_argument("--steps", type=int, default=20, help="training steps for the step figures")
    ap.add_argument("--rss-steps", type=int, default=10)
    ap.add_argument("--songs", type=int, default=2000)
    ap.add_argument("--skip-rss", action="store_true")
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--rss-child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.rss_child:
        config, d, out, steps = a.rss_child
        rss_child(config, d, out, int(steps))
        return
    overrides = {"data": {"datasets": a.data}, "train": {"batch_size": 8}}
    cfg = load_config(a.config, overrides)
    if not cfg.data.datasets:
        cfg.data.datasets = [str(ROOT.parent / "shared" / "data" / "mir1k" / "train")]
    print(load_avg())
    if not a.skip_speed:
        sampler = bench_pipeline(cfg, a.batches)
        bench_steps(cfg, sampler, a.steps)
    if not a.skip_rss:
        bench_rss(a.config, a.rss_steps, a.songs)
    print(load_avg())


if __name__ == "__main__":
    main()
