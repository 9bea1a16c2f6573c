"""Training data: song discovery, the streaming example sampler, batching with parallel prefetch.

Songs come from four kinds of data set, detected per path (``DataConfig.dataset = auto``):

``musdb``     MUSDB18 in its native STEMS format, ``<root>/{train,test}/*.stem.mp4`` (``train`` when present,
              else ``test``).  Decoding an mp4 spawns ffmpeg, far too slow for random excerpts, so each
              track's vocals and accompaniment (drums + bass + other) are decoded once, through the ``musdb``
              package, into a cache of wav files (``DataConfig.cache_dir``, default
              ``~/.cache/vocalsep/musdb``), written atomically, and read from there like any other stem.
``musdb-hq``  MUSDB18-HQ, ``<root>/{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav``: read directly.
``ccmixter``  ``<root>/<song>/mix.wav, source-01.wav (accompaniment), source-02.wav (voice)``.
``stems``     ``<root>/<song>/vocals.* + accompaniment.*``, or any other stems: every audio file not named
              ``vocals*`` (nor ``mix*``) is summed into the accompaniment.  Songs named
              ``<singer>_<song>_<clip>`` (MIR-1K) are grouped by ``<singer>_<song>`` so that the clips of one
              song stay on one side of the validation split.

Every song is checked at discovery with a cheap header read; a song with a missing, unreadable or
inconsistent stem (different rate or length) is skipped with a warning (logger ``vocalsep.data``) naming the
file; a path without any usable song raises :class:`VocalsepError`.

Examples are streamed: each one is a random excerpt of a random training song, read from disk with a partial
read, so memory does not grow with the number of songs.  Nothing here imports TensorFlow.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import multiprocessing as mp
import os
import queue
import re
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf

from . import audio, spectral
from .augment import VoiceEffects
from .atomic import atomic_path
from .config import DataConfig, ModelConfig, SpectralConfig
from .errors import VocalsepError

log = logging.getLogger("vocalsep.data")

KINDS = ("musdb", "musdb-hq", "ccmixter", "stems")
_MUSDB_STEMS = ("mixture", "drums", "bass", "other", "vocals")
#: a stereo song's channel, chosen per example: 0 left, 1 right, 2 the mid
_MID = 2


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


def _make_song(name: str, group: str, vocals: Sequence[Path], acc: Sequence[Path], kind: str) -> Song | None:
    """Check the stems' headers; a Song, or None (with a warning naming the file) if they do not fit."""
    infos = []
    for p in list(vocals) + list(acc):
        try:
            infos.append(audio.info(p))
        except VocalsepError as e:
            log.warning("%s; song %r skipped", e, name)
            return None
    first = infos[0]
    for i in infos[1:]:
        if i.sample_rate != first.sample_rate:
            log.warning("%s: sample rate %d Hz differs from %s (%d Hz); song %r skipped",
                        i.path, i.sample_rate, first.path.name, first.sample_rate, name)
            return None
        if i.frames != first.frames:
            log.warning("%s: length %d samples differs from %s (%d samples); song %r skipped",
                        i.path, i.frames, first.path.name, first.frames, name)
            return None
    return Song(name, group, tuple(str(p) for p in vocals), tuple(str(p) for p in acc), first.sample_rate,
                max(i.channels for i in infos), first.frames, kind)


def _discover_stems(root: Path) -> list[Song]:
    songs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = _audio_files(d)
        if not files:
            log.warning("%s: no audio files; folder skipped", d)
            continue
        vocals = [f for f in files if f.name.lower().startswith("vocals")]
        acc = [f for f in files if not f.name.lower().startswith(("vocals", "mix"))]
        if not vocals:
            log.warning("%s: missing vocals stem (vocals.*); song skipped", d / "vocals.*")
            continue
        if not acc:
            log.warning("%s: missing accompaniment stem (accompaniment.* or other stems); song skipped",
                        d / "accompaniment.*")
            continue
        song = _make_song(d.name, stems_group(d.name), vocals, acc, "stems")
        if song:
            songs.append(song)
    return songs


def _discover_ccmixter(root: Path) -> list[Song]:
    songs = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        voc, acc = d / "source-02.wav", d / "source-01.wav"
        missing = [p for p in (voc, acc) if not p.exists()]
        if missing:
            log.warning("%s: missing stem; song skipped", missing[0])
            continue
        song = _make_song(d.name, d.name, [voc], [acc], "ccmixter")
        if song:
            songs.append(song)
    return songs


def _discover_musdb_hq(root: Path, subset: str | None) -> list[Song]:
    songs = []
    for folder in _subsets(root, subset):
        for d in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            stems = [d / f"{s}.wav" for s in ("vocals", "drums", "bass", "other")]
            missing = [p for p in stems if not p.exists()]
            if missing:
                log.warning("%s: missing stem; song skipped", missing[0])
                continue
            song = _make_song(d.name, d.name, stems[:1], stems[1:], "musdb-hq")
            if song:
                songs.append(song)
    return songs


def default_cache_dir() -> Path:
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
             cache_subtype: str = "FLOAT", workers: int = 1, subset: str | None = None) -> list[Song]:
    """The usable songs under ``path``; bad ones are skipped with a warning, none at all is an error.

    ``subset``: the MUSDB18 / MUSDB18-HQ subset folder to read (``train`` or ``test``); None: ``train``
    when there is one, else ``test``.  Songs are sorted by name within each subset.
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
    if kind == "musdb":
        songs = _discover_musdb(root, subset, Path(cache_dir).expanduser() if cache_dir else None, cache_subtype,
                                workers)
    elif kind == "musdb-hq":
        songs = _discover_musdb_hq(root, subset)
    elif kind == "ccmixter":
        songs = _discover_ccmixter(root)
    else:
        songs = _discover_stems(root)
    if not songs:
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
                raise VocalsepError(f"validation: no song is named {v!r} or starts with it and a separator")
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


# -------------------------------------------------------------------------------------------------- examples


class PatchSampler:
    """Draws training examples (picklable, so worker processes get a copy).

    One example: magnitudes (freq_bins, frames) float32 of the mixture, the vocals and the accompaniment of
    a patch of ``frames`` centred STFT frames at the model's rate, all divided by the mixture's maximum.
    """

    def __init__(self, songs: Sequence[Song], spec: SpectralConfig, model: ModelConfig, data: DataConfig):
        if not songs:
            raise VocalsepError("no training songs")
        self.songs = list(songs)
        self.spec = spec
        self.model = model
        self.data = data
        #: samples at the model rate whose centred STFT has exactly ``frames`` frames
        self.patch_len = (model.frames - 1) * spec.hop_length
        self.effects = VoiceEffects(data, spec.sample_rate)
        #: per data set, the songs of the other data sets (remix_across; empty when there is only one)
        self._others = {ds: [t for t in self.songs if t.dataset != ds] for ds in {t.dataset for t in self.songs}}

    # -- reading

    def _span(self, sr: int) -> tuple[int, int]:
        """(samples to read at rate sr, margin each side) for one patch: the margin keeps the resampler's
        edge effects (and the voice effects' own, a quarter of a second when they are on) out of the patch."""
        margin = int(math.ceil((0.25 if self.effects.enabled else 0.02) * sr))
        need = int(math.ceil(self.patch_len * sr / self.spec.sample_rate * self.effects.max_speed))
        return need + 2 * margin, margin

    def _source(self, song: Song, paths: Sequence[str], start: int, channel: int,
                effects_rng: np.random.Generator | None = None) -> np.ndarray:
        """Sum of ``paths`` from ``start`` (file samples), one channel or the mid, at the model rate, (patch_len,);
        with ``effects_rng``, the voice effects (:mod:`vocalsep.augment`) act on it, margins included."""
        n, margin = self._span(song.sample_rate)
        total = None
        for p in paths:
            x, _ = audio.read_excerpt(p, start, n)
            if x.shape[1] == 1:
                m = x[:, 0]
            elif channel == _MID:
                m = x.mean(axis=1)
            else:
                m = x[:, min(channel, x.shape[1] - 1)]
            total = m if total is None else total + m
        # played r times faster (speed_shift): resampled to rate / r, so the model rate hears it r times higher
        r = self.effects.speed(effects_rng) if effects_rng is not None else 1.0
        rate = self.spec.sample_rate if r == 1.0 else int(round(self.spec.sample_rate / r))
        y = audio.resample(total, song.sample_rate, rate)
        if effects_rng is not None:
            y = self.effects(y, effects_rng)
        off = int(round(margin * rate / song.sample_rate))
        y = y[off:off + self.patch_len]
        if len(y) < self.patch_len:
            y = np.pad(y, (0, self.patch_len - len(y)))
        return y

    def _pick(self, rng: np.random.Generator, among: Sequence[Song] | None = None) -> tuple[Song, int, int]:
        among = among or self.songs
        song = among[int(rng.integers(len(among)))]
        n, _ = self._span(song.sample_rate)
        start = int(rng.integers(0, max(1, song.length - n + 1)))
        if song.channels >= 2 and self.data.channel_swap:
            channel = int(rng.integers(3))
        else:
            channel = _MID
        return song, start, channel

    def waveforms(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(vocals, accompaniment) of one augmented example, (patch_len,) float32 each at the model rate."""
        d = self.data
        for _ in range(8):  # draw again when the excerpt is (nearly) silent
            song, start, ch = self._pick(rng)
            vocals = self._source(song, song.vocals, start, ch, rng if self.effects.enabled else None)
            if d.remix_probability > 0 and len(self.songs) > 1 and rng.random() < d.remix_probability:
                song2, start2, ch2 = self._pick(rng, self._others[song.dataset] if d.remix_across else None)
                acc = self._source(song2, song2.accompaniment, start2, ch2)
            else:
                acc = self._source(song, song.accompaniment, start, ch)
            if d.gain_db > 0:
                g = 10.0 ** (rng.uniform(-d.gain_db, d.gain_db, size=2) / 20.0)
                vocals = vocals * np.float32(g[0])
                acc = acc * np.float32(g[1])
            if d.silent_vocals_probability > 0 and rng.random() < d.silent_vocals_probability:
                vocals = np.zeros_like(vocals)
            if np.abs(vocals + acc).max() > 1e-4:
                break
        return vocals.astype(np.float32, copy=False), acc.astype(np.float32, copy=False)

    def magnitudes(self, vocals: np.ndarray, acc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Normalised (mixture, vocals, accompaniment) magnitudes, each (freq_bins, frames) float32."""
        f, n_fft, hop = self.model.freq_bins, self.spec.n_fft, self.spec.hop_length
        mix = np.abs(spectral.stft(vocals + acc, n_fft, hop)[:f])
        v = np.abs(spectral.stft(vocals, n_fft, hop)[:f])
        a = np.abs(spectral.stft(acc, n_fft, hop)[:f])
        scale = np.float32(1.0 / (mix.max() + 1e-8))
        return mix * scale, v * scale, a * scale

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.magnitudes(*self.waveforms(rng))

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mixture, vocals, accompaniment), each (size, freq_bins, frames, 1) float32."""
        shape = (size, self.model.freq_bins, self.model.frames, 1)
        out = tuple(np.empty(shape, np.float32) for _ in range(3))
        for i in range(size):
            for o, x in zip(out, self.example(rng)):
                o[i, :, :, 0] = x
        return out  # type: ignore[return-value]


def validation_patches(songs: Sequence[Song], spec: SpectralConfig, model: ModelConfig, count: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """A fixed set of at most ``count`` patches of the held-out songs, the same in every run: the mid
    channel, no augmentation, patches end to end through each song, evenly thinned out to ``count``.

    Returns (mixture, vocals) magnitudes, each (n, freq_bins, frames, 1) float32 (n = 0 without songs).
    """
    shape = (model.freq_bins, model.frames, 1)
    if not songs or count <= 0:
        return np.zeros((0,) + shape, np.float32), np.zeros((0,) + shape, np.float32)
    sampler = PatchSampler(songs, spec, model, DataConfig(gain_db=0, channel_swap=False, remix_probability=0))
    cands = []
    for s in songs:
        n, _ = sampler._span(s.sample_rate)
        step = max(1, n)
        for start in range(0, max(1, s.length - n + 1), step):
            cands.append((s, start))
    take = np.unique(np.linspace(0, len(cands) - 1, min(count, len(cands))).round().astype(int))
    mix, voc = [], []
    for i in take:
        s, start = cands[i]
        v = sampler._source(s, s.vocals, start, _MID)
        a = sampler._source(s, s.accompaniment, start, _MID)
        if np.abs(v + a).max() <= 1e-4:
            continue
        m, vm, _ = sampler.magnitudes(v, a)
        mix.append(m[..., None])
        voc.append(vm[..., None])
    if not mix:
        return np.zeros((0,) + shape, np.float32), np.zeros((0,) + shape, np.float32)
    return np.stack(mix), np.stack(voc)


def validation_audio(songs: Sequence[Song], spec: SpectralConfig, count: int, max_seconds: float = 30.0
                     ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """``count`` held-out songs (spread over the list) for the validation SDR: (name, mixture, vocals), mono
    (the mid) at the model rate, at most ``max_seconds`` from the middle of each; songs without vocals are left
    out."""
    out: list[tuple[str, np.ndarray, np.ndarray]] = []
    if not songs or count <= 0:
        return out
    for i in np.unique(np.linspace(0, len(songs) - 1, min(count, len(songs))).round().astype(int)):
        s = songs[i]
        n = min(s.length, int(max_seconds * s.sample_rate))
        start = (s.length - n) // 2
        parts = []
        for paths in (s.vocals, s.accompaniment):
            x = sum(audio.read_excerpt(p, start, n)[0].mean(axis=1) for p in paths)
            parts.append(audio.resample(x, s.sample_rate, spec.sample_rate))
        v, a = parts
        if np.abs(v).max() > 1e-4:
            out.append((s.name, (v + a).astype(np.float32), v.astype(np.float32)))
    return out


# ------------------------------------------------------------------------------------------------- batching


def batch_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of batch ``index`` of a run with ``seed``: each batch has its own, so the stream does
    not depend on the number of workers, and a run resumed at step s gets the batches it would have had."""
    return np.random.default_rng([int(seed), int(index)])


def _worker_main(sampler: PatchSampler, batch_size: int, seed: int, first: int, stride: int, q) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    spectral.FFT_WORKERS = 1                      # one core per worker
    k = first
    try:
        while True:
            q.put(("batch", sampler.batch(batch_rng(seed, k), batch_size)))
            k += stride
    except Exception:
        q.put(("error", traceback.format_exc()))


class BatchStream:
    """An endless iterator of training batches (mixture, vocals, accompaniment), each
    (batch_size, freq_bins, frames, 1) float32, made ahead of time.

    Batch ``k`` (counted from 0 at the run's first step; the stream begins at ``start``) is drawn with
    :func:`batch_rng` (seed, k), so the stream is the same for any number of workers, any timing, and a
    resumed run.  ``workers`` >= 1: that many processes, each with its own queue of ``prefetch`` batches,
    worker w making batches start + w, start + w + workers, ...; ``workers`` = 0: one background thread.
    :meth:`close` stops them.
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, seed: int = 0, workers: int = 1,
                 start: int = 0, prefetch: int = 4):
        self.workers = max(0, int(workers))
        self._k = 0
        self._closed = False
        if self.workers == 0:
            self._stop = threading.Event()
            self._tq: queue.Queue = queue.Queue(maxsize=prefetch)

            def run():
                k = start
                try:
                    while not self._stop.is_set():
                        item = ("batch", sampler.batch(batch_rng(seed, k), batch_size))
                        k += 1
                        while not self._stop.is_set():
                            try:
                                self._tq.put(item, timeout=0.1)
                                break
                            except queue.Full:
                                pass
                except Exception:
                    self._tq.put(("error", traceback.format_exc()))

            self._thread = threading.Thread(target=run, daemon=True, name="vocalsep-data")
            self._thread.start()
        else:
            ctx = mp.get_context("spawn")  # never fork a process that may hold TensorFlow's threads
            self._queues = [ctx.Queue(maxsize=prefetch) for _ in range(self.workers)]
            self._procs = [ctx.Process(target=_worker_main, args=(sampler, batch_size, seed, start + w, self.workers, q),
                                       daemon=True, name=f"vocalsep-data-{w}")
                           for w, q in enumerate(self._queues)]
            for p in self._procs:
                p.start()

    def __iter__(self):
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._closed:
            raise StopIteration
        if self.workers == 0:
            kind, item = self._tq.get()
        else:
            w = self._k % self.workers
            while True:
                try:
                    kind, item = self._queues[w].get(timeout=1.0)
                    break
                except queue.Empty:
                    if not self._procs[w].is_alive():
                        raise VocalsepError(f"data worker {w} died (exit code {self._procs[w].exitcode})") from None
        self._k += 1
        if kind == "error":
            log.error("data pipeline failed:\n%s", item)
            raise VocalsepError(f"data pipeline failed: {item.strip().splitlines()[-1]}")
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.workers == 0:
            self._stop.set()
            self._thread.join(timeout=5)
        else:
            for p in self._procs:
                if p.is_alive():
                    p.terminate()
            for p in self._procs:
                p.join(timeout=5)
            for q in self._queues:
                q.cancel_join_thread()
                q.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def iter_batches(sampler: PatchSampler, batch_size: int, seed: int, count: int, start: int = 0) -> Iterable:
    """Batches ``start .. start + count - 1`` of the stream, made in this process (tests, benchmarks)."""
    for k in range(start, start + count):
        yield sampler.batch(batch_rng(seed, k), batch_size)
