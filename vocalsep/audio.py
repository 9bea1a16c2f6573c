"""Audio input: reading whole files, excerpts and blocks, and resampling (writing: :mod:`vocalsep.audiowrite`).

Arrays are float32 of shape (samples, channels), values nominally in [-1, 1], rates in Hz.
Decoding is libsndfile's (through soundfile): wav, flac, ogg/vorbis, opus and mp3.  What libsndfile does
not read (m4a, aac, wma, the audio of mp4/mkv/webm/mov videos) is decoded by PyAV's FFmpeg libraries
(:mod:`vocalsep.containers`), in blocks as well: no ffmpeg program is needed.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf

from .errors import VocalsepError

#: audio file extensions (training data folders, evaluation estimates; ``separate`` adds VIDEO_EXTENSIONS)
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".m4a", ".aac", ".wma")
#: video containers whose audio ``separate`` takes (in folder scans too)
VIDEO_EXTENSIONS = (".mp4", ".m4v", ".mkv", ".webm", ".mov")
#: what ``separate`` picks up in a folder
INPUT_EXTENSIONS = AUDIO_EXTENSIONS + VIDEO_EXTENSIONS


_STDERR_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_stderr():
    """Silence what C libraries print on file descriptor 2 for the duration (libsndfile's mp3 decoder notes
    on damaged headers, LiteRT's delegate banner): the caller reports problems itself, in one line.
    Threads take turns, so that file descriptor 2 is always restored."""
    with _STDERR_LOCK:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            with open(os.devnull, "w") as devnull:
                os.dup2(devnull.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def open_file(path: str | Path) -> sf.SoundFile:
    """libsndfile's reader for ``path`` (raises its own errors), quietly."""
    with quiet_stderr():
        return sf.SoundFile(str(path))


def libsndfile_only(path: Path) -> bool:
    """Whether a file that libsndfile refuses is refused for good (wav and flac: their own errors name the
    problem better than FFmpeg's), rather than handed to PyAV."""
    return path.suffix.lower() in (".wav", ".flac")


def mp3_without_length(path: str | Path) -> bool:
    """Whether ``path`` is an mp3 whose first frame holds no Xing, Info or VBRI header, the frame count that
    libsndfile takes its length from.  Without one libsndfile guesses the length from the first frame's
    bitrate and the file's size, and stops reading at that guess (a variable bitrate mp3 that starts quietly:
    a few seconds of a song), so such files are read by PyAV instead, to their real end."""
    path = Path(path)
    if path.suffix.lower() != ".mp3":
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(10)
            skip = 0
            if head[:3] == b"ID3" and len(head) == 10:  # an ID3v2 tag first: its size is 4 x 7 bits
                skip = 10 + sum((b & 0x7F) << (7 * (3 - i)) for i, b in enumerate(head[6:10])) + (
                    10 if head[5] & 0x10 else 0)
            f.seek(skip)
            frame = f.read(4096)
    except OSError:
        return False
    sync = next((i for i in range(len(frame) - 1) if frame[i] == 0xFF and frame[i + 1] & 0xE0 == 0xE0), None)
    if sync is None:
        return False  # not an mp3 frame where expected: libsndfile's error (or PyAV's) says what it is
    first = frame[sync:sync + 1500]
    return not any(tag in first for tag in (b"Xing", b"Info", b"VBRI"))


def open_reader(path: str | Path):
    """A reader for ``path``: libsndfile's (``soundfile.SoundFile``) where it reads the file, else PyAV's
    (:class:`vocalsep.containers.Reader`, the same reading interface): for the files libsndfile cannot read,
    and for mp3s it would cut short (:func:`mp3_without_length`).  VocalsepError when neither can."""
    from .containers import Reader

    path = Path(path)
    if mp3_without_length(path):
        return Reader(path)
    try:
        return open_file(path)
    except (sf.LibsndfileError, RuntimeError) as e:
        if libsndfile_only(path):
            raise _soundfile_error(path, e) from None
    return Reader(path)


@dataclass
class AudioInfo:
    path: Path
    sample_rate: int
    channels: int
    frames: int  # samples per channel

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


def _soundfile_error(path: Path, e: Exception) -> VocalsepError:
    msg = str(e).split("\n")[0]
    if "Format not recognised" in msg or "unknown format" in msg.lower():
        msg = "not a readable audio file (unknown or corrupt format)"
    return VocalsepError(f"{path}: {msg}")


def check_file(path: Path) -> None:
    """VocalsepError unless ``path`` is a non-empty regular file (a FIFO or device is refused before it is
    opened: opening a FIFO with no writer would wait for ever)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise VocalsepError(f"{path}: no such file") from None
    except OSError as e:
        raise VocalsepError(f"{path}: cannot read it ({e.strerror})") from None
    if stat.S_ISDIR(st.st_mode):
        raise VocalsepError(f"{path}: is a folder, not an audio file")
    if not stat.S_ISREG(st.st_mode):
        raise VocalsepError(f"{path}: not a regular file (a pipe, device or socket); vocalsep reads audio files only, "
                            "so save the audio to a file first")
    if st.st_size == 0:
        raise VocalsepError(f"{path}: file is empty (0 bytes)")


def subtype(path: str | Path) -> str | None:
    """libsndfile's sample format of a file (``PCM_16``, ``PCM_24``, ``FLOAT``, ``MPEG_LAYER_III``, ...); for
    a lossless stream that PyAV reads (ALAC m4a, PCM in mov or mkv) the same names for its depth; None for
    other files, or one that is not a regular file (opening a FIFO would block)."""
    try:
        if not Path(path).is_file():
            return None
        with quiet_stderr():
            return sf.info(str(path)).subtype
    except Exception:
        if libsndfile_only(Path(path)):
            return None
        from . import containers

        return containers.subtype(path)


def info(path: str | Path) -> AudioInfo:
    """Rate, channels and length of an audio file (mp3 and the files PyAV reads: counted by decoding in blocks)."""
    path = Path(path)
    check_file(path)
    if not mp3_without_length(path):  # PyAV counts those below: libsndfile stops at its guess of the length
        try:
            with quiet_stderr():
                i = sf.info(str(path))
            frames = int(i.frames)
            if i.format == "MP3" or frames <= 0:
                # libsndfile's mp3 length can be an estimate: count exactly by decoding in blocks (fast)
                with open_file(path) as f, quiet_stderr():  # reads to the end (soundfile's blocks() stop at the
                    frames = 0                                  # header's count: a file cut short counted whole)
                    while n := len(f.read(1 << 18, dtype="float32")):
                        frames += n
            if frames <= 0:
                raise VocalsepError(f"{path}: contains no audio samples")
            return AudioInfo(path, int(i.samplerate), int(i.channels), frames)
        except sf.LibsndfileError as e:
            if libsndfile_only(path):
                raise _soundfile_error(path, e) from None
        except RuntimeError as e:
            raise _soundfile_error(path, e) from None
    from .containers import Reader

    with Reader(path) as r:  # counted exactly by decoding (one packet in memory at a time)
        return AudioInfo(path, r.samplerate, r.channels, r.count())


def read(path: str | Path) -> tuple[np.ndarray, int]:
    """Decode a whole file.  Returns ((samples, channels) float32, sample rate in Hz)."""
    path = Path(path)
    check_file(path)
    try:
        with open_reader(path) as f, quiet_stderr():
            x, sr = f.read(-1, dtype="float32", always_2d=True), f.samplerate
    except (sf.LibsndfileError, RuntimeError) as e:
        raise _soundfile_error(path, e) from None
    if len(x) == 0:
        raise VocalsepError(f"{path}: contains no audio samples")
    return x, int(sr)


def read_excerpt(path: str | Path, start: int, frames: int, length: int | None = None) -> tuple[np.ndarray, int]:
    """Read ``frames`` samples from sample ``start`` without decoding the rest (zero-padded at the end).

    ``length``: the file's length in samples as known beforehand (:func:`info`); a read that ends before
    sample ``min(start + frames, length)`` raises VocalsepError (the file was cut short since), instead of
    being padded with silence.  Returns ((frames, channels) float32, sample rate).
    """
    path = Path(path)
    try:
        with open_file(path) as f:
            f.seek(start)
            x = f.read(frames, dtype="float32", always_2d=True)
            sr = f.samplerate
    except (sf.LibsndfileError, RuntimeError) as e:
        raise _soundfile_error(path, e) from None
    if length is not None and start + len(x) < min(start + frames, length):
        raise VocalsepError(f"{path}: ends at sample {start + len(x)}, short of its length of {length} samples "
                            "(the file was cut short or damaged)")
    if len(x) < frames:
        x = np.pad(x, ((0, frames - len(x)), (0, 0)))
    return x, int(sr)


def blocks(path: str | Path, block: int, overlap: int, start: int = 0,
           frames: int | None = None, warn_short: bool = True) -> Iterator[np.ndarray]:
    """Yield consecutive blocks of ``block + 2 * overlap`` samples (the last ones shorter) that step by
    ``block`` samples: block i covers samples [i * block - overlap, (i + 1) * block + overlap), clipped to
    the file.  Each is (samples, channels) float32.  Memory holds one block at a time.  ``start`` /
    ``frames``: only that part of the file (from sample ``start``, ``frames`` samples or to the end).
    ``warn_short``: :func:`reader_blocks`'s warning of a file cut short (off for a second pass)."""
    path = Path(path)
    try:
        f = open_reader(path)
        if start:
            with quiet_stderr():
                f.seek(start)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise _soundfile_error(path, e) from None
    return reader_blocks(f, block, overlap, frames, warn_short)


def reader_blocks(f, block: int, overlap: int, frames: int | None = None,
                  warn_short: bool = True) -> Iterator[np.ndarray]:
    """:func:`blocks` of an open reader (:func:`open_reader`), from its position on; closes it at the end.
    A file whose audio ends well before the length its header announces gets a warning (logger
    ``vocalsep``) naming both: a download cut short decodes as a short song without an error."""
    with f:
        # read once, in order: the overlap a block shares with the next is kept, not decoded again
        start = lo = pos = 0  # block start, first sample held in `buf`, samples read so far
        buf = np.zeros((0, f.channels), dtype=np.float32)
        announced = _announced_length(f) if warn_short else None
        begin = f.tell() if announced else None
        while True:
            hi = start + block + overlap
            if pos <= hi:  # one sample past the block tells whether more follows
                want = hi + 1 - pos if frames is None else min(hi + 1 - pos, frames - pos)
                try:
                    with quiet_stderr():  # the mp3 decoder's notes on damaged frames: the caller reports problems
                        new = f.read(max(0, want), dtype="float32", always_2d=True)
                except (sf.LibsndfileError, RuntimeError) as e:  # a FLAC cut short: 'decoder lost sync'
                    raise VocalsepError(f"{_reader_path(f)}: cannot be decoded past {pos / f.samplerate:.1f} s "
                                        f"({str(e).splitlines()[0]}): the file may be cut short or damaged") from None
                pos += len(new)
                buf = np.concatenate([buf, new]) if len(buf) else new
            x = buf[:hi - lo]
            if len(x) == 0:
                _check_cut_short(f, announced, begin, pos, frames)
                return
            yield x
            if pos <= hi:
                _check_cut_short(f, announced, begin, pos, frames)
                return
            start += block
            new_lo = max(0, start - overlap)
            buf, lo = buf[new_lo - lo:], new_lo


def _reader_path(f) -> Path:
    """The file of an :func:`open_reader` reader (soundfile's ``name``, PyAV's ``path``)."""
    return Path(f.name if isinstance(f, sf.SoundFile) else f.path)


def _announced_length(f) -> int | None:
    """The length in samples that a reader's file announces where that figure is exact (a count written in
    the file: an mp3's Xing or Info frame, an mp4's track duration), else None (a wav or an ogg cut short
    has its length counted again when opened; a FLAC cut short fails to decode instead; FFmpeg's length of
    a raw aac is a guess)."""
    if isinstance(f, sf.SoundFile):
        if f.format != "MP3" or mp3_without_length(f.name):
            return None
        return f.frames if f.frames > 0 else None
    hint = getattr(f, "frames_hint", None)
    return hint if hint and _reader_path(f).suffix.lower() in (".m4a", ".mp4", ".m4v", ".mov") else None


def _check_cut_short(f, announced: int | None, begin: int | None, read: int, frames: int | None) -> None:
    """Warn when a reader ended more than a second short of the part asked for (``frames`` from ``begin``,
    or to the end) within the length its file announces (:func:`_announced_length`); an encoder's padding
    stays quiet."""
    if not announced or begin is None:
        return
    wanted = announced - begin if frames is None else min(frames, announced - begin)
    if wanted - read > f.samplerate:
        import logging

        logging.getLogger("vocalsep").warning(
            "%s: its audio ends at %.1f s, but its header announces %.1f s: the file may be cut short (the "
            "stems are as long as the audio read)", _reader_path(f), (begin + read) / f.samplerate,
            announced / f.samplerate)


def array_blocks(x: np.ndarray, block: int, overlap: int) -> Iterator[np.ndarray]:
    """The blocks of :func:`blocks`, cut from audio already in memory ((samples, channels) views)."""
    start = 0
    while True:
        lo = max(0, start - overlap)
        hi = min(len(x), start + block + overlap)
        yield x[lo:hi]
        if hi >= len(x):
            return
        start += block


def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Resample (samples, channels) or (samples,) float32 audio with soxr (high quality)."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    import soxr

    return soxr.resample(np.ascontiguousarray(x, dtype=np.float32), sr_in, sr_out, quality="HQ").astype(
        np.float32, copy=False
    )
