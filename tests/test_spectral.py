"""The shared STFT/ISTFT against librosa, and the model-grid -> audio-grid mask map."""

import numpy as np
import pytest

from vocalsep import spectral


@pytest.mark.parametrize("n,n_fft,hop", [(10000, 1024, 256), (4097, 1024, 768), (777, 1024, 256),
                                         (100, 1024, 256), (1, 128, 32), (44100, 4096, 1024)])
def test_stft_matches_librosa(n, n_fft, hop):
    import librosa

    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    ours = spectral.stft(x, n_fft, hop)
    ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True, pad_mode="constant")
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=1e-4 * max(1.0, np.abs(ref).max()))


@pytest.mark.parametrize("n,n_fft,hop", [(10000, 1024, 256), (4097, 1024, 768), (100, 1024, 256),
                                         (44100, 4096, 1024), (5000, 1000, 300)])
def test_istft_inverts_and_matches_librosa(n, n_fft, hop):
    import librosa

    x = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    spec = spectral.stft(x, n_fft, hop)
    y = spectral.istft(spec, n_fft, hop, n)
    assert y.shape == (n,) and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-4)
    ref = librosa.istft(spec, n_fft=n_fft, hop_length=hop, length=n)
    np.testing.assert_allclose(y, ref, atol=1e-4)


def test_patch_starts_cover_everything():
    for frames in (1, 15, 16, 17, 100, 128, 129, 1000):
        starts = spectral.patch_starts(frames, 16, 8)
        covered = np.zeros(max(frames, starts[-1] + 16), bool)
        for s in starts:
            covered[s:s + 16] = True
        assert covered[:frames].all()
        assert starts[-1] < frames


def test_upsample_mask_interpolates_and_extends_high_band():
    # a mask that rises linearly with frequency in the model's band (bins every 8 Hz up to 504 Hz)
    model = np.tile(np.linspace(0, 1, 64, dtype=np.float32)[:, None], (1, 10))
    out = spectral.upsample_mask(model, model_bin_hz=8.0, model_hop_s=0.1, n_bins=200, bin_hz=4.0,
                                 n_out_frames=37, hop_s=0.025, high_band_from_hz=256.0)
    assert out.shape == (200, 37)
    # inside the band: linear interpolation of the model's bins (bin k at 4k Hz = model bin k/2)
    np.testing.assert_allclose(out[:127, 5], np.linspace(0, 1, 64)[0] + np.arange(127) / 2 / 63, atol=1e-5)
    # above the band: the mean of the mask over [256 Hz, 504 Hz] = model bins 32..63
    m = np.linspace(0, 1, 64)[32:].mean()
    np.testing.assert_allclose(out[127:, :], m, atol=1e-5)
    # with a slope, that mean raised to 1 + slope x octaves above the band's top (504 Hz): at 1008 Hz (bin
    # 252 of 4 Hz, out of range here) it would be m ** 3; at 796 Hz (bin 199), m ** (1 + 2 log2(796 / 504))
    sloped = spectral.upsample_mask(model, model_bin_hz=8.0, model_hop_s=0.1, n_bins=200, bin_hz=4.0,
                                    n_out_frames=37, hop_s=0.025, high_band_from_hz=256.0, high_band_slope=2.0)
    np.testing.assert_allclose(sloped[:127], out[:127])  # the model's band is unchanged
    f = np.arange(127, 200) * 4.0
    np.testing.assert_allclose(sloped[127:, 3], m ** (1 + 2 * np.log2(f / 504.0)), rtol=1e-5)
    assert sloped[199, 0] < sloped[127, 0] < m  # an uncertain mask (m ~ 0.75) fades with frequency
