"""Training examples: :class:`PatchSampler` draws random excerpts of training songs (partial reads, so memory
does not grow with the number of songs) and turns them into normalised magnitude patches through the spectral
front end (:mod:`vocalsep.frontend`), or into waveform pairs through the waveform one (:mod:`vocalsep.wavefront`),
whichever the model's domain takes; the fixed validation patches and audio.  Nothing here imports
TensorFlow."""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from . import audio
from .augment import VoiceEffects
from .config import DataConfig, ModelConfig, SpectralConfig
from .errors import VocalsepError
from .frontend import for_model

if TYPE_CHECKING:
    from .data import Song

log = logging.getLogger("vocalsep.data")

#: a stereo song's channel, chosen per example: 0 left, 1 right, 2 the mid
MID = 2


class _Unreadable(VocalsepError):
    """A stem of ``song`` failed to read while drawing an example (``message``: the one-line reason)."""

    def __init__(self, song: "Song", message: str):
        super().__init__(message)
        self.song = song
        self.message = message


class PatchSampler:
    """Draws training examples (picklable, so worker processes get a copy).

    One example: the front end's (:func:`vocalsep.frontend.for_model`) of ``frontend.example_samples`` samples
    of vocals and accompaniment at the model rate.  Spectral: magnitudes (freq_bins, frames) float32 of the
    mixture, the vocals and the accompaniment of a patch of ``frames`` centred STFT frames, all divided by the
    mixture's maximum; waveform: the mixture with its context and the two sources' middle parts.

    A song whose stem fails to read while drawing (a file cut short or damaged after discovery) is left
    out: ``report`` gets a one-line warning naming the file, the song's flag in ``dead`` (one byte per song,
    nonzero: left out; a shared array when worker processes share it) is set, the song is never drawn again,
    and the example is drawn again from the songs left.  With no song left, drawing raises
    :class:`VocalsepError`.  With every song readable, an example is a function of the generator's state only.
    """

    def __init__(self, songs: Sequence[Song], spec: SpectralConfig, model: ModelConfig, data: DataConfig):
        if not songs:
            raise VocalsepError("no training songs")
        self.songs = list(songs)
        self.spec = spec
        self.model = model
        self.data = data
        self.frontend = for_model(spec, model)
        #: samples at the model rate of one example (spectral: whose centred STFT has exactly ``frames`` frames)
        self.patch_len = self.frontend.example_samples
        self.effects = VoiceEffects(data, spec.sample_rate)
        self.dead = bytearray(len(self.songs))
        self.report = log.warning
        self._last_failure = ""
        self._group, self._set_weight = self._dataset_groups(data)

    def _dataset_groups(self, data: DataConfig) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """((songs,) int: each song's index in ``data.datasets``, (data sets,) float64: their weights), from
        ``data.dataset_weights``; (None, None) when none are given (every song equally likely)."""
        if not data.dataset_weights:
            return None, None
        data.check_dataset_weights()  # again: data.datasets may have been set since the config was made
        index = {str(Path(p)): i for i, p in enumerate(data.datasets)}  # as data.discover names a song's set
        missing = sorted({s.dataset for s in self.songs} - set(index))
        if missing:
            raise VocalsepError(f"data.dataset_weights: songs of {missing[0]!r}, which is not one of data.datasets")
        group = np.array([index[s.dataset] for s in self.songs])
        for i in sorted(set(range(len(index))) - set(group.tolist())):
            log.warning("%s: no training song (all held out, or skipped with a warning); its data.dataset_weights share goes to the other "
                        "data sets", data.datasets[i])
        return group, np.asarray(data.dataset_weights, np.float64)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["dead"] = bytearray(self.dead)  # a shared array travels separately (see batches.BatchStream)
        state["report"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.report = log.warning

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
            try:
                x, _ = audio.read_excerpt(p, start, n, length=song.length)
            except VocalsepError as e:
                raise _Unreadable(song, str(e)) from None
            if x.shape[1] == 1:
                m = x[:, 0]
            elif channel == MID:
                m = x.mean(axis=1)
            else:
                m = x[:, min(channel, x.shape[1] - 1)]
            total = m if total is None else total + m
        # played r times faster (speed_shift): resampled to rate / r, so the model rate hears it r times higher
        r = self.effects.speed(effects_rng) if effects_rng is not None else 1.0
        rate = self.spec.sample_rate if r == 1.0 else int(round(self.spec.sample_rate / r))
        y = audio.resample(total, song.sample_rate, rate)
        if effects_rng is not None:  # a song with shifted copies takes its shifts from them (vocalsep.shifted)
            y = self.effects(y, effects_rng, shifts=not song.vocal_copies)
        off = int(round(margin * rate / song.sample_rate))
        y = y[off:off + self.patch_len]
        if len(y) < self.patch_len:
            y = np.pad(y, (0, self.patch_len - len(y)))
        return y

    def _alive(self) -> np.ndarray:
        """Indices of the songs not left out."""
        return np.flatnonzero(np.frombuffer(self.dead, dtype=np.uint8) == 0)

    def _drop(self, song: "Song", message: str) -> None:
        """Leave ``song`` out of the draws from now on, with a warning."""
        i = next(i for i, s in enumerate(self.songs) if s is song)
        self.dead[i] = 1
        self._last_failure = message
        left = len(self._alive())
        self.report(f"{message}; song {song.name!r} left out of training ({left} of {len(self.songs)} songs left)")

    def _pick(self, rng: np.random.Generator, other_than: str | None = None) -> tuple[Song, int, int]:
        """A random song (not left out), excerpt start and channel; ``other_than``: a song of another data set
        than that one, when there is any (DataConfig.remix_across).  Every candidate song is equally likely,
        or with ``data.dataset_weights`` a data set by its weight (among those with a candidate) and then one
        of its candidates: a song left out passes its share to its own data set's other songs."""
        alive = self._alive()
        if len(alive) == 0:
            raise VocalsepError(f"no training song is left: every one failed to read (the last: {self._last_failure})")
        if other_than is not None:
            others = alive[[self.songs[i].dataset != other_than for i in alive]]
            alive = others if len(others) else alive
        if self._group is None:
            song = self.songs[int(alive[int(rng.integers(len(alive)))])]
        else:  # a data set by its weight (among those with a candidate), then one of its songs
            group = self._group[alive]
            w = self._set_weight[group] / np.bincount(group)[group]
            song = self.songs[int(alive[int(rng.choice(len(alive), p=w / w.sum()))])]
        n, _ = self._span(song.sample_rate)
        start = int(rng.integers(0, max(1, song.length - n + 1)))
        if song.channels >= 2 and self.data.channel_swap:
            channel = int(rng.integers(3))
        else:
            channel = MID
        return song, start, channel

    def waveforms(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(vocals, accompaniment) of one augmented example, (patch_len,) float32 each at the model rate."""
        d = self.data
        for _ in range(8):  # draw again when the excerpt is (nearly) silent
            song, start, ch = self._pick(rng)
            paths = song.vocals
            if song.vocal_copies and rng.random() < d.effect_probability:  # a shifted copy (vocalsep.shifted)
                paths = (song.vocal_copies[int(rng.integers(len(song.vocal_copies)))],)
            vocals = self._source(song, paths, start, ch, rng if self.effects.enabled else None)
            if d.remix_probability > 0 and len(self.songs) > 1 and rng.random() < d.remix_probability:
                song2, start2, ch2 = self._pick(rng, song.dataset if d.remix_across else None)
                acc = self._source(song2, song2.accompaniment, start2, ch2)
            elif d.circular_shift > 0 and rng.random() < d.circular_shift:
                n, _ = self._span(song.sample_rate)  # the song's own band, from another point of it
                acc = self._source(song, song.accompaniment, int(rng.integers(0, max(1, song.length - n + 1))), ch)
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
        """The front end's training example (mixture, vocals, accompaniment) of two (patch_len,) sources:
        normalised magnitudes, each (freq_bins, frames) float32, for a spectral network
        (:meth:`vocalsep.frontend.SpectralFrontEnd.example`); waveforms for a waveform one."""
        return self.frontend.example(vocals, acc)

    def example(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mixture, vocals, accompaniment) of one example (:meth:`magnitudes`); an unreadable song is left
        out (see the class) and the example drawn again, ``rng`` going on."""
        while True:
            try:
                return self.magnitudes(*self.waveforms(rng))
            except _Unreadable as e:
                self._drop(e.song, e.message)

    def batch(self, rng: np.random.Generator, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(mixture, vocals, accompaniment): (size,) + the front end's input shape, and (size,) + its target
        shape twice ((size, freq_bins, frames, 1) each for a spectral network), float32."""
        inp, target = self.frontend.example_shapes()
        out = tuple(np.empty((size,) + shape, np.float32) for shape in (inp, target, target))
        for i in range(size):
            for o, x in zip(out, self.example(rng)):
                o[i] = x.reshape(o.shape[1:])
        return out  # type: ignore[return-value]


def validation_patches(songs: Sequence[Song], spec: SpectralConfig, model: ModelConfig, count: int
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed set of at most ``count`` patches of the held-out songs, the same in every run: the mid
    channel, no augmentation, patches end to end through each song, evenly thinned out to ``count``.

    Returns (mixture, vocals, accompaniment) float32: the front end's inputs, (n,) + the model's input shape,
    and its two targets, (n,) + its target shape each (``model.io_shapes()``); for a spectral network all three
    (n, freq_bins, frames, 1), magnitudes divided by each patch mixture's maximum.  n = 0 without songs.
    """
    shape, target = model.io_shapes()
    empty = tuple(np.zeros((0,) + s, np.float32) for s in (shape, target, target))
    if not songs or count <= 0:
        return empty
    sampler = PatchSampler(songs, spec, model, DataConfig(gain_db=0, channel_swap=False, remix_probability=0))
    cands = []
    for s in songs:
        n, _ = sampler._span(s.sample_rate)
        step = max(1, n)
        for start in range(0, max(1, s.length - n + 1), step):
            cands.append((s, start))
    take = np.unique(np.linspace(0, len(cands) - 1, min(count, len(cands))).round().astype(int))
    mix, voc, acc = [], [], []
    for i in take:
        s, start = cands[i]
        v = sampler._source(s, s.vocals, start, MID)
        a = sampler._source(s, s.accompaniment, start, MID)
        if np.abs(v + a).max() <= 1e-4:
            continue
        m, vm, am = sampler.magnitudes(v, a)
        mix.append(m.reshape(shape))
        voc.append(vm.reshape(target))
        acc.append(am.reshape(target))
    if not mix:
        return empty
    return np.stack(mix), np.stack(voc), np.stack(acc)


def validation_audio(songs: Sequence[Song], count: int, max_seconds: float = 30.0
                     ) -> list[tuple[str, np.ndarray, np.ndarray, int]]:
    """``count`` held-out songs (spread over the list) for the validation SDR: (name, mixture, vocals, sample
    rate), mono (the mid) float32 (samples,) at the song's own rate (separation takes them to the model's and
    back, as it does any song), at most ``max_seconds`` from the middle of each; songs without vocals are left
    out."""
    out: list[tuple[str, np.ndarray, np.ndarray, int]] = []
    if not songs or count <= 0:
        return out
    for i in np.unique(np.linspace(0, len(songs) - 1, min(count, len(songs))).round().astype(int)):
        s = songs[i]
        n = min(s.length, int(max_seconds * s.sample_rate))
        start = (s.length - n) // 2
        parts = []
        for paths in (s.vocals, s.accompaniment):
            parts.append(sum(audio.read_excerpt(p, start, n, length=s.length)[0].mean(axis=1) for p in paths))
        v, a = parts
        if np.abs(v).max() > 1e-4:
            out.append((s.name, (v + a).astype(np.float32), v.astype(np.float32), s.sample_rate))
    return out
