"""The front ends, defined once: what a network sees, how it learns, and what its output becomes.  Training's
examples (:mod:`vocalsep.sampler`), training's loss and validation SDR (:mod:`vocalsep.train`) and separation
(:mod:`vocalsep.separate`) all take the front end of the model's domain from :func:`for_model`, so validation
measures what ships.  :class:`FrontEnd` is what they share: every front end gives vocal masks on the model's
STFT grid, and the full-band stage below (:meth:`FrontEnd.full_band`) turns them into vocals at the audio's
own rate.  :class:`SpectralFrontEnd` (here) serves the spectrogram-mask networks, ``WaveFrontEnd``
(:mod:`vocalsep.wavefront`) the waveform ones.

The spectral front end:

Features: the magnitude STFT (:mod:`vocalsep.spectral`; ``n_fft`` / ``hop_length`` at ``sample_rate``) of
mono audio at the model's rate, its lowest ``freq_bins`` bins: (freq_bins, frames) float32.

Patches: ``frames`` STFT frames each, starting every ``patch_hop`` frames (a quarter overlap by default), the
spectrogram zero-padded to whole patches; each patch divided by its maximum (+1e-8) before the network.  A
training example is one patch; its vocals and accompaniment are divided by the mixture's maximum.

Loss: the mean absolute difference between ``mask x mixture`` and the vocals' magnitude, per patch (the
paper's L1 loss); with ``train.loss: both``, plus the same for ``(1 - mask) x mixture`` and the
accompaniment's magnitude.

Masks: the network's masks of overlapping patches are overlap-added with a Hann weight
(``spectral.patch_weight``), giving (freq_bins, frames) at the model's resolution.  They are interpolated
onto a full-resolution STFT at the audio's own rate (window ~0.1 s, ``full_band_stft_params``); above the
model's band each frame takes the mean mask m of its top half-octave raised to 1 + ``HIGH_BAND_SLOPE`` x
octaves above the band (``spectral.upsample_mask``).  Vocals = ISTFT(mask x mixture STFT), the mixture's phase.

Context: block streaming gives each block ``context_seconds()`` of audio on each side, half a patch.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from . import audio, spectral
from .config import ModelConfig, SpectralConfig
from .errors import VocalsepError
from .models.registry import get_arch

#: window of the full-resolution STFT that the mask is applied to, in seconds (rounded to a power of two
#: in samples): measured with oracle masks on MUSDB18-HQ (scripts/measure_full_band.py), ~0.1 s beats
#: the model's own 62.5 ms by 0.9 dB
FULL_BAND_WINDOW_S = 0.1

#: above the model's band the mask is m ** (1 + HIGH_BAND_SLOPE * octaves above it), m the mean mask of the
#: model's top half-octave: measured with model masks on 17 held-out stereo songs (scripts/measure_high_band.py,
#: docs/choices.md), slope 2 against 0 (0.1.0's rule): +0.5 and +0.9 dB vocals SDR in the band above 8 kHz
#: (two models), songs whose vocals take 5 points more of that band than the truth 3 -> 0 and 4 -> 2
HIGH_BAND_SLOPE = 2.0

#: added to a patch's maximum before dividing by it (a silent patch stays 0)
EPS = 1e-8


def full_band_stft_params(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) of the full-resolution STFT at ``sample_rate``: about ``FULL_BAND_WINDOW_S`` rounded
    to a power of two (4096 at 44.1 and 48 kHz, 2048 at 16 kHz), hop a quarter window."""
    n_fft = 2 ** max(6, round(math.log2(FULL_BAND_WINDOW_S * sample_rate)))
    return n_fft, n_fft // 4


def l1_loss(mask, mixture, vocals):
    """Per-patch loss, (batch,): mean |mask x mixture - vocals| over each (freq_bins, frames, 1) patch of
    the (batch, freq_bins, frames, 1) tensors.  Keras ops (imports Keras)."""
    from keras import ops

    return ops.mean(ops.abs(mask * mixture - vocals), axis=(1, 2, 3))


class FrontEnd:
    """What every front end shares: the model's STFT grid (``spec``; ``model.freq_bins`` bins), the full-band
    stage with its high-band rule, and separation of one piece.  A subclass serves the networks of one
    ``domain`` and defines :meth:`example` (with ``example_samples`` and :meth:`example_shapes`),
    :meth:`loss`, :meth:`context_seconds` and :meth:`masks`.

    high_band_from_hz: the mask above the model's band is the mean of its mask above this frequency (None:
        the model's top half-octave, from its Nyquist / sqrt(2)), raised to 1 + ``high_band_slope`` x octaves
        above the band (0: that mean everywhere above, as in 0.1.0).
    """

    #: the architectures' domain this front end serves, and what their networks see (for messages)
    domain, sees = "", ""

    def __init__(self, spec: SpectralConfig, model: ModelConfig, high_band_from_hz: float | None = None,
                 high_band_slope: float = HIGH_BAND_SLOPE):
        domain = get_arch(model.arch).domain
        if domain != self.domain:
            raise VocalsepError(f"model: architecture {model.arch!r} works on the {domain} domain, not on "
                                f"{self.sees}; the {self.domain} front end cannot run it")
        self.spec, self.model = spec, model
        self.freq_bins = model.freq_bins
        self.high_band_from_hz = high_band_from_hz if high_band_from_hz is not None else spec.sample_rate / 2 ** 1.5
        self.high_band_slope = float(high_band_slope)
        #: samples at the model's rate of the vocals and accompaniment that make one training example
        self.example_samples = 0

    def training_loss(self, name: str = "vocals") -> Callable:
        """The loss ``train.loss`` = ``name`` names, (output, mixture, vocals, accompaniment) -> (batch,), from
        the front end's vocals loss :meth:`loss` (output, mixture, vocals) -> (batch,): "vocals" is that loss;
        "both" (spectral networks only) adds the same loss of ``1 - mask`` against the accompaniment.  Spectral
        tensors: the mask in [0, 1] and the magnitudes divided by the patch mixture's maximum, each
        (batch, freq_bins, frames, 1); waveform: (batch, samples, 1) at the model's rate, for which "both"
        would be the vocals' loss again (mixture = vocals + accompaniment), so it has none."""
        loss = self.loss
        if name == "vocals":
            return lambda out, mix, voc, acc: loss(out, mix, voc)
        if name == "both" and self.domain == "spectral":
            return lambda out, mix, voc, acc: loss(out, mix, voc) + loss(1.0 - out, mix, acc)
        raise VocalsepError(f"train.loss = {name!r}: expected 'vocals'"
                            + (" or 'both'" if self.domain == "spectral" else f" for a {self.domain} network"))

    def example_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(network input, target) shapes of one training example, without the batch axis."""
        return self.model.io_shapes()

    def block_masks(self, x: np.ndarray, sr: int, run: Callable[[np.ndarray], np.ndarray],
                    source: object = "model") -> np.ndarray:
        """The subclass's ``masks`` of audio x (samples, channels) float32 at rate ``sr``, resampled to the
        model's rate: (channels, freq_bins, frames) float32 in [0, 1] on the model's STFT grid."""
        y = audio.resample(x, sr, self.spec.sample_rate).reshape(-1, x.shape[1])
        return self.masks(y, run, source)

    def full_band(self, x: np.ndarray, masks: np.ndarray, sr: int) -> np.ndarray:
        """Vocals of audio x (samples, channels) float32 at ``sr``: its full-resolution STFT x the masks
        (channels or 1, freq_bins, frames) mapped onto that STFT's grid, inverted.  Returns x's shape."""
        sp = self.spec
        n_fft, hop = full_band_stft_params(sr)
        vocals = np.empty_like(x)
        full = {}  # mask index -> mask on the full-resolution grid (one for all channels with one mask)
        for c in range(x.shape[1]):
            X = spectral.stft(x[:, c], n_fft, hop)
            k = min(c, len(masks) - 1)
            if k not in full:
                full[k] = spectral.upsample_mask(
                    masks[k], sp.sample_rate / sp.n_fft, sp.hop_seconds, X.shape[0], sr / n_fft, X.shape[1],
                    hop / sr, self.high_band_from_hz, self.high_band_slope,
                )
            X *= full[k]  # both are frames-major in memory: one pass, and the inverse FFTs read it in order
            vocals[:, c] = spectral.istft(X, n_fft, hop, len(x))
        return vocals

    def separate(self, x: np.ndarray, sr: int, run: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Vocals of audio x (samples, channels) float32 at ``sr`` in one piece (no blocks): a mask per channel
        (give the mid, (samples, 1), for the mid mask), then :meth:`full_band`.  Returns x's shape."""
        return self.full_band(x, self.block_masks(x, sr, run), sr)


class SpectralFrontEnd(FrontEnd):
    """The front end of a spectral network of settings ``model`` on the STFT ``spec``.

    patch_overlap: share of a patch that overlaps the next one at inference (0.25: a patch every 3/4 patch).
    high_band_from_hz, high_band_slope: the full-band stage's rule above the model's band (:class:`FrontEnd`).
    """

    domain, sees = "spectral", "spectrogram patches"

    def __init__(self, spec: SpectralConfig, model: ModelConfig, patch_overlap: float = 0.25,
                 high_band_from_hz: float | None = None, high_band_slope: float = HIGH_BAND_SLOPE):
        if not 0 <= patch_overlap < 1:
            raise VocalsepError(f"patch_overlap must be in [0, 1), not {patch_overlap}")
        super().__init__(spec, model, high_band_from_hz, high_band_slope)
        self.frames = model.frames
        #: frames from one patch's start to the next's at inference
        self.patch_hop = max(1, int(round(model.frames * (1 - patch_overlap))))
        #: samples whose centred STFT has exactly ``frames`` frames
        self.example_samples = (model.frames - 1) * spec.hop_length

    @staticmethod
    def loss(mask, mixture, vocals):
        """The training loss per example, (batch,): :func:`l1_loss`."""
        return l1_loss(mask, mixture, vocals)

    # -- features and training examples -------------------------------------------------------------
    def features(self, x: np.ndarray) -> np.ndarray:
        """Magnitudes (freq_bins, 1 + samples // hop_length) float32 of mono audio x (samples,) at the model rate."""
        return np.abs(spectral.stft(x, self.spec.n_fft, self.spec.hop_length)[:self.freq_bins])

    def example(self, vocals: np.ndarray, accompaniment: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A training example from the two sources of one patch, each (samples,) float32 at the model rate
        (samples = (frames - 1) x hop_length): the (mixture, vocals, accompaniment) magnitudes, each
        (freq_bins, frames) float32, all divided by the mixture's maximum (+ ``EPS``)."""
        mix = self.features(vocals + accompaniment)
        scale = mix.max() + EPS
        return mix / scale, self.features(vocals) / scale, self.features(accompaniment) / scale

    # -- inference -----------------------------------------------------------------------------------
    def context_seconds(self) -> float:
        """Seconds of audio a streamed block needs on each side so that its own part is masked as in one
        piece, near enough: half a patch (the patches about a frame reach that far)."""
        return 0.5 * self.frames * self.spec.hop_length / self.spec.sample_rate

    def patches(self, mags: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
        """Normalised patches of the spectrograms ``mags`` (each (freq_bins, T), one per channel): returns
        ((channels x len(starts), freq_bins, frames, 1) float32, channel-major; the patches' start frames)."""
        F, P = self.freq_bins, self.frames
        T = mags[0].shape[1]
        starts = spectral.patch_starts(T, P, self.patch_hop)
        padded_T = starts[-1] + P
        out = np.zeros((len(mags) * len(starts), F, P, 1), dtype=np.float32)
        for c, m in enumerate(mags):
            mp = np.zeros((F, padded_T), dtype=np.float32)
            mp[:, :T] = m
            for j, s in enumerate(starts):
                p = mp[:, s:s + P]
                out[c * len(starts) + j, :, :, 0] = p / (p.max() + EPS)
        return out, starts

    def overlap_add(self, masks: np.ndarray, starts: list[int], frames: int) -> np.ndarray:
        """The patches' masks (channels x len(starts), freq_bins, frames) overlap-added with a Hann weight:
        (channels, freq_bins, ``frames``) float32."""
        P = self.frames
        w = spectral.patch_weight(P)
        padded_T = starts[-1] + P
        channels = len(masks) // len(starts)
        out = np.zeros((channels, self.freq_bins, padded_T), dtype=np.float32)
        norm = np.zeros(padded_T, dtype=np.float32)
        for s in starts:
            norm[s:s + P] += w
        for c in range(channels):
            for j, s in enumerate(starts):
                out[c, :, s:s + P] += masks[c * len(starts) + j] * w
        return out[:, :, :frames] / norm[:frames]

    def masks(self, x_model: np.ndarray, run: Callable[[np.ndarray], np.ndarray], source: object = "model"
              ) -> np.ndarray:
        """Vocal masks of audio at the model's rate, each channel on its own.

        x_model: (samples, channels) float32 at ``spec.sample_rate``; ``run``: a runner (patches -> masks).
        Returns (channels, freq_bins, frames) float32 in [0, 1]: bin k at k x sample_rate / n_fft Hz, frame t
        at t x hop_length samples.  NaN in the audio or the network's output: VocalsepError (the latter
        naming ``source``, the model file).
        """
        if not np.isfinite(x_model).all():  # (else the network's NaN output below would blame the model)
            raise VocalsepError("audio contains NaN or infinite samples")
        mags = [self.features(x_model[:, c]) for c in range(x_model.shape[1])]
        patches, starts = self.patches(mags)
        out = run(patches)[..., 0]
        if not np.isfinite(out).all():
            raise VocalsepError(f"{source}: the network's output is NaN or infinite: the model file is "
                                "damaged or its training diverged")
        return self.overlap_add(out, starts, mags[0].shape[1])


def for_model(spec: SpectralConfig, model: ModelConfig, patch_overlap: float = 0.25,
              high_band_from_hz: float | None = None, high_band_slope: float = HIGH_BAND_SLOPE) -> FrontEnd:
    """The front end of the domain of ``model``'s architecture: :class:`SpectralFrontEnd` or
    :class:`vocalsep.wavefront.WaveFrontEnd` (which has no patches: ``patch_overlap`` is the spectral one's)."""
    if get_arch(model.arch).domain == "waveform":
        from .wavefront import WaveFrontEnd

        return WaveFrontEnd(spec, model, high_band_from_hz, high_band_slope)
    return SpectralFrontEnd(spec, model, patch_overlap, high_band_from_hz, high_band_slope)
