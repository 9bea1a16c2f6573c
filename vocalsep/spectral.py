"""The STFT/ISTFT pair, shared by training and separation, and the maps between model and audio grids.

Conventions (the same as ``librosa.stft(center=True, pad_mode="constant")``):
a periodic Hann window of ``n_fft`` samples, frames centred on ``t * hop`` (the signal is zero-padded by
``n_fft // 2`` on both sides), spectra of shape ``(n_fft // 2 + 1, frames)``.  Everything is float32 /
complex64.
"""

from __future__ import annotations

import functools

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

    spec: (n_fft // 2 + 1, frames) complex.  Returns (length,) float32.  Fastest when ``spec.T`` is
    C-contiguous (as :func:`stft`'s output and products of it are): the inverse FFTs run frame by frame.
    """
    frames = spec.shape[1]
    pad = n_fft // 2
    y = scipy.fft.irfft(spec.T, n=n_fft, axis=-1, workers=FFT_WORKERS).astype(np.float32, copy=False)
    y *= hann(n_fft)
    out = _overlap_add(y, hop)[pad:pad + length]
    out *= _inverse_window_sum(n_fft, hop, frames)[pad:pad + length]
    if len(out) < length:
        out = np.pad(out, (0, length - len(out)))
    return out


def _overlap_add(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum of (n, width) frames placed every ``hop`` samples: shape ((n - 1) * hop + width rounded up to
    whole hops,) float32.  Done in blocks of ``hop`` samples: frame j's k-th block lands on block j + k."""
    n, width = frames.shape
    step = -(-width // hop)
    if step * hop != width:
        frames = np.pad(frames, ((0, 0), (0, step * hop - width)))
    chunks = frames.reshape(n, step, hop)
    out = np.zeros((n + step - 1, hop), dtype=np.float32)
    for k in range(step):
        out[k:k + n] += chunks[:, k]
    return out.ravel()


@functools.lru_cache(maxsize=8)
def _inverse_window_sum(n_fft: int, hop: int, frames: int) -> np.ndarray:
    """1 / (sum of the squared windows overlapping each sample) of a ``frames``-frame overlap-add (the
    shape of :func:`_overlap_add`'s), 1 where that sum is ~0 (read-only, cached: consecutive blocks of a
    song share it)."""
    norm = _overlap_add(np.broadcast_to(hann(n_fft) ** 2, (frames, n_fft)), hop)
    inv = np.ones_like(norm)
    good = norm > 1e-8
    inv[good] = 1.0 / norm[good]
    inv.flags.writeable = False
    return inv


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
    high_band_slope: float = 0.0,
) -> np.ndarray:
    """Map a mask on the model's grid onto the grid of a full-resolution STFT.

    mask: (model_bins, model_frames) in [0, 1]; model bin k is at ``k * model_bin_hz`` Hz and model frame
    t at ``t * model_hop_s`` seconds.  Returns (n_bins, n_out_frames) float32 (the transpose of a
    C-contiguous array, like :func:`stft`'s output) for bins at ``k * bin_hz`` and frames at ``t * hop_s``.
    Linear interpolation in time and frequency.  Above the model's band, each frame's mask is
    ``m ** (1 + high_band_slope * log2(f / top))``, where m is the mean of its mask over [high_band_from_hz,
    top of the model's band] and top that band's highest frequency: the voice's high partials and sibilants
    follow its activity at the top of the band the model sees, and with a slope > 0 an uncertain mask fades
    with each octave above it (cymbals and hi-hats fill that band) while a sure one (m near 1) stays.
    """
    model_bins, model_frames = mask.shape
    # time: fractional model frame for each output frame
    t = np.arange(n_out_frames) * (hop_s / model_hop_s)
    t = np.clip(t, 0, model_frames - 1)
    t0 = np.floor(t).astype(np.int64)
    t1 = np.minimum(t0 + 1, model_frames - 1)
    wt = (t - t0).astype(np.float32)[:, None]
    mask_t = np.ascontiguousarray(mask.T, dtype=np.float32)
    m_t = mask_t[t0] * (1 - wt) + mask_t[t1] * wt  # (n_out_frames, model_bins)

    top_hz = (model_bins - 1) * model_bin_hz
    f = np.arange(n_bins) * (bin_hz / model_bin_hz)
    inside = int(np.count_nonzero(f <= model_bins - 1))  # the first `inside` bins are in the model's band
    fi = f[:inside]
    f0 = np.floor(fi).astype(np.int64)
    f1 = np.minimum(f0 + 1, model_bins - 1)
    wf = (fi - f0).astype(np.float32)
    # built frames-major, (n_out_frames, n_bins), so that it multiplies stft()'s output in its memory order
    out = np.empty((n_out_frames, n_bins), dtype=np.float32)
    out[:, :inside] = m_t[:, f0] * (1 - wf) + m_t[:, f1] * wf
    if inside < n_bins:
        lo = int(np.ceil(min(high_band_from_hz, top_hz) / model_bin_hz))
        m_bar = m_t[:, lo:].mean(axis=1, keepdims=True)  # (n_out_frames, 1)
        if high_band_slope:
            octaves = np.log2(np.arange(inside, n_bins) * bin_hz / top_hz).astype(np.float32)
            # m ** e as exp(e * log m): one log per frame, one exp per bin (m = 0 stays 0)
            out[:, inside:] = np.exp((1 + high_band_slope * octaves)[None, :] * np.log(np.maximum(m_bar, 1e-30)))
        else:
            out[:, inside:] = m_bar
    return out.T
