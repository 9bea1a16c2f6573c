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
"""

from __future__ import annotations

import json
import math
import multiprocessing
import sys
import warnings
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from . import audio as audio_io
from .config import SpectralConfig
from .data import KINDS, Song, detect_kind, discover, matches_name
from .errors import VocalsepError

TARGETS = ("vocals", "accompaniment")
#: figures of the sisec18 protocol, in table order
V4_METRICS = ("SDR", "SIR", "SAR", "ISR")
#: per-clip figures of the mir1k protocol, in table order
V3_METRICS = ("NSDR", "SDR", "SIR", "SAR")
#: aggregate figures of the mir1k protocol
V3_AGGREGATES = ("GNSDR", "GSIR", "GSAR", "GSDR")
PROTOCOLS = ("sisec18", "mir1k")
DATASETS = ("auto",) + KINDS


# ---------------------------------------------------------------------------------------------- data


@dataclass
class TrackAudio:
    """One track in memory: (samples, channels) float32 arrays at ``rate`` Hz; mixture = what is separated."""

    name: str
    mixture: np.ndarray
    vocals: np.ndarray
    accompaniment: np.ndarray
    rate: int

    def load(self) -> "TrackAudio":
        return self

    def head(self, seconds: float | None) -> "TrackAudio":
        """The first ``seconds`` seconds (all of it when None)."""
        if seconds is None:
            return self
        n = max(1, int(round(seconds * self.rate)))
        return TrackAudio(self.name, self.mixture[:n], self.vocals[:n], self.accompaniment[:n], self.rate)


def _find_audio(folder: Path, stem: str) -> Path | None:
    """``folder/<stem>.<ext>`` for the first audio extension that exists (wav first)."""
    for ext in audio_io.AUDIO_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _read_same(groups: Sequence[Sequence[str | Path]]) -> tuple[list[np.ndarray], int]:
    """Read groups of files that must all share rate, channels and length; returns each group's sum."""
    sums, first, rate = [], None, None
    for group in groups:
        total = None
        for p in map(Path, group):
            x, sr = audio_io.read(p)
            if not np.all(np.isfinite(x)):
                raise VocalsepError(f"{p}: holds NaN or infinite samples (a reference stem)")
            if first is None:
                first, rate = (p, x), sr
            elif sr != rate:
                raise VocalsepError(f"{p}: sample rate {sr} Hz differs from {first[0].name} ({rate} Hz)")
            elif x.shape[1] != first[1].shape[1]:
                raise VocalsepError(f"{p}: {x.shape[1]} channel(s) but {first[0].name} has {first[1].shape[1]}")
            elif len(x) != len(first[1]):
                raise VocalsepError(f"{p}: {len(x)} samples but {first[0].name} has {len(first[1])}")
            total = x if total is None else total + x
        sums.append(total)
    return sums, int(rate)


@dataclass
class SongTrack:
    """A song found by :func:`data.discover` (stems, CCMixter or MUSDB18-HQ layout): vocals and
    accompaniment are its stem files summed; the mixture is their sum (MUSDB18-HQ's mixture.wav is exactly
    that sum)."""

    name: str
    song: Song

    def load(self) -> TrackAudio:
        (v, a), sr = _read_same([self.song.vocals, self.song.accompaniment])
        return TrackAudio(self.name, v + a, v, a, sr)


@dataclass
class BrokenTrack:
    """A song that :func:`data.discover` could not use (``reason``: one line naming the file): loading it
    raises VocalsepError(reason), so that evaluation counts it as left out."""

    name: str
    reason: str

    def load(self) -> TrackAudio:
        raise VocalsepError(self.reason)


@dataclass
class MusdbTrack:
    """A track of the ``musdb`` package (MUSDB18 stems); decoded with ffmpeg when loaded."""

    name: str
    track: Any

    def load(self) -> TrackAudio:
        try:
            stems = np.asarray(self.track.stems, dtype=np.float32)  # mixture, drums, bass, other, vocals
        except Exception as e:  # stempeg / ffmpeg failures
            raise VocalsepError(f"{self.track.path}: cannot decode the stems ({str(e).splitlines()[0]})") from None
        ids = {k: v.stem_id for k, v in self.track.sources.items()}
        acc = sum(stems[ids[s]] for s in ("drums", "bass", "other"))
        return TrackAudio(self.name, stems[0], stems[ids["vocals"]], acc.astype(np.float32), int(self.track.rate))


def load_tracks(root: str | Path, dataset: str = "auto", subset: str = "test") -> list:
    """The tracks of a data set, sorted by name, not yet decoded (each has ``.name`` and ``.load()``).

    The layouts are :func:`data.discover`'s (``subset``: the MUSDB18 / MUSDB18-HQ folder to read); MUSDB18
    stems are read through the ``musdb`` package, with their own mixture stream.  A song whose stems are
    missing, unreadable or do not fit together is a :class:`BrokenTrack`, left out when it is evaluated.
    """
    root = Path(root)
    if dataset not in DATASETS:
        raise VocalsepError(f"unknown data set {dataset!r}; choose one of {', '.join(DATASETS)}")
    kind = detect_kind(root, subset) if dataset == "auto" else dataset
    if kind != "musdb":
        skipped: list[tuple[str, str]] = []
        tracks: list = [SongTrack(s.name, s) for s in discover(root, kind, subset=subset, skipped=skipped)]
        tracks += [BrokenTrack(name, reason) for name, reason in skipped]
        return sorted(tracks, key=lambda t: t.name)
    try:
        import musdb
    except Exception as e:  # musdb needs ffmpeg (through stempeg)
        raise VocalsepError(f"{root}: reading MUSDB18 stems needs the musdb package and ffmpeg ({e})") from None
    if not (root / subset).is_dir():
        raise VocalsepError(f"{root / subset}: no such folder (MUSDB18 subset {subset!r})")
    db = musdb.DB(root=str(root), subsets=subset)
    tracks = [MusdbTrack(t.name, t) for t in db.tracks]
    if not tracks:
        raise VocalsepError(f"{root}: no tracks found (data set musdb, subset {subset})")
    return sorted(tracks, key=lambda t: t.name)


def read_list_file(path: str | Path) -> list[str]:
    """Names or prefixes, one per line; blank lines and ``#`` comments are ignored."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise VocalsepError(f"{path}: list file does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise VocalsepError(f"{path}: cannot read the list file ({e})") from None
    names = [ln.split("#", 1)[0].strip() for ln in lines]
    names = [n for n in names if n]
    if not names:
        raise VocalsepError(f"{path}: the list file names no songs")
    return names


def select_tracks(tracks: Sequence, names: Iterable[str] = (), prefixes: Iterable[str] = ()) -> list:
    """Tracks named exactly in ``names`` or starting with one of ``prefixes`` (all when both are empty).

    A name or prefix that selects nothing is an error (a typo would otherwise shrink the test set silently).
    """
    names, prefixes = list(names), list(prefixes)
    if not names and not prefixes:
        return list(tracks)
    all_names = {t.name for t in tracks}
    missing = [n for n in names if n not in all_names]
    missing += [p for p in prefixes if not any(matches_name(n, p) for n in all_names)]
    if missing:
        raise VocalsepError(f"no track matches {', '.join(repr(m) for m in missing)}")
    wanted = set(names)
    return [t for t in tracks if t.name in wanted or any(matches_name(t.name, p) for p in prefixes)]


def split_tracks(tracks: Sequence, which: str, validation: Sequence[str] = (), fraction: float = 0.1) -> list:
    """The ``train`` or ``validation`` side of the split that ``vocalsep train`` makes
    (:func:`vocalsep.data.split_songs`: held-out names / prefixes, else a fixed hash of song groups; a
    MIR-1K song's clips stay together).  It reproduces a training run's split when that run trained on
    this one data folder with the same ``data.validation`` / ``data.validation_fraction``.
    """
    from types import SimpleNamespace

    from .data import split_songs, stems_group

    if which not in ("train", "validation"):
        raise VocalsepError(f"unknown split {which!r}; choose train or validation")
    songs = [SimpleNamespace(name=t.name, group=stems_group(t.name)) for t in tracks]
    train, val = split_songs(songs, list(validation), fraction)
    keep = {s.name for s in (train if which == "train" else val)}
    if not keep:
        raise VocalsepError(f"the {which} split of these {len(tracks)} tracks is empty")
    return [t for t in tracks if t.name in keep]


# ------------------------------------------------------------------------------------------ estimators


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
    from .spectral import istft, stft

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
    so the IRM is an upper bound for magnitude-mask methods on that STFT.
    ``spectral`` (the model's SpectralConfig) is recorded beside it; :meth:`describe` records the
    (n_fft, hop) actually used at each rate.
    """

    name = "irm"

    def __init__(self, spectral: SpectralConfig | None = None, source: str = "defaults"):
        self.spectral = spectral or SpectralConfig()
        self.source = source
        self.used: dict[int, tuple[int, int]] = {}

    def __call__(self, track: TrackAudio) -> tuple[np.ndarray, np.ndarray]:
        from .separate import full_band_stft_params

        n_fft, hop = self.used.setdefault(track.rate, full_band_stft_params(track.rate))
        return ideal_ratio_mask(track, n_fft, hop)

    def describe(self) -> dict:
        return {"method": self.name, "spectral": asdict(self.spectral), "spectral_from": self.source,
                "stft": {str(r): {"n_fft": n, "hop": h} for r, (n, h) in sorted(self.used.items())}}


class SeparatorEstimator:
    """Wraps an object with ``.separate(audio, sample_rate) -> (vocals, accompaniment)`` (a Separator)."""

    name = "model"

    def __init__(self, separator, model_path: str | Path | None = None):
        self.separator = separator
        self.model_path = model_path if model_path is not None else getattr(separator, "model_path", None)

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
            d["model_config"] = {**asdict(mc), "channels": list(mc.channels)}
        backend = getattr(getattr(self.separator, "runner", None), "name", None)
        if backend:
            d["backend"] = backend
        return d


class EstimatesDir:
    """Separations written by another tool: ``<root>/<track>/vocals.wav`` and ``accompaniment.wav`` (Spleeter's
    layout; other audio extensions are accepted too).  They must match the mixture's rate, channels and
    length exactly."""

    name = "estimates"

    def __init__(self, root: str | Path):
        self.root = Path(root)
        if not self.root.is_dir():
            raise VocalsepError(f"{self.root}: no such folder (estimates)")

    def __call__(self, track: TrackAudio) -> tuple[np.ndarray, np.ndarray]:
        out = []
        folder = self.root / track.name
        for stem in TARGETS:
            p = _find_audio(folder, stem)
            if p is None:
                raise VocalsepError(f"{folder / (stem + '.wav')}: no such file (estimate for track {track.name!r})")
            x, sr = audio_io.read(p)
            ref = track.mixture
            if sr != track.rate:
                raise VocalsepError(f"{p}: sample rate {sr} Hz, but the reference is at {track.rate} Hz")
            if x.shape[1] != ref.shape[1]:
                raise VocalsepError(f"{p}: {x.shape[1]} channel(s), but the reference has {ref.shape[1]}")
            if len(x) != len(ref):
                raise VocalsepError(f"{p}: {len(x)} samples, but the reference has {len(ref)}")
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


def make_estimator(method: str = "model", model_path: str | Path | None = None, backend: str = "auto",
                   estimates: str | Path | None = None):
    """The estimator for a CLI ``--method`` (``model``, ``mixture``, ``irm``) or ``--estimates DIR``.

    ``irm`` takes its STFT from ``model_path`` if given, else from the shipped model if there is one, else
    from the default :class:`SpectralConfig` (the same values as ``configs/unet.yaml``).
    """
    if estimates is not None:
        return EstimatesDir(estimates)
    if method == "mixture":
        return MixtureEstimator()
    if method == "irm":
        from .model import ModelFile, default_model_path

        path = Path(model_path) if model_path is not None else default_model_path()
        if model_path is not None or path.exists():
            return OracleIRM(ModelFile.load(path, weights=False).spectral, source=str(path))
        return OracleIRM(SpectralConfig(), source="defaults")
    if method == "model":
        from .separate import Separator

        return SeparatorEstimator(Separator(model_path, backend=backend))
    raise VocalsepError(f"unknown method {method!r}; choose model, mixture or irm")


# ------------------------------------------------------------------------------------------- scoring


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


def _silent_check(name: str, refs: np.ndarray, ests: np.ndarray) -> None:
    for what, arr in (("reference", refs), ("estimate", ests)):
        for target, x in zip(TARGETS, arr):
            if not np.any(x):
                raise _Silent(f"{name}: the {target} {what} is silent (all zeros); bss_eval cannot score it")


def _prepare_sisec18(track: TrackAudio, vocals, accompaniment) -> tuple:
    refs = np.stack([track.vocals, track.accompaniment])
    ests = np.stack([vocals, accompaniment])
    _silent_check(track.name, refs, ests)
    return refs, ests, track.rate


def _prepare_mir1k(track: TrackAudio, vocals, accompaniment) -> tuple:
    mono = lambda x: np.asarray(x, dtype=np.float64).mean(axis=1)  # noqa: E731
    refs = np.stack([mono(track.vocals), mono(track.accompaniment)])
    ests = np.stack([mono(vocals), mono(accompaniment)])
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
        log(f"{'warning' if kind_ == 'silent' else 'error'}: {reason} (left out)")

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
            except _Silent as e:
                leave_out(name, str(e), "silent")
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


# ------------------------------------------------------------------------------------------ reporting


def _f(x) -> str:
    return "    nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:7.2f}"


def format_table(results: dict) -> str:
    """The per-track table and the aggregate line(s) of :func:`evaluate_museval` / :func:`evaluate_mir1k`."""
    mir1k = results["protocol"] == "mir1k"
    metrics = V3_METRICS if mir1k else V4_METRICS
    names = [t["name"] for t in results["tracks"]]
    w = max([len(n) for n in names] + [24])
    w = min(w, 48)
    group = len(metrics) * 8
    lines = []
    head1 = f"{'':{w}} " + (f"{'':>7} " if mir1k else "") + " | ".join(f"{t:<{group - 1}}" for t in TARGETS)
    head2 = f"{'track':{w}} " + (f"{'sec':>7} " if mir1k else "") + " | ".join(
        "".join(f"{m:>7} " for m in metrics)[:group - 1].ljust(group - 1) for _ in TARGETS)
    lines += [head1.rstrip(), head2.rstrip(), "-" * len(head2.rstrip())]
    for tr in results["tracks"]:
        row = f"{tr['name'][:w]:{w}} " + (f"{tr['duration']:7.1f} " if mir1k else "")
        row += " | ".join(" ".join(_f(tr[t][m]) for m in metrics) for t in TARGETS)
        lines.append(row)
    lines.append("-" * len(head2.rstrip()))
    lines.append(summary_line(results))
    return "\n".join(lines)


def summary_line(results: dict) -> str:
    """One line (two for mir1k) with the aggregate and how many tracks it holds."""
    method = results["method"].get("method", "?")
    n, k = results["n_tracks"], results["n_left_out"]
    unit = "clip" if results["protocol"] == "mir1k" else "track"
    held = f"{n} {unit}{'s' if n != 1 else ''}" + (f", {k} left out" if k else "")
    agg = results["aggregate"]
    if agg is None:
        return f"[{method}] no {unit} could be scored ({k} left out)"
    if results["protocol"] == "mir1k":
        mins = results.get("duration", 0.0) / 60
        parts = [f"{t}: " + " ".join(f"{m} {agg[t][m]:.2f}" for m in V3_AGGREGATES) for t in TARGETS]
        return f"[{method}] length-weighted over {held} ({mins:.1f} min): " + " | ".join(parts)
    parts = [f"{t}: " + " ".join(f"{m} {agg[t][m]:.2f}" for m in V4_METRICS) for t in TARGETS]
    return f"[{method}] median over {held}: " + " | ".join(parts)


def _json_clean(x):
    if isinstance(x, dict):
        return {k: _json_clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_clean(v) for v in x]
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, Path):
        return str(x)
    return x


def write_json(results: dict, path: str | Path) -> None:
    """Write the results as JSON (NaN and infinities as null), atomically."""
    from . import atomic

    path = Path(path)
    if path.parent and not path.parent.exists():
        raise VocalsepError(f"{path}: the folder {path.parent} does not exist")
    text = json.dumps(_json_clean(results), indent=1)
    atomic.write_bytes(path, (text + "\n").encode())
