"""The Wave-U-Net (architecture ``wave-unet``) and its waveform front end (issue 15): the paper's sizes, an
output aligned with the middle of the input, training examples and loss, the tiling of network calls, the
ratio mask into the shared full-band stage, and ``train`` -> ``separate`` (both backends) -> ``evaluate``
end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml
from click.testing import CliRunner

from vocalsep import Separator, VocalsepError
from vocalsep.cli import main
from vocalsep.config import load_config
from vocalsep.frontend import SpectralFrontEnd, for_model
from vocalsep.model import ModelFile, build_model
from vocalsep.models.waveunet import WaveUNetConfig, sizes
from vocalsep.wavefront import WaveFrontEnd

from .conftest import make_audio, tiny_configs
from .test_train import TINY, song

TINY_SPEC = tiny_configs()[0]


def sdr(ref, est):
    ref, est = np.asarray(ref, np.float64), np.asarray(est, np.float64)
    return 10 * np.log10(np.sum(ref ** 2) / max(np.sum((ref - est) ** 2), 1e-20))


def test_the_papers_sizes():
    """M4 of Stoller et al. (2018), Table 1 and section 4.2: 12 levels, kernels 15 and 5, 147443 samples in
    and 16389 out; and the shipped config is that network, about 10.3 M weights for mono."""
    assert sizes(12, 15, 5, 16384) == (147443, 16389)
    cfg = load_config("archs/wave-unet").model
    assert type(cfg) is WaveUNetConfig and cfg.arch == "wave-unet"
    assert cfg.io_shapes() == ((147443, 1), (16389, 1))
    # weights counted by hand: conv i (15 x 24(i-1) x 24 i), bottleneck, up conv i (5 x (24(i+1) + 24 i) x 24 i)
    fc, n = 24, 0
    for i in range(1, 13):
        n += 15 * max(1, fc * (i - 1)) * fc * i + fc * i
        n += 5 * (fc * (i + 1) + fc * i) * fc * i + fc * i
    n += 15 * fc * 12 * fc * 13 + fc * 13 + (fc + 1) + 1
    assert n == 10_263_002


@pytest.mark.parametrize("levels, out", [(1, 1), (2, 100), (3, 512), (4, 1000)])
def test_sizes_are_the_networks_and_the_smallest(levels, out):
    import keras

    cfg = WaveUNetConfig(freq_bins=64, frames=16, channels=(4, 8), levels=levels, base_filters=2,
                         output_samples=out)
    n_in, n_out = sizes(levels, 15, 5, out)
    net = build_model(cfg)
    assert net.input_shape == (None, n_in, 1) and net.output_shape == (None, n_out, 1)
    assert n_out >= out and n_in % 2 == n_out % 2 == 1
    if out > 1:  # one sample less out of the bottleneck would give fewer than asked
        assert n_out - 2 ** levels < out
    keras.backend.clear_session()


def test_the_output_is_aligned_with_the_middle_of_the_input():
    """The input samples that output sample j depends on (gradients of a seeded network) are centred on
    j + context on average over one period of the decimations (2^L outputs), and never more than 2^L off:
    centred valid convolutions, decimation and interpolation, and symmetric crops."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    cfg = WaveUNetConfig.tiny()
    net = build_model(cfg)
    (n_in, _), (n_out, _) = cfg.io_shapes()
    ctx, period = (n_in - n_out) // 2, 2 ** cfg.levels
    x = tf.constant(np.random.default_rng(0).standard_normal((1, n_in, 1)).astype(np.float32))
    offsets = []
    for j in range(100, 100 + period):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = net(x)[0, j, 0]
        nz = np.flatnonzero(np.abs(tape.gradient(y, x).numpy()[0, :, 0]) > 0)
        offsets.append((nz[0] + nz[-1]) / 2 - (j + ctx))
    assert np.mean(offsets) == 0 and np.abs(offsets).max() < period and np.ptp(offsets) > 0


def test_upsampling_linear_and_learned():
    """The interpolation against numpy; learned upsampling (M5) starts as the linear one (M4) and, with its
    weights moved, runs alike in LiteRT and Keras."""
    import dataclasses

    import keras

    from vocalsep.models.waveunet import _layers
    from vocalsep.runners import KerasRunner, LiteRunner

    _, Interpolate = _layers()
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    want = np.empty((2, 9, 3), np.float32)
    want[:, ::2] = x
    want[:, 1::2] = 0.5 * (x[:, :-1] + x[:, 1:])
    np.testing.assert_allclose(np.asarray(Interpolate()(x)), want, rtol=1e-6)
    learned = Interpolate(learned=True)
    learned(x)
    w = rng.standard_normal(3).astype(np.float32)
    learned.set_weights([w])
    s = 1 / (1 + np.exp(-w))
    want[:, 1::2] = s * x[:, :-1] + (1 - s) * x[:, 1:]
    np.testing.assert_allclose(np.asarray(learned(x)), want, rtol=1e-5, atol=1e-6)

    keras.utils.set_random_seed(7)
    m4 = WaveUNetConfig.tiny()
    m5 = dataclasses.replace(m4, upsampling="learned")
    lin, net = build_model(m4), build_model(m5)
    shared = [v for v in net.weights if not v.path.endswith("interpolate/weight")]
    assert len(shared) == len(lin.weights) and len(net.weights) == len(lin.weights) + m4.levels
    for v, u in zip(shared, lin.weights):
        v.assign(u)
    inp = rng.standard_normal((3,) + m4.io_shapes()[0]).astype(np.float32)
    np.testing.assert_allclose(np.asarray(net(inp)), np.asarray(lin(inp)), atol=1e-6)
    for v in net.weights:
        if v.path.endswith("interpolate/weight"):
            v.assign(rng.normal(0, 2, tuple(v.shape)).astype(np.float32))
    assert np.abs(np.asarray(net(inp)) - np.asarray(lin(inp))).max() > 1e-3
    mf = ModelFile.from_keras(net, TINY_SPEC, m5)
    k, lite = KerasRunner(mf)(inp), LiteRunner(mf)(inp)
    assert sdr(k, lite) > 60


@pytest.mark.parametrize("settings, message", [
    ({"down_kernel": 14}, "down_kernel must be odd"),
    ({"levels": 0}, "levels must be a whole number in [1, 16], not 0"),
    ({"base_filters": 0}, "base_filters must be"),
    ({"upsampling": "cubic"}, "upsampling must be one of linear, learned, not 'cubic'"),
    ({"levels": 16, "down_kernel": 63, "output_samples": 1 << 20}, "input samples, more than"),
])
def test_bad_settings_are_one_line_errors(tmp_path, settings, message):
    path = tmp_path / "w.yaml"
    path.write_text(yaml.safe_dump({"model": {"arch": "wave-unet", **settings}}))
    with pytest.raises(VocalsepError) as e:
        load_config(path)
    assert str(e.value).startswith(str(path)) and message in str(e.value) and "\n" not in str(e.value)


def test_front_ends_by_domain():
    sp = TINY_SPEC
    assert type(for_model(sp, WaveUNetConfig.tiny())) is WaveFrontEnd
    assert type(for_model(sp, tiny_configs()[1])) is SpectralFrontEnd
    with pytest.raises(VocalsepError, match="'wave-unet' works on the waveform domain"):
        SpectralFrontEnd(sp, WaveUNetConfig.tiny())
    with pytest.raises(VocalsepError, match="'unet' works on the spectral domain"):
        WaveFrontEnd(sp, tiny_configs()[1])


def test_examples_and_loss():
    fe = WaveFrontEnd(TINY_SPEC, WaveUNetConfig.tiny())
    n_in, n_out, ctx = 755, 517, 119
    assert (fe.input_samples, fe.output_samples, fe.context, fe.example_samples) == (n_in, n_out, ctx, n_in)
    assert fe.context_seconds() == pytest.approx((119 + 128) / 8192 + 0.1)
    v = np.arange(n_in, dtype=np.float32)
    a = -0.5 * np.arange(n_in, dtype=np.float32)
    mix, tv, ta = fe.example(v, a)
    np.testing.assert_array_equal(mix, 0.5 * np.arange(n_in))
    np.testing.assert_array_equal(tv, np.arange(ctx, ctx + n_out))
    np.testing.assert_array_equal(ta, -0.5 * np.arange(ctx, ctx + n_out))
    rng = np.random.default_rng(0)
    est, target = rng.standard_normal((2, 3, n_out, 1)).astype(np.float32)
    want = [np.mean((est[i] - target[i]) ** 2) for i in range(3)]
    np.testing.assert_allclose(np.asarray(fe.loss(est, None, target)), want, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(fe.training_loss("vocals")(est, None, target, None)), want, rtol=1e-6)
    with pytest.raises(VocalsepError, match="expected 'vocals' for a waveform network"):
        fe.training_loss("both")


def middle(fe, scale=1.0):
    """A runner that returns ``scale`` x the middle of each input: the ideal network for vocals = mixture."""
    return lambda b: scale * b[:, fe.context:fe.context + fe.output_samples]


@pytest.mark.parametrize("n", [1, 516, 517, 518, 5000])
def test_network_calls_tile_the_audio(n):
    fe = WaveFrontEnd(TINY_SPEC, WaveUNetConfig.tiny())
    x = np.random.default_rng(n).standard_normal((n, 2)).astype(np.float32)
    assert len(fe.inputs(x[:, 0])) == -(-n // 517)
    np.testing.assert_array_equal(fe.estimate(x, middle(fe)), x.T)
    with pytest.raises(VocalsepError, match="tiny.vsep: the network's output is NaN"):
        fe.estimate(x, lambda b: np.full((len(b), 517, 1), np.nan, np.float32), "tiny.vsep")


def test_the_estimate_goes_through_the_shared_full_band_stage():
    """Vocals of half the mixture at the model's rate become a ratio mask of 0.5 on the model's grid; at
    44.1 kHz the full-band stage gives half the mixture where the model's band is, and the high-band rule
    0.5 ** (1 + 2 x octaves) above it."""
    fe = WaveFrontEnd(TINY_SPEC, WaveUNetConfig.tiny())
    sr = 44100
    t = np.arange(2 * sr) / sr
    low = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    masks = fe.block_masks(low[:, None], sr, middle(fe, 0.5))
    assert masks.shape == (1, 64, 1 + len(t) * 8192 // sr // 32)
    voiced = masks[0, 2:40, 4:-4][masks[0, 2:40, 4:-4] > 0]
    assert np.median(voiced) == pytest.approx(0.5, abs=0.02)
    v = fe.separate(low[:, None], sr, middle(fe, 0.5))[:, 0]
    assert sdr(0.5 * low[sr // 4:-sr // 4], v[sr // 4:-sr // 4]) > 25
    high = (0.3 * np.sin(2 * np.pi * 16000 * t)).astype(np.float32)  # an octave above the model's 4 kHz band
    v = fe.separate((low + high)[:, None], sr, middle(fe, 0.5))[:, 0]
    top = 63 * 8192 / 128  # the model band's highest frequency (bin 63 of 64 at 8192 Hz, n_fft 128)
    gain = 0.5 ** (1 + 2 * np.log2(16000 / top))
    want = 0.5 * low + gain * high
    assert sdr(want[sr // 4:-sr // 4], v[sr // 4:-sr // 4]) > 20


def write_yaml(path: Path, d: dict) -> Path:
    path.write_text(yaml.safe_dump(d))
    return path


def test_train_separate_evaluate_end_to_end(tmp_path):
    """``vocalsep train`` a tiny wave-unet a few steps; the model file separates alike with LiteRT and Keras
    (> 60 dB) in blocks and in one piece; ``vocalsep separate`` and ``vocalsep evaluate`` run it."""
    for i in range(4):
        song(tmp_path / "stems", f"singer_{i // 2 + 1}_{i % 2 + 1:02d}", i)
    d = json.loads(json.dumps(TINY))
    d["model"] = {**WaveUNetConfig.tiny().to_dict(), "channels": [4, 8]}
    d["train"].update(steps=4, steps_per_epoch=2, checkpoint_every=2, learning_rate=1e-3)
    cfg_path = write_yaml(tmp_path / "wave.yaml", d)
    out = tmp_path / "run"
    r = CliRunner().invoke(main, ["train", "--data", str(tmp_path / "stems"), "--config", str(cfg_path),
                                  "--out", str(out), "--validation", "singer_2"])
    assert r.exit_code == 0, r.output
    mf = ModelFile.load(out / "model.vsep")
    assert type(mf.model) is WaveUNetConfig and mf.model == WaveUNetConfig.tiny() and mf.tflite
    assert mf.info["steps"] == 4 and mf.info["val_sdr"] is not None
    rows = (out / "log.csv").read_text().splitlines()
    assert len(rows) >= 3 and "val_sdr" in rows[0]

    x = make_audio(np.random.default_rng(3), 1.5, 22050, 2)
    keras_sep = Separator(out / "model.vsep", backend="keras", block_seconds=0.5)
    lite_sep = Separator(out / "model.vsep", backend="litert", block_seconds=0.5)
    assert keras_sep.overlap_seconds == pytest.approx((119 + 128) / 8192 + 0.1)
    v_keras, a_keras = keras_sep.separate(x, 22050)
    v_lite, _ = lite_sep.separate(x, 22050)
    assert sdr(v_keras, v_lite) > 60 and np.abs(v_keras).max() > 1e-4
    np.testing.assert_allclose(v_keras + a_keras, x, atol=1e-6)
    one = Separator(out / "model.vsep", backend="keras", block_seconds=100)
    # blocks near enough the one-piece separation (as the spectral models, tests/test_separate.py): the network
    # calls of another block fall on another phase of its decimations
    v_one = one.separate(x, 22050)[0]
    assert sdr(v_one, v_keras) > 25

    src = tmp_path / "song.wav"
    sf.write(src, x, 22050)
    r = CliRunner().invoke(main, ["separate", str(src), "-o", str(tmp_path / "sep"), "--model",
                                  str(out / "model.vsep")])
    assert r.exit_code == 0, r.output
    vf, sr = sf.read(tmp_path / "sep" / "song" / "vocals.wav", dtype="float32")
    assert sr == 22050 and vf.shape == x.shape and sdr(v_one, vf) > 40  # 16-bit output

    r = CliRunner().invoke(main, ["evaluate", "--data", str(tmp_path / "stems"), "--protocol", "mir1k",
                                  "--model", str(out / "model.vsep"), "--songs", "singer_2", "--quiet",
                                  "--out", str(tmp_path / "eval.json")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "eval.json").read_text())
    assert res["n_tracks"] == 2
