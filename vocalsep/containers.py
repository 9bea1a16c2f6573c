"""Inputs that libsndfile does not read (m4a, aac, wma, and the audio of video files), decoded in blocks
with PyAV, whose wheels ship their own FFmpeg libraries: no ffmpeg program is needed, and memory holds
what the caller asks for, not the whole file.

:class:`Reader` gives the part of ``soundfile.SoundFile``'s reading interface that :mod:`vocalsep.audio`
uses (``samplerate``, ``channels``, ``read``, ``seek`` forward, ``close``), so that ``audio.blocks``
streams these files as it streams wav, flac, ogg and mp3.  Samples come out as float32 at the stream's own
rate and channel count: any resampling is vocalsep's own (soxr), as for every other input.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from .errors import VocalsepError

#: PyAV's sample formats (planar ones end in "p") -> (numpy dtype, scale to [-1, 1), offset)
_FORMATS = {"flt": (np.float32, 1.0, 0), "dbl": (np.float64, 1.0, 0), "s16": (np.int16, 1 / 32768, 0),
            "s32": (np.int32, 1 / 2 ** 31, 0), "s64": (np.int64, 1 / 2 ** 63, 0), "u8": (np.uint8, 1 / 128, 128)}


def _import_av():
    try:
        import av
    except ImportError:
        raise VocalsepError("reading m4a, aac, wma and video files needs PyAV: pip install av") from None
    return av


def _audio_stream(streams):
    """The audio stream vocalsep decodes: av_find_best_stream's choice (the first for MUSDB's .stem.mp4
    mixture), or the first where PyAV has no ``StreamContainer.best``."""
    try:
        return streams.best("audio") or streams.audio[0]
    except Exception:  # (PyAV without StreamContainer.best)
        return streams.audio[0]


def _short(e: Exception) -> str:
    msg = getattr(e, "strerror", None) or str(e)
    return str(msg).splitlines()[0].rstrip(".") if msg else type(e).__name__


class Reader:
    """A file's audio stream (the default one where there are several: av_find_best_stream's choice,
    the first for MUSDB's .stem.mp4 mixture), decoded one packet at a time.

    ``frames_hint``: the stream's length in samples from the container's header (None where it has none),
    for a progress bar; the decoded count can differ by an encoder's padding (at most a codec frame).
    Raises VocalsepError (one line naming the file) for a file FFmpeg cannot open, one without an audio
    stream, and one whose stream holds no samples.
    """

    def __init__(self, path: str | Path):
        av = _import_av()
        self.path = Path(path)
        self._av_error = av.FFmpegError
        try:
            # "file:" + an absolute path: FFmpeg reads the file itself, whatever its name (a name such as
            # "concat:x.m4a" would otherwise select one of FFmpeg's protocols)
            self._c = av.open("file:" + os.path.abspath(self.path), metadata_errors="ignore")
        except av.FFmpegError:
            raise VocalsepError(f"{self.path}: not a readable audio file (unknown or corrupt format)") from None
        except OSError as e:
            raise VocalsepError(f"{self.path}: cannot read it ({_short(e)})") from None
        try:
            streams = self._c.streams
            if not streams.audio:
                what = "a video without sound" if streams.video else "no audio stream found"
                raise VocalsepError(f"{self.path}: has no audio stream to separate ({what})")
            self.stream = _audio_stream(streams)
            self._packets = self._c.demux(self.stream)
            self._held: list[np.ndarray] = []  # decoded, not yet read: (samples, channels) float32 each
            self._count = 0                    # samples in _held
            self._pos = 0                      # samples returned by read (and skipped by seek) so far
            self.samplerate = self.channels = 0
            self.skipped_packets = 0           # damaged packets left out (FFmpeg's program skips them too)
            self._warned = False
            if not self._decode_more():
                raise VocalsepError(f"{self.path}: contains no audio samples")
            self.frames_hint = self._header_frames()
        except BaseException:
            self._c.close()
            raise

    def _header_frames(self) -> int | None:
        s = self.stream
        if s.duration and s.time_base:
            return int(round(float(s.duration * s.time_base) * self.samplerate))
        if self._c.duration:  # microseconds (for raw .aac: FFmpeg's estimate from the bit rate)
            return int(round(self._c.duration / 1e6 * self.samplerate))
        return None

    @property
    def duration_hint(self) -> float:
        """Seconds of audio from the header (0.0 where it has none)."""
        return (self.frames_hint or 0) / self.samplerate

    def _decode_more(self) -> bool:
        """Decode the next packet that gives samples into ``_held``; False at the end of the stream."""
        while True:
            try:
                packet = next(self._packets)
            except StopIteration:
                if self.skipped_packets and not self._warned:
                    self._warned = True
                    logging.getLogger("vocalsep").warning(
                        "%s: %d damaged packet%s of its audio could not be decoded and %s left out (FFmpeg's "
                        "program skips them too)", self.path, self.skipped_packets,
                        "s" if self.skipped_packets > 1 else "", "were" if self.skipped_packets > 1 else "was")
                return False
            except self._av_error as e:
                raise VocalsepError(f"{self.path}: could not be read ({_short(e)})") from None
            try:
                frames = packet.decode()  # the final (empty) packet flushes the decoder
            except self._av_error:
                self.skipped_packets += 1
                continue
            got = False
            for frame in frames:
                x = self._samples(frame)
                if len(x):
                    self._held.append(x)
                    self._count += len(x)
                    got = True
            if got:
                return True

    def _samples(self, frame) -> np.ndarray:
        """A decoded frame as (samples, channels) float32, the integer formats scaled as libsndfile scales them."""
        fmt = frame.format.name
        planar = fmt.endswith("p")
        dtype, scale, offset = _FORMATS.get(fmt[:-1] if planar else fmt, (None, 0, 0))
        # PyAV 12 has no layout.nb_channels
        rate, channels = frame.sample_rate, getattr(frame.layout, "nb_channels", None) or len(frame.layout.channels)
        if dtype is None:
            raise VocalsepError(f"{self.path}: unsupported sample format {fmt!r} in its audio stream")
        if not self.samplerate:
            self.samplerate, self.channels = int(rate), int(channels)
        elif (rate, channels) != (self.samplerate, self.channels):
            raise VocalsepError(f"{self.path}: its audio changes from {self.channels} channels at {self.samplerate} Hz "
                                f"to {channels} at {rate} Hz midway; convert it to one format first")
        a = frame.to_ndarray()
        a = a.T if planar else a.reshape(-1, channels)
        if offset:
            a = a.astype(np.float32) - offset
        if a.dtype != np.float32 or scale != 1.0:
            a = (a * scale).astype(np.float32) if scale != 1.0 else a.astype(np.float32)
        return np.ascontiguousarray(a[: frame.samples])

    def read(self, frames: int = -1, dtype: str = "float32", always_2d: bool = True) -> np.ndarray:
        """Up to ``frames`` samples (all that is left for -1) as (samples, channels) float32; fewer only at
        the end of the stream.  (``dtype`` and ``always_2d`` as soundfile's; only their defaults here.)"""
        want = np.inf if frames < 0 else frames
        while self._count < want and self._decode_more():
            pass
        if not self._held:
            return np.zeros((0, self.channels), np.float32)
        x = self._held[0] if len(self._held) == 1 else np.concatenate(self._held)
        n = len(x) if frames < 0 else min(frames, len(x))
        rest = x[n:]
        self._held, self._count = ([rest] if len(rest) else []), len(rest)
        self._pos += n
        return x[:n] if n < len(x) else x

    def tell(self) -> int:
        """The position: samples read (or skipped by :meth:`seek`) so far, as soundfile's ``tell``."""
        return self._pos

    def seek(self, frames: int) -> int:
        """Skip the first ``frames`` samples of a reader that has read nothing yet (decoded and dropped in
        pieces, so memory stays flat; exact to the sample, as the decoded stream is).  Returns the
        position, which is short of ``frames`` when the stream ends before."""
        done = 0
        while done < frames:
            got = len(self.read(min(frames - done, 1 << 18)))
            if got == 0:
                break
            done += got
        return done

    def at_end(self) -> bool:
        """Whether every sample has been read (decodes the next packet to know)."""
        return self._count == 0 and not self._decode_more()

    def count(self) -> int:
        """Decode the rest and return how many samples it held (memory: one packet at a time)."""
        n = self._count
        self._held, self._count = [], 0
        while self._decode_more():
            n += self._count
            self._held, self._count = [], 0
        return n

    def close(self) -> None:
        self._c.close()

    def __enter__(self) -> "Reader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


#: lossless codecs, whose decoded sample format is the source's depth (lossy ones decode to float whatever
#: they were made from, and their outputs are 16-bit like mp3's)
_LOSSLESS = ("alac", "flac", "wavpack", "tta", "ape", "tak", "truehd", "mlp")


def subtype(path: str | Path) -> str | None:
    """libsndfile's name for the depth of a lossless audio stream PyAV reads (ALAC in m4a, PCM in mov or
    mkv, ...): ``PCM_16`` (8 or 16 bits), ``PCM_24`` (more), ``FLOAT``; None for a lossy codec or a file
    that cannot be read."""
    try:
        import av

        with av.open("file:" + os.path.abspath(path), metadata_errors="ignore") as c:
            cc = _audio_stream(c.streams).codec_context
            name, fmt = cc.name, cc.format.name.rstrip("p")
    except Exception:
        return None
    if not (name in _LOSSLESS or name.startswith("pcm_")):
        return None
    return {"flt": "FLOAT", "dbl": "FLOAT", "s32": "PCM_24", "s64": "PCM_24"}.get(fmt, "PCM_16")


def duration(path: str | Path) -> float:
    """Seconds of audio in a file's header as PyAV reads it (0.0 when it cannot be read)."""
    try:
        with Reader(path) as r:
            return r.duration_hint
    except Exception:
        return 0.0
