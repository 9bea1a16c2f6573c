"""MultiResUNet (Ibtehaz and Rahman, "MultiResUNet: rethinking the U-Net architecture for multimodal
biomedical image segmentation", Neural Networks 121, 2020; arXiv 2019).

Every level is a MultiRes block (three chained 3x3 convolutions standing in for 3x3, 5x5 and 7x7 ones, their
outputs concatenated, plus a 1x1 residual shortcut; W = alpha * U filters with alpha = 1.67 and U the plain
U-Net's width), and every skip passes a Res path, a chain of 3x3 convolutions with 1x1 residual shortcuts
whose length falls with depth (the paper's 4, 3, 2, 1 for its 4 skips: here D-1 .. 1 for D-1 skips), to
narrow the semantic gap between encoder and decoder features.  The encoder max-pools between levels, the
decoder upsamples with a transposed convolution of U filters, concatenates the Res path's output and applies a
MultiRes block.  Geometry of Jansson et al.: a strided-conv stem and a transposed convolution to the sigmoid
mask (see :mod:`.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import blocks
from .registry import register


@dataclass
class MultiResUNetConfig(blocks.VariantConfig):
    """MultiResUNet's settings: :class:`~vocalsep.config.ModelConfig`'s (``channels``: the paper's U per
    level), plus ``alpha``, the MultiRes blocks' width factor W = alpha * U (the paper: 1.67, to match the
    U-Net's parameter count)."""

    alpha: float = 1.67

    def __post_init__(self) -> None:
        super().__post_init__()
        blocks.check(int(self.alpha * min(self.channels) * 0.167) >= 1,
                     f"alpha ({self.alpha}) x the narrowest level ({min(self.channels)}) leaves its first "
                     "MultiRes convolution no filters (alpha * channels must be at least 6)")


@register("multires-unet", MultiResUNetConfig, cite="Ibtehaz, Rahman 2020, Neural Networks 121 74-87")
def build(cfg: MultiResUNetConfig):
    """The Keras MultiResUNet for ``cfg``: (B, freq_bins, frames, 1) magnitudes -> mask of the same shape."""
    import keras
    from keras import layers

    inp = blocks.magnitude_input(cfg)
    depth = len(cfg.channels)

    def pool(x, i):
        return layers.MaxPooling2D(cfg.stride, name=f"enc{i + 1}_pool")(x)

    def enc(x, i):
        return blocks.multires_block(x, cfg.channels[i], cfg.alpha, f"enc{i + 1}")

    def up(x, i):
        return layers.Conv2DTranspose(cfg.channels[i], cfg.kernel_size, strides=cfg.stride, padding="same",
                                      name=f"dec{i + 1}_up")(x)

    def merge(up_x, skip, coarse, i):
        skip = blocks.res_path(skip, cfg.channels[i], depth - 1 - i, f"skip{i + 1}_res")
        return layers.Concatenate(name=f"dec{i + 1}_skip")([up_x, skip])

    def dec(x, i):
        return blocks.multires_block(x, cfg.channels[i], cfg.alpha, f"dec{i + 1}")

    feats = blocks.encoder(inp, cfg, enc, pool)
    return keras.Model(inp, blocks.decoder(feats, cfg, dec, up, merge), name="multires_unet")
