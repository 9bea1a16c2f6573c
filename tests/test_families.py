"""The U-Net family's spectrogram variants (vocalsep/models): shapes, structure, parameter counts, a few
training steps, and the LiteRT conversion."""

from __future__ import annotations

import numpy as np
import pytest

from vocalsep import VocalsepError
from vocalsep.config import ModelConfig
from vocalsep.models import arch_names, get_arch

ARCHS = ["resunet", "dense-unet", "multires-unet", "r2unet", "attention-unet", "attention-r2unet", "plain-unet"]


def layer_count(model, kind: str, suffix: str = "") -> int:
    return sum(type(layer).__name__ == kind and layer.name.endswith(suffix) for layer in model.layers)


def structure(name: str, cfg) -> dict[tuple[str, str], int]:
    """What the paper's structure puts in a network of D = len(channels) levels (the deepest the bridge),
    D - 1 decoder levels and skips: {(layer class, name suffix): how many}."""
    d = len(cfg.channels)
    units = 2 * d - 1  # one block per encoder and per decoder level
    t, n = getattr(cfg, "recurrent_steps", 0), getattr(cfg, "dense_layers", 0)
    gates = {("Multiply", "_gate_apply"): d - 1, ("UpSampling2D", "_gate_up"): d - 1}
    return {
        "resunet": {("Add", "_shortcut"): units, ("UpSampling2D", "_up"): d - 1},
        "dense-unet": {("Concatenate", "_dense"): units * n, ("MaxPooling2D", "_pool"): d - 1},
        # Res paths of lengths D-1 .. 1 on the D-1 skips, one shortcut per residual unit
        "multires-unet": {("Add", "_shortcut"): units + d * (d - 1) // 2, ("Concatenate", "_cat"): units},
        # each unit: 2 recurrent layers of t additions, and its own residual sum
        "r2unet": {("Add", "_shortcut"): units, ("Add", ""): units * (2 * t + 1)},
        "attention-unet": {**gates, ("Add", ""): d - 1},
        "plain-unet": {("Multiply", ""): 0, ("Add", ""): 0, ("MaxPooling2D", "_pool"): d - 1,
                       ("Concatenate", "_skip"): d - 1},
        "attention-r2unet": {**gates, ("Add", "_shortcut"): units, ("Add", ""): units * (2 * t + 1) + d - 1},
    }[name]


def deepest_weights(name: str, cfg) -> int:
    """The weights of the bridge and the deepest decoder level (C and c channels) as the paper's blocks have
    them, biases and batch norms left out; with channels doubling per level, each level above has a
    quarter of the weights, so the network holds about 4/3 of this."""
    C, c, k, n = cfg.channels[-1], cfg.channels[-2], cfg.kernel_size, getattr(cfg, "dense_layers", 0)
    up = k * k * C * c  # Jansson's transposed convolution, C -> c
    r2 = lambda i, o: i * o + 2 * 9 * o * o  # noqa: E731  1x1 in, two recurrent 3x3 layers (shared weights)
    gate = 4 * c * (c // 2) + C * (c // 2) + c * c  # theta (2x2), phi, psi (1 filter: left out), out (1x1)
    if name == "resunet":  # residual units: 3x3, 3x3 and a 1x1 projection; nearest-neighbour upsampling
        return 9 * c * C + 9 * C * C + c * C + 9 * (C + c) * c + 9 * c * c + (C + c) * c
    if name == "dense-unet":  # 1x1 bottleneck to the level's width, 3x3 to growth width / n, 1x1 transition
        dense = lambda i, w: sum((i + j * w // n) * w for j in range(n)) + 9 * w * w + (i + w) * w  # noqa: E731
        return dense(c, C) + up + 2 * c * c + dense(c, c)
    if name == "multires-unet":  # W = alpha U: 3x3 convs to W/6, W/3, W/2 and a 1x1 shortcut to their sum

        def block(i, u):  # (weights, output width) of a MultiRes block of i input channels
            a, b, w = (int(cfg.alpha * u * f) for f in (0.167, 0.333, 0.5))
            return 9 * (i * a + a * b + b * w) + i * (a + b + w), a + b + w

        skip = block(0, c)[1]  # the width of the level above the bridge's MultiRes block
        bridge, wide = block(skip, C)
        res_path = 10 * skip * c  # of length 1: a 3x3 conv and a 1x1 shortcut, skip -> c channels
        return bridge + k * k * wide * c + res_path + block(2 * c, c)[0]
    if name == "r2unet":
        return r2(c, C) + up + r2(2 * c, c)
    if name == "attention-unet":  # two 3x3 convs per level
        return 9 * c * C + 9 * C * C + up + gate + 9 * 2 * c * c + 9 * c * c
    if name == "plain-unet":  # the attention U-Net's levels, no gate
        return 9 * c * C + 9 * C * C + up + 9 * 2 * c * c + 9 * c * c
    if name == "attention-r2unet":
        return r2(c, C) + up + gate + r2(2 * c, c)
    raise KeyError(name)


def test_registry_knows_the_variants():
    assert set(ARCHS) <= set(arch_names())
    for name in ARCHS:
        arch = get_arch(name)
        assert issubclass(arch.config, ModelConfig) and arch.domain == "spectral" and arch.cite
        assert isinstance(arch.config.tiny(), arch.config)


@pytest.mark.parametrize("name", ARCHS)
def test_full_size_network_follows_its_paper(name):
    arch = get_arch(name)
    cfg = arch.config()
    assert cfg.channels == (16, 32, 64, 128, 256, 512) and (cfg.freq_bins, cfg.frames) == (512, 128)
    m = arch.build(cfg)
    assert m.input_shape == (None, 512, 128, 1) and m.output_shape == (None, 512, 128, 1)
    assert m.layers[-1].name == "mask" and m.input.name == "magnitude"
    assert layer_count(m, "Dropout") == cfg.dropout_layers == 3
    for (kind, suffix), n in structure(name, cfg).items():
        assert layer_count(m, kind, suffix) == n, (kind, suffix)
    # the two deepest levels hold about 3/4 of the weights (Jansson's net of 5x5 convs: 9.8 M)
    expected = 4 / 3 * deepest_weights(name, cfg)
    assert 0.95 * expected < m.count_params() < 1.05 * expected, (m.count_params(), expected)
    assert 6e6 < m.count_params() < 16e6  # the size of Jansson's 9.8 M, whose 5x5 convs these replace


@pytest.mark.parametrize("name", ARCHS)
def test_tiny_network_shapes_and_range(name):
    import keras

    arch = get_arch(name)
    cfg = arch.config.tiny()
    keras.utils.set_random_seed(0)
    m = arch.build(cfg)
    for (kind, suffix), n in structure(name, cfg).items():
        assert layer_count(m, kind, suffix) == n, (kind, suffix)
    x = np.random.default_rng(0).random((2, cfg.freq_bins, cfg.frames, 1)).astype(np.float32)
    y = np.asarray(m(x, training=False))
    assert y.shape == x.shape and y.min() >= 0 and y.max() <= 1 and np.isfinite(y).all()


@pytest.mark.parametrize("name", ARCHS)
def test_tiny_network_learns_a_band_mask(name):
    """60 steps of Jansson's L1 loss on a toy task: the vocals are the mixture's bins 8..23, half of them, so
    that no constant mask does better than the initial 0.5.  Two levels and SGD, whose steps trace twice as
    fast as Adam's: tracing the training step is most of this test's time."""
    import dataclasses

    import keras

    arch = get_arch(name)
    cfg = dataclasses.replace(arch.config.tiny(), channels=(4, 8))
    keras.utils.set_random_seed(1)
    m = arch.build(cfg)
    rng = np.random.default_rng(1)
    x = rng.random((8, cfg.freq_bins, cfg.frames, 1)).astype(np.float32)
    x /= x.max(axis=(1, 2, 3), keepdims=True)
    band = np.zeros_like(x)
    band[:, 8:24] = 1
    masked = keras.Model(m.input, keras.layers.Multiply()([m.output, m.input]))  # mask x mixture
    masked.compile(optimizer=keras.optimizers.SGD(0.4, momentum=0.9), loss="mae", jit_compile=False)
    losses = [float(masked.train_on_batch(x, band * x)) for _ in range(60)]  # 30 leave the dense net at 0.6
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * losses[0], losses  # 0.002 to 0.16 when written


@pytest.mark.parametrize("name", ["r2unet", "attention-r2unet"])
def test_a_batch_norm_per_recurrent_step(name):
    """step_batch_norm: each of a recurrent layer's t + 1 steps has its own batch norm, the convolution
    shared; without it (model files written before the setting) one batch norm serves every step."""
    import dataclasses

    arch = get_arch(name)
    base = arch.config.tiny()
    rcls = 2 * (2 * len(base.channels) - 1)  # two recurrent layers per unit
    for per_step, bns in ((False, rcls), (True, rcls * (base.recurrent_steps + 1))):
        m = arch.build(dataclasses.replace(base, step_batch_norm=per_step))
        in_rcl = [type(layer).__name__ for layer in m.layers if "_rcl" in layer.name]
        assert in_rcl.count("BatchNormalization") == bns
        assert in_rcl.count("Conv2D") == rcls  # one convolution per recurrent layer either way


@pytest.mark.parametrize("name, settings", [(name, {}) for name in ARCHS] + [
    ("r2unet", {"step_batch_norm": True}), ("attention-unet", {"input_exponent": 0.5}),
    ("resunet", {"input_exponent": 0.7})])
def test_tiny_network_runs_in_litert(name, settings):
    """float16 weights, LiteRT builtins only, the interpreter's mask within 1e-2 of Keras's."""
    import dataclasses

    import keras
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    arch = get_arch(name)
    cfg = dataclasses.replace(arch.config.tiny(), **settings)
    keras.utils.set_random_seed(2)
    m = arch.build(cfg)
    rng = np.random.default_rng(2)
    for layer in m.layers:  # batch-norm statistics as after training, not the identity
        if isinstance(layer, keras.layers.BatchNormalization):
            g, b, mu, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.2, b.shape),
                               rng.normal(0, 0.2, mu.shape), rng.uniform(0.5, 2.0, var.shape)])
    shape = (2, cfg.freq_bins, cfg.frames, 1)
    fn = tf.function(lambda x: m(x, training=False), input_signature=[tf.TensorSpec(shape, tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    interp = Interpreter(model_content=converter.convert(), num_threads=1)
    ops = {op["op_name"] for op in interp._get_ops_details()}
    power = {0.5: "SQRT", 0.7: "POW"}.get(getattr(cfg, "input_exponent", 1.0))
    assert power is None or power in ops, ops  # the patch's power is in the converted network
    assert ops <= {"CONV_2D", "TRANSPOSE_CONV", "ADD", "MUL", "CONCATENATION", "MAX_POOL_2D", "RESIZE_BILINEAR",
                   "RESIZE_NEAREST_NEIGHBOR", "TILE", "RESHAPE", "LOGISTIC", "RELU", "LEAKY_RELU", "DEQUANTIZE",
                   "SQRT", "POW"}, ops
    interp.allocate_tensors()
    x = rng.random(shape).astype(np.float32)
    interp.set_tensor(interp.get_input_details()[0]["index"], x)
    interp.invoke()
    lite = interp.get_tensor(interp.get_output_details()[0]["index"])
    keras_out = np.asarray(m(x, training=False))
    assert lite.shape == shape and np.abs(lite - keras_out).max() < 1e-2
    assert np.abs(keras_out - keras_out.mean()).max() > 1e-3  # not a constant output


@pytest.mark.parametrize("name, bad", [("dense-unet", {"dense_layers": 0}), ("dense-unet", {"dense_layers": 32}),
                                       ("multires-unet", {"alpha": 0.1}), ("r2unet", {"recurrent_steps": 0}),
                                       ("resunet", {"frames": 100})])
def test_invalid_settings_are_one_line_errors(name, bad):
    with pytest.raises(VocalsepError, match="model"):
        get_arch(name).config(**bad)
