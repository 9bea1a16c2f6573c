"""vocalsep's networks: one module per architecture family, registered by name (see ``registry``).

``default.vsep`` beside these modules is the model file that ships with vocalsep.
"""

from .registry import ARCHS, Arch, arch_names, get_arch, register

__all__ = ["ARCHS", "Arch", "arch_names", "get_arch", "register"]
