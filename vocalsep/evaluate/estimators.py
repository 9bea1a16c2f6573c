"""Estimators: callables ``estimator(track: TrackAudio) -> (vocals, accompaniment)``, both of the mixture's
shape: the mixture (the floor), the oracle ideal ratio mask (a ceiling), a Separator, another tool's files."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import audio as audio_io
from ..errors import VocalsepError
from .tracks import TrackAudio, _find_audio


class MixtureEstimator:
    """The mixture as the estimate of both sources: the floor any method should beat."""

    name = "mixture"

    def __call__(self, track: TrackAudio) -> tuple[np.ndarray, np.ndarray]:
        return track.mixture, track.mixture

    def describe(self) -> dict:
        return {"method": self.name}


def ideal_ratio_mask(track: TrackAudio, n_fft: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """Apply M = |V| / (|V| + |A|) (1 - M for the accompaniment) to the mixture STFT, mixture phase, channel by
    channel, with the shared :func:`vocalsep.spectral.stft` / :func:`~vocalsep.spectral.istft`.  Bins where
    both references are zero get M = 0.5."""
    from ..spectral import istft, stft

    n = len(track.mixture)
    vocals = np.empty(track.mixture.shape, dtype=np.float32)
    accompaniment = np.empty(track.mixture.shape, dtype=np.float32)
    for ch in range(track.mixture.shape[1]):
        x = stft(track.mixture[:, ch], n_fft, hop)
        v = np.abs(stft(track.vocals[:, ch], n_fft, hop))
        a = np.abs(stft(track.accompaniment[:, ch], n_fft, hop))
        den = v + a
        mask = np.divide(v, den, out=np.full(den.shape, 0.5, dtype=np.float32), where=den > 0)
        vocals[:, ch] = istft(mask * x, n_fft, hop, n)
        accompaniment[:, ch] = istft((1 - mask) * x, n_fft, hop, n)
    return vocals, accompaniment


class OracleIRM:
    """The oracle ideal ratio mask on the full-band STFT that separation applies its masks to.

    The STFT runs at the data's own rate (no resampling), with the window and hop that separation uses
    there (:func:`vocalsep.separate.full_band_stft_params`: 4096 / 1024 at 44.1 kHz, 2048 / 512 at 16 kHz),
    so the IRM is an upper bound for magnitude-mask methods on that STFT.  Every model shares that STFT, so
    the IRM depends on no model; :meth:`describe` records the (n_fft, hop) used at each rate.
    """

    name = "irm"

    def __init__(self):
        self.used: dict[int, tuple[int, int]] = {}

    def __call__(self, track: TrackAudio) -> tuple[np.ndarray, np.ndarray]:
        from ..separate import full_band_stft_params

        n_fft, hop = self.used.setdefault(track.rate, full_band_stft_params(track.rate))
        return ideal_ratio_mask(track, n_fft, hop)

    def describe(self) -> dict:
        return {"method": self.name, "stft": {str(r): {"n_fft": n, "hop": h} for r, (n, h) in sorted(self.used.items())}}


class SeparatorEstimator:
    """Wraps an object with ``.separate(audio, sample_rate) -> (vocals, accompaniment)`` (a Separator)."""

    name = "model"

    def __init__(self, separator, model_path: str | Path | None = None):
        self.separator = separator
        if model_path is None:  # a Separator's members' files, joined by " + "; another object's model_path
            model_path = getattr(separator, "model_name", None) or getattr(separator, "model_path", None)
        self.model_path = model_path

    def __call__(self, track: TrackAudio) -> tuple[np.ndarray, np.ndarray]:
        v, a = self.separator.separate(track.mixture, track.rate)
        return np.asarray(v, dtype=np.float32), np.asarray(a, dtype=np.float32)

    def describe(self) -> dict:
        d: dict[str, Any] = {"method": self.name,
                             "model": str(self.model_path) if self.model_path is not None else None}
        spectral = getattr(self.separator, "spectral", None)
        if spectral is not None:
            d["spectral"] = asdict(spectral)
        mc = getattr(self.separator, "model_config", None)
        if mc is not None:
            d["model_config"] = mc.to_dict()
        runner = getattr(self.separator, "runner", None)
        if getattr(runner, "name", None):
            d["backend"] = runner.name
        if getattr(runner, "weights", None):  # LiteRT's: float16 or int8 (vocalsep export)
            d["litert_weights"] = runner.weights
        members = getattr(self.separator, "members", [])
        if len(members) > 1:  # an ensemble: each member's architecture and runtime (the above are the first's)
            d["members"] = [{"model": str(m.path), "arch": getattr(m.frontend.model, "arch", None),
                             "backend": m.runner.name}
                            | ({"litert_weights": m.runner.weights} if getattr(m.runner, "weights", None) else {})
                            for m in members]
        return d


#: file names (without extension) an accompaniment estimate may have: vocalsep's and Spleeter's, vocalsep's
#: ``--stem-names instrumental``, and Demucs's ``--two-stems vocals`` (also vocalsep's ``--stem-names no_vocals``)
ACCOMPANIMENT_NAMES = ("accompaniment", "instrumental", "no_vocals")


class EstimatesDir:
    """Separations written by another tool, or by ``vocalsep separate``: ``<root>/<track>/vocals.<ext>`` and
    the accompaniment as ``accompaniment``, ``instrumental`` or ``no_vocals`` (Spleeter's, vocalsep's and
    Demucs's names; any audio extension).  The track's folder may also be ``<root>/<track>/mixture``
    (``vocalsep separate`` run on a MUSDB18-HQ folder separates each ``mixture.wav`` there) or
    ``<root>/<track>.stem`` (run on MUSDB18's ``.stem.mp4`` files).

    Estimates must match the reference's rate, channels and length exactly; when the reference was cut
    (``--seconds``), estimates of the whole track are cut the same way, and estimates of the cut part
    (``separate --duration``) are taken as they are.
    """

    name = "estimates"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise VocalsepError(f"{self.root}: " + ("a file, not a folder: --estimates takes the folder of <track>/"
                                                    "vocals.* and accompaniment.*" if self.root.exists()
                                                    else "no such folder (estimates)"))

    def folder(self, track: str) -> Path:
        """The folder that holds a track's estimates (see the class docstring); VocalsepError if two do."""
        candidates = [self.root / track, self.root / track / "mixture", self.root / f"{track}.stem"]
        found = [d for d in candidates if _find_audio(d, "vocals") is not None]
        if len(found) > 1:
            raise VocalsepError(f"{found[0]}: estimates for track {track!r} here and in {found[1]}; keep one")
        return found[0] if found else candidates[0]

    def files(self, track: str) -> tuple[Path, Path]:
        """The (vocals, accompaniment) estimate files of a track; VocalsepError naming the file missing, or
        the two accompaniments when a folder has more than one."""
        folder = self.folder(track)
        vocals = _find_audio(folder, "vocals")
        if vocals is None:
            raise VocalsepError(f"{folder / 'vocals.wav'}: no such file (estimate for track {track!r})")
        acc = [p for p in (_find_audio(folder, n) for n in ACCOMPANIMENT_NAMES) if p is not None]
        if not acc:
            raise VocalsepError(f"{folder / 'accompaniment.wav'}: no such file (estimate for track {track!r}; "
                                f"{', '.join(ACCOMPANIMENT_NAMES[1:])} are taken too)")
        if len(acc) > 1:
            raise VocalsepError(f"{acc[0]}: {acc[1].name} is beside it; which is the accompaniment estimate "
                                f"for track {track!r}? Keep one")
        return vocals, acc[0]

    def __call__(self, track: TrackAudio) -> tuple[np.ndarray, np.ndarray]:
        out = []
        ref = track.mixture
        full = track.full_length if track.full_length is not None else len(ref)
        for p in self.files(track.name):
            x, sr = audio_io.read(p)
            if sr != track.rate:
                raise VocalsepError(f"{p}: sample rate {sr} Hz, but the reference is at {track.rate} Hz")
            if x.shape[1] != ref.shape[1]:
                raise VocalsepError(f"{p}: {x.shape[1]} channel(s), but the reference has {ref.shape[1]}")
            if len(x) == full:
                x = x[:len(ref)]  # cut as the reference was (--seconds)
            if len(x) != len(ref):
                cut = f" (cut to {len(ref)} by --seconds)" if full != len(ref) else ""
                raise VocalsepError(f"{p}: {len(x)} samples, but the reference has {full}{cut}")
            out.append(x)
        return out[0], out[1]

    def describe(self) -> dict:
        return {"method": self.name, "estimates": str(self.root)}


def as_estimator(obj) -> Callable[[TrackAudio], tuple[np.ndarray, np.ndarray]]:
    """An estimator callable for ``obj`` (wraps anything with a ``.separate`` method)."""
    if hasattr(obj, "separate") and not isinstance(obj, (MixtureEstimator, OracleIRM, EstimatesDir)):
        return SeparatorEstimator(obj)
    if not callable(obj):
        raise TypeError(f"not an estimator: {obj!r}")
    return obj


def make_estimator(method: str = "model", model_path: str | Path | list | None = None, backend: str = "auto",
                   estimates: str | Path | None = None):
    """The estimator for a CLI ``--method`` (``model``, ``mixture``, ``irm``) or ``--estimates DIR``.

    ``model_path``: a model file, a list of them (an ensemble, :class:`~vocalsep.separate.Separator`) or None
    (the shipped ensemble); ``irm`` and ``mixture`` take no model.
    """
    if estimates is not None:
        return EstimatesDir(estimates)
    if method == "mixture":
        return MixtureEstimator()
    if method == "irm":
        if model_path is not None:
            raise VocalsepError("--method irm takes no model: the oracle mask depends on the reference stems alone")
        return OracleIRM()
    if method == "model":
        from ..separate import Separator

        return SeparatorEstimator(Separator(model_path, backend=backend))
    raise VocalsepError(f"unknown method {method!r}; choose model, mixture or irm")
