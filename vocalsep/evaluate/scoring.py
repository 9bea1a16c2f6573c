"""Scoring: BSSEval v4 (sisec18) and bss_eval v3 (mir1k) figures of one track, the checks made before
scoring, and the mir1k aggregate.  museval and mir_eval are imported inside the functions."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import VocalsepError
from .tracks import TARGETS, TrackAudio

#: figures of the sisec18 protocol, in table order
V4_METRICS = ("SDR", "SIR", "SAR", "ISR")
#: per-clip figures of the mir1k protocol, in table order
V3_METRICS = ("NSDR", "SDR", "SIR", "SAR")
#: aggregate figures of the mir1k protocol
V3_AGGREGATES = ("GNSDR", "GSIR", "GSAR", "GSDR")
PROTOCOLS = ("sisec18", "mir1k")


def _museval_evaluate():
    """``museval.evaluate``.  museval's package imports musdb, which needs ffmpeg; without it, the same call
    is made on ``museval/metrics.py`` loaded on its own."""
    try:
        import museval

        return museval.evaluate
    except Exception:
        import importlib.machinery
        import importlib.util

        spec = importlib.machinery.PathFinder.find_spec("museval")
        if spec is None or not spec.submodule_search_locations:
            raise VocalsepError("museval is not installed (pip install museval)") from None
        name = "_vocalsep_museval_metrics"
        if name not in sys.modules:
            mspec = importlib.util.spec_from_file_location(
                name, Path(list(spec.submodule_search_locations)[0]) / "metrics.py")
            module = importlib.util.module_from_spec(mspec)
            mspec.loader.exec_module(module)
            sys.modules[name] = module
        metrics = sys.modules[name]

        def evaluate(references, estimates, win=44100, hop=44100):
            # museval.evaluate with mode="v4", padding=True (lengths are equal here)
            sdr, isr, sir, sar, _ = metrics.bss_eval(
                np.array(references), np.array(estimates), compute_permutation=False, window=win, hop=hop,
                framewise_filters=False, bsseval_sources_version=False)
            return sdr, isr, sir, sar

        return evaluate


def score_sisec18(references: np.ndarray, estimates: np.ndarray, rate: int) -> dict:
    """BSSEval v4 of (2, samples, channels) references [vocals, accompaniment] and estimates, one-second
    windows.  Returns {target: {metric: median over windows}} and the windows under ``"windows"``."""
    evaluate = _museval_evaluate()
    refs = np.asarray(references, dtype=np.float64)
    ests = np.asarray(estimates, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sdr, isr, sir, sar = evaluate(refs, ests, win=int(rate), hop=int(rate))
    values = {"SDR": sdr, "SIR": sir, "SAR": sar, "ISR": isr}
    out: dict[str, Any] = {"windows": {}}
    for i, target in enumerate(TARGETS):
        out[target] = {m: _nanmedian(values[m][i]) for m in V4_METRICS}
        out["windows"][target] = {m: [float(v) for v in values[m][i]] for m in V4_METRICS}
    return out


def score_mir1k(references: np.ndarray, estimates: np.ndarray, mixture: np.ndarray) -> dict:
    """bss_eval v3 of mono (2, samples) references [vocals, accompaniment] and estimates on the whole clip,
    and of the (samples,) mixture as both estimates.  Returns {target: {NSDR, SDR, SIR, SAR, SDR_mixture}}."""
    from mir_eval.separation import bss_eval_sources

    refs = np.asarray(references, dtype=np.float64)
    ests = np.asarray(estimates, dtype=np.float64)
    mix = np.asarray(mixture, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # mir_eval 0.8 marks bss_eval_sources as deprecated
        sdr, sir, sar, _ = bss_eval_sources(refs, ests, compute_permutation=False)
        if np.array_equal(ests[0], mix) and np.array_equal(ests[1], mix):
            sdr_mix = sdr  # the mixture method: the same call
        else:
            sdr_mix, _, _, _ = bss_eval_sources(refs, np.stack([mix, mix]), compute_permutation=False)
    return {t: {"NSDR": float(sdr[i] - sdr_mix[i]), "SDR": float(sdr[i]), "SIR": float(sir[i]),
                "SAR": float(sar[i]), "SDR_mixture": float(sdr_mix[i])} for i, t in enumerate(TARGETS)}


def _nanmedian(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    x = x[~np.isnan(x)]
    return float(np.median(x)) if x.size else float("nan")


def _check_references(track: TrackAudio) -> None:
    """The references and the mixture must be finite (else NaN would be blamed on the estimates)."""
    for what, x in (("vocals reference", track.vocals), ("accompaniment reference", track.accompaniment),
                    ("mixture", track.mixture)):
        if not np.all(np.isfinite(x)):
            raise VocalsepError(f"{track.name}: the {what} holds NaN or infinite values")


def _check_estimates(track: TrackAudio, vocals: np.ndarray, accompaniment: np.ndarray) -> None:
    for target, est in zip(TARGETS, (vocals, accompaniment)):
        if est.shape != track.mixture.shape:
            raise VocalsepError(f"{track.name}: the {target} estimate has shape {est.shape}, "
                                f"but the mixture has {track.mixture.shape}")
        if not np.all(np.isfinite(est)):
            raise VocalsepError(f"{track.name}: the {target} estimate holds NaN or infinite values")


class _Silent(Exception):
    """A clip that bss_eval cannot score (a silent reference or estimate): left out, not a failure."""

    kind = "silent"


class _TooShort(_Silent):
    """A clip shorter than what its protocol measures on (one 1 s window; bss_eval v3's 512-tap filter):
    its figures would be meaningless (e.g. a SIR of 200 dB), so it is left out, not a failure."""

    kind = "too short"


#: the fewest samples bss_eval v3 (mir_eval) scores: its distortion filters are 512 taps long
MIR1K_MIN_SAMPLES = 512


def _silent_check(name: str, refs: np.ndarray, ests: np.ndarray) -> None:
    for what, arr in (("reference", refs), ("estimate", ests)):
        for target, x in zip(TARGETS, arr):
            if not np.any(x):
                raise _Silent(f"{name}: the {target} {what} is silent (all zeros); bss_eval cannot score it")


def _prepare_sisec18(track: TrackAudio, vocals, accompaniment) -> tuple:
    refs = np.stack([track.vocals, track.accompaniment])
    ests = np.stack([vocals, accompaniment])
    if refs.shape[1] < track.rate:
        raise _TooShort(f"{track.name}: {refs.shape[1]} samples, shorter than one BSSEval window (1 s); too short "
                        "to score")
    _silent_check(track.name, refs, ests)
    return refs, ests, track.rate


def _prepare_mir1k(track: TrackAudio, vocals, accompaniment) -> tuple:
    mono = lambda x: np.asarray(x, dtype=np.float64).mean(axis=1)  # noqa: E731
    refs = np.stack([mono(track.vocals), mono(track.accompaniment)])
    ests = np.stack([mono(vocals), mono(accompaniment)])
    if refs.shape[1] < MIR1K_MIN_SAMPLES:
        raise _TooShort(f"{track.name}: {refs.shape[1]} samples, shorter than bss_eval's {MIR1K_MIN_SAMPLES}-sample "
                        "filters; too short to score")
    _silent_check(track.name, refs, ests)
    return refs, ests, mono(track.mixture)


def _score_job(kind: str, name: str, args: tuple) -> dict:
    """Worker entry point (module level so that it pickles)."""
    try:
        if kind == "sisec18":
            return score_sisec18(*args)
        return score_mir1k(*args)
    except (ValueError, np.linalg.LinAlgError) as e:
        raise VocalsepError(f"{name}: bss_eval failed ({str(e).splitlines()[0]})") from None


def mir1k_aggregate(clips: Sequence[dict]) -> dict:
    """Length-weighted means over clips: {target: {GNSDR, GSIR, GSAR, GSDR}}.  Each clip is a dict with
    ``duration`` and {target: {NSDR, SDR, SIR, SAR}}."""
    w = np.array([c["duration"] for c in clips], dtype=np.float64)
    out = {}
    for t in TARGETS:
        out[t] = {"G" + m: float(np.sum(w * np.array([c[t][m] for c in clips])) / np.sum(w))
                  for m in ("NSDR", "SIR", "SAR", "SDR")}
        out[t] = {k: out[t][k] for k in V3_AGGREGATES}
    return out
