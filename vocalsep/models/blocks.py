"""Keras building blocks shared by the U-Net family, and the spectrogram U-Net skeleton they plug into.

Every block is a function from a tensor (batch, height, width, channels) to a tensor, named by a ``name``
prefix (layer names must be unique within a model), using only layers that LiteRT runs as builtins: Conv2D,
Conv2DTranspose, BatchNormalization, ReLU / LeakyReLU / sigmoid, Add, Multiply, Concatenate, MaxPooling2D,
UpSampling2D (Dropout vanishes at inference), and SQRT or POW for ``input_exponent``.  ``keras`` is imported
inside the functions, so importing this module stays cheap.

The skeleton (:func:`encoder`, :func:`decoder`) keeps the geometry of Jansson et al.'s spectrogram U-Net
(ISMIR 2017), the network the variants are compared with: a (freq_bins, frames, 1) magnitude patch, ``D =
len(cfg.channels)`` stride-``cfg.stride`` downsamplings, level ``i`` (0-based) at 1/stride**(i+1) of the input
with ``cfg.channels[i]`` channels, the deepest level as the bridge, and a transposed convolution back to the
input's size ending in the sigmoid mask.  The first downsampling is Jansson's strided convolution (the *stem*):
it stands in for the papers' full-resolution level, which at 512 x 128 would cost as much as all other levels
together, and spares the raw magnitudes a max-pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ..config import ModelConfig


@dataclass
class VariantConfig(ModelConfig):
    """The settings every spectrogram variant starts from: :class:`~vocalsep.config.ModelConfig`'s, with a
    tiny network of three levels for tests, and ``input_exponent``: the network sees each normalised patch
    raised to this power (1: the magnitudes as they are, as Jansson et al.; 0.5: their square root, which
    lifts quiet partials and the upper band against the loud low harmonics).  Only the network's input
    changes: the mask still multiplies the mixture's magnitudes, and the loss is still theirs."""

    input_exponent: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.input_exponent = float(self.input_exponent)
        check(0 < self.input_exponent <= 2, f"input_exponent ({self.input_exponent}) must be in (0, 2]")

    def to_dict(self) -> dict:
        """As :meth:`ModelConfig.to_dict`, without ``input_exponent`` when it is 1 (what a file without it
        means), so that model files of networks that see the magnitudes as they are stay readable by
        vocalsep versions from before the field."""
        d = super().to_dict()
        if d.get("input_exponent") == 1.0:
            del d["input_exponent"]
        return d

    @classmethod
    def tiny(cls) -> "VariantConfig":
        """A small network for tests: 32 x 16 patches, channels (4, 8, 16)."""
        return cls(freq_bins=32, frames=16, channels=(4, 8, 16), dropout_layers=1)


def conv_bn_act(x, ch: int, name: str, kernel: int = 3, stride: int = 1, act: str | None = "relu",
                slope: float = 0.2, bias: bool = True):
    """Conv2D ('same' padding) -> BatchNorm -> ReLU, LeakyReLU(``slope``) (act="leaky") or none (act=None).

    (B, H, W, C) -> (B, H / stride, W / stride, ch)."""
    from keras import layers

    x = layers.Conv2D(ch, kernel, strides=stride, padding="same", use_bias=bias, name=f"{name}_conv")(x)
    return bn_act(x, name, act, slope)


def bn_act(x, name: str, act: str | None = "relu", slope: float = 0.2):
    """BatchNorm -> ReLU / LeakyReLU / nothing.  (B, H, W, C) -> same shape."""
    from keras import layers

    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    if act == "relu":
        x = layers.ReLU(name=f"{name}_relu")(x)
    elif act == "leaky":
        x = layers.LeakyReLU(negative_slope=slope, name=f"{name}_lrelu")(x)
    return x


def compress(x, exponent: float):
    """x ** exponent, elementwise (x >= 0: magnitudes); x itself when exponent is 1.  (B, F, T, 1) -> the same.
    In LiteRT: SQRT for 0.5, POW for another exponent."""
    if exponent == 1:
        return x
    from keras import layers, ops

    if exponent == 0.5:
        return layers.Lambda(ops.sqrt, name="input_sqrt")(x)
    return layers.Lambda(lambda t: ops.power(t, exponent), name="input_power")(x)


def stem(x, cfg):
    """Jansson's first encoder layer: a cfg.kernel_size convolution of stride cfg.stride, BN, LeakyReLU.

    (B, F, T, 1) -> (B, F / s, T / s, cfg.channels[0])."""
    return conv_bn_act(x, cfg.channels[0], "stem", cfg.kernel_size, cfg.stride, "leaky", cfg.leaky_slope)


def up_conv(x, ch: int, cfg, name: str):
    """Jansson's decoder layer: Conv2DTranspose (cfg.kernel_size, stride cfg.stride), BN, ReLU.

    (B, H, W, C) -> (B, H * s, W * s, ch)."""
    from keras import layers

    x = layers.Conv2DTranspose(ch, cfg.kernel_size, strides=cfg.stride, padding="same", name=f"{name}_deconv")(x)
    return bn_act(x, name)


def mask_head(x, cfg):
    """The last transposed convolution to one channel and the sigmoid (layer ``mask``), as in Jansson's net.

    (B, F / s, T / s, C) -> (B, F, T, 1), values in (0, 1)."""
    from keras import layers

    x = layers.Conv2DTranspose(1, cfg.kernel_size, strides=cfg.stride, padding="same", name="mask_deconv")(x)
    return layers.Activation("sigmoid", name="mask")(x)


def residual_block(x, ch: int, name: str, stride: int = 1, preact: bool = True):
    """ResUNet's residual unit (Zhang et al. 2018, after He et al.'s pre-activation unit): [BN, ReLU,]
    3x3 conv (stride), BN, ReLU, 3x3 conv, plus the shortcut: the input itself, or a 1x1 conv (stride) and BN
    where the shape changes.  ``preact=False``: the first unit, whose input is already activated.

    (B, H, W, C) -> (B, H / stride, W / stride, ch)."""
    from keras import layers

    h = bn_act(x, f"{name}_pre") if preact else x
    h = layers.Conv2D(ch, 3, strides=stride, padding="same", name=f"{name}_conv1")(h)
    h = bn_act(h, f"{name}_mid")
    h = layers.Conv2D(ch, 3, padding="same", name=f"{name}_conv2")(h)
    short = x
    if stride != 1 or x.shape[-1] != ch:
        short = layers.Conv2D(ch, 1, strides=stride, name=f"{name}_proj")(x)
        short = layers.BatchNormalization(name=f"{name}_proj_bn")(short)
    return layers.Add(name=f"{name}_shortcut")([h, short])


def dense_block(x, n_layers: int, growth: int, bottleneck: int, name: str):
    """A dense block (Huang et al. 2017; FD-UNet, Guan et al. 2019): ``n_layers`` layers, each a 1x1 conv to
    ``bottleneck`` channels and a 3x3 conv to ``growth`` channels (each conv followed by BN and ReLU), fed the
    concatenation of the block's input and every earlier layer's output.

    (B, H, W, C) -> (B, H, W, C + n_layers * growth)."""
    from keras import layers

    for k in range(n_layers):
        h = conv_bn_act(x, bottleneck, f"{name}_l{k + 1}a", kernel=1)
        h = conv_bn_act(h, growth, f"{name}_l{k + 1}b")
        x = layers.Concatenate(name=f"{name}_l{k + 1}_dense")([x, h])
    return x


def multires_block(x, units: int, alpha: float, name: str):
    """MultiResUNet's MultiRes block (Ibtehaz and Rahman 2019): with W = alpha * units, three chained 3x3
    convs of W/6, W/3 and W/2 filters (receptive fields 3, 5 and 7) concatenated, plus a 1x1 conv shortcut;
    added, ReLU, BN.  Convolutions without bias, each followed by BN, as in the authors' code.

    (B, H, W, C) -> (B, H, W, int(W/6) + int(W/3) + int(W/2))."""
    from keras import layers

    w = alpha * units
    sizes = [int(w * 0.167), int(w * 0.333), int(w * 0.5)]
    short = conv_bn_act(x, sum(sizes), f"{name}_short", kernel=1, act=None, bias=False)
    outs, h = [], x
    for k, n in enumerate(sizes):
        h = conv_bn_act(h, n, f"{name}_c{k + 1}", bias=False)
        outs.append(h)
    h = layers.Concatenate(name=f"{name}_cat")(outs)
    h = layers.BatchNormalization(name=f"{name}_cat_bn")(h)
    h = layers.Add(name=f"{name}_shortcut")([short, h])
    return bn_act(layers.ReLU(name=f"{name}_relu")(h), f"{name}_out", act=None)


def res_path(x, ch: int, length: int, name: str):
    """MultiResUNet's Res path on a skip: ``length`` residual units, each a 3x3 conv (BN, ReLU) plus a 1x1
    conv (BN) shortcut; added, ReLU, BN.  (B, H, W, C) -> (B, H, W, ch)."""
    from keras import layers

    for k in range(length):
        short = conv_bn_act(x, ch, f"{name}{k + 1}_short", kernel=1, act=None, bias=False)
        h = conv_bn_act(x, ch, f"{name}{k + 1}_c", bias=False)
        h = layers.Add(name=f"{name}{k + 1}_shortcut")([short, h])
        x = bn_act(layers.ReLU(name=f"{name}{k + 1}_relu")(h), f"{name}{k + 1}_out", act=None)
    return x


def recurrent_conv(x, ch: int, t: int, name: str, step_batch_norm: bool = False):
    """R2U-Net's recurrent convolutional layer (Alom et al. 2018; Liang and Hu 2015) unrolled for ``t``
    steps: h = f(x), then t times h = f(x + h), f one 3x3 conv, BN and ReLU whose weights all steps share;
    with ``step_batch_norm``, each step has its own BN (the convolution still shared), so that inference
    normalises each step by that step's running statistics, not by one average over all steps, as a shared
    BN does while training normalises each step by its own batch's (docs/choices.md, the R2 networks).

    (B, H, W, ch) -> (B, H, W, ch)."""
    from keras import layers

    conv = layers.Conv2D(ch, 3, padding="same", name=f"{name}_conv")
    bns = ([layers.BatchNormalization(name=f"{name}_bn{k}") for k in range(t + 1)] if step_batch_norm
           else [layers.BatchNormalization(name=f"{name}_bn")] * (t + 1))
    relu = layers.ReLU(name=f"{name}_relu")
    h = relu(bns[0](conv(x)))
    for k in range(t):
        h = relu(bns[k + 1](conv(layers.Add(name=f"{name}_rec{k + 1}")([x, h]))))
    return h


def r2_block(x, ch: int, t: int, name: str, step_batch_norm: bool = False):
    """R2U-Net's recurrent residual unit: a 1x1 conv to ``ch`` channels, two recurrent convolutional layers
    of ``t`` steps (:func:`recurrent_conv`), and the residual sum of the two.  (B, H, W, C) -> (B, H, W, ch)."""
    from keras import layers

    x = layers.Conv2D(ch, 1, name=f"{name}_in")(x)
    h = recurrent_conv(recurrent_conv(x, ch, t, f"{name}_rcl1", step_batch_norm), ch, t, f"{name}_rcl2",
                       step_batch_norm)
    return layers.Add(name=f"{name}_shortcut")([x, h])


def conv_block(x, ch: int, name: str):
    """The plain U-Net level (Ronneberger et al. 2015): two 3x3 conv, BN, ReLU.  (B, H, W, C) -> (B, H, W, ch)."""
    return conv_bn_act(conv_bn_act(x, ch, f"{name}_1"), ch, f"{name}_2")


def attention_gate(x, g, stride: int, name: str):
    """Oktay et al.'s additive attention gate: the skip x, brought to the gating signal's resolution by a
    stride x stride conv, plus a 1x1 conv of the gating signal g (both to C/2 channels), ReLU, a 1x1 conv to
    one channel, sigmoid: the attention coefficients, upsampled (bilinear) to x's size, scale x, and a 1x1
    conv with BN mixes the result.

    x: (B, H, W, C), g: (B, H / stride, W / stride, Cg) -> (B, H, W, C)."""
    from keras import layers

    c = x.shape[-1]
    inter = max(1, c // 2)
    theta = layers.Conv2D(inter, stride, strides=stride, use_bias=False, name=f"{name}_theta")(x)
    phi = layers.Conv2D(inter, 1, name=f"{name}_phi")(g)
    f = layers.ReLU(name=f"{name}_relu")(layers.Add(name=f"{name}_add")([theta, phi]))
    alpha = layers.Conv2D(1, 1, activation="sigmoid", name=f"{name}_psi")(f)
    alpha = layers.UpSampling2D(stride, interpolation="bilinear", name=f"{name}_up")(alpha)
    y = layers.Multiply(name=f"{name}_apply")([x, alpha])
    return conv_bn_act(y, c, f"{name}_out", kernel=1, act=None)


def encoder(x, cfg, level: Callable, downsample: Callable | None = None) -> list:
    """The stem and D = len(cfg.channels) levels: ``level(x, i)`` makes level i's features from ``x``, which
    for i >= 1 is ``downsample(x, i)`` of level i - 1's (None: the level downsamples itself).

    (B, F, T, 1) -> [level i's (B, F / s**(i+1), T / s**(i+1), C_i) for i in 0..D-1].  The patch is first
    raised to ``cfg.input_exponent`` (:func:`compress`)."""
    x = stem(compress(x, cfg.input_exponent), cfg)
    feats = []
    for i in range(len(cfg.channels)):
        if i and downsample is not None:
            x = downsample(x, i)
        x = level(x, i)
        feats.append(x)
    return feats


def decoder(feats: list, cfg, level: Callable, upsample: Callable, merge: Callable | None = None):
    """From the bridge (``feats[-1]``) back up: for i = D-2 .. 0, ``upsample(x, i)`` to level i's size (its
    first cfg.dropout_layers outputs with cfg.dropout), ``merge(up, skip_i, x, i)`` (default: concatenate up and
    the skip; x, the coarser level, can gate the skip), ``level(merged, i)``; then :func:`mask_head`.

    -> the mask, (B, F, T, 1)."""
    from keras import layers

    x = feats[-1]
    for j, i in enumerate(reversed(range(len(feats) - 1))):
        up = upsample(x, i)
        if j < cfg.dropout_layers and cfg.dropout > 0:
            up = layers.Dropout(cfg.dropout, name=f"dec{i + 1}_dropout")(up)
        if merge is None:
            merged = layers.Concatenate(name=f"dec{i + 1}_skip")([up, feats[i]])
        else:
            merged = merge(up, feats[i], x, i)
        x = level(merged, i)
    return mask_head(x, cfg)


def magnitude_input(cfg):
    """The network's input: (B, cfg.freq_bins, cfg.frames, 1) magnitudes, each patch scaled to max 1."""
    import keras

    return keras.Input(shape=(cfg.freq_bins, cfg.frames, 1), name="magnitude")


def check(cond: bool, message: str) -> None:
    """A config check: VocalsepError(``model: message``) unless ``cond``."""
    from ..errors import VocalsepError

    if not cond:
        raise VocalsepError(f"model: {message}")
