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

    try:
        if cfg.arch == "unet" and fast_export_fits(cfg):
            return unet_tflite(keras_model, cfg, weights)
        return generic_tflite(keras_model, cfg, weights)
    except VocalsepError:
        raise
    except Exception as e:  # an op LiteRT lacks, say: one line naming the architecture
        why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise VocalsepError(f"model: architecture {cfg.arch!r} cannot be converted for LiteRT ({why})") from None


def check_weights(weights, what: str = "LiteRT weights") -> None:
    """VocalsepError unless ``weights`` (any value, e.g. read from JSON) is one of :data:`LITERT_WEIGHTS`;
    ``what``: how the message names it."""
    if weights not in LITERT_WEIGHTS:
        raise VocalsepError(f"{what} must be one of {', '.join(LITERT_WEIGHTS)}, not {repr(weights)[:40]}")


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
    afterwards.  TensorFlow's own errors pass through (:func:`to_tflite` makes them one line)."""
    import tensorflow as tf

    saved = keras_model.get_weights()
    try:
        keras_model.set_weights([np.asarray(w, np.float16).astype(w.dtype) for w in saved])

        @tf.function(input_signature=[tf.TensorSpec([EXPORT_BATCH, *cfg.io_shapes()[0]], tf.float32)])
        def network(x):
            return keras_model(x, training=False)

        # (without the trackable object: given one, the converter goes through a SavedModel and its output is NaN)
        return convert(network.get_concrete_function(), weights)
    finally:
        keras_model.set_weights(saved)



def exported(src, weights: str = "float16"):
    """The model file ``src`` (a path) with its network converted for LiteRT anew, with ``weights`` (one of
    :data:`LITERT_WEIGHTS`), as a :class:`vocalsep.model.ModelFile` in memory; its settings, Keras weights
    and info as they are, ``src`` left as it is.  Needs TensorFlow, and Keras on it
    (``KERAS_BACKEND=tensorflow``).  Any problem: one-line VocalsepError naming the file."""
    import keras

    from .model import ModelFile

    check_weights(weights)
    if keras.backend.backend() != "tensorflow":
        raise VocalsepError(f"converting for LiteRT needs Keras on TensorFlow, not on {keras.backend.backend()} "
                            "(set KERAS_BACKEND=tensorflow)")
    mf = ModelFile.load(src)
    network = mf.keras_model()
    try:
        mf.tflite = to_tflite(network, mf.model, weights)
    except VocalsepError as e:  # (the converter's message names the architecture, not the file)
        raise VocalsepError(f"{src}: {e}") from None
    mf.litert_weights = weights
    return mf
