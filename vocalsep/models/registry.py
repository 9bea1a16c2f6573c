"""The architectures vocalsep can train and run, by name (as Demucs's ``get_model``).

An architecture family is one module of this package (``attention`` registers three), and each
architecture one YAML config under ``configs/archs/``.  The module defines its settings, a dataclass
extending :class:`vocalsep.config.ModelConfig`, and a builder, and registers them::

    @register("resunet", ResUNetConfig, cite="Zhang, Liu, Wang 2018, IEEE GRSL 15(5)")
    def build(cfg: ResUNetConfig):
        import keras          # heavy imports inside the builder: importing the module stays cheap
        ...
        return keras.Model(inp, mask)

A ``spectral`` network takes (batch, freq_bins, frames, 1) float32 magnitudes, each patch scaled so that
its maximum is 1, and returns a sigmoid vocal mask of the same shape.  A ``waveform`` network takes
(batch, input_samples, 1) float32 audio at the model's rate and returns (batch, output_samples, 1) vocals of
the middle of its input, the lengths its settings' ``io_shapes()`` give (:mod:`vocalsep.wavefront`).

Modules are found and imported on the first look-up, so adding an architecture needs no edit anywhere else.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import Callable

from ..errors import VocalsepError

#: what a network maps: "spectral" (magnitude patch -> mask of the same shape) or "waveform" (audio with its
#: context -> the vocals of its middle)
DOMAINS = ("spectral", "waveform")


@dataclass(frozen=True)
class Arch:
    """One registered architecture: its name, settings class, Keras builder, domain and paper."""

    name: str
    config: type
    build: Callable
    domain: str = "spectral"
    cite: str = ""


ARCHS: dict[str, Arch] = {}
_loaded = False


def register(name: str, config: type, domain: str = "spectral", cite: str = "") -> Callable:
    """Decorator: register the builder it decorates as architecture ``name`` with settings ``config``."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}")

    def deco(build: Callable) -> Callable:
        if name in ARCHS and ARCHS[name].build is not build:
            raise ValueError(f"architecture {name!r} is registered twice")
        ARCHS[name] = Arch(name, config, build, domain, cite)
        return build

    return deco


def _load_all() -> None:
    """Import every module of this package once, so that each registers its architectures."""
    global _loaded
    if _loaded:
        return
    package = __name__.rpartition(".")[0]
    for mod in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if mod.name != "registry":
            importlib.import_module(f"{package}.{mod.name}")
    _loaded = True


def arch_names() -> list[str]:
    """The registered architectures' names, sorted."""
    _load_all()
    return sorted(ARCHS)


def get_arch(name: str) -> Arch:
    """The architecture called ``name``; VocalsepError naming the known ones otherwise."""
    _load_all()
    if not isinstance(name, str) or name not in ARCHS:
        raise VocalsepError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHS))}")
    return ARCHS[name]
