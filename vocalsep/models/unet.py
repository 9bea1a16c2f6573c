"""The spectrogram U-Net of Jansson et al. (ISMIR 2017), architecture ``unet``: its Keras builder, the shapes
of its weights (checked without TensorFlow when a model file is read) and its fast LiteRT conversion.

Network: input (batch, freq_bins, frames, 1) magnitude patches, normalised so that each patch's maximum is 1;
output a sigmoid vocal mask of the same shape.  Encoder: ``len(channels)`` strided ``kernel_size`` convolutions
(batch norm, leaky ReLU ``leaky_slope``).  Decoder: as many strided transposed convolutions (batch norm, ReLU,
dropout on the first ``dropout_layers``), each after the first fed the concatenation of the previous decoder
output and the encoder output of the same size; the last one has one filter and a sigmoid.  Its settings are
:class:`vocalsep.config.ModelConfig` itself (the fields every spectral architecture shares).
"""

from __future__ import annotations

import numpy as np

from ..config import ModelConfig
from .registry import register

CITE = ("A. Jansson, E. Humphrey, N. Montecchio, R. Bittner, A. Kumar, T. Weyde: Singing Voice Separation with "
        "Deep U-Net Convolutional Networks, ISMIR 2017")


@register("unet", ModelConfig, domain="spectral", cite=CITE)
def build_unet(cfg: ModelConfig):
    """The Keras U-Net for ``cfg`` (input and output (batch, freq_bins, frames, 1)).  Imports Keras."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(cfg.freq_bins, cfg.frames, 1), name="magnitude")
    x = inp
    skips = []
    for i, ch in enumerate(cfg.channels):
        x = layers.Conv2D(ch, cfg.kernel_size, strides=cfg.stride, padding="same", name=f"enc{i + 1}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i + 1}_bn")(x)
        x = layers.LeakyReLU(negative_slope=cfg.leaky_slope, name=f"enc{i + 1}_act")(x)
        skips.append(x)
    # decoder: mirror of the encoder, ending with one channel
    out_channels = list(reversed(cfg.channels[:-1])) + [1]
    for i, ch in enumerate(out_channels):
        if i > 0:
            x = layers.Concatenate(axis=-1, name=f"dec{i + 1}_skip")([x, skips[-1 - i]])
        x = layers.Conv2DTranspose(ch, cfg.kernel_size, strides=cfg.stride, padding="same", name=f"dec{i + 1}_deconv")(x)
        if i == len(out_channels) - 1:
            x = layers.Activation("sigmoid", name="mask")(x)
            break
        x = layers.BatchNormalization(name=f"dec{i + 1}_bn")(x)
        x = layers.ReLU(name=f"dec{i + 1}_act")(x)
        if i < cfg.dropout_layers and cfg.dropout > 0:
            x = layers.Dropout(cfg.dropout, name=f"dec{i + 1}_dropout")(x)
    return keras.Model(inp, x, name="unet")


def weight_shapes(cfg: ModelConfig) -> list[tuple[int, ...]]:
    """Shapes of the U-Net's weight arrays in ``build_unet(cfg).get_weights()`` order, without Keras:
    per encoder layer the kernel (k, k, in, out), bias and 4 batch-norm vectors; per decoder layer the
    transposed kernel (k, k, out, in), bias and (but the last) 4 batch-norm vectors."""
    k, shapes, c_in = cfg.kernel_size, [], 1
    for ch in cfg.channels:
        shapes += [(k, k, c_in, ch), (ch,)] + [(ch,)] * 4
        c_in = ch
    outs = list(reversed(cfg.channels[:-1])) + [1]
    for i, ch in enumerate(outs):
        c_in = c_in if i == 0 else c_in + cfg.channels[-1 - i]
        shapes += [(k, k, ch, c_in), (ch,)] + ([(ch,)] * 4 if i < len(outs) - 1 else [])
        c_in = ch
    return shapes


# -- the fast LiteRT conversion ------------------------------------------------------------------------
def fast_export_fits(cfg: ModelConfig) -> bool:
    """Whether :func:`to_tflite` handles ``cfg`` (5x5 kernels, stride 2; others take the generic export)."""
    return cfg.kernel_size == 5 and cfg.stride == 2


def _fold_bn(kernel: np.ndarray, bias: np.ndarray, bn, out_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode batch norm that follows a convolution into its kernel and bias."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    shape = [1] * kernel.ndim
    shape[out_axis] = -1
    return kernel * scale.reshape(shape), (bias - mean) * scale + beta


# Transposed 5x5 convolution, stride 2, 'same' padding, as a 3x3 convolution to 4x the channels followed by
# depth-to-space: output phase r (0 or 1) along an axis takes, at input offsets -1, 0, +1, these kernel taps.
_PHASE_TAPS = {0: (3, 1, None), 1: (4, 2, 0)}


def _subpixel_kernel(w: np.ndarray) -> np.ndarray:
    """(5, 5, out, in) transposed-conv kernel -> (3, 3, in, 4 * out) conv kernel, phases (row, col) major."""
    _, _, c_out, c_in = w.shape
    v = np.zeros((3, 3, c_in, 4 * c_out), dtype=np.float64)
    for rh in (0, 1):
        for rw in (0, 1):
            group = slice((rh * 2 + rw) * c_out, (rh * 2 + rw + 1) * c_out)
            for th, kh in enumerate(_PHASE_TAPS[rh]):
                for tw, kw in enumerate(_PHASE_TAPS[rw]):
                    if kh is not None and kw is not None:
                        v[th, tw, :, group] = w[kh, kw].T
    return v


class _F16Layer:
    """A batch-norm layer's weights rounded through float16, as stored in the model file."""

    def __init__(self, bn):
        self.epsilon = bn.epsilon
        self._w = [np.asarray(w, np.float16).astype(np.float64) for w in bn.get_weights()]

    def get_weights(self):
        return self._w


def to_tflite(keras_model, cfg: ModelConfig, weights: str = "float16") -> bytes:
    """Convert the Keras U-Net (inference mode) to a LiteRT flatbuffer with ``weights`` (float16 or int8:
    :func:`vocalsep.export.convert`).

    Batch norms are folded into the convolutions, and each 5x5 stride-2 transposed convolution becomes
    the equivalent 3x3 convolution plus depth-to-space, which XNNPACK runs about 3x faster.  Weights are
    rounded through float16 first, as in the model file.  Input: (batch, freq_bins, frames, 1), any batch.
    Only for :func:`fast_export_fits` settings (see :func:`vocalsep.export.to_tflite`).
    """
    import tensorflow as tf

    get = keras_model.get_layer
    f16 = lambda a: np.asarray(a, np.float16).astype(np.float64)  # noqa: E731
    enc, dec = [], []
    for i in range(len(cfg.channels)):
        k, b = (f16(w) for w in get(f"enc{i + 1}_conv").get_weights())
        k, b = _fold_bn(k, b, _F16Layer(get(f"enc{i + 1}_bn")), out_axis=3)
        enc.append((tf.constant(k, tf.float32), tf.constant(b, tf.float32)))
    for i in range(len(cfg.channels)):
        k, b = (f16(w) for w in get(f"dec{i + 1}_deconv").get_weights())
        if i < len(cfg.channels) - 1:
            k, b = _fold_bn(k, b, _F16Layer(get(f"dec{i + 1}_bn")), out_axis=2)
        dec.append((tf.constant(_subpixel_kernel(k), tf.float32), tf.constant(np.tile(b, 4), tf.float32)))
    slope = cfg.leaky_slope

    @tf.function(input_signature=[tf.TensorSpec([None, cfg.freq_bins, cfg.frames, 1], tf.float32)])
    def unet(x):
        skips = []
        for k, b in enc:
            x = tf.nn.leaky_relu(tf.nn.conv2d(x, k, 2, "SAME") + b, alpha=slope)
            skips.append(x)
        for i, (k, b) in enumerate(dec):
            if i > 0:
                x = tf.concat([x, skips[-1 - i]], axis=-1)
            x = tf.nn.depth_to_space(tf.nn.conv2d(x, k, 1, "SAME") + b, 2)
            x = tf.sigmoid(x) if i == len(dec) - 1 else tf.nn.relu(x)
        return x

    from ..export import convert

    return convert(unet.get_concrete_function(), weights)
