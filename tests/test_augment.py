"""vocalsep.augment: the voice effects move what they say they move (checked on tones with a plain FFT), keep
the length, and are drawn from the example's generator; the sampler fills whole patches with them on."""

from __future__ import annotations

import os

import numpy as np
import pytest
import soundfile as sf

from vocalsep import augment, data
from vocalsep.config import DataConfig, ModelConfig
from vocalsep.errors import VocalsepError

from .test_data import MODEL, PATCH, SPEC, tone, write_song

pytest.importorskip("pedalboard")

SR = 16000


def peak_hz(x: np.ndarray, sr: int) -> float:
    """Frequency (Hz) of the largest FFT bin of the Hann-windowed middle half of ``x``."""
    n = len(x) // 2
    seg = x[n // 2: n // 2 + n] * np.hanning(n)
    return float(np.argmax(np.abs(np.fft.rfft(seg, 8 * n))) * sr / (8 * n))


def harmonic(f0: float, seconds: float = 2.0, sr: int = SR, formant: float = 1500.0) -> np.ndarray:
    """A voice-like tone: harmonics of ``f0`` under one resonance at ``formant`` Hz."""
    t = np.arange(int(seconds * sr)) / sr
    x = sum(np.exp(-((k * f0 - formant) / 400.0) ** 2) * np.sin(2 * np.pi * k * f0 * t)
            for k in range(1, 40) if k * f0 < sr / 2)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def pulsing(f0: float, rate: float, seconds: float, sr: int) -> np.ndarray:
    """A voice-like tone (:func:`harmonic`) whose loudness pulses ``rate`` times a second: syllables on one note."""
    t = np.arange(int(seconds * sr)) / sr
    return harmonic(f0, seconds, sr) * (0.6 + 0.4 * np.sin(2 * np.pi * rate * t)).astype(np.float32)


def pulse_hz(x: np.ndarray, sr: int) -> float:
    """The loudness's rate (Hz, 1 - 30 Hz): the largest FFT bin of the squared middle half of ``x``."""
    n = len(x) // 2
    e = x[n // 2: n // 2 + n].astype(np.float64) ** 2
    mag = np.abs(np.fft.rfft((e - e.mean()) * np.hanning(n), 16 * n))
    f = np.fft.rfftfreq(16 * n, 1 / sr)
    band = (f > 1) & (f < 30)
    return float(f[band][np.argmax(mag[band])])


def centroid_hz(x: np.ndarray, sr: int) -> float:
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    f = np.fft.rfftfreq(len(x), 1 / sr)
    return float((mag * f).sum() / mag.sum())


def test_pitch_shift_moves_the_tone_and_keeps_the_length():
    x = tone(2, SR, 440)[:, 0]
    y = augment.shift(x, SR, pitch=3.0, formant=0.0)
    assert y.shape == x.shape and y.dtype == np.float32
    assert peak_hz(y, SR) == pytest.approx(440 * 2 ** (3 / 12), rel=0.01)
    assert peak_hz(augment.shift(x, SR, pitch=-4.0, formant=0.0), SR) == pytest.approx(440 * 2 ** (-4 / 12), rel=0.01)
    # the formants stay: the spectral envelope of a voice-like tone hardly moves under a 4-semitone shift
    v = harmonic(200.0)
    assert centroid_hz(augment.shift(v, SR, pitch=4.0, formant=0.0), SR) / centroid_hz(v, SR) == pytest.approx(1, abs=0.05)


def test_formant_shift_moves_the_resonance_not_the_pitch():
    x = harmonic(200.0)
    y = augment.shift(x, SR, pitch=0.0, formant=4.0)
    assert y.shape == x.shape
    # the fundamental's harmonics stay on multiples of 200 Hz: the strongest one is still one of them
    assert peak_hz(y, SR) / 200.0 == pytest.approx(round(peak_hz(y, SR) / 200.0), abs=0.03)
    # and the spectral envelope moves up (a resonance 4 semitones higher: x1.26)
    assert centroid_hz(y, SR) / centroid_hz(x, SR) == pytest.approx(2 ** (4 / 12), rel=0.12)
    down = augment.shift(x, SR, pitch=0.0, formant=-4.0)
    assert centroid_hz(down, SR) < 0.9 * centroid_hz(x, SR)


def test_effects_are_drawn_from_the_generator_and_off_by_default():
    x = harmonic(220.0)
    fx = augment.VoiceEffects(DataConfig(pitch_shift=3, formant_shift=3, vocal_eq_db=6, vocal_reverb=1.0,
                                         effect_probability=1.0), SR)
    a, b = fx(x, np.random.default_rng(5)), fx(x, np.random.default_rng(5))
    assert np.array_equal(a, b) and a.shape == x.shape
    assert not np.allclose(a, fx(x, np.random.default_rng(6)), atol=1e-3)
    off = augment.VoiceEffects(DataConfig(), SR)
    assert not off.enabled and off(x, np.random.default_rng(0)) is x and off.max_speed == 1.0


def test_reverb_has_its_own_probability():
    """``vocal_reverb`` acts even where ``effect_probability`` (which governs the other effects) is 0: a
    burst followed by silence gets a tail in the silence."""
    x = np.zeros(SR, np.float32)
    x[:SR // 10] = harmonic(220.0, 0.1)
    fx = augment.VoiceEffects(DataConfig(vocal_reverb=1.0, effect_probability=0.0), SR)
    y = fx(x, np.random.default_rng(0))
    assert y.shape == x.shape
    assert np.sqrt(np.mean(y[SR // 5: SR // 2] ** 2)) > 1e-3  # the room rings on after the burst


def test_speed_shift_fills_whole_patches_at_other_pitches(tmp_path):
    root = tmp_path / "s"
    write_song(root, "a", {"vocals": tone(2, 16000, 1000), "accompaniment": tone(2, 16000, 250)}, 16000)
    songs = data.discover(root)
    cfg = DataConfig(gain_db=0, remix_probability=0, speed_shift=4, effect_probability=1.0)
    sampler = data.PatchSampler(songs, SPEC, MODEL, cfg)
    peaks = []
    for i in range(12):
        v, a = sampler.waveforms(np.random.default_rng(i))
        assert v.shape == (PATCH,)
        assert np.abs(v[-50:]).max() > 0.1  # the longer read fills the patch: no zero padding at its end
        assert peak_hz(a, SPEC.sample_rate) == pytest.approx(250, rel=0.02)  # the accompaniment is untouched
        peaks.append(peak_hz(v, SPEC.sample_rate))
    ratios = np.log2(np.array(peaks) / 1000) * 12
    assert np.all(np.abs(ratios) <= 4.1) and ratios.max() - ratios.min() > 2


def test_time_stretch_moves_the_tempo_not_the_pitch():
    x = pulsing(220.0, 4.0, 3.0, SR)
    assert pulse_hz(x, SR) == pytest.approx(4.0, rel=0.02) and peak_hz(x, SR) == pytest.approx(1540, rel=0.01)
    for tempo in (1.25, 0.95, 0.8):
        y = augment.stretch(x, SR, tempo)
        assert y.dtype == np.float32 and len(y) == round(len(x) / tempo)
        assert pulse_hz(y, SR) == pytest.approx(4.0 * tempo, rel=0.03)
        assert peak_hz(y, SR) == pytest.approx(1540.0, rel=0.005)  # the same harmonic under the formant


def test_time_stretch_fills_whole_patches_at_other_tempos(tmp_path):
    sr = SPEC.sample_rate
    model = ModelConfig(freq_bins=64, frames=256, channels=(4, 8), dropout_layers=1)  # 1 s patches
    root = tmp_path / "s"
    write_song(root, "a", {"vocals": np.repeat(pulsing(220.0, 8.0, 3.0, sr)[:, None], 2, axis=1),
                           "accompaniment": tone(3, sr, 250, channels=2)}, sr)
    cfg = DataConfig(gain_db=0, remix_probability=0, time_stretch=0.25, effect_probability=1.0)
    sampler = data.PatchSampler(data.discover(root), SPEC, model, cfg)
    assert sampler.effects.max_speed == 1.25
    rates = []
    for i in range(16):
        v, a = sampler.waveforms(np.random.default_rng(i))
        assert v.shape == ((model.frames - 1) * SPEC.hop_length,)
        assert np.abs(v[-200:]).max() > 0.1 * np.abs(v).max()  # the longer read fills the patch: no zero padding at its end
        assert peak_hz(v, sr) / 220 == pytest.approx(round(peak_hz(v, sr) / 220), abs=0.05)  # a harmonic of 220 Hz
        assert peak_hz(a, sr) == pytest.approx(250, rel=0.02)  # the accompaniment is untouched
        rates.append(pulse_hz(v, sr))
    tempos = np.array(rates) / 8.0
    assert np.all((tempos > 0.8 / 1.04) & (tempos < 1.25 * 1.04)) and tempos.max() / tempos.min() > 1.2
    assert tempos.max() > 1.2  # a draw near the fastest tempo, whose patch a shorter read would not fill


def test_shifted_copies_move_the_pitch_and_keep_the_song(tmp_path):
    """data.shift_copies: each copy is the song's vocals moved by its own drawn shift (checked with an FFT
    peak against 2 ** (p / 12)), at the song's rate, channels and length; the copies are cached (a second
    run recomputes nothing) and the same for every run."""
    from vocalsep import shifted

    root = tmp_path / "s"
    write_song(root, "a", {"vocals": tone(2, SR, 440, channels=2), "accompaniment": tone(2, SR, 110, channels=2)}, SR)
    songs = data.discover(root)
    cfg = DataConfig(pitch_shift=4, shift_copies=3)
    out = shifted.with_copies(songs, cfg, tmp_path / "cache")
    assert len(out) == 1 and len(out[0].vocal_copies) == 3 and not songs[0].vocal_copies
    drawn = shifted.draws("a", 3, 4.0, 0.0)
    assert drawn == shifted.draws("a", 3, 4.0, 0.0) and drawn != shifted.draws("b", 3, 4.0, 0.0)
    assert len({p for p, _ in drawn}) == 3 and all(abs(p) <= 4 and f == 0 for p, f in drawn)
    for path, (pitch, _) in zip(out[0].vocal_copies, drawn):
        y, sr = sf.read(path, dtype="float32", always_2d=True)
        assert sr == SR and y.shape == (2 * SR, 2)
        for c in range(2):
            assert peak_hz(y[:, c], SR) == pytest.approx(440 * 2 ** (pitch / 12), rel=0.01)
    mtimes = [os.stat(p).st_mtime_ns for p in out[0].vocal_copies]
    again = shifted.with_copies(songs, cfg, tmp_path / "cache")
    assert again[0].vocal_copies == out[0].vocal_copies
    assert [os.stat(p).st_mtime_ns for p in again[0].vocal_copies] == mtimes
    with pytest.raises(VocalsepError, match="shift_copies needs"):
        shifted.with_copies(songs, DataConfig(shift_copies=2), tmp_path / "cache")
    assert shifted.with_copies(songs, DataConfig(pitch_shift=4), tmp_path / "cache") == songs


def test_examples_draw_their_vocals_from_the_copies(tmp_path):
    """With copies, an example's vocals are one of the copies (here each at its own pitch) with probability
    effect_probability and the song's own 1000 Hz tone otherwise, never shifted on the fly; a song without
    copies (a sampler built without with_copies) is still shifted on the fly."""
    from vocalsep import shifted

    root = tmp_path / "s"
    write_song(root, "h", {"vocals": tone(2, 16000, 1000), "accompaniment": tone(2, 16000, 250)}, 16000)
    cfg = DataConfig(gain_db=0, remix_probability=0, pitch_shift=4, shift_copies=2, effect_probability=0.5)
    drawn = [p for p, _ in shifted.draws("h", 2, 4.0, 0.0)]
    assert min(abs(p) for p in drawn) > 0.5 and abs(drawn[0] - drawn[1]) > 0.5  # three pitches told apart
    with_copies = data.PatchSampler(shifted.with_copies(data.discover(root), cfg, tmp_path / "cache"), SPEC,
                                    MODEL, cfg)
    seen = []
    for i in range(24):
        st = 12 * np.log2(peak_hz(with_copies.waveforms(np.random.default_rng(i))[0], SPEC.sample_rate) / 1000)
        nearest = int(np.argmin([abs(st - p) for p in [0.0] + drawn]))
        assert abs(st - ([0.0] + drawn)[nearest]) < 0.15
        seen.append(nearest)
    assert set(seen) == {0, 1, 2}  # the song itself and both copies, nothing in between
    on_the_fly = data.PatchSampler(data.discover(root), SPEC, MODEL, cfg)
    st = [12 * np.log2(peak_hz(on_the_fly.waveforms(np.random.default_rng(i))[0], SPEC.sample_rate) / 1000)
          for i in range(8)]
    assert not all(min(abs(x - p) for p in [0.0] + drawn) < 0.15 for x in st)


def test_shifted_copies_line_up_with_the_song_and_follow_its_file(tmp_path):
    """A copy keeps the song's timing (a tone starting at 1.0 s starts there in every copy, within 5 ms, in
    both channels), and a vocals file that changes gets new copies."""
    from vocalsep import shifted

    root = tmp_path / "s"
    v = np.zeros((3 * SR, 2), np.float32)
    v[SR:] = harmonic(220.0, 2.0)[:, None]
    write_song(root, "a", {"vocals": v, "accompaniment": tone(3, SR, 110, channels=2)}, SR)
    cfg = DataConfig(pitch_shift=3, formant_shift=3, shift_copies=2)
    first = shifted.with_copies(data.discover(root), cfg, tmp_path / "cache")[0].vocal_copies
    for path in first:
        y, _ = sf.read(path, dtype="float32", always_2d=True)
        for c in range(2):
            env = np.convolve(np.abs(y[:, c]), np.ones(80) / 80, "same")  # 5 ms
            onset = int(np.argmax(env > 0.5 * env[SR + SR // 2: 2 * SR].mean()))
            assert abs(onset - SR) < 0.005 * SR
    write_song(root, "a", {"vocals": 0.5 * v}, SR)
    again = shifted.with_copies(data.discover(root), cfg, tmp_path / "cache")[0].vocal_copies
    assert set(again).isdisjoint(first) and all(os.path.exists(p) for p in again)
