"""How an output file is encoded beyond its format and sample format: mp3's bitrate (constant) or quality
(variable), and the tags copied from the input.

Everything goes through libsndfile (soundfile): mp3 (LAME), ogg (Vorbis) and opus (in ogg), and the tags
it writes in every one of vocalsep's formats: wav (a LIST/INFO chunk), flac, ogg and opus (Vorbis
comments), mp3 (ID3v2).  Tags are read from the input by libsndfile, or by PyAV for the files it decodes
(m4a, wma, video).  libsndfile has no pictures: the cover (front cover, or the first picture) is read and
added to each finished stem by mutagen, in the tag block each format's players read (mp3 and wav: an ID3
APIC frame; flac: a PICTURE block; ogg and opus: a METADATA_BLOCK_PICTURE comment).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from .errors import VocalsepError

#: tags copied from an input to its stems (soundfile's names); not "software", which names the input's
#: encoder
TAGS = ("title", "artist", "album", "date", "tracknumber", "genre", "comment", "copyright")
#: the same tags as FFmpeg names them (PyAV's ``container.metadata``), where the name differs
_FFMPEG_NAMES = {"tracknumber": "track"}
#: sample rates that opus holds
OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
#: sample rates that mp3 holds (MPEG-1, 2 and 2.5)
MP3_RATES = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
#: the most channels a format holds (LAME: stereo; FLAC: 8); the others take more than inputs have
MAX_CHANNELS = {"mp3": 2, "flac": 8}


@dataclass(frozen=True)
class Encoding:
    """``mp3_bitrate``: kbps, constant; ``mp3_quality``: LAME's -V, variable (neither: libsndfile's
    default, -V 4); ``tags``: {soundfile tag name: text} written into the file."""

    mp3_bitrate: int | None = None
    mp3_quality: float | None = None
    tags: dict = field(default_factory=dict)
    cover: "Cover | None" = None

    def for_stem(self, name: str) -> "Encoding":
        """These settings for the stem called ``name`` (vocals, accompaniment, instrumental, no_vocals): its
        title says which stem it is, 'Song (vocals)', so that a music library tells a song's stems apart
        (and from the song); without a title, unchanged."""
        if "title" not in self.tags:
            return self
        return replace(self, tags={**self.tags, "title": f"{self.tags['title']} ({name.replace('_', ' ')})"})


@dataclass(frozen=True)
class Cover:
    """A picture of an input: ``data`` (the image file's bytes), ``mime`` (e.g. ``image/jpeg``)."""

    data: bytes
    mime: str
    description: str = ""


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


def read_cover(path: str | Path) -> Cover | None:
    """The input's front cover (or its first picture) by mutagen, None when it has none or it cannot be
    read (mp3, wav and aiff: ID3 APIC; flac: PICTURE; m4a: covr; ogg and opus: METADATA_BLOCK_PICTURE)."""
    try:
        import base64

        import mutagen
        from mutagen.flac import Picture

        f = mutagen.File(str(path))
        if f is None:
            return None
        found = []  # (picture type, Cover): 3 is the front cover in ID3 and FLAC
        for pic in getattr(f, "pictures", None) or []:  # flac
            found.append((pic.type, Cover(bytes(pic.data), pic.mime, pic.desc)))
        tags = f.tags
        if tags is not None and hasattr(tags, "getall"):  # ID3
            found += [(a.type, Cover(bytes(a.data), a.mime, a.desc)) for a in tags.getall("APIC")]
        elif tags is not None:
            for c in (tags.get("covr") or []) if hasattr(tags, "get") else []:  # mp4
                found.append((3, Cover(bytes(c), "image/png" if c.imageformat == c.FORMAT_PNG else "image/jpeg")))
            for b in (tags.get("metadata_block_picture") or []) if hasattr(tags, "get") else []:  # vorbis comment
                pic = Picture(base64.b64decode(b))
                found.append((pic.type, Cover(bytes(pic.data), pic.mime, pic.desc)))
    except Exception:
        return None
    found = [(t, c) for t, c in found if c.data]
    return min(found, key=lambda tc: tc[0] != 3)[1] if found else None


#: ID3v2 frames of :data:`TAGS` (an mp3 given a cover gets its text tags in ID3v2 too)
_ID3_FRAMES = {"title": "TIT2", "artist": "TPE1", "album": "TALB", "date": "TDRC", "tracknumber": "TRCK",
               "genre": "TCON", "copyright": "TCOP"}


def add_cover(tmp: Path, fmt: str, cover: Cover, path: Path, tags: dict | None = None) -> None:
    """Add ``cover`` to the finished file ``tmp`` (format ``fmt``) in place.  An mp3's text ``tags`` go into
    the same ID3v2 tag as UTF-8 (libsndfile writes them as ID3v1, whose text mutagen would carry over as
    Latin-1).  A cover that mutagen cannot add is a warning naming ``path`` (the audio matters more); an
    OSError (a full disk) is raised."""
    import logging

    try:
        import base64

        from mutagen.flac import FLAC, Picture
        from mutagen.id3 import APIC
        from mutagen.mp3 import MP3
        from mutagen.oggopus import OggOpus
        from mutagen.oggvorbis import OggVorbis
        from mutagen.wave import WAVE

        # the class of the format, not a guess from the bytes (MPEG-2.5 mp3s of 8-12 kHz are not recognised)
        f = {"mp3": MP3, "wav": WAVE, "flac": FLAC, "ogg": OggVorbis, "opus": OggOpus}[fmt](str(tmp))
        if fmt in ("mp3", "wav"):
            if f.tags is None:
                f.add_tags()
            if fmt == "mp3":
                from mutagen import id3

                for name, text in (tags or {}).items():
                    if name == "comment":
                        f.tags.delall("COMM")
                        f.tags.add(id3.COMM(encoding=3, lang="eng", desc="", text=[text]))
                    elif name == "date" and not re.match(r"\d{4}(-\d\d){0,2}([T ]\d\d(:\d\d){0,2})?$", text):
                        continue  # (ID3v2.4's date is a timestamp: other text would be dropped)
                    elif name in _ID3_FRAMES:
                        f.tags.add(getattr(id3, _ID3_FRAMES[name])(encoding=3, text=[text]))
            f.tags.add(APIC(encoding=3, mime=cover.mime, type=3, desc=cover.description, data=cover.data))
        else:
            pic = Picture()
            pic.type, pic.mime, pic.desc, pic.data = 3, cover.mime, cover.description, cover.data
            if fmt == "flac":
                f.add_picture(pic)
            else:  # ogg, opus
                f["metadata_block_picture"] = [base64.b64encode(pic.write()).decode("ascii")]
        f.save()
    except OSError:
        raise
    except Exception as e:
        if isinstance(e.__context__, OSError):  # mutagen wraps a failed write (a full disk) in its own error
            raise e.__context__ from None
        logging.getLogger("vocalsep").warning("%s: the input's cover was not copied (%s)", path,
                                              str(e).splitlines()[0] if str(e) else type(e).__name__)


def writer_options(fmt: str, sample_rate: int, enc: Encoding | None, path: Path, channels: int = 1) -> dict:
    """soundfile.SoundFile's keyword arguments for ``enc`` (VocalsepError for what ``fmt`` at
    ``sample_rate`` with ``channels`` cannot have)."""
    if channels > MAX_CHANNELS.get(fmt, channels):
        others = [f for f in ("wav", "flac", "ogg", "opus") if channels <= MAX_CHANNELS.get(f, channels)
                  and (f != "opus" or sample_rate in OPUS_RATES)]
        raise VocalsepError(f"{path}: {fmt} holds at most {MAX_CHANNELS[fmt]} channels, not {channels} (outputs keep "
                            f"the input's channels); use --format {' or '.join(others)}")
    if fmt == "mp3" and sample_rate not in MP3_RATES:
        raise VocalsepError(f"{path}: mp3 holds audio at {', '.join(f'{r / 1000:g}' for r in MP3_RATES)} kHz, not "
                            f"{sample_rate} Hz (outputs keep the input's rate); use --format ogg or flac")
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

    kw = writer_options(fmt, sample_rate, enc, path, channels)
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
