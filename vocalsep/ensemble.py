"""Ensembles: several networks whose vocal masks are averaged on the model grid (issue 14, item 4).

A :class:`~vocalsep.separate.Separator` holds one :class:`Member` per model file: a model alone is an
ensemble of one.  The members must share the STFT and the number of bins (their masks then fall on one
grid, :func:`check_same_grid`); their architectures may differ.  With no model named the Separator takes
the models shipped with vocalsep (:func:`~vocalsep.model.shipped_model_paths`), two seeds of one recipe:
docs/choices.md, "The shipped ensemble".
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import VocalsepError
from .frontend import FrontEnd, for_model
from .model import ModelFile, shipped_model_paths
from .runners import Runner, make_runner


@dataclass
class Member:
    """One network of a Separator: its model file, its front end and the runner of its network."""

    path: Path
    frontend: FrontEnd
    runner: Runner


def load_members(model, backend: str, batch: int, threads: int | None, patch_overlap: float,
                 high_band_from_hz: float | None, high_band_slope: float) -> tuple[list[Member], ModelFile]:
    """The members of ``model`` (:func:`model_paths`), each with its front end and runner, and the first
    one's model file read without its weights (its settings are the Separator's)."""
    members: list[Member] = []
    first = None
    for path in model_paths(model):
        # LiteRT needs only the file's LiteRT model; the Keras backend (also auto's fallback, which
        # make_runner gives the weights) reads the weights
        mf = ModelFile.load(path, weights=backend == "keras")
        first = first or mf
        check_same_grid(mf, first)
        members.append(Member(path, for_model(mf.spectral, mf.model, patch_overlap, high_band_from_hz,
                                              high_band_slope),
                              make_runner(mf, backend, batch=batch, threads=threads)))
    return members, first


def mean_masks(members: list[Member], x_model: np.ndarray) -> np.ndarray:
    """The mean of the members' masks of ``x_model`` ((samples, channels) float32 at the model's rate):
    (channels, freq_bins, frames) float32 in [0, 1].  A runtime's own error (LiteRT out of memory, a
    TensorFlow error) becomes a VocalsepError naming the model file, so that it is not taken for the input's."""
    total = None
    for m in members:
        try:
            masks = m.frontend.masks(x_model, m.runner, m.path)
        except (VocalsepError, MemoryError):
            raise
        except Exception as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            raise VocalsepError(f"{m.path}: the network failed ({type(e).__name__}{': ' + msg if msg else ''})") from e
        total = masks if total is None else total + masks
    return total if len(members) == 1 else total / np.float32(len(members))


def model_paths(model: str | Path | list | tuple | None) -> list[Path]:
    """The model files that ``model`` names: the shipped models (an ensemble) for None, [model] for one path,
    the paths of a list or tuple (an ensemble: at least one)."""
    if model is None:
        return shipped_model_paths()
    if isinstance(model, (str, os.PathLike)):
        return [Path(model)]
    if not isinstance(model, (list, tuple)) or not all(isinstance(p, (str, os.PathLike)) for p in model):
        raise VocalsepError(f"a model is a file path or a list of them, not {type(model).__name__}")
    paths = [Path(p) for p in model]
    if not paths:
        raise VocalsepError("an ensemble needs at least one model file")
    seen: dict[Path, Path] = {}
    for p in paths:
        key = p.resolve()
        if key in seen:
            raise VocalsepError(f"{p}: given twice in an ensemble (as {seen[key]}); each model counts once")
        seen[key] = p
    return paths


def check_same_grid(mf: ModelFile, first: ModelFile) -> None:
    """VocalsepError unless ``mf``'s masks fall on ``first``'s grid (the same STFT and number of bins), so that
    an ensemble can average them."""
    def grid(m: ModelFile) -> str:
        sp = m.spectral
        return f"{sp.sample_rate} Hz, n_fft {sp.n_fft}, hop {sp.hop_length}, {m.model.freq_bins} bins"

    if mf.spectral != first.spectral or mf.model.freq_bins != first.model.freq_bins:
        raise VocalsepError(f"{mf.path}: cannot join an ensemble with {first.path}: its masks fall on another grid "
                            f"({grid(mf)} against {grid(first)})")
