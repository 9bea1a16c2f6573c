"""Pitch- and formant-shifted copies of the training songs' vocals, computed once into the cache.

Rubber Band's high-quality engine, which a formant shift needs (:func:`vocalsep.augment.shift`), takes about
75 ms of a core per 4 s example: on the fly, one data worker cannot keep up with the training step.  With
``data.shift_copies: N`` each training song's vocals are instead shifted N times, whole, before training:
copy i moves the pitch by p and the formants by f semitones, both drawn uniformly from
[-``pitch_shift``, ``pitch_shift``] and [-``formant_shift``, ``formant_shift``] by a generator seeded with
the song's name and i (so every run and both folds of ``scripts/unseen.py`` share the copies).  An example
then takes its vocals from one of the song's copies, chosen at random, with probability
``effect_probability`` (:class:`vocalsep.sampler.PatchSampler`), and the on-the-fly pitch and formant
shifts are off.  The copies keep the song's rate, channels (each shifted alike) and length, so excerpts of
a copy line up with the song's accompaniment.

Files: ``<cache>/shifted/<key>.wav`` (float32), the key a hash of the vocals' files (path, size, modification
time) and of the two shifts; a copy is written atomically and reused as long as its key holds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from .config import DataConfig
from .errors import VocalsepError

log = logging.getLogger("vocalsep.data")

#: bump when the way a copy is computed changes, so that old copies are not reused
VERSION = 1


def draws(name: str, copies: int, pitch_shift: float, formant_shift: float) -> list[tuple[float, float]]:
    """The (pitch, formant) shifts in semitones of the ``copies`` copies of the song ``name``."""
    out = []
    for i in range(copies):
        seed = int.from_bytes(hashlib.sha256(f"{name}\0{i}".encode()).digest()[:8], "little")
        rng = np.random.default_rng(seed)
        out.append((round(float(rng.uniform(-pitch_shift, pitch_shift)), 3),
                    round(float(rng.uniform(-formant_shift, formant_shift)), 3)))
    return out


def _key(paths: Sequence[str], pitch: float, formant: float) -> str:
    """The copy's file name: a hash of the shifts and of each vocals file's resolved path, size and
    modification time (a changed file gets a new copy)."""
    h = hashlib.sha256(f"v{VERSION} {pitch:+.3f} {formant:+.3f}".encode())
    for p in paths:
        try:
            st = os.stat(p)
        except OSError as e:
            raise VocalsepError(f"{p}: cannot read it to make a shifted copy ({e.strerror})") from None
        h.update(f"\0{Path(p).resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:32]


def _make(paths: Sequence[str], length: int, pitch: float, formant: float, out: Path) -> None:
    """Write the summed vocals of ``paths`` (at most ``length`` samples) shifted by (``pitch``, ``formant``)
    semitones to ``out`` (float32 wav), each channel by its own run of the same shift."""
    import soundfile as sf

    from . import audio, audiowrite
    from .atomic import atomic_path
    from .augment import shift

    x = None
    for p in paths:
        y, sr = audio.read(p)  # a VocalsepError naming the file if it cannot be read
        y = y[:length]
        x = y if x is None else x + y
    assert x is not None
    try:
        shifted = np.stack([shift(np.ascontiguousarray(x[:, c]), sr, pitch, formant) for c in range(x.shape[1])],
                           axis=1)
    except (RuntimeError, ValueError) as e:  # what pedalboard raises
        raise VocalsepError(f"{paths[0]}: could not be shifted ({str(e).splitlines()[0]})") from None
    try:
        with atomic_path(out) as tmp:
            sf.write(str(tmp), shifted, sr, format="WAV", subtype="FLOAT")
    except (OSError, sf.LibsndfileError) as e:
        raise audiowrite.write_error(out, e) from None


def with_copies(songs: Sequence, data: DataConfig, cache_dir: str | Path | None = None, threads: int = 2) -> list:
    """``songs`` (:class:`vocalsep.data.Song`) with ``vocal_copies`` filled as ``data.shift_copies`` asks,
    computing the copies not in the cache yet (``threads`` at a time; Rubber Band runs without the GIL).
    Unchanged when ``shift_copies`` is 0.  The first copy that fails stops the rest (a VocalsepError)."""
    if data.shift_copies <= 0:
        return list(songs)
    if not (data.pitch_shift or data.formant_shift):
        raise VocalsepError("data.shift_copies needs data.pitch_shift or data.formant_shift above 0 (the shifts "
                            "the copies draw from)")
    from .atomic import clear_stale
    from .data import default_cache_dir

    root = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "shifted"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VocalsepError(f"{root}: cannot make the cache of shifted copies there ({e.strerror})") from None
    clear_stale(root)  # the temporary files of a run killed while it made copies
    plan, todo = [], []
    for s in songs:
        files = []
        for pitch, formant in draws(s.name, data.shift_copies, data.pitch_shift, data.formant_shift):
            f = root / f"{_key(s.vocals, pitch, formant)}.wav"
            files.append(str(f))
            if not f.exists():
                todo.append((s.vocals, s.length, pitch, formant, f))
        plan.append(dataclasses.replace(s, vocal_copies=tuple(files)))
    if todo:
        log.info("making %d shifted cop%s of training vocals (pitch and formants) in %s", len(todo),
                 "ies" if len(todo) != 1 else "y", root)
        t0 = time.perf_counter()
        pool = ThreadPoolExecutor(max(1, threads))
        try:
            for job in [pool.submit(_make, *t) for t in todo]:
                job.result()
        finally:  # a failure or Ctrl-C stops the copies not started yet
            pool.shutdown(wait=True, cancel_futures=True)
        log.info("%d shifted copies made in %.0f s", len(todo), time.perf_counter() - t0)
    return plan
