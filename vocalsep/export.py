"""LiteRT export of a network, per architecture: the model file's ``model.tflite``.

The U-Net (``unet``, 5x5 kernels, stride 2) has a hand-made conversion (:func:`vocalsep.models.unet.to_tflite`:
batch norms folded, transposed convolutions as sub-pixel convolutions, about 3x faster under XNNPACK).  Every
other spectral architecture goes through the generic path: TensorFlow's converter on a ``tf.function`` of the
Keras model in inference mode (dropout off, batch norms on their moving statistics, which the converter
folds).  Both take the network's input (``cfg.io_shapes()``: (batch, freq_bins, frames, 1) patches for a
spectral network, (batch, input_samples, 1) waveforms for a waveform one) float32 and return its output;
the hand-made one for any batch, the generic one for :data:`EXPORT_BATCH` (a fixed batch makes the output
shapes of transposed convolutions constants, so that XNNPACK runs them: 1.5x faster for attention-unet, the
same output; the runner follows the batch a LiteRT model takes).  Both store float16 weights; the weights are rounded through float16 first, as the model file stores them, so
that LiteRT computes the network that the Keras backend rebuilds from the file.
"""

from __future__ import annotations

import numpy as np

from .config import ModelConfig
from .errors import VocalsepError

#: the batch of the generic conversion's LiteRT models: patches (or waveform windows) per invocation, the
#: separator's default
EXPORT_BATCH = 4


def to_tflite(keras_model, cfg: ModelConfig) -> bytes:
    """The LiteRT flatbuffer of ``keras_model`` (the network of ``cfg``).  Imports TensorFlow."""
    from .models.unet import fast_export_fits
    from .models.unet import to_tflite as unet_tflite

    if cfg.arch == "unet" and fast_export_fits(cfg):
        return unet_tflite(keras_model, cfg)
    return generic_tflite(keras_model, cfg)


def generic_tflite(keras_model, cfg: ModelConfig) -> bytes:
    """Any Keras model of a registered architecture -> LiteRT flatbuffer with float16 weights (see the module
    docstring).  The model's weights are rounded through float16 during the conversion and put back
    afterwards."""
    import tensorflow as tf

    saved = keras_model.get_weights()
    try:
        keras_model.set_weights([np.asarray(w, np.float16).astype(w.dtype) for w in saved])

        @tf.function(input_signature=[tf.TensorSpec([EXPORT_BATCH, *cfg.io_shapes()[0]], tf.float32)])
        def network(x):
            return keras_model(x, training=False)

        # (without the trackable object: given one, the converter goes through a SavedModel and its output is NaN)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([network.get_concrete_function()])
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
        try:
            return converter.convert()
        except Exception as e:  # an op LiteRT lacks, say: one line naming the architecture
            why = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            raise VocalsepError(f"model: architecture {cfg.arch!r} cannot be converted for LiteRT ({why})") from None
    finally:
        keras_model.set_weights(saved)
