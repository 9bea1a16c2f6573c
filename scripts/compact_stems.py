#!/usr/bin/env python3
"""A compact copy of a training data set: every song as a stem folder (``OUT/<song>/vocals.flac`` and
``accompaniment.flac``, the ``stems`` kind of vocalsep.data) resampled to the network's rate, 16-bit FLAC.

    python scripts/compact_stems.py ../shared/data/musdb OUT [--rate 16384]

For training on another machine that cannot take the data set as it is (MUSDB18's .stem.mp4 need ffmpeg
there, and its 44.1 kHz float cache is about ten times the size): a network that runs at ``--rate`` sees
the same examples, since the pipeline resamples every song to that rate anyway.  A song whose stems peak
above full scale is scaled down (both stems by the same factor: the pipeline normalises each patch by its
mixture, so the level does not reach the network) and says so; nothing is clipped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a data set vocalsep trains on (any kind)")
    ap.add_argument("out", type=Path, help="a new folder")
    ap.add_argument("--rate", type=int, default=16384, help="Hz (the network's rate)")
    args = ap.parse_args()

    import soundfile as sf
    import soxr

    from vocalsep import audio
    from vocalsep import data as datamod

    if args.out.exists():
        raise SystemExit(f"{args.out}: exists; give a new folder")
    songs = datamod.discover(args.data)
    for song in songs:
        stems = {}
        for name, paths in (("vocals", song.vocals), ("accompaniment", song.accompaniment)):
            x = sum(audio.read(p)[0].astype(np.float64) for p in paths)
            stems[name] = soxr.resample(x, song.sample_rate, args.rate, quality="VHQ")
        peak = max(float(np.max(np.abs(x))) for x in stems.values())
        scale = 0.999 / peak if peak >= 1.0 else 1.0
        if scale != 1.0:
            print(f"{song.name}: peak {peak:.3f}, both stems scaled by {scale:.3f}")
        folder = args.out / song.name
        folder.mkdir(parents=True)
        for name, x in stems.items():
            sf.write(folder / f"{name}.flac", (x * scale).astype(np.float32), args.rate, subtype="PCM_16")
    print(f"{len(songs)} songs written to {args.out}")


if __name__ == "__main__":
    main()
