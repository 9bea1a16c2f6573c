"""vocalsep's networks: one module per architecture family, registered by name (see ``registry``).

``unet`` (:mod:`.unet`) is the U-Net of Jansson et al. (2017), whose settings are
:class:`vocalsep.config.ModelConfig` itself; ``wave-unet`` (:mod:`.waveunet`) the Wave-U-Net of Stoller
et al. (2018), on the waveform.  A model's network is built with
:func:`vocalsep.model.build_model` and converted for LiteRT by :mod:`vocalsep.export`; README.md
("Architectures") says how to add one.

``default.vsep`` and ``default-seed1.vsep`` beside these modules are the model files that ship with vocalsep
(an ensemble of two; ``vocalsep.model.SHIPPED_MODELS``).
"""

from .registry import ARCHS, Arch, arch_names, get_arch, register

__all__ = ["ARCHS", "Arch", "arch_names", "get_arch", "register"]
