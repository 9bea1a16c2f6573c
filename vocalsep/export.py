"""LiteRT export of a network, per architecture: the model file's ``model.tflite``.

The U-Net (``unet``, 5x5 kernels, stride 2) has a hand-made conversion (:func:`vocalsep.models.unet.to_tflite`:
batch norms folded, transposed convolutions as sub-pixel convolutions, about 3x faster under XNNPACK).  Every
other spectral architecture goes through the generic path: TensorFlow's converter on a ``tf.function`` of the
Keras model in inference mode (dropout off, batch norms on their moving statistics, which the converter
folds).  Both take the network's input (``cfg.io_shapes()``: (batch, freq_bins, frames, 1) patches for a
spectral network, (batch, input_samples, 1) waveforms for a waveform one) float32 and return its output;
the hand-made one for any batch, the generic one for :data:`EXPORT_BATCH` (a fixed batch makes the output
shapes of transposed convolutions constants, so that XNNPACK runs them: 1.5x faster for attention-unet, the
same output; the runner follows the batch a LiteRT model takes).  The weights are rounded through float16
first, as the model file stores them, and stored in one of :data:`LITERT_WEIGHTS`:

- ``float16`` (what training writes): LiteRT computes the network that the Keras backend rebuilds from the
  file (XNNPACK expands the weights to float32 when it loads them);
- ``int8`` (``vocalsep export --weights int8``): TensorFlow's dynamic-range quantization, int8 weights per
  output channel and the activations quantized on the fly, which XNNPACK runs with integer kernels: the
  shipped attention U-Net's network 2.7x faster, its masks within about 40 dB of the float16 ones (SDR of
  one against the other), 0.05 dB of accompaniment SDR on produced stereo songs (docs/choices.md, "Int8
  weights for LiteRT").
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .errors import VocalsepError

#: the batch of the generic conversion's LiteRT models: patches (or waveform windows) per invocation, the
#: separator's default
EXPORT_BATCH = 4
#: the weight types a LiteRT conversion stores (the module docstring); the model file records which
LITERT_WEIGHTS = ("float16", "int8")


def to_tflite(keras_model, cfg: ModelConfig, weights: str = "float16") -> bytes:
    """The LiteRT flatbuffer of ``keras_model`` (the network of ``cfg``) with ``weights`` (one of
    :data:`LITERT_WEIGHTS`).  Imports TensorFlow."""
    from .models.unet import fast_export_fits
    from .models.unet import to_tflite as unet_tflite

    check_weights(weights)
    if cfg.arch == "unet" and fast_export_fits(cfg):
        return unet_tflite(keras_model, cfg, weights)
    return generic_tflite(keras_model, cfg, weights)


def check_weights(weights) -> None:
    """VocalsepError unless ``weights`` is one of :data:`LITERT_WEIGHTS`."""
    if weights not in LITERT_WEIGHTS:
        raise VocalsepError(f"LiteRT weights must be one of {', '.join(LITERT_WEIGHTS)}, not {str(weights)[:40]!r}")


def convert(function, weights: str = "float16") -> bytes:
    """The LiteRT flatbuffer of the concrete ``tf.function`` ``function`` with ``weights`` (one of
    :data:`LITERT_WEIGHTS`): float16 weights, or dynamic-range int8 (TensorFlow's default optimisation
    without a target type).  TensorFlow's own errors pass through."""
    import tensorflow as tf

    check_weights(weights)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if weights == "float16":
        converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


def generic_tflite(keras_model, cfg: ModelConfig, weights: str = "float16") -> bytes:
    """Any Keras model of a registered architecture -> LiteRT flatbuffer with ``weights`` (see the module
    docstring).  The model's weights are rounded through float16 during the conversion and put back
    afterwards."""
    import tensorflow as tf

    check_weights(weights)
    saved = keras_model.get_weights()
    try:
        keras_model.set_weights([np.asarray(w, np.float16).astype(w.dtype) for w in saved])

        @tf.function(input_signature=[tf.TensorSpec([EXPORT_BATCH, *cfg.io_shapes()[0]], tf.float32)])
        def network(x):
            return keras_model(x, training=False)

        # (without the trackable object: given one, the converter goes through a SavedModel and its output is NaN)
        try:
            return convert(network.get_concrete_function(), weights)
        except Exception as e:  # an op LiteRT lacks, say: one line naming the architecture
            why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise VocalsepError(f"model: architecture {cfg.arch!r} cannot be converted for LiteRT ({why})") from None
    finally:
        keras_model.set_weights(saved)


def export_model(src, out, weights: str = "float16") -> None:
    """Write ``out`` (a path): the model file ``src`` with its network converted for LiteRT anew, with
    ``weights`` (one of :data:`LITERT_WEIGHTS`); its settings, Keras weights and info as they are.  Needs
    TensorFlow, and Keras on it (``KERAS_BACKEND=tensorflow``).  ``out`` must not exist: it is never
    replaced, also when it appears during the conversion; ``src`` is left as it is.  Any problem: one-line
    VocalsepError naming the file."""
    import os

    import keras

    from .model import ModelFile

    check_weights(weights)
    if os.path.lexists(out):  # (before the conversion's minute; save_new checks again at the end)
        raise VocalsepError(f"{out}: exists; give a new file")
    if keras.backend.backend() != "tensorflow":
        raise VocalsepError(f"converting for LiteRT needs Keras on TensorFlow, not on {keras.backend.backend()} "
                            "(set KERAS_BACKEND=tensorflow)")
    mf = ModelFile.load(src)
    mf.tflite = to_tflite(mf.keras_model(), mf.model, weights)
    mf.litert_weights = weights
    mf.save_new(out)
