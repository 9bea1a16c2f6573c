"""Post-processing candidates, as Separator subclasses, for scripts/unseen.py --variant NAME (issue 14, item 4).

Experiments, not options of vocalsep: one becomes an option only if it gains on the unseen-voice validation at
a cost in speed that is measured and stated (docs/choices.md).

``power-P``   the model's masks raised to P (< 1 softer, > 1 sharper);
``shifts-N``  test-time augmentation as in Demucs: the masks of the input and of N - 1 copies delayed by a
              fraction of a patch hop, realigned and averaged (N times the network's time);
``slope-S``   the band above the model's: its top half-octave's mean mask m raised to 1 + S x octaves above
              it (vocalsep.separate.HIGH_BAND_SLOPE is the default; slope-0 is 0.1.0's rule);
``ensemble-RUN[+RUN...]``  the masks of this model and of the same fold's model of each other run (their
              mean; a run of scripts/unseen.py, e.g. another seed): an ensemble of 1 + len(RUN) networks,
              as ``Separator([model, ...])`` and ``vocalsep separate -m A -m B`` make it.
``wiener``    a multichannel Wiener filter (norbert, one EM iteration, as Open-Unmix does): the mask gives
              each channel's vocal and accompaniment magnitudes, norbert's EM then uses the stereo image
              (the spatial covariance of each source) to estimate both from the mixture.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vocalsep import spectral
from vocalsep.separate import Separator, full_band_stft_params


class Variant(Separator):
    def __init__(self, *args, power: float = 1.0, shifts: int = 1, wiener: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.power, self.shifts, self.wiener = power, shifts, wiener

    def model_masks(self, x_model: np.ndarray) -> np.ndarray:
        masks = super().model_masks(x_model)
        if self.shifts > 1:
            hop = self.spectral.hop_length
            total = masks.copy()
            for k in range(1, self.shifts):
                frames = max(1, round(k * self.patch_hop / self.shifts))  # delay by a fraction of the patch hop
                pad = np.zeros((frames * hop, x_model.shape[1]), np.float32)
                m = super().model_masks(np.concatenate([pad, x_model]))
                total += m[:, :, frames:frames + masks.shape[2]]
            masks = total / self.shifts
        return masks ** self.power if self.power != 1.0 else masks

    def _block_vocals(self, x: np.ndarray, masks: np.ndarray, sr: int) -> np.ndarray:
        if not self.wiener or x.shape[1] < 2:
            return super()._block_vocals(x, masks, sr)
        import norbert

        sp = self.spectral
        n_fft, hop = full_band_stft_params(sr)
        X = np.stack([spectral.stft(x[:, c], n_fft, hop) for c in range(x.shape[1])], axis=-1)  # (bins, frames, ch)
        M = spectral.upsample_mask(masks[0], sp.sample_rate / sp.n_fft, sp.hop_seconds, X.shape[0], sr / n_fft,
                                   X.shape[1], hop / sr, self.high_band_from_hz, self.high_band_slope)
        mag = np.abs(X)
        v = np.stack([M[..., None] * mag, (1 - M[..., None]) * mag], axis=-1)  # (bins, frames, ch, 2)
        Y = norbert.wiener(v.transpose(1, 0, 2, 3).astype(np.float64), X.transpose(1, 0, 2).astype(np.complex128),
                           iterations=1)
        return np.stack([spectral.istft(np.ascontiguousarray(Y[:, :, c, 0].T).astype(np.complex64), n_fft, hop, len(x))
                         for c in range(x.shape[1])], axis=1).astype(np.float32)


def make(name: str, model) -> Separator:
    """The Separator of variant ``name`` (``base``, ``power-0.7``, ``shifts-2``, ``wiener``...)."""
    if name == "base":
        return Separator(model)
    if name.startswith("power-"):
        return Variant(model, power=float(name.split("-", 1)[1]))
    if name.startswith("shifts-"):
        return Variant(model, shifts=int(name.split("-", 1)[1]))
    if name.startswith("slope-"):
        return Separator(model, high_band_slope=float(name.split("-", 1)[1]))
    if name == "wiener":
        return Variant(model, wiener=True)
    if name.startswith("ensemble-"):  # model: RUNS/NAME/FOLD/model.vsep
        runs, fold = Path(model).parents[2], Path(model).parent.name
        return Separator([model] + [runs / run / fold / "model.vsep" for run in name.split("-", 1)[1].split("+")])
    raise SystemExit(f"unknown variant {name!r}")
