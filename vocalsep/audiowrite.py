"""Atomic writing of audio files: the whole file under its final name, or nothing there.

Arrays are float32 of shape (samples, channels), values nominally in [-1, 1], rates in Hz.  Encoding is
libsndfile's (through soundfile, :mod:`vocalsep.encoding`); a file is written beside its final name and
renamed into place once complete (:mod:`vocalsep.atomic`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf

from .atomic import publish, temporary_beside
from .errors import VocalsepError

#: output formats: name -> (soundfile format, default subtype)
OUTPUT_FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "mp3": ("MP3", None),
                  "ogg": ("OGG", "VORBIS"), "opus": ("OGG", "OPUS")}


class AtomicWriter:
    """Write audio in blocks to a temporary file beside ``path``; :meth:`commit` renames it into place.

    If the writer is closed without commit (an error, Ctrl-C), the temporary file is removed, so no half
    file is ever left under the final name.  ``encoding``: an :class:`vocalsep.encoding.Encoding` (mp3
    bitrate or quality, tags), or an mp3 bitrate in kbps.
    """

    def __init__(self, path: str | Path, sample_rate: int, channels: int, fmt: str = "wav",
                 subtype: str | None = None, clamp: bool = True, encoding=None):
        self.path = Path(path)
        if fmt not in OUTPUT_FORMATS:
            raise VocalsepError(f"{path}: unknown output format {fmt!r}; choose one of {sorted(OUTPUT_FORMATS)}")
        major, default_subtype = OUTPUT_FORMATS[fmt]
        subtype = subtype or default_subtype
        #: cut samples at +-1 (integer formats and mp3 cannot hold more: libsndfile would wrap them around)
        self.clamp = clamp or subtype != "FLOAT"
        self.peak = 0.0     # largest |sample| given to write
        self.clipped = 0    # samples cut at +-1
        self.tmp = temporary_beside(self.path)
        self.fmt = fmt
        try:
            from .encoding import Encoding, open_writer

            if isinstance(encoding, int):
                encoding = Encoding(mp3_bitrate=encoding)
            self.encoding = encoding
            self._f = open_writer(self.tmp, sample_rate, channels, fmt, major, subtype, encoding, self.path)
        except (sf.LibsndfileError, RuntimeError, VocalsepError) as e:
            self.tmp.unlink(missing_ok=True)
            if isinstance(e, VocalsepError):
                raise
            raise VocalsepError(f"{self.path}: cannot write {fmt} ({str(e).splitlines()[0]})") from None

    def write(self, x: np.ndarray) -> None:
        if len(x):
            self.peak = max(self.peak, float(np.abs(x).max()))
        if self.clamp and self.peak > 1:
            self.clipped += int(np.count_nonzero(np.abs(x) > 1))
            x = np.clip(x, -1.0, 1.0)
        try:
            self._f.write(x)
        except (RuntimeError, OSError) as e:  # a full disk reads "System error." in libsndfile
            raise write_error(self.path, e) from None

    def finish(self) -> Path:
        """Close the temporary file, complete (with the input's cover, if any), and return its path (the
        caller renames it into place)."""
        try:
            self._f.close()
            if self.encoding is not None and self.encoding.cover is not None:
                from .encoding import add_cover

                add_cover(self.tmp, self.fmt, self.encoding.cover, self.path, self.encoding.tags)
        except (RuntimeError, OSError) as e:
            raise write_error(self.path, e) from None
        return self.tmp

    def commit(self) -> None:
        self._f.close()
        publish(self.tmp, self.path)

    def discard(self) -> None:
        if not self._f.closed:
            self._f.close()
        self.tmp.unlink(missing_ok=True)


def write_error(path: Path, e: Exception) -> VocalsepError:
    """The error of a write to ``path`` that failed with ``e``: the output's, not the input's (its disk is
    full, or what the library said)."""
    try:
        st = os.statvfs(path.parent)
        if st.f_bavail * st.f_frsize < 1 << 20:
            return VocalsepError(f"{path}: could not be written: its disk is full")
    except OSError:
        pass
    why = str(e).splitlines()[0] if str(e) else type(e).__name__
    return VocalsepError(f"{path}: could not be written ({why.rstrip('.')}); is its disk full, or a quota "
                         "or file size limit reached?")


def write(path: str | Path, x: np.ndarray, sample_rate: int, fmt: str = "wav", subtype: str | None = None) -> None:
    """Write (samples, channels) audio atomically (integer formats: cut at +-1)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[:, None]
    w = AtomicWriter(path, sample_rate, x.shape[1], fmt, subtype)
    try:
        w.write(x)
        w.commit()
    except BaseException:
        w.discard()
        raise

