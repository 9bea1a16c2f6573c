#!/usr/bin/env python3
"""A compact copy of a training data set: every song as a stem folder (``OUT/<song>/vocals.flac`` and
``accompaniment.flac``, the ``stems`` kind of vocalsep.data) resampled to the network's rate, 16-bit FLAC.

    python scripts/compact_stems.py ../shared/data/musdb OUT [--rate 16384]

For training on another machine that cannot take the data set as it is (MUSDB18's .stem.mp4 need ffmpeg
there, and vocalsep's 44.1 kHz float cache of them is about ten times the size).  The songs are those that
training discovers in the data set (for MUSDB18 its ``train`` subset, the one training reads), under the
same names, so held-out lists still apply.  A spectral network running at ``--rate`` draws its examples from
the same songs with the same distribution (not the same batches: excerpts are drawn in the file's samples),
at 16-bit precision.  A song whose stems peak at or above full scale after resampling is scaled down, both
stems by the same factor, and says so; nothing is clipped.  For a spectral network each patch is normalised
by its mixture, so that scale does not reach it; a waveform network (wave-unet) would see it.

Written into ``OUT.partial`` and renamed to OUT at the end, so OUT is complete or absent; errors are one line.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path, help="a data set vocalsep trains on (any kind)")
    ap.add_argument("out", type=Path, help="a new folder")
    ap.add_argument("--rate", type=int, default=16384, help="Hz: the network's (spectral.sample_rate)")
    args = ap.parse_args()

    import soundfile as sf
    import soxr

    from vocalsep import audio
    from vocalsep import data as datamod
    from vocalsep.errors import VocalsepError

    partial = args.out.with_name(args.out.name + ".partial")
    try:
        if args.out.exists():
            raise VocalsepError(f"{args.out}: exists; give a new folder")
        shutil.rmtree(partial, ignore_errors=True)  # a run stopped half-way
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
            folder = partial / song.name
            folder.mkdir(parents=True)
            for name, x in stems.items():
                sf.write(folder / f"{name}.flac", (x * scale).astype(np.float32), args.rate, subtype="PCM_16")
        partial.rename(args.out)
    except VocalsepError as e:
        raise SystemExit(f"error: {e}")
    except OSError as e:
        raise SystemExit(f"error: {getattr(e, 'filename', None) or args.out}: {e.strerror or e}")
    print(f"{len(songs)} songs written to {args.out}")


if __name__ == "__main__":
    main()
