"""The STFT/ISTFT pair, shared by training and separation, and the maps between model and audio grids.

Conventions (the same as ``librosa.stft(center=True, pad_mode="constant")``):
a periodic Hann window of ``n_fft`` samples, frames centred on ``t * hop`` (the signal is zero-padded by
``n_fft // 2`` on both sides), spectra of shape ``(n_fft // 2 + 1, frames)``.  Everything is float32 /
complex64.
"""

from __future__ import annotations

import numpy as np
import scipy.fft

# threads for FFTs (scipy's pocketfft; numpy's is single-threaded and about 5x slower here)
FFT_WORKERS = -1


def hann(n: int) -> np.ndarray:
    """Periodic Hann window, shape (n,), float32."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)).astype(np.float32)


def n_frames(n_samples: int, hop: int) -> int:
    """Frames of a centred STFT of ``n_samples`` samples."""
    return 1 + n_samples // hop


def stft(x: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Short-time Fourier transform of a mono signal.

    x: (samples,) float.  Returns (n_fft // 2 + 1, 1 + samples // hop) complex64.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise ValueError(f"stft expects a 1-D signal, got shape {x.shape}")
    pad = n_fft // 2
    frames = n_frames(len(x), hop)
    # zero padding, plus enough at the end that the last frame is complete
    total = (frames - 1) * hop + n_fft
    padded = np.zeros(total, dtype=np.float32)
    n = min(len(x), total - pad)
    padded[pad:pad + n] = x[:n]
    framed = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop][:frames]
    return scipy.fft.rfft(framed * hann(n_fft), axis=-1, workers=FFT_WORKERS).T.astype(np.complex64, copy=False)


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of :func:`stft` by windowed overlap-add.

    spec: (n_fft // 2 + 1, frames) complex.  Returns (length,) float32.
    """
    window = hann(n_fft)
    frames = spec.shape[1]
    pad = n_fft // 2
    # overlap-add in blocks of `hop` samples: frame j's k-th block of hop samples lands on block j + k
    step = -(-n_fft // hop)
    span = step * hop
    chunks = np.zeros((frames, span), dtype=np.float32)
    chunks[:, :n_fft] = scipy.fft.irfft(spec.T, n=n_fft, axis=-1, workers=FFT_WORKERS) * window
    chunks = chunks.reshape(frames, step, hop)
    win_sq = np.zeros(span, dtype=np.float32)
    win_sq[:n_fft] = window * window
    win_sq = win_sq.reshape(step, hop)
    out = np.zeros((frames + step - 1, hop), dtype=np.float32)
    norm = np.zeros((frames + step - 1, hop), dtype=np.float32)
    for k in range(step):
        out[k:k + frames] += chunks[:, k]
        norm[k:k + frames] += win_sq[k]
    out, norm = out.ravel(), norm.ravel()
    out = out[pad:pad + length]
    norm = norm[pad:pad + length]
    good = norm > 1e-8
    out[good] /= norm[good]
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out


def patch_starts(frames: int, patch: int, hop: int) -> list[int]:
    """Start frames of patches of ``patch`` frames every ``hop`` frames that cover ``frames`` frames."""
    if frames <= patch:
        return [0]
    starts = list(range(0, frames - patch + 1, hop))
    if starts[-1] + patch < frames:
        starts.append(starts[-1] + hop)
    return starts


def patch_weight(patch: int) -> np.ndarray:
    """Weights (patch,) for overlap-adding masks of overlapping patches: a Hann bump that never reaches 0."""
    return (0.5 - 0.5 * np.cos(2 * np.pi * (np.arange(patch) + 0.5) / patch)).astype(np.float32)


def upsample_mask(
    mask: np.ndarray,
    model_bin_hz: float,
    model_hop_s: float,
    n_bins: int,
    bin_hz: float,
    n_out_frames: int,
    hop_s: float,
    high_band_from_hz: float,
) -> np.ndarray:
    """Map a mask on the model's grid onto the grid of a full-resolution STFT.

    mask: (model_bins, model_frames) in [0, 1]; model bin k is at ``k * model_bin_hz`` Hz and model frame
    t at ``t * model_hop_s`` seconds.  Returns (n_bins, n_out_frames) float32 for bins at ``k * bin_hz``
    and frames at ``t * hop_s``.  Linear interpolation in time and frequency.  Above the model's band,
    each frame's mask is the mean of its mask over [high_band_from_hz, top of the model's band]: the voice's
    high partials and sibilants follow its activity at the top of the band the model sees.
    """
    model_bins, model_frames = mask.shape
    # time: fractional model frame for each output frame
    t = np.arange(n_out_frames) * (hop_s / model_hop_s)
    t = np.clip(t, 0, model_frames - 1)
    t0 = np.floor(t).astype(np.int64)
    t1 = np.minimum(t0 + 1, model_frames - 1)
    wt = (t - t0).astype(np.float32)
    m_t = mask[:, t0] * (1 - wt) + mask[:, t1] * wt  # (model_bins, n_out_frames)

    top_hz = (model_bins - 1) * model_bin_hz
    f = np.arange(n_bins) * (bin_hz / model_bin_hz)
    inside = f <= model_bins - 1
    fi = f[inside]
    f0 = np.floor(fi).astype(np.int64)
    f1 = np.minimum(f0 + 1, model_bins - 1)
    wf = (fi - f0).astype(np.float32)[:, None]
    out = np.empty((n_bins, n_out_frames), dtype=np.float32)
    out[inside] = m_t[f0] * (1 - wf) + m_t[f1] * wf
    if not inside.all():
        lo = int(np.ceil(min(high_band_from_hz, top_hz) / model_bin_hz))
        out[~inside] = m_t[lo:].mean(axis=0, keepdims=True)
    return out
