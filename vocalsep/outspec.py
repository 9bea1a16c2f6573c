"""What ``vocalsep separate`` writes for a song: which stems, under which names, in which sample format,
and what happens to samples beyond full scale.

* **Sample format.** By default an output keeps the input's: a 16-bit input gives 16-bit stems, a 24-bit
  (or 32-bit integer) one 24-bit stems, a float one float stems (flac, which holds integers only: 24-bit).
  Lossy and other inputs (mp3, ogg, m4a, 8-bit, A-law) give 16-bit.  ``depth`` (``int16``, ``int24``,
  ``float32``) chooses.  Lossy outputs (mp3, ogg, opus) have no sample format.
* **Clipping.** An integer (or mp3) output cannot hold a sample beyond +-1.  ``clip``: ``rescale`` (the
  default there) scales both stems by one gain, so that they still add up to the input scaled alike;
  ``clamp`` cuts the samples at +-1; ``none`` writes as they are, for float outputs only (their default).
  Whenever rescale or clamp acts, a warning names the file and how much.
* **Names.** Outputs go to ``template`` (relative to the output root): ``{track}/{stem}.{ext}`` by default,
  where ``track`` is the input's path below the input folder without its extension, ``stem`` the stem's name
  (``vocals``, and ``accompaniment`` or what ``accompaniment_name`` says: ``instrumental``, ``no_vocals``),
  ``ext`` the output format and ``input_ext`` the input's extension (``{track}_{input_ext}/...`` keeps
  ``a.mp3`` and ``a.wav`` apart).  A name never leaves the output root, and a song's stems share one folder
  (they are committed together there, see :mod:`vocalsep.outputs`).
"""

from __future__ import annotations

import logging
import math
import string
from dataclasses import dataclass
from pathlib import Path

from .errors import VocalsepError

STEMS = ("vocals", "accompaniment")
#: sample formats: option value -> libsndfile subtype
DEPTHS = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT"}
CLIPS = ("rescale", "clamp", "none")
ACCOMPANIMENT_NAMES = ("accompaniment", "instrumental", "no_vocals")
FIELDS = ("track", "stem", "ext", "input_ext")
DEFAULT_TEMPLATE = "{track}/{stem}.{ext}"
#: output formats: name -> libsndfile major format
FORMATS = {"wav": "WAV", "flac": "FLAC", "mp3": "MP3", "ogg": "OGG", "opus": "OGG"}
#: the lossy ones: no sample format, samples cut at +-1 (``rescale`` by default)
LOSSY = ("mp3", "ogg", "opus")
#: file name suffixes that say an audio format, which a --filename template must not contradict
_AUDIO_SUFFIXES = {"wav", "flac", "mp3", "ogg", "opus", "oga", "m4a", "aac", "aif", "aiff", "wma"}
#: file names of vocalsep's own bookkeeping in an output folder (outputs.MANIFEST, outputs.LOCK)
_RESERVED = (".vocalsep-outputs.json", ".vocalsep.lock")


@dataclass(frozen=True)
class OutputOptions:
    """The outputs of a run (see the module's docstring); checked when made (VocalsepError naming the option)."""

    fmt: str = "wav"
    depth: str | None = None            # None: the input's
    clip: str | None = None             # None: none for float outputs, rescale for the others
    stems: tuple[str, ...] = STEMS
    accompaniment_name: str = "accompaniment"
    template: str = DEFAULT_TEMPLATE
    mp3_bitrate: int | None = None      # kbps, constant; None: libsndfile's default (variable, LAME -V 4)
    start: float = 0.0                  # seconds of the input skipped
    duration: float | None = None       # seconds separated from ``start`` (None: to the end)
    mp3_quality: float | None = None    # LAME's -V 0 (best) to 9, variable bitrate
    tags: bool = True                   # copy the input's tags (title, artist, album, ...) to each stem

    def __post_init__(self) -> None:
        for flag, v in (("--mp3-bitrate", self.mp3_bitrate), ("--mp3-quality", self.mp3_quality)):
            if v is not None and self.fmt != "mp3":
                raise VocalsepError(f"{flag} applies to mp3 outputs only (the format is {self.fmt}); add "
                                    "--format mp3, or leave it out")
        if self.mp3_bitrate is not None and (isinstance(self.mp3_bitrate, bool)
                                             or not isinstance(self.mp3_bitrate, int) or not 8 <= self.mp3_bitrate <= 320):
            raise VocalsepError(f"--mp3-bitrate {self.mp3_bitrate!r}: a whole number of kbps from 8 to 320")
        q = self.mp3_quality
        if q is not None and (isinstance(q, bool) or not isinstance(q, (int, float)) or not 0 <= q <= 9):
            shown = f"{q:g}" if isinstance(q, (int, float)) and not isinstance(q, bool) else repr(q)
            raise VocalsepError(f"--mp3-quality {shown}: LAME's -V scale from 0 (best) to 9")
        if self.mp3_quality is not None and self.mp3_bitrate is not None:
            raise VocalsepError("--mp3-bitrate (constant) and --mp3-quality (variable) are alternatives; give one")
        if not (isinstance(self.start, (int, float)) and math.isfinite(self.start) and self.start >= 0):
            raise VocalsepError(f"--start {self.start!r}: seconds >= 0")
        if self.duration is not None and not (isinstance(self.duration, (int, float))
                                              and math.isfinite(self.duration) and self.duration > 0):
            raise VocalsepError(f"--duration {self.duration!r}: seconds > 0")
        if self.fmt not in FORMATS:
            raise VocalsepError(f"unknown output format {self.fmt!r}; choose one of {sorted(FORMATS)}")
        if self.depth is not None and self.depth not in DEPTHS:
            raise VocalsepError(f"unknown sample format {self.depth!r}; choose one of {', '.join(DEPTHS)}")
        if self.depth is not None and self.fmt in LOSSY:
            raise VocalsepError(f"--{self.depth} applies to wav and flac outputs, not {self.fmt}")
        if self.depth == "float32" and self.fmt == "flac":
            raise VocalsepError("--float32: flac holds integer samples only; use --int16 or --int24, or --format wav")
        if self.clip is not None and self.clip not in CLIPS:
            raise VocalsepError(f"unknown clip mode {self.clip!r}; choose one of {', '.join(CLIPS)}")
        if self.clip == "none" and (self.fmt != "wav" or self.depth in ("int16", "int24")):
            raise VocalsepError("--clip none: integer and lossy outputs cannot hold samples beyond full scale; "
                                "use --float32 (wav), or --clip rescale or clamp")
        stems = tuple(self.stems)
        if not stems or any(s not in STEMS for s in stems) or len(set(stems)) != len(stems):
            raise VocalsepError(f"stems must be some of {', '.join(STEMS)}, not {stems!r}")
        object.__setattr__(self, "stems", stems)
        if self.accompaniment_name not in ACCOMPANIMENT_NAMES:
            raise VocalsepError(f"unknown accompaniment name {self.accompaniment_name!r}; choose one of "
                                f"{', '.join(ACCOMPANIMENT_NAMES)}")
        self._check_template()

    # -- sample format ---------------------------------------------------------------------------------
    def sample_format(self, input_subtype: str | None) -> tuple[str | None, str]:
        """(libsndfile subtype or None for lossy formats, clip mode) of the outputs of an input whose
        sample format is ``input_subtype`` (:func:`vocalsep.audio.subtype`: libsndfile's, or the depth of a
        lossless stream PyAV reads; None: a lossy stream, or unknown)."""
        if self.fmt in LOSSY:
            subtype = None
        elif self.depth is not None:
            subtype = DEPTHS[self.depth]
        elif input_subtype in ("FLOAT", "DOUBLE"):
            subtype = "FLOAT" if self.fmt == "wav" else "PCM_24"
        elif input_subtype in ("PCM_24", "PCM_32"):
            subtype = "PCM_24"
        else:
            subtype = "PCM_16"
        clip = self.clip or ("none" if subtype == "FLOAT" else "rescale")
        if clip == "none" and subtype != "FLOAT":  # the input's depth was an integer one
            raise VocalsepError(f"--clip none: this input gives {subtype} outputs, which cannot hold samples "
                                "beyond full scale; add --float32")
        return subtype, clip

    # -- names -----------------------------------------------------------------------------------------
    def stem_name(self, stem: str) -> str:
        return self.accompaniment_name if stem == "accompaniment" else stem

    def file_names(self) -> dict[str, str]:
        """{stem: file name} in a song folder given to ``Separator.separate_file`` directly."""
        return {s: f"{self.stem_name(s)}.{self.fmt}" for s in self.stems}

    def files(self, track: Path, input_path: Path) -> tuple[Path, dict[str, str]]:
        """(folder relative to the output root, {stem: file name in it}) of one input: ``track`` its output
        name (``inputs.output_name``).  VocalsepError if a name would leave the output root."""
        paths = {}
        for s in self.stems:
            rel = self._format(track.as_posix(), self.stem_name(s), input_path.suffix.lstrip("."))
            p = Path(rel)
            if _outside(rel):
                raise VocalsepError(f"{input_path}: its output {rel!r} (--filename {self.template!r}) would not be "
                                    "a file inside the output folder")
            paths[s] = p
        folders = {p.parent for p in paths.values()}
        if len(folders) != 1:  # (the template check makes this one folder for any track; a guard)
            raise VocalsepError(f"--filename {self.template!r}: a song's stems must go to one folder")
        return folders.pop(), {s: p.name for s, p in paths.items()}

    def _format(self, track: str, stem: str, input_ext: str) -> str:
        return self.template.format(track=track, stem=stem, ext=self.fmt, input_ext=input_ext)

    def _check_template(self) -> None:
        t = self.template
        try:
            parsed = list(string.Formatter().parse(t))
        except ValueError as e:
            raise VocalsepError(f"--filename {t!r}: {e}") from None
        for _, field, spec, conv in parsed:
            if field is None:
                continue
            if field not in FIELDS or spec or conv:
                raise VocalsepError(f"--filename {t!r}: unknown field {{{field}{'!' + conv if conv else ''}"
                                    f"{':' + spec if spec else ''}}}; the fields are "
                                    + ", ".join(f"{{{f}}}" for f in FIELDS))
        fields = {f for _, f, _, _ in parsed if f}
        if len(self.stems) > 1 and "stem" not in fields:
            raise VocalsepError(f"--filename {t!r}: needs {{stem}}, or both stems get the same name")
        if _outside(self._format("t", "s1", "x")):
            raise VocalsepError(f"--filename {t!r}: would not name a file inside the output folder (a path "
                                "below it: no leading /, no . or .. folder, no trailing /, not a name vocalsep uses)")
        a, b = (Path(self._format("t", s, "x")) for s in ("s1", "s2"))
        ext = a.suffix.lower().lstrip(".")
        if ext in _AUDIO_SUFFIXES and ext != self.fmt:  # e.g. "{track}/{stem}.wav" with -f flac: flac in a .wav
            raise VocalsepError(f"--filename {t!r}: its files end in .{ext} but the format is {self.fmt} (-f); end "
                                "it with .{ext}, or choose the format with -f")
        if a.parent != b.parent:
            raise VocalsepError(f"--filename {t!r}: {{stem}} must be in the file name, not a folder name: a "
                                "song's stems go to one folder, where they are committed together")

    def describe(self, subtype: str | None, clip: str) -> dict:
        """What of these options makes the audio of a file (for the manifest's provenance)."""
        d = {"format": self.fmt, "sample_format": subtype, "clip": clip}
        for k in ("mp3_bitrate", "mp3_quality", "duration"):
            if getattr(self, k) is not None:
                d[k] = getattr(self, k)
        if self.start:
            d["start"] = self.start
        return d

    def encoding(self, input_path: Path):
        """The :class:`vocalsep.encoding.Encoding` of an input's outputs: the mp3 settings, and the input's
        tags and cover unless ``tags`` is off; an input without a title has its file name's (each stem adds
        its name to it: :meth:`~vocalsep.encoding.Encoding.for_stem`)."""
        from .encoding import Encoding, read_cover, read_tags

        if not self.tags:
            return Encoding(self.mp3_bitrate, self.mp3_quality)
        tags = read_tags(input_path)
        tags.setdefault("title", input_path.stem)
        return Encoding(self.mp3_bitrate, self.mp3_quality, tags, read_cover(input_path))

    def span(self, sample_rate: int) -> tuple[int, int | None]:
        """(first sample, samples or None: to the end) of ``--start``/``--duration`` at ``sample_rate``."""
        return (int(round(self.start * sample_rate)),
                None if self.duration is None else max(1, int(round(self.duration * sample_rate))))


def mp3_compression(bitrate: int, sample_rate: int, path: Path) -> float:
    """libsndfile's compression level for a constant ``bitrate`` (kbps) at ``sample_rate`` (the inverse of
    its ``mpeg_l3_encoder_set_quality``: MPEG-1 from 32 kHz, 32-320 kbps; MPEG-2 from 16 kHz, 8-160;
    MPEG-2.5 below, 8-64).  VocalsepError if that rate cannot have it."""
    lo, hi = (32, 320) if sample_rate >= 32000 else (8, 160) if sample_rate >= 16000 else (8, 64)
    if not lo <= bitrate <= hi:
        raise VocalsepError(f"{path}: --mp3-bitrate {bitrate}: mp3 at {sample_rate} Hz holds {lo} to {hi} kbps")
    return min(1.0, max(0.0, (hi - bitrate) / (hi - lo) - 1e-9))  # (libsndfile truncates the bitrate)


def warn_clipping(path: Path, writers: dict, clip: str, peak: float, gain: float, fmt: str,
                  subtype: str | None) -> None:
    """One warning line (logger ``vocalsep``) when ``clip`` acted on the outputs of ``path``: the stems
    (``writers``: {stem: AtomicWriter}) peaked at ``peak`` and were scaled by ``gain`` or cut at +-1."""
    log = logging.getLogger("vocalsep")
    target = {"PCM_16": "16-bit ", "PCM_24": "24-bit ", "FLOAT": "float "}.get(subtype or "", "") + fmt
    if clip == "rescale" and gain != 1.0:
        both = len(writers) > 1
        log.warning("%s: the %s at %.2f (%+.1f dBFS), beyond what %s holds: %s by %.3f (%.1f dB)%s "
                    "(%s--float32 keeps the level)", path, "stems peak" if both else "output peaks", peak,
                    20 * math.log10(peak), target, "both scaled" if both else "scaled", gain, 20 * math.log10(gain),
                    ", so they add up to the input scaled alike" if both else "",
                    "" if fmt == "wav" else "--format wav ")
    elif clip == "clamp":
        n = sum(w.clipped for w in writers.values())
        if n:
            log.warning("%s: %s samples beyond full scale (peak %.2f, %+.1f dBFS) clamped to +-1; the stems no "
                        "longer add up to the input (%s keeps them whole)", path, f"{n:,}", peak, 20 * math.log10(peak),
                        "--clip rescale" if subtype == "FLOAT" else "--clip rescale or --float32 --clip none")


def _outside(rel: str) -> bool:
    """Whether the output path ``rel`` (a template filled in) would not be a file below the output root."""
    return (not rel or rel.endswith("/") or Path(rel).is_absolute() or any(q in (".", "..") for q in rel.split("/"))
            or Path(rel).name in _RESERVED or "\0" in rel)
