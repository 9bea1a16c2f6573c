"""The U-Net, its model file, the LiteRT export, and the shipped default model."""

from __future__ import annotations

import numpy as np
import pytest

from vocalsep import Separator, VocalsepError, audio
from vocalsep.model import ModelFile, build_unet, default_model_path, shipped_model_paths

from .conftest import SONG, tiny_configs


def sdr(ref, est):
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20))


def test_unet_shape_follows_the_config():
    _, mc = tiny_configs()
    m = build_unet(mc)
    assert m.input_shape == (None, 64, 16, 1) and m.output_shape == (None, 64, 16, 1)
    convs = [layer for layer in m.layers if layer.name.endswith("_conv")]
    deconvs = [layer for layer in m.layers if layer.name.endswith("_deconv")]
    assert [c.filters for c in convs] == [4, 8] and [d.filters for d in deconvs] == [4, 1]
    assert len([layer for layer in m.layers if "dropout" in layer.name]) == 1
    full = build_unet(type(mc)())  # the paper's network: 6 + 6 layers, 16..512 channels
    assert [layer.filters for layer in full.layers if layer.name.endswith("_conv")] == [16, 32, 64, 128, 256, 512]
    assert len([layer for layer in full.layers if layer.name.endswith("_deconv")]) == 6
    assert len([layer for layer in full.layers if "dropout" in layer.name]) == 3


def test_litert_export_equals_keras_with_trained_batch_norm(tmp_path):
    """BN folding and the sub-pixel form of the transposed convolutions compute the Keras network."""
    import keras

    from vocalsep.runners import KerasRunner, LiteRunner

    keras.utils.set_random_seed(3)
    sp, mc = tiny_configs()
    m = build_unet(mc)
    rng = np.random.default_rng(3)
    for layer in m.layers:
        if layer.name.endswith("_bn"):  # statistics as after training, not the identity
            g, b, mu, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.2, b.shape),
                               rng.normal(0, 0.2, mu.shape), rng.uniform(0.5, 2.0, var.shape)])
    mf = ModelFile.from_keras(m, sp, mc)
    mf.save(tmp_path / "m.vsep")
    back = ModelFile.load(tmp_path / "m.vsep")
    assert back.spectral == sp and back.model == mc and all(w.dtype == np.float16 for w in back.weights)
    x = rng.random((5, 64, 16, 1)).astype(np.float32)
    k = KerasRunner(back)(x)
    lite = LiteRunner(back, batch=2)(x)
    assert np.abs(k - lite).max() < 1e-4
    assert np.abs(k - 0.5).max() > 1e-3  # not a constant output


def test_model_file_errors(tmp_path):
    with pytest.raises(VocalsepError, match="does not exist"):
        ModelFile.load(tmp_path / "none.vsep")
    (tmp_path / "bad.vsep").write_text("not a zip")
    with pytest.raises(VocalsepError, match="not a vocalsep model file"):
        ModelFile.load(tmp_path / "bad.vsep")


@pytest.mark.parametrize("index", [0, 1])
def test_shipped_models_ship_with_their_config(index):
    mf = ModelFile.load(shipped_model_paths()[index])
    assert mf.tflite is not None and mf.weights and all(w.dtype == np.float16 for w in mf.weights)
    assert mf.spectral.sample_rate == 16384 and mf.model.freq_bins == 512 and mf.model.frames == 128
    assert mf.info.get("steps", 0) >= 1000  # a trained model, not an initialisation


def straightforward_vocals(x: np.ndarray, sr: int, mf: ModelFile | None = None,
                           ensemble: list[ModelFile] | None = None) -> np.ndarray:
    """A model's vocals (default: the first shipped model's; ``ensemble``: the mean of these models' masks)
    for an excerpt (samples, channels) computed the plain way: the Keras network, librosa's STFT and ISTFT,
    the whole excerpt at once, the mid mask, every step spelled out."""
    import keras
    import librosa

    from vocalsep import spectral

    members = ensemble or [mf or ModelFile.load(default_model_path())]
    sp, mc = members[0].spectral, members[0].model
    stft = dict(center=True, pad_mode="constant")
    mid = audio.resample(x.mean(axis=1), sr, sp.sample_rate)
    mag = np.abs(librosa.stft(mid, n_fft=sp.n_fft, hop_length=sp.hop_length, **stft))[:mc.freq_bins]
    T, P = mag.shape[1], mc.frames
    starts = spectral.patch_starts(T, P, P * 3 // 4)  # the Separator's default: patches overlap by 1/4
    mag = np.pad(mag, ((0, 0), (0, starts[-1] + P - T)))
    w = spectral.patch_weight(P)
    masks = []
    for member in members:
        net = member.keras_model()  # (the file's architecture, float32 weights)
        mask, norm = np.zeros_like(mag), np.zeros(mag.shape[1], np.float32)
        for s in starts:
            patch = mag[:, s:s + P] / (mag[:, s:s + P].max() + 1e-8)
            out = keras.ops.convert_to_numpy(net(patch[None, :, :, None], training=False))[0, :, :, 0]
            mask[:, s:s + P] += out * w
            norm[s:s + P] += w
        masks.append((mask / norm)[:, :T])
    mask = np.mean(masks, axis=0)
    n_fft = 2 ** round(np.log2(0.1 * sr))  # ~0.1 s, hop a quarter (2048 at 22.05 kHz, 4096 at 44.1)
    hop = n_fft // 4
    vocals = np.zeros_like(x)
    for c in range(x.shape[1]):
        X = librosa.stft(x[:, c], n_fft=n_fft, hop_length=hop, **stft)
        M = spectral.upsample_mask(mask, sp.sample_rate / sp.n_fft, sp.hop_seconds, X.shape[0], sr / n_fft,
                                   X.shape[1], hop / sr, sp.sample_rate / 2 ** 1.5, 2.0)
        vocals[:, c] = librosa.istft(X * M, n_fft=n_fft, hop_length=hop, length=len(x), center=True)
    return vocals


@pytest.mark.skipif(not SONG.exists(), reason="shared data not present")
def test_fast_path_matches_the_straightforward_one_on_a_real_song():
    """The fast path (the shipped ensemble in LiteRT, our STFT pair, mid mask, batched patches, streamed
    blocks) gives the audio of the plain computation (each member's Keras network, the mean of their masks)."""
    x, sr = audio.read_excerpt(SONG, 60 * 44100, 12 * 44100)
    fast = Separator(backend="litert")
    assert [m.runner.name for m in fast.members] == ["litert", "litert"]
    v_fast, _ = fast.separate(x, sr)
    plain = straightforward_vocals(x, sr, ensemble=[ModelFile.load(p) for p in shipped_model_paths()])
    assert sdr(plain, v_fast) > 60
    # and not what either model alone gives
    assert sdr(straightforward_vocals(x, sr), v_fast) < 40


@pytest.mark.skipif(not SONG.exists(), reason="shared data not present")
def test_default_model_separates_real_music():
    """On a real song the shipped models (their ensemble) put the voice in one output: the two outputs differ
    clearly and the vocals are neither silent nor the whole mix."""
    x, sr = audio.read_excerpt(SONG, 60 * 44100, 8 * 44100)
    v, a = Separator().separate(x, sr)
    share = np.sum(v ** 2) / np.sum(x ** 2)
    assert 0.02 < share < 0.8
    corr = np.sum(v * a) / np.sqrt(np.sum(v ** 2) * np.sum(a ** 2))
    assert abs(corr) < 0.5
