"""The ways to run a network, behind one small interface (:class:`Runner`).

A runner maps a batch of the network's inputs, (n,) + ``model.io_shapes()[0]`` float32, to its outputs,
(n,) + ``io_shapes()[1]`` float32: for a spectral network normalised magnitude patches (n, freq_bins, frames, 1)
to vocal masks of the same shape in [0, 1]; for a waveform one mixtures (n, input_samples, 1) to vocals
(n, output_samples, 1).  Its ``name`` says which runtime it is.

``LiteRunner``   the model file's LiteRT flatbuffer under XNNPACK (no TensorFlow import; the default).
``KerasRunner``  the Keras network rebuilt from the model file's weights (on Keras's backend: TensorFlow, or JAX
                 where Keras runs on it), or a network in
                 memory (training's validation, :meth:`KerasRunner.for_model`).

:func:`make_runner` chooses: ``auto`` takes LiteRT when the file has a LiteRT model and the runtime imports,
else Keras with the file's weights (read then, when the file was first read without them); it never runs a
network without its trained weights.
"""

from __future__ import annotations

import os
from typing import Protocol

import numpy as np

from .audio import quiet_stderr
from .errors import VocalsepError
from .extras import tensorflow_if_backend, require
from .model import ModelFile

BACKENDS = ("auto", "litert", "keras")


class Runner(Protocol):
    """What separation and validation need of a network."""

    name: str

    def __call__(self, patches: np.ndarray) -> np.ndarray:
        """(n,) + the network's input shape float32 -> (n,) + its output shape float32 (masks of the same
        shape for a spectral network)."""
        ...


class KerasRunner:
    """Runs the Keras network of a model file (on Keras's backend, :func:`vocalsep.extras.keras_backend`:
    TensorFlow unless Keras is set to JAX), ``batch`` patches per call, the last
    batch padded so that one traced shape serves every call."""

    name = "keras"

    def __init__(self, mf: ModelFile, batch: int = 8):
        require("train", "the keras backend (--backend keras)")
        if not mf.weights:  # never run a network without its trained weights
            raise VocalsepError(f"{mf.path or 'model'}: the Keras backend needs the model's weights, "
                                "which were not loaded")
        self._setup(mf.keras_model(), batch)

    @classmethod
    def for_model(cls, model, batch: int = 8) -> "KerasRunner":
        """A runner of the Keras network ``model`` as it is (training's validation)."""
        runner = cls.__new__(cls)
        runner._setup(model, batch)
        return runner

    def _setup(self, model, batch: int) -> None:
        tf = tensorflow_if_backend()
        self.model = model
        self.batch = batch
        if tf is not None:
            self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)
        else:  # JAX: Keras's own compiled inference (jit), on the weights as they are now
            self._fn = self.model.predict_on_batch

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = []
        for i in range(0, len(x), self.batch):
            b = x[i:i + self.batch]
            pad = self.batch - len(b)
            if pad:
                b = np.concatenate([b, np.zeros((pad,) + b.shape[1:], np.float32)])
            out.append(np.asarray(self._fn(b)).astype(np.float32, copy=False)[:self.batch - pad])  # (bfloat16)
        return (np.concatenate(out, axis=0) if out
                else np.zeros((0,) + tuple(self.model.output_shape[1:]), np.float32))


class LiteRunner:
    """Runs the LiteRT flatbuffer with XNNPACK, batch by batch.  No TensorFlow import.  ``batch``: patches
    per invocation for a model that takes any batch; a model made for a fixed batch (the generic
    conversion's, :data:`vocalsep.export.EXPORT_BATCH`) is run at its own."""

    name = "litert"

    def __init__(self, mf: ModelFile, batch: int = 4, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        name = mf.path or "model"
        if mf.tflite is None:
            raise VocalsepError(f"{name}: model file has no LiteRT model")
        self.batch = batch
        self.weights = mf.litert_weights  # float16 or int8 (vocalsep.export.LITERT_WEIGHTS)
        shape_in, shape_out = mf.model.io_shapes()
        self._shape, self._out_shape = (batch,) + shape_in, shape_out
        try:
            with quiet_stderr():  # LiteRT announces its XNNPACK delegate on stderr
                self.interp = Interpreter(model_content=mf.tflite, num_threads=threads or os.cpu_count() or 1)
            inp, out = self.interp.get_input_details(), self.interp.get_output_details()
            if (len(inp) != 1 or len(out) != 1 or tuple(inp[0]["shape"][1:]) != self._shape[1:]
                    or tuple(out[0]["shape"][1:]) != self._out_shape):
                raise VocalsepError(f"{name}: its LiteRT model does not take the inputs of its config.json "
                                    f"({self._shape[1:]} -> {self._out_shape})")
            self._inp, self._out = inp[0]["index"], out[0]["index"]
            fixed = int(inp[0].get("shape_signature", [-1])[0])
            if fixed > 0:  # the model's own batch (its shapes are constants: resizing would break them)
                self.batch, self._shape = fixed, (fixed,) + shape_in
            self.interp.resize_tensor_input(self._inp, self._shape)
            with quiet_stderr():
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            why = str(e).splitlines()[0][:200] if str(e) else repr(e)
            raise VocalsepError(f"{name}: damaged LiteRT model ({why})") from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        out = np.empty((n,) + self._out_shape, dtype=np.float32)
        for i in range(0, n, self.batch):
            b = x[i:i + self.batch]
            if len(b) < self.batch:  # keep one fixed shape: pad the last batch
                b = np.concatenate([b, np.zeros((self.batch - len(b),) + b.shape[1:], np.float32)])
            self.interp.set_tensor(self._inp, np.ascontiguousarray(b, dtype=np.float32))
            self.interp.invoke()
            out[i:i + self.batch] = self.interp.get_tensor(self._out)[: min(self.batch, n - i)]
        return out


def make_runner(mf: ModelFile, backend: str = "auto", batch: int = 4, threads: int | None = None) -> Runner:
    """The runner of ``mf`` for ``backend`` (one of :data:`BACKENDS`).  ``auto``: LiteRT when the file has a
    LiteRT model and the runtime imports, else Keras with the file's weights, read from ``mf.path`` now when
    ``mf`` was read without them (VocalsepError when they cannot be had: never an untrained network).
    ``batch``: patches per LiteRT invocation (>= 1; a LiteRT model made for a fixed batch runs at its own);
    ``threads``: LiteRT's threads (None: one per CPU)."""
    if backend not in BACKENDS:
        raise VocalsepError(f"unknown backend {backend!r}; choose auto, litert or keras")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise VocalsepError(f"batch must be a whole number >= 1, not {batch!r}")
    if backend in ("auto", "litert") and mf.tflite is not None:
        try:
            return LiteRunner(mf, batch=batch, threads=threads)
        except ImportError:
            if backend == "litert":
                raise VocalsepError("the LiteRT runtime (ai-edge-litert) is not installed") from None
    elif backend == "litert":
        raise VocalsepError(f"{mf.path or 'model'}: has no LiteRT model; use --backend keras")
    if not mf.weights and mf.path is not None:
        mf = ModelFile.load(mf.path)  # the Keras network needs the weights the file was first read without
    return KerasRunner(mf)
