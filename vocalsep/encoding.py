"""How an output file is encoded beyond its format and sample format: mp3's bitrate (constant) or quality
(variable), and the tags copied from the input.

Everything goes through libsndfile (soundfile): mp3 (LAME), ogg (Vorbis) and opus (in ogg), and the tags
it writes in every one of vocalsep's formats: wav (a LIST/INFO chunk), flac, ogg and opus (Vorbis
comments), mp3 (ID3v2).  Tags are read from the input by libsndfile, or by PyAV for the files it decodes
(m4a, wma, video).  libsndfile has no pictures: a cover is not copied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import VocalsepError

#: tags copied from an input to its stems (soundfile's names); not "software", which names the input's
#: encoder
TAGS = ("title", "artist", "album", "date", "tracknumber", "genre", "comment", "copyright")
#: the same tags as FFmpeg names them (PyAV's ``container.metadata``), where the name differs
_FFMPEG_NAMES = {"tracknumber": "track"}
#: sample rates that opus holds
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: LAME's variable-bitrate quality scale (-V): 0 best (about 245 kbps), 9 smallest (about 65 kbps)
MP3_QUALITY_RANGE = (0.0, 9.0)


@dataclass(frozen=True)
class Encoding:
    """``mp3_bitrate``: kbps, constant; ``mp3_quality``: LAME's -V, variable (neither: libsndfile's
    default, -V 4); ``tags``: {soundfile tag name: text} written into the file."""

    mp3_bitrate: int | None = None
    mp3_quality: float | None = None
    tags: dict = field(default_factory=dict)


def read_tags(path: str | Path) -> dict[str, str]:
    """The input's :data:`TAGS` that hold text ({} when it has none, or they cannot be read)."""
    from . import audio

    path = Path(path)
    try:
        with audio.open_file(path) as f:
            found = f.copy_metadata()
    except Exception:
        try:
            import av

            with av.open("file:" + os.path.abspath(path), metadata_errors="ignore") as c:
                meta = {k.lower(): v for k, v in c.metadata.items()}
                if c.streams.audio:  # (ogg-like containers keep them on the stream)
                    meta = {**{k.lower(): v for k, v in c.streams.audio[0].metadata.items()}, **meta}
            found = {t: meta.get(_FFMPEG_NAMES.get(t, t), "") for t in TAGS}
        except Exception:
            return {}
    return {t: str(found[t]).strip() for t in TAGS if str(found.get(t) or "").strip()}


def writer_options(fmt: str, sample_rate: int, enc: Encoding | None, path: Path) -> dict:
    """soundfile.SoundFile's keyword arguments for ``enc`` (VocalsepError for what ``fmt`` at
    ``sample_rate`` cannot have)."""
    if fmt == "opus" and sample_rate not in OPUS_RATES:
        raise VocalsepError(f"{path}: opus holds audio at {', '.join(str(r // 1000) for r in OPUS_RATES)} kHz, "
                            f"not {sample_rate} Hz (outputs keep the input's rate); use --format ogg (Vorbis)")
    if enc is None:
        return {}
    if enc.mp3_bitrate is not None:
        from .outspec import mp3_compression

        return {"bitrate_mode": "CONSTANT", "compression_level": mp3_compression(enc.mp3_bitrate, sample_rate, path)}
    if enc.mp3_quality is not None:
        # libsndfile hands LAME compression_level x 10 as its -V quality
        return {"bitrate_mode": "VARIABLE", "compression_level": enc.mp3_quality / 10}
    return {}


def open_writer(tmp: Path, sample_rate: int, channels: int, fmt: str, major: str, subtype: str,
                enc: Encoding | None, path: Path):
    """A soundfile.SoundFile writing ``tmp`` with ``enc``'s settings and tags (set before any sample, as
    flac and mp3 need)."""
    import soundfile as sf

    kw = writer_options(fmt, sample_rate, enc, path)
    try:
        f = sf.SoundFile(str(tmp), "w", samplerate=sample_rate, channels=channels, format=major, subtype=subtype,
                         **kw)
    except TypeError:  # soundfile < 0.13 has no compression_level / bitrate_mode
        option = "--mp3-bitrate" if enc and enc.mp3_bitrate is not None else "--mp3-quality"
        raise VocalsepError(f"{option} needs soundfile >= 0.13 (this is {sf.__version__}): "
                            "pip install -U soundfile") from None
    for name, text in (enc.tags if enc else {}).items():
        try:
            setattr(f, name, text)
        except Exception:  # a tag this format's writer refuses: the audio matters more
            pass
    return f
