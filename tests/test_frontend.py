"""The spectral front end is one (issue 15 item 3): training's examples, its loss and validation SDR, and
separation see the same features and run the same inference path; the block streaming takes its context
from the front end."""

from __future__ import annotations

import numpy as np
import pytest

from vocalsep import Separator, VocalsepError
from vocalsep.config import DataConfig
from vocalsep.frontend import SpectralFrontEnd
from vocalsep.model import ModelFile, default_model_path

from .conftest import tiny_configs
from .test_model import straightforward_vocals


def sdr(ref, est):
    return 10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((ref - est).astype(np.float64) ** 2))


def sources(sr: int, seconds: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A voice-like tone with partials up to 10 kHz and noisy accompaniment, mono float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(sr * seconds)) / sr
    v = sum(0.1 / k * np.sin(2 * np.pi * 330 * k * t) for k in range(1, 31) if 330 * k < sr / 2)
    v = v * (1 + np.sin(2 * np.pi * 1.5 * t)) / 2
    a = 0.05 * rng.standard_normal(len(t)) + 0.1 * np.sin(2 * np.pi * 110 * t)
    return v.astype(np.float32), a.astype(np.float32)


def test_song_sdr_scores_what_separation_gives(tiny_model):
    """The validation SDR is the SDR of the vocals that the plain computation of ``separate`` gives
    (overlapping patches, the full-band STFT at the song's rate, the rule above the model's band)."""
    from vocalsep.runners import KerasRunner
    from vocalsep.train import song_sdr

    mf = ModelFile.load(tiny_model)
    v, a = sources(22050, 2.0)
    got = song_sdr(KerasRunner(mf), v + a, v, mf.spectral, mf.model, 22050)
    want = sdr(v, straightforward_vocals((v + a)[:, None], 22050, mf)[:, 0])
    assert got == pytest.approx(want, abs=0.01)


def test_training_and_separation_see_the_same_features():
    """A training example and the patch separation cuts from the same audio are |STFT| (librosa's) of the
    lowest freq_bins bins divided by the mixture's maximum."""
    import librosa

    from vocalsep.sampler import PatchSampler

    sp, mc = tiny_configs()
    v, a = sources(sp.sample_rate, (mc.frames - 1) * sp.hop_length / sp.sample_rate, seed=1)
    ref = {k: np.abs(librosa.stft(x, n_fft=sp.n_fft, hop_length=sp.hop_length, center=True,
                                  pad_mode="constant"))[:mc.freq_bins] for k, x in (("mix", v + a), ("v", v), ("a", a))}
    top = ref["mix"].max()
    sampler = PatchSampler([object()], sp, mc, DataConfig())
    for got, want in zip(sampler.magnitudes(v, a), (ref["mix"], ref["v"], ref["a"])):
        assert got.shape == (mc.freq_bins, mc.frames)
        np.testing.assert_allclose(got, want / top, atol=1e-5)
    fe = SpectralFrontEnd(sp, mc)
    patches, starts = fe.patches([fe.features(v + a)])
    assert starts == [0] and patches.shape == (1, mc.freq_bins, mc.frames, 1)
    np.testing.assert_allclose(patches[0, :, :, 0], ref["mix"] / top, atol=1e-5)


def test_the_loss_is_the_mean_absolute_error_per_patch():
    from vocalsep.frontend import l1_loss

    rng = np.random.default_rng(0)
    m, x, v = (rng.random((3, 8, 4, 1)).astype(np.float32) for _ in range(3))
    want = [np.mean(np.abs(m[i] * x[i] - v[i])) for i in range(3)]
    np.testing.assert_allclose(np.asarray(l1_loss(m, x, v)), want, rtol=1e-6)


def test_the_training_losses_by_name():
    """train.loss "vocals" is the L1 loss of the vocals; "both" adds that of the accompaniment, whose
    estimate is (1 - mask) x mixture; a waveform network has no "both"."""
    from vocalsep.frontend import for_model

    sp, mc = tiny_configs()
    fe = for_model(sp, mc)
    rng = np.random.default_rng(1)
    m, x, v, a = (rng.random((3, 8, 4, 1)).astype(np.float32) for _ in range(4))
    vocals = [np.mean(np.abs(m[i] * x[i] - v[i])) for i in range(3)]
    both = [vocals[i] + np.mean(np.abs((1 - m[i]) * x[i] - a[i])) for i in range(3)]
    np.testing.assert_allclose(np.asarray(fe.training_loss("vocals")(m, x, v, a)), vocals, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fe.training_loss("both")(m, x, v, a)), both, rtol=1e-6)
    with pytest.raises(VocalsepError, match="train.loss = 'all'"):
        fe.training_loss("all")


def test_blocks_take_their_context_from_the_front_end(tiny_model):
    """Half a patch on each side: the 2 s that separation used for the shipped model's 4 s patches."""
    assert Separator(default_model_path()).overlap_seconds == 2.0
    sp, mc = tiny_configs()
    assert Separator(tiny_model).overlap_seconds == pytest.approx(mc.frames * sp.hop_length / sp.sample_rate / 2)
    assert Separator(tiny_model, overlap_seconds=0.3).overlap_seconds == 0.3
