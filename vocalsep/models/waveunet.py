"""The Wave-U-Net of Stoller, Ewert and Dixon (ISMIR 2018), architecture ``wave-unet``: a U-Net on the
waveform itself, in the paper's M4 form (valid convolutions and proper input context, linear-interpolation
upsampling, the difference output layer), mono here (M4 without its stereo input is the paper's M3).

Network (domain ``waveform``): input (batch, input_samples, 1) float32, the mixture at the model's rate
(``spectral.sample_rate``, 16384 Hz by default) in [-1, 1], not normalised; output (batch, output_samples, 1),
the vocals of the middle ``output_samples`` of the input (tanh, so in [-1, 1]); the accompaniment is the
mixture's middle minus the vocals (the paper's difference output layer, which vocalsep's separation applies
to every model).  All convolutions are *valid* (no padding), so the output is shorter than the input: the
``(input_samples - output_samples) / 2`` samples on each side are the context the network needs
(:func:`sizes`, as Demucs's ``valid_length``).

Built in loops, as the paper's Table 1 (F_c = ``base_filters``, L = ``levels``):

* L downsampling blocks, block i (1..L): Conv1D(F_c x i filters, kernel ``down_kernel`` = 15) + leaky ReLU
  (``leaky_slope``), its output kept for the skip, then decimation (every other sample);
* the bottleneck: Conv1D(F_c x (L + 1), 15) + leaky ReLU;
* L upsampling blocks, block i (L..1): interpolation to 2n - 1 samples (between neighbours, never beyond
  the ends; ``upsampling: linear``, M4: their mean; ``learned``, the paper's M5: a learned weight per
  feature, sigmoid(w) x left + (1 - sigmoid(w)) x right, starting at the mean), concatenation with the
  skip of block i cropped to the same length about its centre, Conv1D(F_c x i, kernel ``up_kernel`` = 5)
  + leaky ReLU;
* the output: concatenation with the input cropped to the output's length, Conv1D(1, 1) + tanh.

Every length is odd and every crop symmetric, so output sample j is centred on input sample
j + (input_samples - output_samples) / 2: exactly on average over the 2^L phases of the decimations (one
sample's receptive field leans up to 2^L samples either way).  Only LiteRT builtin operations
(convolution, strided slice, add / mul, logistic, pack / reshape, concatenation, leaky ReLU, tanh): the
generic export (:mod:`vocalsep.export`) converts it.  The settings' spectral fields other than
``freq_bins`` are not used by the network; ``freq_bins`` and the STFT (``spectral.n_fft``, ``hop_length``)
are the grid of the ratio mask that carries the network's waveform into the shared full-band stage
(:mod:`vocalsep.wavefront`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..config import ModelConfig
from ..errors import VocalsepError
from .registry import register

CITE = ("D. Stoller, S. Ewert, S. Dixon: Wave-U-Net: A Multi-Scale Neural Network for End-to-End Audio Source "
        "Separation, ISMIR 2018")

#: most input samples a network may take (a bound on a model file's settings)
MAX_INPUT = 1 << 22
#: the upsampling blocks' interpolations: the mean of neighbours (M4), or a learned weighting (M5)
UPSAMPLING = ("linear", "learned")


@dataclass
class WaveUNetConfig(ModelConfig):
    """The Wave-U-Net's settings (the paper's M4 at 16384 Hz by default: 12 levels, F_c = 24, kernels 15 and
    5; 147443 samples in (9.0 s), 16389 out (1.0 s)).

    levels: downsampling (and upsampling) blocks, L.
    base_filters: F_c; block i has F_c x i filters, the bottleneck F_c x (L + 1).
    down_kernel / up_kernel: kernel sizes of the downsampling and upsampling blocks' convolutions (odd).
    upsampling: ``linear`` (M4) or ``learned`` (M5: a learned interpolation weight per feature).
    output_samples: the fewest vocal samples one network call gives; the actual output and input lengths
        are the smallest that fit (:func:`sizes`; ``io_shapes()``).
    leaky_slope: of the leaky ReLUs (shared field).  Not used by the network: ``frames``, ``channels``,
    ``kernel_size``, ``stride``, ``dropout``, ``dropout_layers`` (kept at their defaults); ``freq_bins``: the
    bins of the ratio-mask grid of the full-band stage (at most ``n_fft / 2``).
    """

    levels: int = 12
    base_filters: int = 24
    down_kernel: int = 15
    up_kernel: int = 5
    output_samples: int = 16384
    upsampling: str = "linear"

    def __post_init__(self) -> None:
        super().__post_init__()
        checks = {"levels": (1, 16), "base_filters": (1, 512), "down_kernel": (1, 63), "up_kernel": (1, 63),
                  "output_samples": (1, 1 << 20)}
        for name, (lo, hi) in checks.items():
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise VocalsepError(f"model: {name} must be a whole number in [{lo}, {hi}], not {v!r}")
        if self.upsampling not in UPSAMPLING:
            raise VocalsepError(f"model: upsampling must be one of {', '.join(UPSAMPLING)}, not {self.upsampling!r}")
        for name in ("down_kernel", "up_kernel"):
            if getattr(self, name) % 2 == 0:
                raise VocalsepError(f"model: {name} must be odd (centred valid convolutions), "
                                    f"not {getattr(self, name)}")
        n_in, _ = sizes(self.levels, self.down_kernel, self.up_kernel, self.output_samples)
        if n_in > MAX_INPUT:
            raise VocalsepError(f"model: levels {self.levels} and output_samples {self.output_samples} need "
                                f"{n_in} input samples, more than {MAX_INPUT}")

    @classmethod
    def tiny(cls) -> "WaveUNetConfig":
        """3 levels of 4, 8, 12 filters, 512 samples out (755 in): a few thousand weights."""
        return cls(freq_bins=64, frames=16, channels=(4, 8), dropout_layers=1, levels=3, base_filters=4,
                   output_samples=512)

    def io_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """((input_samples, 1), (output_samples, 1)) of one network call."""
        n_in, n_out = sizes(self.levels, self.down_kernel, self.up_kernel, self.output_samples)
        return (n_in, 1), (n_out, 1)


@functools.lru_cache(maxsize=64)
def sizes(levels: int, down_kernel: int, up_kernel: int, output_samples: int) -> tuple[int, int]:
    """(input, output) samples of the smallest Wave-U-Net whose output has at least ``output_samples``.

    Upwards, a level maps n samples to 2n - 1 (interpolation) - (up_kernel - 1) (valid convolution), so the
    output is 2^L b - up_kernel (2^L - 1) for b samples out of the bottleneck; downwards, a level takes
    2m - 1 + down_kernel - 1 samples to m, and the bottleneck b + down_kernel - 1 to b.
    """
    g = 2 ** levels
    b = max(1, -(-(output_samples + up_kernel * (g - 1)) // g))
    n_out = g * b - up_kernel * (g - 1)
    n = b + down_kernel - 1
    for _ in range(levels):
        n = 2 * n - 1 + down_kernel - 1
    return n, n_out


@functools.lru_cache(maxsize=None)
def _layers():
    """The network's own layers (Keras imported on first use)."""
    import keras
    from keras import ops

    class Decimate(keras.layers.Layer):
        """(batch, n, c) -> (batch, (n + 1) // 2, c): every other sample, from the first."""

        def call(self, x):
            return x[:, ::2, :]

    class Interpolate(keras.layers.Layer):
        """(batch, n, c) -> (batch, 2n - 1, c): the samples, and between neighbours their mean or, ``learned``,
        sigmoid(w) x left + (1 - sigmoid(w)) x right with a weight w per feature (0 at first: the mean)."""

        def __init__(self, learned: bool = False, **kwargs):
            super().__init__(**kwargs)
            self.learned = learned

        def build(self, input_shape):
            if self.learned:
                self.w = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="weight")

        def call(self, x):
            n, c = x.shape[1], x.shape[2]
            if n == 1:
                return x
            a, b = x[:, :-1, :], x[:, 1:, :]
            if self.learned:
                s = ops.sigmoid(self.w)
                mid = s * a + (1 - s) * b
            else:
                mid = 0.5 * (a + b)
            pairs = ops.reshape(ops.stack([a, mid], axis=2), (-1, 2 * (n - 1), c))
            return ops.concatenate([pairs, x[:, -1:, :]], axis=1)

    return Decimate, Interpolate


def _crop(x, length: int, name: str):
    """x (batch, n, c) cropped to its middle ``length`` samples ((n - length) is even)."""
    from keras import layers

    cut = x.shape[1] - length
    if cut < 0 or cut % 2:
        raise VocalsepError(f"model: wave-unet layer {name}: cannot crop {x.shape[1]} samples to {length}")
    return layers.Cropping1D((cut // 2, cut // 2), name=name)(x) if cut else x


@register("wave-unet", WaveUNetConfig, domain="waveform", cite=CITE)
def build_waveunet(cfg: WaveUNetConfig):
    """The Keras Wave-U-Net for ``cfg``: (batch, input_samples, 1) -> (batch, output_samples, 1)."""
    import keras
    from keras import layers

    Decimate, Interpolate = _layers()
    (n_in, _), (n_out, _) = cfg.io_shapes()
    fc, slope = cfg.base_filters, cfg.leaky_slope
    inp = keras.Input(shape=(n_in, 1), name="mixture")
    x, skips = inp, []
    for i in range(1, cfg.levels + 1):
        x = layers.Conv1D(fc * i, cfg.down_kernel, padding="valid", name=f"down{i}_conv")(x)
        x = layers.LeakyReLU(negative_slope=slope, name=f"down{i}_act")(x)
        skips.append(x)
        x = Decimate(name=f"down{i}_decimate")(x)
    x = layers.Conv1D(fc * (cfg.levels + 1), cfg.down_kernel, padding="valid", name="bottleneck_conv")(x)
    x = layers.LeakyReLU(negative_slope=slope, name="bottleneck_act")(x)
    for i in range(cfg.levels, 0, -1):
        x = Interpolate(cfg.upsampling == "learned", name=f"up{i}_interpolate")(x)
        skip = _crop(skips[i - 1], x.shape[1], f"up{i}_crop")
        x = layers.Concatenate(axis=-1, name=f"up{i}_skip")([x, skip])
        x = layers.Conv1D(fc * i, cfg.up_kernel, padding="valid", name=f"up{i}_conv")(x)
        x = layers.LeakyReLU(negative_slope=slope, name=f"up{i}_act")(x)
    x = layers.Concatenate(axis=-1, name="out_mixture")([x, _crop(inp, x.shape[1], "out_crop")])
    x = layers.Conv1D(1, 1, activation="tanh", name="vocals")(x)
    if x.shape[1] != n_out:  # pragma: no cover  (sizes() and the layers disagree)
        raise VocalsepError(f"model: wave-unet gives {x.shape[1]} samples, sizes() says {n_out}")
    return keras.Model(inp, x, name="wave_unet")
