"""Voice augmentation: random effects on a training example's vocals, so that the network hears more voices
than the data holds (MIR-1K has two singers).

Each effect is off at its default (``DataConfig``) and, when on, applied to an example with probability
``DataConfig.effect_probability`` (reverb: with probability ``vocal_reverb``, its own setting):

``pitch_shift``     the melody moved by up to that many semitones either way, the formants (the vocal tract's
                    resonances) kept: the same singer singing higher or lower.
``formant_shift``   the formants moved by up to that many semitones either way, the pitch kept: a singer with
                    a shorter or longer vocal tract (a resampling, which moves both, then a formant-preserving
                    pitch shift back).
``speed_shift``     the vocals played faster or slower by up to that many semitones either way (a resampling:
                    pitch, formants and tempo move together, like a tape sped up); nearly free, since the
                    sampler resamples every excerpt to the model rate anyway (:class:`vocalsep.data.PatchSampler`
                    reads a longer excerpt to fill the patch).
``time_stretch``    the vocals sung faster or slower, pitch and formants kept: the tempo times up to 1 + that
                    fraction, or divided by it (Rubber Band's faster engine, about 25 ms of a core per 5 s
                    excerpt; the sampler reads a longer excerpt for it too).
``vocal_eq_db``     two peaking filters at random frequencies (150 Hz - 6 kHz, Q 0.7 - 2) and a high or low
                    shelf, each with a gain of up to that many dB either way: other microphones and mixing.
``vocal_reverb``    a room (random size, damping and wet level) on the vocals, which the target keeps: the
                    separated voice of a produced song carries its reverb.

The effects come from pedalboard (Rubber Band for the pitch and formant shifts and the time stretch, JUCE's
filters and reverb), imported only when an effect is on.  The vocals keep their length, and but for the
speed shift and the time stretch their alignment (Rubber Band's latency is compensated; the residual shift is
a few milliseconds, far below the model's 31 ms hop).
"""

from __future__ import annotations

import numpy as np

from .config import DataConfig
from .errors import VocalsepError


class VoiceEffects:
    """Draws and applies the effects of ``data`` to mono vocals at ``sample_rate`` Hz."""

    def __init__(self, data: DataConfig, sample_rate: int):
        self.data = data
        self.sample_rate = int(sample_rate)
        if self.enabled:
            try:
                import pedalboard  # noqa: F401
            except ImportError:
                raise VocalsepError("data: voice effects (pitch_shift, formant_shift, speed_shift, time_stretch, "
                                    "vocal_eq_db, vocal_reverb) need the pedalboard package: "
                                    "pip install pedalboard") from None

    @property
    def enabled(self) -> bool:
        d = self.data
        drawn = bool(d.pitch_shift or d.formant_shift or d.speed_shift or d.time_stretch or d.vocal_eq_db)
        return (drawn and d.effect_probability > 0) or d.vocal_reverb > 0  # reverb has its own probability

    @property
    def max_speed(self) -> float:
        """The largest ratio of source samples to the samples they become (1.0 when no effect is on): the
        speed shift's largest ratio times the time stretch's largest tempo, so that a read this much longer
        than an example fills it whatever :meth:`speed` and :meth:`__call__` draw."""
        if not self.enabled:
            return 1.0
        return 2.0 ** (self.data.speed_shift / 12.0) * (1.0 + self.data.time_stretch)

    def speed(self, rng: np.random.Generator) -> float:
        """A speed ratio for one example: 2 ** (s / 12) for a shift s drawn by :meth:`_draw` (1.0: unchanged)."""
        if not self.enabled:
            return 1.0
        return 2.0 ** (self._draw(rng, self.data.speed_shift) / 12.0)

    def _draw(self, rng: np.random.Generator, amount: float) -> float:
        """A uniform draw in [-amount, amount], or 0 when the effect is off or not drawn for this example."""
        if amount <= 0 or rng.random() >= self.data.effect_probability:
            return 0.0
        return float(rng.uniform(-amount, amount))

    def __call__(self, x: np.ndarray, rng: np.random.Generator, shifts: bool = True) -> np.ndarray:
        """``x``: (samples,) float32 vocals; returns the same length, float32 (a time stretch to a faster
        tempo leaves zeros at the end: the caller reads :attr:`max_speed` times what it keeps).  Draws from
        ``rng`` in a fixed order, so an example is a function of the generator's state.  ``shifts=False``
        leaves out the pitch and formant shifts (a song with shifted copies, :mod:`vocalsep.shifted`)."""
        d = self.data
        if not self.enabled:
            return x
        tempo = np.exp(self._draw(rng, np.log1p(d.time_stretch))) if d.time_stretch > 0 else 1.0
        pitch = self._draw(rng, d.pitch_shift) if shifts else 0.0
        formant = self._draw(rng, d.formant_shift) if shifts else 0.0
        eq = d.vocal_eq_db > 0 and rng.random() < d.effect_probability
        reverb = d.vocal_reverb > 0 and rng.random() < d.vocal_reverb
        y = x
        if tempo != 1.0:
            y = stretch(y, self.sample_rate, tempo)
        if pitch or formant:
            y = shift(y, self.sample_rate, pitch, formant)
        if eq:
            y = self._eq(y, rng)
        if reverb:
            y = self._reverb(y, rng)
        return _fit(y.astype(np.float32, copy=False), len(x))

    def _eq(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import pedalboard as pb

        g = self.data.vocal_eq_db
        nyq = self.sample_rate / 2
        board = pb.Pedalboard([pb.PeakFilter(cutoff_frequency_hz=float(min(np.exp(rng.uniform(np.log(150), np.log(6000))),
                                                                             0.45 * self.sample_rate)),
                                             gain_db=float(rng.uniform(-g, g)), q=float(rng.uniform(0.7, 2.0)))
                               for _ in range(2)])
        if rng.random() < 0.5:
            board.append(pb.LowShelfFilter(cutoff_frequency_hz=float(rng.uniform(100, 400)), gain_db=float(rng.uniform(-g, g))))
        else:
            board.append(pb.HighShelfFilter(cutoff_frequency_hz=float(min(rng.uniform(3000, 7000), 0.9 * nyq)),
                                            gain_db=float(rng.uniform(-g, g))))
        return board(x[None], self.sample_rate)[0]

    def _reverb(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        import pedalboard as pb

        wet = float(rng.uniform(0.1, 0.4))
        fx = pb.Reverb(room_size=float(rng.uniform(0.1, 0.9)), damping=float(rng.uniform(0.1, 0.9)),
                       wet_level=wet, dry_level=1.0 - wet / 2, width=0.0)
        return fx(x[None], self.sample_rate)[0]


def shift(x: np.ndarray, sample_rate: int, pitch: float, formant: float) -> np.ndarray:
    """``x`` (samples,) with its pitch moved by ``pitch`` and its formants by ``formant`` semitones, about the
    same length (:func:`_fit` trims or pads the last samples).

    A formant shift resamples by r = 2 ** (formant / 12) (pitch and formants both move, and the duration
    shrinks by r), then Rubber Band stretches the result back to the original duration while shifting the
    pitch by ``pitch - formant`` with its formants preserved.  Rubber Band's faster engine
    (``high_quality=False``) keeps too little of a formant shift (x1.05 of the spectral centroid where x1.26 was
    asked, tests/test_augment.py), so this runs its high-quality one: about 75 ms per 4.5 s excerpt on one idle
    core, which is why ``speed_shift`` exists."""
    import pedalboard as pb

    y = x.astype(np.float32, copy=False)
    r = 2.0 ** (formant / 12.0)
    if formant:
        from . import audio

        y = audio.resample(y, sample_rate, max(1, int(round(sample_rate / r))))
    out = pb.time_stretch(y[None], sample_rate, stretch_factor=1.0 / r if formant else 1.0,
                          pitch_shift_in_semitones=pitch - formant, high_quality=True, preserve_formants=True)[0]
    return _fit(out, len(x))


def stretch(x: np.ndarray, sample_rate: int, tempo: float) -> np.ndarray:
    """``x`` (samples,) played at ``tempo`` times its speed with its pitch and formants kept: about
    len(x) / tempo samples, float32.  Rubber Band's faster engine, at a fifth of the high-quality one's time
    (which would keep a data worker as busy as the training step): on a voice-like tone (harmonics under a
    formant, its loudness pulsing) it scaled the pulse's rate by the tempo within 2 % at each of 37 tempos
    from 0.8 to 1.25 (a one-off check; tests/test_augment.py checks three, within 3 %).  A pure sine is
    its weak case (its pulse smeared at one tempo in ten), and vocals are not sines."""
    import pedalboard as pb

    out = pb.time_stretch(x.astype(np.float32, copy=False)[None], sample_rate, stretch_factor=float(tempo),
                          high_quality=False)[0]
    return _fit(out, int(round(len(x) / tempo)))


def _fit(y: np.ndarray, n: int) -> np.ndarray:
    if len(y) >= n:
        return y[:n]
    return np.pad(y, (0, n - len(y)))
