"""Training stems that libsndfile cannot read, decoded once into the cache.

Training reads random excerpts of its stems (:func:`vocalsep.audio.read_excerpt`), which needs a reader that
seeks: libsndfile's (wav, flac, ogg, opus, mp3, aiff).  Discovery also takes the formats only FFmpeg reads
(m4a, aac, wma, through PyAV), whose reader can only seek by decoding from the start.  So each such stem
is decoded once, whole, into ``<cache>/decoded/<key>.wav`` (the key a hash of the file's resolved path,
size and modification time, and of the sample format), written atomically and reused as long as its key
holds; the song then reads the wav, sample for sample what :func:`vocalsep.audio.read` gives.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Sequence

from .errors import VocalsepError

log = logging.getLogger("vocalsep.data")


def seekable(path: str | Path) -> bool:
    """Whether libsndfile opens ``path`` (so that excerpts are read without decoding the rest), and reads it
    to its end (not an mp3 without a frame count: :func:`vocalsep.audio.mp3_without_length`)."""
    import soundfile as sf

    from .audio import mp3_without_length, quiet_stderr

    if mp3_without_length(path):
        return False
    try:
        with quiet_stderr():
            sf.info(str(path))
        return True
    except Exception:
        return False


class _Undecodable(VocalsepError):
    """A stem FFmpeg cannot decode after all: its song is left out (a write that fails stops the run)."""


def _key(path: str, subtype: str) -> str:
    try:
        st = os.stat(path)
    except OSError as e:
        raise _Undecodable(f"{path}: cannot read it ({e.strerror})") from None
    return hashlib.sha256(f"{Path(path).resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{subtype}".encode()
                          ).hexdigest()[:32]


def _decode(path: str, out: Path, subtype: str) -> None:
    import soundfile as sf

    from . import audio, audiowrite
    from .atomic import atomic_path

    try:
        x, sr = audio.read(path)
    except VocalsepError as e:  # names the file
        raise _Undecodable(str(e)) from None
    try:
        with atomic_path(out) as tmp:
            sf.write(str(tmp), x, sr, format="WAV", subtype=subtype)
    except (OSError, sf.LibsndfileError) as e:
        raise audiowrite.write_error(out, e) from None


def readable(songs: Sequence, cache_dir: str | Path | None = None, subtype: str = "FLOAT") -> list:
    """``songs`` (:class:`vocalsep.data.Song`) with each stem that libsndfile cannot read replaced by its
    decoded wav in the cache (made now where it is not there yet; ``subtype``: ``FLOAT`` or ``PCM_16``).
    Unchanged, and the cache untouched, when libsndfile reads every stem.  A song with a stem that cannot
    be decoded after all is left out with a warning naming the file, as discovery leaves out a song it
    cannot read; a cache that cannot be written is a VocalsepError naming it."""
    from .atomic import clear_stale
    from .data import default_cache_dir

    root = (Path(cache_dir).expanduser() if cache_dir else default_cache_dir()) / "decoded"
    out, ready, told = [], False, False
    for s in songs:
        paths = {p: p for p in (*s.vocals, *s.accompaniment) if not seekable(p)}
        if not paths:
            out.append(s)
            continue
        if not ready:
            try:
                root.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise VocalsepError(f"{root}: cannot make the cache of decoded stems there ({e.strerror})") from None
            clear_stale(root)  # temporary files of a run killed while decoding
            ready = True
        try:
            for p in paths:
                target = root / f"{_key(p, subtype)}.wav"
                if not target.exists():
                    if not told:
                        log.info("decoding the stems libsndfile cannot read (m4a, aac, wma, mp3 without a "
                                 "frame count) once into %s", root)
                        told = True
                    _decode(p, target, subtype)
                paths[p] = str(target)
        except _Undecodable as e:
            log.warning("%s; song %r skipped", e, s.name)
            continue
        out.append(dataclasses.replace(s, vocals=tuple(paths.get(p, p) for p in s.vocals),
                                       accompaniment=tuple(paths.get(p, p) for p in s.accompaniment)))
    return out
