"""ResUNet: the U-Net with residual units (Zhang, Liu and Wang, "Road extraction by deep residual U-Net",
IEEE Geoscience and Remote Sensing Letters 15(5), 2018).

As in the paper every level is one pre-activation residual unit (BN, ReLU, 3x3 conv, BN, ReLU, 3x3 conv, plus
an identity or 1x1-conv shortcut), the encoder downsamples with a stride in the first convolution of each
unit instead of pooling, the deepest unit is the bridge, and the decoder upsamples the coarser level (nearest
neighbour), concatenates the skip and applies a residual unit.  Adapted to the spectrogram geometry of
Jansson et al. (see :mod:`.blocks`): a strided-conv stem instead of the paper's full-resolution level, and a
transposed convolution to the sigmoid mask instead of its 1x1 convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import blocks
from .registry import register


@dataclass
class ResUNetConfig(blocks.VariantConfig):
    """ResUNet's settings: those of :class:`~vocalsep.config.ModelConfig`; the paper needs no other.
    ``kernel_size`` is the stem's and the mask's transposed convolution's; the residual units are 3x3."""


@register("resunet", ResUNetConfig, cite="Zhang, Liu, Wang 2018, IEEE GRSL 15(5) 749-753")
def build(cfg: ResUNetConfig):
    """The Keras ResUNet for ``cfg``: (B, freq_bins, frames, 1) magnitudes -> mask of the same shape."""
    import keras
    from keras import layers

    inp = blocks.magnitude_input(cfg)

    def enc(x, i):  # the first unit follows the stem's activation (the paper's first unit has no pre-activation)
        return blocks.residual_block(x, cfg.channels[i], f"enc{i + 1}", stride=cfg.stride if i else 1, preact=i > 0)

    def up(x, i):
        return layers.UpSampling2D(cfg.stride, name=f"dec{i + 1}_up")(x)

    def dec(x, i):
        return blocks.residual_block(x, cfg.channels[i], f"dec{i + 1}")

    feats = blocks.encoder(inp, cfg, enc)
    return keras.Model(inp, blocks.decoder(feats, cfg, dec, up), name="resunet")
