"""The waveform front end: what a waveform network (the Wave-U-Net, :mod:`vocalsep.models.waveunet`) sees, how
it learns, and how its output joins the spectral models' full-band stage.  It has the interface of
:class:`vocalsep.frontend.SpectralFrontEnd` and shares everything after the network with it
(:class:`vocalsep.frontend.FrontEnd`): the block streaming, the full-band stage with its high-band rule, the
writing.

Input and output: a network call takes ``input_samples`` of mono audio at the model's rate
(``spectral.sample_rate``) and gives the vocals of the middle ``output_samples`` (valid convolutions: the
``context`` = (input - output) / 2 samples on each side are what it needs to see; ``model.io_shapes()``).

Normalisation: none, as in the paper: the network sees the waveform as it is (full scale 1.0); training's
random gain per source (``data.gain_db``) gives it levels to learn from.

Training example: vocals and accompaniment of ``input_samples`` each; the network's input is their sum, its
target the vocals' middle ``output_samples`` (and the accompaniment's, returned for the interface).

Loss: the mean squared error per example, as the paper's.  (With the difference output layer the paper's
loss over both sources, vocals and mixture - vocals, is twice this one on the same middle part, since
mixture = vocals + accompaniment there: the same gradient direction.)

Separation of a block: each channel at the model's rate is padded by ``context`` zeros at the start and
cut into network inputs every ``output_samples`` samples, whose outputs tile the vocals end to end.  The
model-rate vocals estimate v then becomes a ratio mask on the model's STFT grid (``spectral.n_fft``,
``hop_length``, the lowest ``model.freq_bins`` bins): min(1, |STFT v| / |STFT x|), the form the spectral
models' masks have, which the shared full-band stage maps onto the full-resolution STFT at the audio's own
rate, with the high-band rule above the model's Nyquist; vocals = ISTFT(mask x mixture STFT).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from . import spectral
from .config import ModelConfig, SpectralConfig
from .errors import VocalsepError
from .frontend import FULL_BAND_WINDOW_S, HIGH_BAND_SLOPE, FrontEnd

#: |STFT x| below this is taken as this in the ratio mask (a silent bin's mask is then ~0, not 0 / 0)
MASK_FLOOR = 1e-7


def mse_loss(vocals_est, mixture, vocals):
    """Per-example loss, (batch,): the mean of (vocals_est - vocals)^2 over each (samples, 1) example of the
    (batch, samples, 1) tensors (``mixture``, the network's input, is not used).  Keras ops (imports Keras)."""
    from keras import ops

    return ops.mean(ops.square(vocals_est - vocals), axis=(1, 2))


class WaveFrontEnd(FrontEnd):
    """The front end of a waveform network of settings ``model`` at ``spec.sample_rate``.

    high_band_from_hz, high_band_slope: the full-band stage's rule above the model's band (as the spectral
    front end's).  No patches, so no ``patch_overlap``: network calls meet end to end, each with its context.
    """

    domain, sees = "waveform", "waveforms"

    def __init__(self, spec: SpectralConfig, model: ModelConfig, high_band_from_hz: float | None = None,
                 high_band_slope: float = HIGH_BAND_SLOPE):
        super().__init__(spec, model, high_band_from_hz, high_band_slope)
        (self.input_samples, _), (self.output_samples, _) = model.io_shapes()
        #: samples the network needs on each side of its output
        self.context = (self.input_samples - self.output_samples) // 2
        self.example_samples = self.input_samples

    loss = staticmethod(mse_loss)

    # -- training examples ---------------------------------------------------------------------------
    def example(self, vocals: np.ndarray, accompaniment: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A training example from the two sources, each (input_samples,) float32 at the model rate: the
        mixture (input_samples,), and the vocals and accompaniment of its middle, (output_samples,) each."""
        mid = slice(self.context, self.context + self.output_samples)
        return (vocals + accompaniment).astype(np.float32), vocals[mid].copy(), accompaniment[mid].copy()

    # -- inference -----------------------------------------------------------------------------------
    def context_seconds(self) -> float:
        """Seconds of audio a streamed block needs on each side so that its own part is separated as in one
        piece, near enough: the network's context (4.0 s for the paper's 147443 samples in, 16389 out at
        16384 Hz), plus a window of the mask's STFT and one of the full-band stage's (4.16 s in all)."""
        return (self.context + self.spec.n_fft) / self.spec.sample_rate + FULL_BAND_WINDOW_S

    def inputs(self, x: np.ndarray) -> np.ndarray:
        """Network inputs of mono audio x (samples,) at the model rate: (ceil(samples / output_samples),
        input_samples, 1) float32; input j's output is the vocals of x[j x output_samples:(j + 1) x output_samples]
        (zeros before and after x)."""
        n = max(1, -(-len(x) // self.output_samples))
        padded = np.zeros((n - 1) * self.output_samples + self.input_samples, np.float32)
        padded[self.context:self.context + len(x)] = x
        win = np.lib.stride_tricks.sliding_window_view(padded, self.input_samples)[::self.output_samples][:n]
        return np.ascontiguousarray(win)[..., None]

    def estimate(self, x_model: np.ndarray, run: Callable[[np.ndarray], np.ndarray], source: object = "model"
                 ) -> np.ndarray:
        """The network's vocals of audio x_model (samples, channels) float32 at the model's rate, each channel on
        its own: (channels, samples) float32.  ``run``: a runner ((n, input_samples, 1) -> (n, output_samples,
        1)).  NaN in the audio or in the network's output: VocalsepError (the latter naming ``source``)."""
        if not np.isfinite(x_model).all():
            raise VocalsepError("audio contains NaN or infinite samples")
        n, channels = x_model.shape
        batches = [self.inputs(x_model[:, c]) for c in range(channels)]
        out = run(np.concatenate(batches))[..., 0]
        if not np.isfinite(out).all():
            raise VocalsepError(f"{source}: the network's output is NaN or infinite: the model file is "
                                "damaged or its training diverged")
        return out.reshape(channels, -1)[:, :n]

    def masks(self, x_model: np.ndarray, run: Callable[[np.ndarray], np.ndarray], source: object = "model"
              ) -> np.ndarray:
        """Vocal masks of audio x_model (samples, channels) float32 at the model's rate, each channel on its
        own: the ratio min(1, |STFT v| / |STFT x|) of :meth:`estimate`'s vocals v to the mixture x on the
        model's STFT grid, (channels, freq_bins, 1 + samples // hop_length) float32 in [0, 1] (bin k at
        k x sample_rate / n_fft Hz, frame t at t x hop_length samples), as the spectral front end's masks."""
        est = self.estimate(x_model, run, source)
        sp = self.spec
        out = np.empty((len(est), self.freq_bins, spectral.n_frames(len(x_model), sp.hop_length)), np.float32)
        for c, v in enumerate(est):
            X = np.abs(spectral.stft(x_model[:, c], sp.n_fft, sp.hop_length)[:self.freq_bins])
            V = np.abs(spectral.stft(v, sp.n_fft, sp.hop_length)[:self.freq_bins])
            out[c] = np.minimum(1.0, V / np.maximum(X, MASK_FLOOR))
        return out
