"""Evaluation data: a track in memory (:class:`TrackAudio`), the songs of a data folder as tracks
(:func:`load_tracks`; a song that cannot be used is a :class:`BrokenTrack`), selection by name and the
training split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .. import audio as audio_io
from ..data import KINDS, Song, detect_kind, discover, matches_name
from ..errors import VocalsepError

TARGETS = ("vocals", "accompaniment")
DATASETS = ("auto",) + KINDS


@dataclass
class TrackAudio:
    """One track in memory: (samples, channels) float32 arrays at ``rate`` Hz; mixture = what is separated.
    ``full_length``: the track's length in samples before :meth:`head` cut it (None: not cut), so that
    estimates of the whole track can be cut the same way."""

    name: str
    mixture: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray
    rate: int
    full_length: int | None = None

    def load(self) -> "TrackAudio":
        return self

    def head(self, seconds: float | None) -> "TrackAudio":
        """The first ``seconds`` seconds (all of it when None), as ``separate --duration SECONDS`` cuts."""
        if seconds is None:
            return self
        n = max(1, int(round(seconds * self.rate)))
        return TrackAudio(self.name, self.mixture[:n], self.vocals[:n], self.accompaniment[:n], self.rate,
                          self.full_length if self.full_length is not None else len(self.mixture))


def _find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>.<ext>`` for the first audio extension that exists (wav first)."""
    for ext in audio_io.AUDIO_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _read_same(groups: Sequence[Sequence[str | Path]]) -> tuple[list[np.ndarray], int]:
    """Read groups of files that must all share rate, channels and length; returns each group's sum."""
    sums, first, rate = [], None, None
    for group in groups:
        total = None
        for p in map(Path, group):
            x, sr = audio_io.read(p)
            if not np.all(np.isfinite(x)):
                raise VocalsepError(f"{p}: holds NaN or infinite samples (a reference stem)")
            if first is None:
                first, rate = (p, x), sr
            elif sr != rate:
                raise VocalsepError(f"{p}: sample rate {sr} Hz differs from {first[0].name} ({rate} Hz)")
            elif x.shape[1] != first[1].shape[1]:
                raise VocalsepError(f"{p}: {x.shape[1]} channel(s) but {first[0].name} has {first[1].shape[1]}")
            elif len(x) != len(first[1]):
                raise VocalsepError(f"{p}: {len(x)} samples but {first[0].name} has {len(first[1])}")
            total = x if total is None else total + x
        sums.append(total)
    return sums, int(rate)


@dataclass
class SongTrack:
    """A song found by :func:`data.discover` (stems, CCMixter or MUSDB18-HQ layout): vocals and
    accompaniment are its stem files summed; the mixture is their sum (MUSDB18-HQ's mixture.wav is exactly
    that sum)."""

    name: str
    song: Song

    def load(self) -> TrackAudio:
        (v, a), sr = _read_same([self.song.vocals, self.song.accompaniment])
        return TrackAudio(self.name, v + a, v, a, sr)


@dataclass
class BrokenTrack:
    """A song that :func:`data.discover` could not use (``reason``: one line naming the file): loading it
    raises VocalsepError(reason), so that evaluation counts it as left out."""

    name: str
    reason: str

    def load(self) -> TrackAudio:
        raise VocalsepError(self.reason)


@dataclass
class MusdbTrack:
    """A track of the ``musdb`` package (MUSDB18 stems); decoded with ffmpeg when loaded."""

    name: str
    track: Any

    def load(self) -> TrackAudio:
        try:
            stems = np.asarray(self.track.stems, dtype=np.float32)  # mixture, drums, bass, other, vocals
        except Exception as e:  # stempeg / ffmpeg failures
            raise VocalsepError(f"{self.track.path}: cannot decode the stems ({str(e).splitlines()[0]})") from None
        ids = {k: v.stem_id for k, v in self.track.sources.items()}
        acc = sum(stems[ids[s]] for s in ("drums", "bass", "other"))
        return TrackAudio(self.name, stems[0], stems[ids["vocals"]], acc.astype(np.float32), int(self.track.rate))


def load_tracks(root: str | Path, dataset: str = "auto", subset: str = "test") -> list:
    """The tracks of a data set, sorted by name, not yet decoded (each has ``.name`` and ``.load()``).

    The layouts are :func:`data.discover`'s (``subset``: the MUSDB18 / MUSDB18-HQ folder to read); MUSDB18
    stems are read through the ``musdb`` package, with their own mixture stream.  A song whose stems are
    missing, unreadable or do not fit together is a :class:`BrokenTrack`, left out when it is evaluated.
    """
    root = Path(root)
    if dataset not in DATASETS:
        raise VocalsepError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    kind = detect_kind(root, subset) if dataset == "auto" else dataset
    if kind != "musdb":
        skipped: list[tuple[str, str]] = []
        tracks: list = [SongTrack(s.name, s) for s in discover(root, kind, subset=subset, skipped=skipped)]
        tracks += [BrokenTrack(name, reason) for name, reason in skipped]
        return sorted(tracks, key=lambda t: t.name)
    try:
        import musdb
    except Exception as e:  # musdb needs ffmpeg (through stempeg)
        raise VocalsepError(f"{root}: reading MUSDB18 stems needs the musdb package and ffmpeg ({e})") from None
    if not (root / subset).is_dir():
        raise VocalsepError(f"{root / subset}: no such folder (MUSDB18 subset {subset!r})")
    db = musdb.DB(root=str(root), subsets=subset)
    tracks = [MusdbTrack(t.name, t) for t in db.tracks]
    if not tracks:
        raise VocalsepError(f"{root}: no tracks found (data set musdb, subset {subset})")
    return sorted(tracks, key=lambda t: t.name)


def read_list_file(path: str | Path) -> list[str]:
    """Names or prefixes, one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise VocalsepError(f"{path}: list file does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VocalsepError(f"{path}: cannot read the list file ({e})") from None
    names = [ln.split("#", 1)[0].strip() for ln in lines]
    names = [n for n in names if n]
    if not names:
        raise VocalsepError(f"{path}: the list file names no songs")
    return names


def select_tracks(tracks: Sequence, names: Iterable[str] = (), prefixes: Iterable[str] = ()) -> list:
    """Tracks named exactly in ``names`` or starting with one of ``prefixes`` (all when both are empty).

    A name or prefix that selects nothing is an error (a typo would otherwise shrink the test set silently).
    """
    names, prefixes = list(names), list(prefixes)
    if not names and not prefixes:
        return list(tracks)
    all_names = {t.name for t in tracks}
    missing = [n for n in names if n not in all_names]
    missing += [p for p in prefixes if not any(matches_name(n, p) for n in all_names)]
    if missing:
        raise VocalsepError(f"no track matches {', '.join(repr(m) for m in missing)}")
    wanted = set(names)
    return [t for t in tracks if t.name in wanted or any(matches_name(t.name, p) for p in prefixes)]


def split_tracks(tracks: Sequence, which: str, validation: Sequence[str] = (), fraction: float = 0.1) -> list:
    """The ``train`` or ``validation`` side of the split that ``vocalsep train`` makes
    (:func:`vocalsep.data.split_songs`: held-out names / prefixes, else a fixed hash of song groups; a
    MIR-1K song's clips stay together).  It reproduces a training run's split when that run trained on
    this one data folder with the same ``data.validation`` / ``data.validation_fraction``.
    """
    from types import SimpleNamespace

    from ..data import split_songs, stems_group

    if which not in ("train", "validation"):
        raise VocalsepError(f"unknown split {which!r}; choose train or validation")
    songs = [SimpleNamespace(name=t.name, group=stems_group(t.name)) for t in tracks]
    train, val = split_songs(songs, list(validation), fraction)
    keep = {s.name for s in (train if which == "train" else val)}
    if not keep:
        raise VocalsepError(f"the {which} split of these {len(tracks)} tracks is empty")
    return [t for t in tracks if t.name in keep]
