#!/usr/bin/env python3
"""Does the band above the model's Nyquist (8 kHz) leak into the vocals?  Measured with a model's masks.

The network sees 0-8 kHz; above it separation fills the mask in with a rule (vocalsep/spectral.py,
``upsample_mask``).  For held-out stereo songs this prints, per rule, in the band above 8 kHz:

- the vocals' share of the mixture's energy there, estimated against true (the issue's "80 % against 43 %"),
  and in how many tracks the estimate holds more than 5 points more of it than the truth ("leaks"),
- the band's vocals SDR, 10 log10(|V|^2 / |V - V_est|^2) over the band's STFT bins (dB),

and the whole signal's vocals / accompaniment SDR (global energy ratio, dB), all on the full-resolution STFT
that separation masks.  Songs: the two SiSEC 2011 songs and the MUSDB18-HQ track (no model here trained on
them) and the 14 MUSDB18 previews that configs/holdout.yaml holds out (held out by the unseen-voice folds of
scripts/unseen.py, not by the shipped models, which trained on them).

    python scripts/measure_high_band.py --model runs/unseen/baseline-s3000/no-abjones/model.vsep [--no-previews]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vocalsep import evaluate as ev
from vocalsep import spectral
from vocalsep.separate import Separator, full_band_stft_params

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def rules(top_hz: float):
    """name -> f(m_bar (frames,), freqs (bins above top,)) -> mask (bins, frames) above the model's band."""
    return {
        "mean of the top half-octave (0.1.0)": lambda m, f: np.broadcast_to(m, (len(f), len(m))),
        "half of it": lambda m, f: np.broadcast_to(0.5 * m, (len(f), len(m))),
        "its square": lambda m, f: np.broadcast_to(m ** 2, (len(f), len(m))),
        "m ** (1 + log2(f / 8 kHz))": lambda m, f: m[None, :] ** (1 + np.log2(f / top_hz))[:, None],
        "m ** (1 + 2 log2(f / 8 kHz))": lambda m, f: m[None, :] ** (1 + 2 * np.log2(f / top_hz))[:, None],
        "0 (all to the accompaniment)": lambda m, f: np.zeros((len(f), len(m))),
    }


def measure(sep: Separator, track) -> dict:
    """Per rule: (true share, estimated share, band SDR, vocals SDR, accompaniment SDR) of one track."""
    t = track.load()
    mix, voc, sr = t.mixture, t.vocals, t.rate
    sp = sep.spectral
    masks = sep._block_masks(mix, sr)
    n_fft, hop = full_band_stft_params(sr)
    top_hz = (sep.model_config.freq_bins - 1) * sp.sample_rate / sp.n_fft
    out = {}
    for name, rule in list(rules(top_hz).items()) + [("(ceiling: the true ratio above 8 kHz)", None)]:
        e = {"v_hi": 0.0, "m_hi": 0.0, "ve_hi": 0.0, "err_hi": 0.0}
        v_est = np.zeros_like(mix)
        for c in range(mix.shape[1]):
            X = spectral.stft(mix[:, c], n_fft, hop)
            V = spectral.stft(voc[:, c], n_fft, hop)
            M = np.array(spectral.upsample_mask(masks[min(c, len(masks) - 1)], sp.sample_rate / sp.n_fft,
                                                sp.hop_seconds, X.shape[0], sr / n_fft, X.shape[1], hop / sr,
                                                sep.high_band_from_hz))
            f = np.arange(X.shape[0]) * sr / n_fft
            hi = f > top_hz
            if rule is None:
                A = X - V
                M[hi] = np.abs(V[hi]) / (np.abs(V[hi]) + np.abs(A[hi]) + 1e-8)
            else:
                M[hi] = rule(M[hi][0], f[hi])
            Ve = X * M
            e["v_hi"] += float(np.sum(np.abs(V[hi]) ** 2))
            e["m_hi"] += float(np.sum(np.abs(X[hi]) ** 2))
            e["ve_hi"] += float(np.sum(np.abs(Ve[hi]) ** 2))
            e["err_hi"] += float(np.sum(np.abs(V[hi] - Ve[hi]) ** 2))
            v_est[:, c] = spectral.istft(Ve, n_fft, hop, len(mix))
        acc, acc_est = mix - voc, mix - v_est
        out[name] = (e["v_hi"] / e["m_hi"], e["ve_hi"] / e["m_hi"], _db(e["v_hi"], e["err_hi"]),
                     _db(np.sum(voc ** 2), np.sum((voc - v_est) ** 2)), _db(np.sum(acc ** 2), np.sum((acc - acc_est) ** 2)))
    return out


def _db(num: float, den: float) -> float:
    return float(10 * np.log10((num + 1e-12) / (den + 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="default: the shipped models (their ensemble)")
    ap.add_argument("--no-previews", action="store_true", help="only the songs no model here trained on")
    ap.add_argument("--per-track", action="store_true")
    args = ap.parse_args()
    import sys

    sys.path.insert(0, str(ROOT / "scripts"))
    from unseen import previews

    sets = {"SiSEC 2011": ev.load_tracks(DATA / "sisec2011", "stems"),
            "MUSDB18-HQ": ev.load_tracks(DATA / "musdb-hq", "musdb-hq", "test")}
    if not args.no_previews:
        sets["14 previews"] = ev.select_tracks(ev.load_tracks(DATA / "musdb", "musdb", "train"), names=previews())
    sep = Separator(args.model)
    print(f"model: {args.model or 'shipped'}; share = vocals' share of the energy above 8 kHz (true -> estimated); "
          "band SDR above 8 kHz; vocals / accompaniment SDR of the whole signal (dB); mean over the set's tracks\n")
    everything = []
    for set_name, tracks in list(sets.items()) + [("all of them", None)]:
        results = [(t.name, measure(sep, t)) for t in tracks] if tracks is not None else everything
        everything += results if tracks is not None else []
        print(f"## {set_name} ({len(results)} tracks)")
        print("| rule above 8 kHz | share true -> est. | leaks | band SDR | vocals SDR | accomp. SDR |\n"
              "|---|---|---|---|---|---|")
        for rule in results[0][1]:
            r = np.array([res[rule] for _, res in results])
            leaks = int(np.sum(r[:, 1] > r[:, 0] + 0.05))  # the estimate holds 5 points more of the band than the truth
            print(f"| {rule} | {100 * r[:, 0].mean():.0f} % -> {100 * r[:, 1].mean():.0f} % | {leaks} | "
                  f"{r[:, 2].mean():.2f} | {r[:, 3].mean():.2f} | {r[:, 4].mean():.2f} |")
        if args.per_track and tracks is not None:
            base = "mean of the top half-octave (0.1.0)"
            for name, res in results:
                tr, es, b, v, a = res[base]
                print(f"  {name}: share {100 * tr:.0f} % -> {100 * es:.0f} %, band SDR {b:.2f}, vocals {v:.2f}, acc {a:.2f}")
        print()


if __name__ == "__main__":
    main()
