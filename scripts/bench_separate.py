#!/usr/bin/env python3
"""Separation speed and memory, as a user meets them.  Prints every figure; asserts nothing.

    python scripts/bench_separate.py [--song PATH] [--runs 3] [--long-minutes 20] [--model PATH ... | --fast]
                                     [--skip-long] [--compare-blocks]

1. ``vocalsep --help`` wall time (fresh process).
2. ``vocalsep separate SONG`` as one fresh process: wall time and peak RSS (start-up, decoding and
   writing included).
3. In one process, the model loaded: seconds of audio separated per second of wall time, for the
   library API on a decoded array, for file to file (``separate_file``) and for a folder batch (the
   songs in ../shared/data/songs); and where the time goes.
4. Peak RSS of a fresh process separating a long input (the songs concatenated to ``--long-minutes``),
   to show that memory does not grow with the input's length.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SONG = DATA / "songs" / "Fantasma - Los Rombos.mp3"


def fresh(cmd: list[str]) -> tuple[float, float]:
    """Run a command as a fresh process: (wall seconds, peak RSS of the child in MB)."""
    code = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
            "r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE); "
            "dt = time.perf_counter() - t; "
            "sys.stderr.write(r.stderr.decode()[-2000:] if r.returncode else ''); "
            "print(dt, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, r.returncode)")
    out = subprocess.run([sys.executable, "-c", code, *cmd], capture_output=True, text=True)
    wall, rss, rc = out.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr}")
    return float(wall), float(rss)


def median_seconds(run, runs: int) -> float:
    """The median wall time (s) of ``runs`` calls of ``run()``, one after the other."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        run()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def vocalsep_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("vocalsep")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "vocalsep.cli"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--song", type=Path, default=SONG)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--long-minutes", type=float, default=20.0)
    ap.add_argument("--model", type=Path, action="append", default=[],
                    help="model file (repeatable: an ensemble; default: the shipped ensemble)")
    ap.add_argument("--fast", action="store_true", help="the first shipped model alone (vocalsep separate --fast)")
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--compare-blocks", action="store_true",
                    help="also time 30 and 60 s blocks with and without the network's thread")
    args = ap.parse_args()
    if args.fast and args.model:
        ap.error("--fast is the first shipped model alone; with --model, name the models you want")
    model = ["--fast"] if args.fast else [a for m in args.model for a in ("--model", str(m))]
    if args.fast:
        from vocalsep.model import default_model_path

        args.model = [default_model_path()]
    models = args.model or None

    import soundfile as sf

    info = sf.info(str(args.song))
    dur = info.frames / info.samplerate
    print(f"song: {args.song.name}: {dur:.1f} s, {info.channels} ch, {info.samplerate} Hz; "
          f"{os.cpu_count()} cores; median of {args.runs} runs")

    helps = [fresh([*vocalsep_cmd(), "--help"])[0] for _ in range(args.runs)]
    print(f"vocalsep --help                      : {statistics.median(helps):.3f} s")

    with tempfile.TemporaryDirectory() as tmp:
        runs = [fresh([*vocalsep_cmd(), "separate", str(args.song), "-o", tmp, "--overwrite", *model])
                for _ in range(args.runs)]
        walls = [w for w, _ in runs]
        print(f"vocalsep separate (fresh process)    : {statistics.median(walls):.2f} s wall "
              f"(min {min(walls):.2f}), peak RSS {max(r for _, r in runs):.0f} MB")

        from vocalsep import Separator, audio, audiowrite

        t = time.perf_counter()
        sep = Separator(models)
        print(f"model load ({sep.runner.name})              : {time.perf_counter() - t:.2f} s")
        x, sr = audio.read(args.song)
        sep.separate(x[: sr * 5], sr)  # warm-up
        m = median_seconds(lambda: sep.separate(x, sr), args.runs)
        print(f"in process, array -> arrays          : {m:.2f} s = {dur / m:.0f}x real time")
        m = median_seconds(lambda: sep.separate_file(args.song, Path(tmp) / "inproc", overwrite=True), args.runs)
        print(f"in process, file -> files (decode, separate, encode): {m:.2f} s = {dur / m:.0f}x real time")

        # a folder batch, as `vocalsep separate music/ -o out/` runs it (the model loaded once)
        from vocalsep.separate import collect_inputs, run_batch

        jobs = collect_inputs([DATA / "songs"])
        total = sum(audio.info(j.path).duration for j in jobs)
        m = median_seconds(lambda: run_batch(sep, jobs, Path(tmp) / "batch", overwrite=True, progress=False,
                                             echo=lambda _: None), args.runs)
        print(f"in process, folder batch ({len(jobs)} songs, {total:.0f} s): {m:.2f} s = {total / m:.0f}x real time")

        if args.compare_blocks:
            print("in process, by block length and threads (array -> arrays, file -> files):")
            for block in (30.0, 60.0):
                other = Separator(models, block_seconds=block)
                other.separate(x[: sr * 5], sr)
                for pipeline in (False, True):
                    other.pipeline = pipeline
                    a, f = [], []
                    for _ in range(args.runs):
                        t = time.perf_counter()
                        other.separate(x, sr)
                        a.append(time.perf_counter() - t)
                        t = time.perf_counter()
                        other.separate_file(args.song, Path(tmp) / "blocks", overwrite=True)
                        f.append(time.perf_counter() - t)
                    print(f"  {block:.0f} s blocks, {'network a block ahead' if pipeline else 'one thread':21s}: "
                          f"{statistics.median(a):.2f} s, {statistics.median(f):.2f} s")

        # where the time goes: each stage on its own, one after the other (separate_file overlaps decoding
        # and encoding with the separation in an I/O thread, and the network runs on the next block in a
        # thread of its own: a profiler sees only its own thread, so the threads are off for this run)
        t = time.perf_counter()
        y, _ = audio.read(args.song)
        decode = time.perf_counter() - t
        sep.pipeline = False  # (Separator(pipeline=False) would load the model again)
        prof = cProfile.Profile()
        prof.enable()
        t = time.perf_counter()
        voc, acc = sep.separate(y, sr)
        serial = time.perf_counter() - t
        prof.disable()
        sep.pipeline = True
        t = time.perf_counter()
        for name, z in (("v", voc), ("a", acc)):
            audiowrite.write(Path(tmp) / f"{name}.wav", z, sr)
        encode = time.perf_counter() - t
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]

        def cumulative(fn: str, module: str) -> float:
            return sum(v[3] for (file, _, name), v in stats.items() if name == fn and file.endswith(module))

        total = sum(v[2] for v in stats.values())  # own time of every function: the whole run
        stages = {
            "decode (libsndfile, mp3)": decode,
            "resample (soxr)": cumulative("resample", "audio.py"),
            "STFT": cumulative("stft", "spectral.py"),
            "network (" + sep.runner.name + ")": cumulative("__call__", "runners.py"),
            "mask upsampling": cumulative("upsample_mask", "spectral.py"),
            "ISTFT": cumulative("istft", "spectral.py"),
        }
        stages["other (patches, cross-fades, ...)"] = total - sum(list(stages.values())[1:])
        stages["encode (libsndfile, 16-bit wav)"] = encode
        print("where the time goes, each stage alone (seconds):")
        for label, sec in stages.items():
            print(f"  {label:34s} {sec:6.2f}")
        print(f"  {'sum':34s} {sum(stages.values()):6.2f}  (array -> arrays without threads: {serial:.2f} s, "
              "with cProfile's overhead)")

        if not args.skip_long:
            # a long input: the songs concatenated, written as 16-bit wav
            songs = sorted((DATA / "songs").glob("*.mp3"))
            long_path = Path(tmp) / "long.wav"
            target = int(args.long_minutes * 60 * 44100)
            written = 0
            with sf.SoundFile(long_path, "w", 44100, 2, subtype="PCM_16") as f:
                while written < target:
                    for s in songs:
                        y, r = audio.read(s)
                        if r != 44100 or y.shape[1] != 2:
                            continue
                        y = y[: target - written]
                        f.write(y)
                        written += len(y)
                        if written >= target:
                            break
            del x
            wall, rss = fresh([*vocalsep_cmd(), "separate", str(long_path), "-o", tmp, "--overwrite", *model])
            print(f"{args.long_minutes:.0f}-minute input (fresh process)     : {wall:.1f} s wall "
                  f"({written / 44100 / wall:.0f}x real time), peak RSS {rss:.0f} MB")
    print(f"this benchmark's own peak RSS        : {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
