"""Attention U-Net, Attention R2U-Net, and the plain U-Net they add gates to.

Attention U-Net: Oktay, Schlemper, Le Folgoc, Lee, Heinrich, Misawa, Mori, McDonagh, Hammerla, Kainz, Glocker
and Rueckert, "Attention U-Net: learning where to look for the pancreas", MIDL 2018 (arXiv 1804.03999).  The
plain U-Net (levels of two 3x3 conv, BN, ReLU; max-pooling; up-convolution) with an additive attention gate on
every skip: the coarser decoder level is the gating signal, and the gate's coefficients in [0, 1] scale the
skip's features before they are concatenated with the upsampled ones.

Attention R2U-Net: the same gates on R2U-Net (Alom et al. 2018, arXiv 1802.06955; see :mod:`.r2unet`), whose
levels are recurrent residual units (t = 2).  No paper of its own defines it: it is the combination of the two
papers as the U-Net surveys and open implementations name it, and is built here as exactly that.

Plain U-Net (``plain-unet``): the Attention U-Net without its gates, the U-Net of Ronneberger, Fischer and
Brox ("U-Net: convolutional networks for biomedical image segmentation", MICCAI 2015) that Oktay et al. build
on: levels of two 3x3 conv, BN, ReLU, max-pooling, the skips concatenated as they are.  It is the ablation
that tells what carries the attention U-Net's gain on unseen voices: the gates, or the 3x3 levels.

Geometry of Jansson et al.: a strided-conv stem, Jansson's transposed-convolution upsampling, a transposed
convolution to the sigmoid mask (see :mod:`.blocks`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import blocks
from .r2unet import R2UNetConfig, pool, r2_level, up
from .registry import register


@dataclass
class AttentionUNetConfig(blocks.VariantConfig):
    """Attention U-Net's settings: :class:`~vocalsep.config.ModelConfig`'s; the gates' inner width is half
    the skip's, as in Oktay et al.'s code, so the paper needs no other."""


@dataclass
class PlainUNetConfig(blocks.VariantConfig):
    """The plain U-Net's settings: :class:`~vocalsep.config.ModelConfig`'s (the paper needs no other)."""


@dataclass
class AttentionR2UNetConfig(R2UNetConfig):
    """Attention R2U-Net's settings: R2U-Net's (``recurrent_steps``: t, 2 in the paper; ``step_batch_norm``;
    ``tiny`` too)."""


def gated_merge(cfg):
    """merge(up, skip, coarse, i): the skip through an attention gate driven by the coarser level, then
    concatenated after the upsampled features."""
    from keras import layers

    def merge(up_x, skip, coarse, i):
        gated = blocks.attention_gate(skip, coarse, cfg.stride, f"dec{i + 1}_gate")
        return layers.Concatenate(name=f"dec{i + 1}_skip")([up_x, gated])

    return merge


def conv_unet(cfg, merge, name: str):
    """The U-Net of two-3x3-conv levels, its skips merged by ``merge`` (None: concatenated as they are)."""
    import keras

    inp = blocks.magnitude_input(cfg)

    def level(side):
        return lambda x, i: blocks.conv_block(x, cfg.channels[i], f"{side}{i + 1}")

    feats = blocks.encoder(inp, cfg, level("enc"), pool(cfg))
    return keras.Model(inp, blocks.decoder(feats, cfg, level("dec"), up(cfg), merge), name=name)


@register("attention-unet", AttentionUNetConfig, cite="Oktay et al. 2018, MIDL, arXiv:1804.03999")
def build(cfg: AttentionUNetConfig):
    """The Keras Attention U-Net for ``cfg``: (B, freq_bins, frames, 1) magnitudes -> mask, same shape."""
    return conv_unet(cfg, gated_merge(cfg), "attention_unet")


@register("plain-unet", PlainUNetConfig, cite="Ronneberger, Fischer, Brox 2015, MICCAI, arXiv:1505.04597")
def build_plain(cfg: PlainUNetConfig):
    """The Keras plain U-Net (the attention U-Net without gates) for ``cfg``: (B, freq_bins, frames, 1)
    magnitudes -> mask, same shape."""
    return conv_unet(cfg, None, "plain_unet")


@register("attention-r2unet", AttentionR2UNetConfig,
          cite="Alom et al. 2018, arXiv:1802.06955; Oktay et al. 2018, arXiv:1804.03999")
def build_r2(cfg: AttentionR2UNetConfig):
    """The Keras Attention R2U-Net for ``cfg``: (B, freq_bins, frames, 1) magnitudes -> mask, same shape."""
    import keras

    inp = blocks.magnitude_input(cfg)
    feats = blocks.encoder(inp, cfg, r2_level(cfg, "enc"), pool(cfg))
    mask = blocks.decoder(feats, cfg, r2_level(cfg, "dec"), up(cfg), gated_merge(cfg))
    return keras.Model(inp, mask, name="attention_r2unet")
