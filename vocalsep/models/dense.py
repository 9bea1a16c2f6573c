"""Dense U-Net: a U-Net whose levels are dense blocks, after the Fully Dense UNet (FD-UNet) of Guan, Khan, Sikdar
and Chitnis, "Fully dense UNet for 2-D sparse photoacoustic tomography artifact removal", IEEE Journal of
Biomedical and Health Informatics 24(2), 2020 (online 2019), with the dense blocks of Huang, Liu, van der
Maaten and Weinberger, "Densely connected convolutional networks", CVPR 2017.

Each level is a dense block of ``dense_layers`` layers (a 1x1 conv to the level's C channels, then a 3x3 conv
adding C / dense_layers channels, the growth rate, so that the block adds C channels in all, as FD-UNet ties
its growth rate to the level's width), followed by DenseNet's compressing 1x1 transition back to C. The
encoder max-pools between levels; the decoder upsamples with a transposed convolution, concatenates the skip,
reduces the concatenation with a 1x1 conv (as FD-UNet) and applies the level's dense block. Geometry of
Jansson et al.: a strided-conv stem and a transposed convolution to the sigmoid mask (see :mod:`.blocks`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import blocks
from .registry import register


@dataclass
class DenseUNetConfig(blocks.VariantConfig):
    """Dense U-Net's settings: :class:`~vocalsep.config.ModelConfig`'s, plus ``dense_layers``, the layers of
    each dense block (FD-UNet: 4); each adds channels / dense_layers channels."""

    dense_layers: int = 4

    def __post_init__(self) -> None:
        super().__post_init__()
        blocks.check(self.dense_layers >= 1, f"dense_layers ({self.dense_layers}) must be at least 1")
        blocks.check(min(self.channels) >= self.dense_layers,
                     f"every level needs at least dense_layers ({self.dense_layers}) channels: {self.channels}")

    @classmethod
    def tiny(cls) -> "DenseUNetConfig":
        """The variants' tiny network with two layers per dense block."""
        return dataclasses.replace(super().tiny(), dense_layers=2)


def dense_level(x, ch: int, n_layers: int, name: str):
    """A dense block of growth ch / n_layers and the 1x1 transition to ch.  (B, H, W, C) -> (B, H, W, ch)."""
    x = blocks.dense_block(x, n_layers, ch // n_layers, ch, name)
    return blocks.conv_bn_act(x, ch, f"{name}_transition", kernel=1)


@register("dense-unet", DenseUNetConfig, cite="Guan, Khan, Sikdar, Chitnis 2019, IEEE JBHI 24(2); "
                                               "Huang, Liu, van der Maaten, Weinberger 2017, CVPR")
def build(cfg: DenseUNetConfig):
    """The Keras Dense U-Net for ``cfg``: (B, freq_bins, frames, 1) magnitudes -> mask of the same shape."""
    import keras
    from keras import layers

    inp = blocks.magnitude_input(cfg)
    n = cfg.dense_layers

    def pool(x, i):
        return layers.MaxPooling2D(cfg.stride, name=f"enc{i + 1}_pool")(x)

    def enc(x, i):
        return dense_level(x, cfg.channels[i], n, f"enc{i + 1}")

    def up(x, i):
        return blocks.up_conv(x, cfg.channels[i], cfg, f"dec{i + 1}_up")

    def dec(x, i):
        x = blocks.conv_bn_act(x, cfg.channels[i], f"dec{i + 1}_reduce", kernel=1)
        return dense_level(x, cfg.channels[i], n, f"dec{i + 1}")

    feats = blocks.encoder(inp, cfg, enc, pool)
    return keras.Model(inp, blocks.decoder(feats, cfg, dec, up), name="dense_unet")
