#!/usr/bin/env python3
"""How to treat the band above the model's Nyquist: measured with oracle masks.

The network only sees its own band (0-8 kHz for the default 16384 Hz model).  Separation interpolates its mask onto the full-resolution STFT;
above it some rule must fill in.  This script takes the ideal ratio mask |V| / (|V| + |A|) at the
model's resolution (what a perfect network would output), maps it to the full band with each rule, and
prints the vocals / accompaniment SDR (global energy ratio, dB) on the MUSDB18-HQ track, beside the
oracle mask computed at full resolution (the ceiling).

    python scripts/measure_full_band.py [--track DIR] [--config YAML]
    python scripts/measure_full_band.py --compare-rates      # the same ceiling for other model STFTs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vocalsep import audio, spectral
from vocalsep.config import load_config
from vocalsep.separate import full_band_stft_params

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sdr(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref ** 2) / (np.sum((ref - est) ** 2) + 1e-12)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", type=Path, default=Path(__file__).resolve().parents[1] / "configs" / "unet.yaml")
    ap.add_argument("--track", type=Path, default=DATA / "musdb-hq" / "test" / "AM Contra - Heart Peripheral")
    ap.add_argument("--compare-rates", action="store_true")
    args = ap.parse_args()
    if args.compare_rates:
        return compare_rates(args.track)
    v, sr = audio.read(args.track / "vocals.wav")
    acc = sum(audio.read(args.track / f"{s}.wav")[0] for s in ("drums", "bass", "other"))
    mix = v + acc
    sp = load_config(args.config).spectral
    n_fft, hop = full_band_stft_params(sr)
    nyq = sp.sample_rate / 2
    top = (sp.n_fft // 2 - 1) * sp.sample_rate / sp.n_fft
    rules = {"top-octave mean": nyq / 2, "top half-octave mean": nyq / 2 ** 0.5,
             "top bin only": top, "all to accompaniment (0)": None, "half and half (0.5)": 0.5,
             "mean over the model's whole band": 0.0}
    results = {}
    for name, rule in rules.items():
        ve = np.zeros_like(mix)
        for c in range(mix.shape[1]):
            vm = audio.resample(v[:, c], sr, sp.sample_rate)
            am = audio.resample(acc[:, c], sr, sp.sample_rate)
            V = np.abs(spectral.stft(vm, sp.n_fft, sp.hop_length))[: sp.n_fft // 2]
            A = np.abs(spectral.stft(am, sp.n_fft, sp.hop_length))[: sp.n_fft // 2]
            m = V / (V + A + 1e-8)
            X = spectral.stft(mix[:, c], n_fft, hop)
            hf = nyq / 2 if rule is None or rule == 0.5 else rule
            M = spectral.upsample_mask(m, sp.sample_rate / sp.n_fft, sp.hop_seconds, X.shape[0], sr / n_fft,
                                       X.shape[1], hop / sr, hf)
            above = np.arange(X.shape[0]) * sr / n_fft > top
            if rule is None:
                M[above] = 0.0
            elif rule == 0.5:
                M[above] = 0.5
            ve[:, c] = spectral.istft(X * M, n_fft, hop, len(mix))
        results[name] = (sdr(v, ve), sdr(acc, mix - ve))
    # ceiling: oracle ratio mask at full resolution
    ve = np.zeros_like(mix)
    for c in range(mix.shape[1]):
        V = np.abs(spectral.stft(v[:, c], n_fft, hop))
        A = np.abs(spectral.stft(acc[:, c], n_fft, hop))
        ve[:, c] = spectral.istft(spectral.stft(mix[:, c], n_fft, hop) * V / (V + A + 1e-8), n_fft, hop, len(mix))
    results["(ceiling) oracle mask at full resolution"] = (sdr(v, ve), sdr(acc, mix - ve))
    # where the gap comes from: the full-resolution oracle below 4 kHz, the top-octave rule above
    ve = np.zeros_like(mix)
    for c in range(mix.shape[1]):
        V = np.abs(spectral.stft(v[:, c], n_fft, hop))
        A = np.abs(spectral.stft(acc[:, c], n_fft, hop))
        M = V / (V + A + 1e-8)
        f = np.arange(M.shape[0]) * sr / n_fft
        lo = (f >= nyq / 2) & (f <= top)
        M[f > top] = M[lo].mean(axis=0)
        ve[:, c] = spectral.istft(spectral.stft(mix[:, c], n_fft, hop) * M, n_fft, hop, len(mix))
    results["(diagnostic) full-res oracle in the model band"] = (sdr(v, ve), sdr(acc, mix - ve))
    print(f"model: {sp}\ntrack: {args.track.name}; full-band STFT {n_fft}/{hop} at {sr} Hz; SDR in dB (global)")
    print(f"{'rule above the model band':45s} {'vocals':>7s} {'accomp':>7s}")
    for name, (a, b) in results.items():
        print(f"{name:45s} {a:7.2f} {b:7.2f}")


def compare_rates(track: Path) -> None:
    """Oracle-mask ceiling (top half-octave rule, 0.1 s full-band STFT) for several model STFTs."""
    from vocalsep.config import SpectralConfig

    v, sr = audio.read(track / "vocals.wav")
    acc = sum(audio.read(track / f"{s}.wav")[0] for s in ("drums", "bass", "other"))
    mix = v + acc
    n_fft, hop = full_band_stft_params(sr)
    print(f"track: {track.name}; oracle ratio mask at the model's resolution, full-band STFT {n_fft}/{hop}")
    print(f"{'model STFT (rate, window, hop)':34s} {'vocals':>7s} {'accomp':>7s} {'frames/s':>8s}")
    for rate, win, hp in [(8192, 1024, 768), (8192, 1024, 256), (11025, 1024, 256), (16384, 1024, 512),
                          (16384, 1024, 256), (16384, 2048, 512), (22050, 2048, 512)]:
        sp = SpectralConfig(rate, win, hp)
        F = win // 2
        ve = np.zeros_like(mix)
        for c in range(mix.shape[1]):
            V = np.abs(spectral.stft(audio.resample(v[:, c], sr, rate), win, hp))[:F]
            A = np.abs(spectral.stft(audio.resample(acc[:, c], sr, rate), win, hp))[:F]
            X = spectral.stft(mix[:, c], n_fft, hop)
            M = spectral.upsample_mask(V / (V + A + 1e-8), rate / win, sp.hop_seconds, X.shape[0], sr / n_fft,
                                       X.shape[1], hop / sr, rate / 2 ** 1.5)
            ve[:, c] = spectral.istft(X * M, n_fft, hop, len(mix))
        print(f"{rate:6d} Hz, {win:5d}, {hp:4d}{'':16s} {sdr(v, ve):7.2f} {sdr(acc, mix - ve):7.2f} {rate / hp:8.1f}")


if __name__ == "__main__":
    main()
