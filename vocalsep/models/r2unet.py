"""R2U-Net: the recurrent residual convolutional U-Net (Alom, Hasan, Yakopcic, Taha and Asari, "Recurrent
residual convolutional neural network based on U-Net (R2U-Net) for medical image segmentation", arXiv
1802.06955, 2018).

Every level is a recurrent residual unit: a 1x1 convolution to the level's width, then two recurrent
convolutional layers (RCL), each one 3x3 convolution (with BN and ReLU) applied t + 1 times with shared
weights, h = f(x), then h = f(x + h) t times (the paper's t = 2), and the residual sum of the unit's input and
output.  The encoder max-pools between levels; the decoder upsamples, concatenates the skip and applies a
recurrent residual unit.  Geometry of Jansson et al.: a strided-conv stem, Jansson's transposed-convolution
upsampling, a transposed convolution to the sigmoid mask (see :mod:`.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import blocks
from .registry import register


@dataclass
class R2UNetConfig(blocks.VariantConfig):
    """R2U-Net's settings: :class:`~vocalsep.config.ModelConfig`'s, plus ``recurrent_steps``, the t of each
    recurrent convolutional layer (the paper: 2; each RCL then runs its convolution t + 1 times), and
    ``step_batch_norm``: a batch norm per step of each RCL (configs/archs sets it) instead of one for all
    steps (the default, so that model files written before it load as they were; it separates worse,
    docs/choices.md)."""

    recurrent_steps: int = 2
    step_batch_norm: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        blocks.check(self.recurrent_steps >= 1, f"recurrent_steps ({self.recurrent_steps}) must be at least 1")


def pool(cfg):
    """The encoder's downsampling between levels: max-pooling of stride cfg.stride."""
    from keras import layers

    return lambda x, i: layers.MaxPooling2D(cfg.stride, name=f"enc{i + 1}_pool")(x)


def up(cfg):
    """The decoder's upsampling to level i: Jansson's transposed conv, BN, ReLU to channels[i]."""
    return lambda x, i: blocks.up_conv(x, cfg.channels[i], cfg, f"dec{i + 1}_up")


def r2_level(cfg, side: str):
    """Level i of the encoder (side "enc") or decoder ("dec"): one recurrent residual unit."""
    return lambda x, i: blocks.r2_block(x, cfg.channels[i], cfg.recurrent_steps, f"{side}{i + 1}",
                                        cfg.step_batch_norm)


@register("r2unet", R2UNetConfig, cite="Alom, Hasan, Yakopcic, Taha, Asari 2018, arXiv:1802.06955")
def build(cfg: R2UNetConfig):
    """The Keras R2U-Net for ``cfg``: (B, freq_bins, frames, 1) magnitudes -> mask of the same shape."""
    import keras

    inp = blocks.magnitude_input(cfg)
    feats = blocks.encoder(inp, cfg, r2_level(cfg, "enc"), pool(cfg))
    return keras.Model(inp, blocks.decoder(feats, cfg, r2_level(cfg, "dec"), up(cfg)), name="r2unet")
