"""Objective evaluation of vocal / accompaniment separations.

Two protocols:

``sisec18`` (MUSDB18, SiSEC 2018)
    BSSEval v4 (``museval.evaluate``: the images version, time-invariant distortion filters) on the
    track at its own rate in one-second windows (``win = hop = rate`` samples), vocals and accompaniment
    as the two sources.  Per track and target, each figure (SDR, SIR, SAR, ISR) is the median over the
    windows, ignoring NaN windows (those where a reference is silent); the aggregate is the median over
    tracks.

``mir1k`` (Huang et al., ISMIR 2014)
    bss_eval v3 (``mir_eval.separation.bss_eval_sources``) on whole clips, mono (channels are averaged),
    references [vocals, accompaniment] and estimates in the same order (``compute_permutation=False``: the
    estimates are labelled, so a swapped output scores as swapped).  NSDR = SDR(estimate) - SDR(mixture),
    where SDR(mixture) is bss_eval of the mixture used as the estimate of each source.  GNSDR, GSIR, GSAR
    (and GSDR) are means over clips weighted by clip length.  Clips whose reference (or estimate) is
    all zeros cannot be scored by bss_eval and are left out with a warning.

A track whose references cannot be used (a stem missing, unreadable, not fitting the others, or holding
NaN or infinite samples) is left out as an error naming the file, like a track whose estimate fails, and
``vocalsep evaluate`` then exits 1.

Estimators are callables ``estimator(track: TrackAudio) -> (vocals, accompaniment)``, both of the mixture's
shape; an object with a ``.separate(audio, sample_rate)`` method (a :class:`vocalsep.separate.Separator`)
is wrapped automatically.  References: :class:`MixtureEstimator` (the mixture as both estimates: the
floor), :class:`OracleIRM` (the ideal ratio mask: an upper bound for magnitude masks on the same STFT) and
:class:`EstimatesDir` (separations written by another tool).

Separation runs in this process; scoring (the slow part) runs in ``jobs`` worker processes.  museval,
mir_eval and musdb are imported inside the functions that need them (``import musdb`` needs ffmpeg), and
TensorFlow is never imported here.

The package: :mod:`.tracks` (tracks, data folders, selection), :mod:`.estimators`, :mod:`.scoring` (the
protocols' figures, checks), :mod:`.report` (tables, JSON); here, the runs.  Every name is importable from
``vocalsep.evaluate``.
"""

from __future__ import annotations

import multiprocessing
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Sequence

import numpy as np

from ..errors import VocalsepError
from .estimators import (EstimatesDir, MixtureEstimator, OracleIRM, SeparatorEstimator, as_estimator,  # noqa: F401
                         ideal_ratio_mask, make_estimator)
from .report import _f, _json_clean, format_table, summary_line, write_json  # noqa: F401
from .scoring import (PROTOCOLS, V3_AGGREGATES, V3_METRICS, V4_METRICS, _check_estimates,  # noqa: F401
                      _check_references, _museval_evaluate, _nanmedian, _prepare_mir1k, _prepare_sisec18, _score_job,
                      _Silent, _silent_check, mir1k_aggregate, score_mir1k, score_sisec18)
from .tracks import (DATASETS, TARGETS, BrokenTrack, MusdbTrack, SongTrack, TrackAudio, _find_audio,  # noqa: F401
                     _read_same, load_tracks, read_list_file, select_tracks, split_tracks)


def _default_log(msg: str) -> None:
    from tqdm import tqdm

    tqdm.write(msg, file=sys.stderr)


def _run(kind: str, tracks: Sequence, estimator, jobs: int, progress: bool, log, seconds: float | None):
    """Load, separate (here) and score (in ``jobs`` processes) every track.

    Returns (scored: list of (track info, scores) in track order, left_out: list of dicts).
    """
    from tqdm import tqdm

    log = log or _default_log
    estimator = as_estimator(estimator)
    prepare = _prepare_sisec18 if kind == "sisec18" else _prepare_mir1k
    jobs = max(1, int(jobs))
    scores: dict[str, dict] = {}
    infos: dict[str, dict] = {}
    left_out: list[dict] = []
    order = [t.name for t in tracks]

    def leave_out(name: str, reason: str, kind_: str) -> None:
        left_out.append({"name": name, "reason": reason, "kind": kind_})
        log(f"{'error' if kind_ == 'error' else 'warning'}: {reason} (left out)")

    bar = tqdm(total=len(tracks), desc="evaluate", unit="clip" if kind == "mir1k" else "track", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    pool = None
    pending: dict = {}

    def collect(fut) -> None:
        name = pending.pop(fut)
        try:
            scores[name] = fut.result()
        except VocalsepError as e:
            leave_out(name, str(e), "error")
        bar.update()

    try:
        if jobs > 1:
            # spawn: the parent may hold TensorFlow / LiteRT threads, which do not survive a fork
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
        for track in tracks:
            name = track.name
            bar.set_postfix_str(name[:40], refresh=False)
            try:
                ta = track.load().head(seconds)
                _check_references(ta)
                v, a = estimator(ta)
                v, a = np.asarray(v, dtype=np.float32), np.asarray(a, dtype=np.float32)
                _check_estimates(ta, v, a)
                args = prepare(ta, v, a)
            except _Silent as e:  # (or too short)
                leave_out(name, str(e), e.kind)
                bar.update()
                continue
            except VocalsepError as e:
                msg = str(e)
                leave_out(name, msg if name in msg else f"{name}: {msg}", "error")
                bar.update()
                continue
            infos[name] = {"name": name, "rate": ta.rate, "samples": len(ta.mixture),
                           "channels": int(ta.mixture.shape[1]), "duration": len(ta.mixture) / ta.rate}
            if pool is None:
                try:
                    scores[name] = _score_job(kind, name, args)
                except VocalsepError as e:
                    leave_out(name, str(e), "error")
                bar.update()
            else:
                while len(pending) >= 2 * jobs:  # bound the audio held in flight
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for f in done:
                        collect(f)
                pending[pool.submit(_score_job, kind, name, args)] = name
        while pending:
            done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
            for f in done:
                collect(f)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    scored = [(infos[n], scores[n]) for n in order if n in scores]
    left_out.sort(key=lambda d: order.index(d["name"]) if d["name"] in order else len(order))
    return scored, left_out


def _describe(estimator) -> dict:
    est = as_estimator(estimator)
    return est.describe() if hasattr(est, "describe") else {"method": getattr(est, "name", type(est).__name__)}


def evaluate_museval(tracks: Sequence, estimator, jobs: int = 1, progress: bool = False, log=None,
                     seconds: float | None = None) -> dict:
    """Score ``estimator`` on ``tracks`` by the SiSEC 2018 protocol (see the module docstring).

    tracks: objects with ``.name`` and ``.load() -> TrackAudio`` (e.g. from :func:`load_tracks`, or
    TrackAudio themselves).  estimator: a callable ``TrackAudio -> (vocals, accompaniment)`` or a Separator.
    seconds: score only the first ``seconds`` of each track (quick checks; not the protocol).
    Tracks that cannot be scored are reported through ``log`` and left out of the aggregate.
    """
    scored, left_out = _run("sisec18", tracks, estimator, jobs, progress, log, seconds)
    per_track = [{**info, **{t: s[t] for t in TARGETS}, "windows": s["windows"]} for info, s in scored]
    aggregate = {t: {m: _nanmedian([tr[t][m] for tr in per_track]) for m in V4_METRICS} for t in TARGETS} \
        if per_track else None
    return {
        "protocol": "sisec18",
        "scoring": "BSSEval v4 (museval.evaluate) at the track's rate, 1 s windows, 1 s hop; per track the "
                   "median over windows (NaN windows ignored); aggregate: the median over tracks",
        "method": _describe(estimator),
        "seconds": seconds,
        "n_tracks": len(per_track),
        "n_left_out": len(left_out),
        "aggregate": aggregate,
        "tracks": per_track,
        "left_out": left_out,
    }


def evaluate_mir1k(clips: Sequence, estimator, jobs: int = 1, progress: bool = False, log=None,
                   seconds: float | None = None) -> dict:
    """Score ``estimator`` on ``clips`` by the MIR-1K protocol (GNSDR, GSIR, GSAR: see the module docstring).

    Arguments as for :func:`evaluate_museval`.  Clips with a silent reference or estimate are left out
    with a warning; ``n_left_out`` says how many.
    """
    scored, left_out = _run("mir1k", clips, estimator, jobs, progress, log, seconds)
    per_clip = [{**info, **s} for info, s in scored]
    return {
        "protocol": "mir1k",
        "scoring": "bss_eval v3 (mir_eval.separation.bss_eval_sources, compute_permutation=False) on whole "
                   "mono clips; NSDR = SDR(estimate) - SDR(mixture as the estimate); GNSDR/GSIR/GSAR/GSDR: "
                   "means over clips weighted by clip length",
        "method": _describe(estimator),
        "seconds": seconds,
        "n_tracks": len(per_clip),
        "n_left_out": len(left_out),
        "duration": float(sum(c["duration"] for c in per_clip)),
        "aggregate": mir1k_aggregate(per_clip) if per_clip else None,
        "tracks": per_clip,
        "left_out": left_out,
    }
