#!/usr/bin/env python3
"""Peak memory and wall time of ``vocalsep separate`` on one long input, for one or more source trees.

    python scripts/bench_long_input.py [--minutes 20] [--format m4a] [--code ROOT ...] [--keep PATH]

Makes a long input from the songs in ../shared/data/songs (concatenated, repeated to ``--minutes``; m4a:
AAC at 192 kbps, written by the ffmpeg program when there is one, else by PyAV), then runs
``vocalsep separate`` on it once per ``--code`` tree (``PYTHONPATH=ROOT``; default: this checkout) as a
fresh process under ``/usr/bin/time -v`` (where it exists; else the children's rusage) and prints the
wall time and the peak RSS.  Compare the tree before and after a change to its decoding, e.g.::

    python scripts/bench_long_input.py --code ../main --code .

Figures from a busy machine are indicative: the peak RSS is steady, the time is not.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SONGS = ROOT.parent / "shared" / "data" / "songs"


def make_long(path: Path, minutes: float) -> None:
    """The songs, one after another (repeated), cut at ``minutes``, encoded as ``path``'s format."""
    songs = sorted(SONGS.glob("*.mp3"))
    if not songs:
        raise SystemExit(f"no songs in {SONGS}")
    if shutil.which("ffmpeg"):
        inputs = []
        for _ in range(int(minutes * 60 / 150) + 2):  # enough repeats (the songs are 10 s to 3 min long)
            for s in songs:
                inputs += ["-i", str(s)]
        n = len(inputs) // 2
        graph = "".join(f"[{i}:a:0]" for i in range(n)) + f"concat=n={n}:v=0:a=1[a]"
        codec = ["-c:a", "aac", "-b:a", "192k"] if path.suffix == ".m4a" else []
        subprocess.run(["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", graph, "-map", "[a]",
                        "-t", str(minutes * 60), *codec, str(path)], check=True)
        return
    import av  # no ffmpeg program: decode with vocalsep, encode with PyAV
    import numpy as np

    sys.path.insert(0, str(ROOT))
    from vocalsep import audio

    target, done, sr = int(minutes * 60 * 44100), 0, 44100
    with av.open(str(path), "w") as c:
        st = c.add_stream("aac", rate=sr, layout="stereo")
        st.bit_rate = 192000
        while done < target:
            for s in songs:
                x, r = audio.read(s)
                x = audio.resample(x, r, sr)[: target - done]
                x = np.repeat(x, 2, axis=1)[:, :2] if x.shape[1] == 1 else x[:, :2]
                f = av.AudioFrame.from_ndarray(np.ascontiguousarray(x.T), format="fltp", layout="stereo")
                f.sample_rate, f.pts = sr, done
                for p in st.encode(f):
                    c.mux(p)
                done += len(x)
                if done >= target:
                    break
        for p in st.encode(None):
            c.mux(p)


def run(code: Path, song: Path, out: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of ``vocalsep separate song`` with ``code`` first on the path."""
    cmd = [sys.executable, "-c", "from vocalsep.cli import main; main(prog_name='vocalsep')",
           "separate", str(song), "-o", str(out), "--overwrite", "-q"]
    env = dict(os.environ, PYTHONPATH=str(code))
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    t = time.perf_counter()
    # run in the tree itself: ``python -c`` puts the working folder ahead of PYTHONPATH
    p = subprocess.run(timer + cmd, env=env, capture_output=True, text=True, cwd=code)
    wall = time.perf_counter() - t
    if p.returncode:
        raise SystemExit(f"{code}: vocalsep separate failed:\n{p.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr)
    rss = int(m.group(1)) if m else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, rss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--format", choices=["m4a", "mp3", "wav", "flac"], default="m4a")
    ap.add_argument("--code", type=Path, action="append", help="source tree to run (repeatable; default: this one)")
    ap.add_argument("--keep", type=Path, help="make the long input here and keep it (reused when it exists)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        song = args.keep or Path(tmp) / f"long.{args.format}"
        if not song.exists():
            t = time.perf_counter()
            make_long(song, args.minutes)
            print(f"made {song} ({song.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.0f} s")
        for code in args.code or [ROOT]:
            wall, rss = run(code.resolve(), song, Path(tmp) / "out")
            print(f"{code}: vocalsep separate {song.name} ({args.minutes:g} min {args.format}): "
                  f"{wall:.1f} s wall, peak RSS {rss:.0f} MB")


if __name__ == "__main__":
    main()
