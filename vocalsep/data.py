"""Training data: song discovery, the streaming example sampler, batching with parallel prefetch.

Songs come from four kinds of data set, detected per path (``DataConfig.dataset = auto``):

``musdb``     MUSDB18 in its native STEMS format, ``<root>/{train,test}/*.stem.mp4`` (``train`` when present,
              else ``test``; training refuses a root that has ``test`` only).  Decoding an mp4 spawns ffmpeg, far too slow for random excerpts, so each
              track's vocals and accompaniment (drums + bass + other) are decoded once, through the ``musdb``
              package, into a cache of wav files (``DataConfig.cache_dir``, default
              :func:`default_cache_dir` ``/musdb``), written atomically, and read from there like any other stem.
``musdb-hq``  MUSDB18-HQ, ``<root>/{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav``: read directly.
``ccmixter``  ``<root>/<song>/mix.wav, source-01.wav (accompaniment), source-02.wav (voice)``.
``stems``     ``<root>/<song>/vocals.* + accompaniment.*``, or any other stems: every audio file not named
              ``vocals*`` (nor ``mix*``) is summed into the accompaniment.  Songs named
              ``<singer>_<song>_<clip>`` (MIR-1K) are grouped by ``<singer>_<song>`` so that the clips of one
              song stay on one side of the validation split.

Every song is checked at discovery with a cheap header read; a song with a missing, unreadable or
inconsistent stem (different rate or length) is skipped with a warning (logger ``vocalsep.data``) naming the
file; a path without any usable song raises :class:`VocalsepError`.

Examples are streamed (:mod:`vocalsep.sampler`): each one is a random excerpt of a random training song, read
from disk with a partial read, so memory does not grow with the number of songs; :mod:`vocalsep.batches` makes
batches of them in worker processes.  Their names are importable from here too.  Nothing here imports
TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import soundfile as sf

from . import audio
from .atomic import atomic_path, clear_stale
from .config import DataConfig
from .errors import VocalsepError

log = logging.getLogger("vocalsep.data")

KINDS = ("musdb", "musdb-hq", "ccmixter", "stems")


@dataclass(frozen=True)
class Song:
    """One training song: its stems on disk (summed per source), all at one rate and length."""

    name: str
    group: str                      # song id for the validation split (clips of one song share it)
    vocals: tuple[str, ...]         # paths, summed
    accompaniment: tuple[str, ...]  # paths, summed
    sample_rate: int
    channels: int
    length: int                     # samples per channel
    kind: str = "stems"
    dataset: str = ""               # the data set folder it was found in (DataConfig.remix_across)
    vocal_copies: tuple[str, ...] = ()  # shifted copies of the summed vocals (DataConfig.shift_copies)


# ------------------------------------------------------------------------------------------------ discovery


def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in audio.AUDIO_EXTENSIONS
                  and not p.name.startswith("."))


def _subsets(root: Path, subset: str | None = None) -> list[Path]:
    """The MUSDB subset folder to read: ``root/<subset>``, or with no subset given ``root/train`` when
    present, else ``root/test`` (training takes train, evaluation names its subset)."""
    for name in ([subset] if subset else ["train", "test"]):
        if (root / name).is_dir():
            return [root / name]
    return []


def detect_kind(path: str | Path, subset: str | None = None) -> str:
    """Which kind of data set ``path`` holds (one of :data:`KINDS`); ``subset``: see :func:`discover`."""
    root = Path(path)
    if not root.is_dir():
        raise VocalsepError(f"{root}: data folder does not exist" if not root.exists() else
                            f"{root}: is a file, not a data folder")
    if any(root.glob("*.stem.mp4")) or any(any(s.glob("*.stem.mp4")) for s in _subsets(root, subset)):
        return "musdb"
    for s in _subsets(root, subset):
        if any((d / "mixture.wav").exists() and (d / "vocals.wav").exists() for d in s.iterdir() if d.is_dir()):
            return "musdb-hq"
    subdirs = [d for d in root.iterdir() if d.is_dir()]
    if any((d / "source-02.wav").exists() or (d / "mix.wav").exists() and (d / "source-01.wav").exists()
           for d in subdirs):
        return "ccmixter"
    return "stems"


def stems_group(name: str) -> str:
    """Song id of a clip: ``<singer>_<song>_<clip>`` (MIR-1K) -> ``<singer>_<song>``; other names: themselves."""
    m = re.fullmatch(r"(.+_\d+)_\d+", name)
    return m.group(1) if m else name


Skip = Callable[[str, str], None]


def _warn_skip(name: str, reason: str) -> None:
    log.warning("%s; song %r skipped", reason, name)


def _make_song(name: str, group: str, vocals: Sequence[Path], acc: Sequence[Path], kind: str,
               skip: Skip = _warn_skip) -> Song | None:
    """Check the stems' headers; a Song, or None (``skip`` told the song's name and a one-line reason naming
    the file) if they do not fit."""
    infos = []
    for p in list(vocals) + list(acc):
        try:
            infos.append(audio.info(p))
        except VocalsepError as e:
            skip(name, str(e))
            return None
    first = infos[0]
    for i in infos[1:]:
        if i.sample_rate != first.sample_rate:
            skip(name, f"{i.path}: sample rate {i.sample_rate} Hz differs from {first.path.name} "
                       f"({first.sample_rate} Hz)")
            return None
        if i.frames != first.frames:
            skip(name, f"{i.path}: length {i.frames} samples differs from {first.path.name} ({first.frames} samples)")
            return None
    return Song(name, group, tuple(str(p) for p in vocals), tuple(str(p) for p in acc), first.sample_rate,
                max(i.channels for i in infos), first.frames, kind)


def _discover_stems(root: Path, skip: Skip = _warn_skip) -> list[Song]:
    songs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _audio_files(d)
        if not files:
            skip(d.name, f"{d}: no audio files")
            continue
        vocals = [f for f in files if f.name.lower().startswith("vocals")]
        acc = [f for f in files if not f.name.lower().startswith(("vocals", "mix"))]
        if not vocals:
            skip(d.name, f"{d / 'vocals.*'}: missing vocals stem (vocals.*)")
            continue
        if not acc:
            skip(d.name, f"{d / 'accompaniment.*'}: missing accompaniment stem (accompaniment.* or other stems)")
            continue
        song = _make_song(d.name, stems_group(d.name), vocals, acc, "stems", skip)
        if song:
            songs.append(song)
    return songs


def _discover_ccmixter(root: Path, skip: Skip = _warn_skip) -> list[Song]:
    songs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        voc, acc = d / "source-02.wav", d / "source-01.wav"
        missing = [p for p in (voc, acc) if not p.exists()]
        if missing:
            skip(d.name, f"{missing[0]}: missing stem")
            continue
        song = _make_song(d.name, d.name, [voc], [acc], "ccmixter", skip)
        if song:
            songs.append(song)
    return songs


def _discover_musdb_hq(root: Path, subset: str | None, skip: Skip = _warn_skip) -> list[Song]:
    songs = []
    for folder in _subsets(root, subset):
        for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            stems = [d / f"{s}.wav" for s in ("vocals", "drums", "bass", "other")]
            missing = [p for p in stems if not p.exists()]
            if missing:
                skip(d.name, f"{missing[0]}: missing stem")
                continue
            song = _make_song(d.name, d.name, stems[:1], stems[1:], "musdb-hq", skip)
            if song:
                songs.append(song)
    return songs


def default_cache_dir() -> Path:
    """``$VOCALSEP_CACHE``, else ``$XDG_CACHE_HOME/vocalsep``, else ``~/.cache/vocalsep``."""
    base = os.environ.get("VOCALSEP_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vocalsep")
    return Path(base)


def _write_wav_atomic(path: Path, x: np.ndarray, sr: int, subtype: str) -> None:
    with atomic_path(path) as tmp:
        sf.write(str(tmp), x, sr, format="WAV", subtype=subtype)


def _musdb_cache_one(track, stem_ids: dict, folder: Path, subtype: str) -> None:
    """Decode one STEMS track once (one ffmpeg run for all streams) into vocals.wav + accompaniment.wav."""
    stems = np.asarray(track.stems, dtype=np.float32)  # (5, samples, channels)
    sr = int(track.rate)
    vocals = stems[stem_ids["vocals"]]
    acc = stems[stem_ids["drums"]] + stems[stem_ids["bass"]] + stems[stem_ids["other"]]
    folder.mkdir(parents=True, exist_ok=True)
    _write_wav_atomic(folder / "vocals.wav", vocals, sr, subtype)
    _write_wav_atomic(folder / "accompaniment.wav", acc, sr, subtype)


def _musdb_files(root: Path, subset: str | None) -> tuple[Path, list[str], list[Path]]:
    """(musdb root, subsets, .stem.mp4 files) of a MUSDB18 root or of one of its train/test folders."""
    if any(root.glob("*.stem.mp4")):  # the path is a subset folder itself
        if root.name not in ("train", "test"):
            raise VocalsepError(f"{root}: .stem.mp4 files must lie in a train/ or test/ folder of the MUSDB18 root")
        db_root, subsets = root.parent, [root.name]
    else:
        db_root, subsets = root, [s.name for s in _subsets(root, subset)]
    files = sorted(p for s in subsets for p in (db_root / s).glob("*.stem.mp4") if not p.name.startswith("."))
    return db_root, subsets, files


def _discover_musdb(root: Path, subset: str | None, cache_dir: Path | None, subtype: str, workers: int
                    ) -> list[Song]:
    db_root, subsets, files = _musdb_files(root, subset)
    cache = cache_dir or default_cache_dir() / "musdb"
    folders = {}
    for p in files:
        st = p.stat()
        key = hashlib.sha1(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}|{subtype}".encode()).hexdigest()[:16]
        folders[p] = cache / key
    todo = [p for p, f in folders.items() if not ((f / "vocals.wav").exists() and (f / "accompaniment.wav").exists())]
    for p in todo:
        clear_stale(folders[p])  # the temporary files of a run killed while decoding this track
    if todo:  # decode what is not cached yet, through the musdb package (one ffmpeg run per track)
        try:
            import musdb
        except Exception as e:  # musdb's import fails without ffmpeg
            raise VocalsepError(f"{root}: reading MUSDB18 .stem.mp4 needs the musdb package and ffmpeg ({e})") from None
        try:
            db = musdb.DB(root=str(db_root), subsets=subsets, is_wav=False)
        except Exception as e:
            raise VocalsepError(f"{root}: cannot open as MUSDB18 ({str(e).splitlines()[0] if str(e) else e!r})") from None
        stem_ids = db.setup["stem_ids"]
        tracks = {Path(t.path).resolve(): t for t in db.tracks}
        from tqdm import tqdm

        log.info("decoding %d MUSDB18 track%s once into %s", len(todo), "s"[:len(todo) != 1], cache)

        def one(p: Path) -> None:
            try:
                track = tracks.get(p.resolve())
                if track is None:
                    raise VocalsepError("musdb does not list it")
                _musdb_cache_one(track, stem_ids, folders[p], subtype)
            except Exception as e:
                msg = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
                log.warning("%s: cannot decode (%s); song skipped", p, msg)

        with ThreadPoolExecutor(max(1, workers, os.cpu_count() or 1)) as ex:
            for _ in tqdm(ex.map(one, todo), total=len(todo), desc="decoding MUSDB18", unit="track", leave=False,
                          disable=None):  # no bar when stderr is not a terminal
                pass
    songs = []
    for p, folder in folders.items():
        if not (folder / "vocals.wav").exists():
            continue
        name = p.name[: -len(".stem.mp4")]
        song = _make_song(name, name, [folder / "vocals.wav"], [folder / "accompaniment.wav"], "musdb")
        if song:
            songs.append(song)
    return songs


def discover(path: str | Path, kind: str = "auto", cache_dir: str | Path | None = None,
             cache_subtype: str = "FLOAT", workers: int = 1, subset: str | None = None,
             skipped: list[tuple[str, str]] | None = None) -> list[Song]:
    """The usable songs under ``path``; bad ones are skipped with a warning, none at all is an error.

    ``subset``: the MUSDB18 / MUSDB18-HQ subset folder to read (``train`` or ``test``); None: ``train``
    when there is one, else ``test``.  Songs are sorted by name within each subset.
    ``skipped``: a list that gets (song name, one-line reason naming the file) for each song skipped, instead
    of the warnings (evaluation counts them); then an empty result is an error only when nothing was skipped.
    """
    root = Path(path)
    if kind not in ("auto",) + KINDS:
        raise VocalsepError(f"unknown data set kind {kind!r}; choose auto, {', '.join(KINDS)}")
    if not root.is_dir():
        raise VocalsepError(f"{root}: data folder does not exist" if not root.exists() else
                            f"{root}: is a file, not a data folder")
    if kind == "auto":
        kind = detect_kind(root, subset)
    if kind in ("musdb", "musdb-hq") and subset and not (root / subset).is_dir() and not (
            kind == "musdb" and root.name == subset):
        raise VocalsepError(f"{root / subset}: no such folder (subset {subset!r} of a {kind} data set)")
    skip = _warn_skip if skipped is None else (lambda name, reason: skipped.append((name, reason)))
    if kind == "musdb":
        songs = _discover_musdb(root, subset, Path(cache_dir).expanduser() if cache_dir else None, cache_subtype,
                                workers)
    elif kind == "musdb-hq":
        songs = _discover_musdb_hq(root, subset, skip)
    elif kind == "ccmixter":
        songs = _discover_ccmixter(root, skip)
    else:
        songs = _discover_stems(root, skip)
    if not songs and not skipped:
        raise VocalsepError(f"{root}: no usable songs found (as a {kind} data set)")
    songs = [dataclasses.replace(s, dataset=str(root)) for s in songs]
    log.info("%s: %d song%s (%s)", root, len(songs), "s"[:len(songs) != 1], kind)
    return songs


def discover_all(cfg: DataConfig) -> list[Song]:
    """All songs of ``cfg.datasets``."""
    if not cfg.datasets:
        raise VocalsepError("no training data: give --data PATH (or data.datasets in the config)")
    songs: list[Song] = []
    for p in cfg.datasets:
        root = Path(p)
        if (root.is_dir() and root.name not in ("train", "test") and not (root / "train").is_dir()
                and (root / "test").is_dir() and (cfg.dataset if cfg.dataset != "auto" else detect_kind(root))
                in ("musdb", "musdb-hq")):
            raise VocalsepError(f"{root}: has a test/ folder (the songs MUSDB18 is evaluated on) but no train/; "
                                f"give {root / 'test'} to train on the test songs on purpose")
        songs += discover(p, cfg.dataset, cfg.cache_dir or None, cfg.cache_subtype, cfg.workers)
    return songs


def matches_name(name: str, prefix: str) -> bool:
    """``prefix`` is ``name`` or its beginning up to a separator (not a letter or digit)."""
    return name == prefix or (bool(prefix) and name.startswith(prefix) and not name[len(prefix)].isalnum())


def split_songs(songs: Sequence[Song], validation: Sequence[str] = (), fraction: float = 0.1
                ) -> tuple[list[Song], list[Song]]:
    """(training songs, validation songs).

    ``validation``: held-out songs, each an exact song or group name, or a name prefix that ends where a word
    does (``amy_1`` holds out amy_1_01, amy_1_02, ... but not amy_10_01; ``abjones`` holds out every
    abjones_* clip); a song's group goes with it.  Empty: the
    ``fraction`` of song groups first in the order of a fixed hash of their names (at least one when
    ``fraction > 0`` and there are two groups or more), so the split is the same in every run.
    """
    if validation:
        held = set()
        for v in validation:
            hit = {s.group for s in songs if matches_name(s.name, v) or matches_name(s.group, v)}
            if not hit:
                raise VocalsepError(f"validation: no song is named {v!r} or starts with it and a separator "
                                    "(among the songs read: those skipped with a warning do not count)")
            held |= hit
    else:
        groups = sorted({s.group for s in songs}, key=lambda g: hashlib.sha1(g.encode()).hexdigest())
        n = round(fraction * len(groups))
        if fraction > 0 and len(groups) >= 2:
            n = min(max(n, 1), len(groups) - 1)
        held = set(groups[:n])
    train = [s for s in songs if s.group not in held]
    val = [s for s in songs if s.group in held]
    if not train:
        raise VocalsepError("validation: every song is held out; nothing is left to train on")
    return train, val


# the example sampler and the batch stream live in their own modules; their names stay importable from here
from .sampler import PatchSampler, validation_audio, validation_patches  # noqa: E402,F401
from .batches import BatchStream, batch_rng, iter_batches  # noqa: E402,F401
