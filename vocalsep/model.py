"""The U-Net of Jansson et al. (ISMIR 2017), its model file, and the two ways to run it.

Network: input (batch, freq_bins, frames, 1) magnitude patches, normalised so that each patch's maximum
is 1; output a sigmoid vocal mask of the same shape.  Encoder: ``len(channels)`` strided 5x5 convolutions
(batch norm, leaky ReLU 0.2).  Decoder: as many strided 5x5 transposed convolutions (batch norm, ReLU,
dropout on the first ``dropout_layers``), each after the first fed the concatenation of the previous
decoder output and the encoder output of the same size; the last one has one filter and a sigmoid.

Model file (``.vsep``, a zip archive):
    config.json   {"format": 1, "spectral": {...}, "model": {...}, "info": {...}}
    weights.npz   the Keras weights in float16, in ``model.get_weights()`` order (arr_0, arr_1, ...)
    model.tflite  the same network converted for LiteRT (optional; float16 weights), used for fast
                  separation without importing TensorFlow
"""

from __future__ import annotations

import io
import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .audio import quiet_stderr
from .checks import model_settings, read_member, weight_shapes
from .config import ModelConfig, SpectralConfig
from .errors import VocalsepError
from .extras import import_tensorflow, require

FORMAT_VERSION = 1
DEFAULT_MODEL = "default.vsep"
#: bytes of a model file's config.json read at most
CONFIG_LIMIT = 1 << 20


def build_unet(cfg: ModelConfig):
    """Build the Keras U-Net for ``cfg``.  Imports TensorFlow/Keras."""
    import keras
    from keras import layers

    inp = keras.Input(shape=(cfg.freq_bins, cfg.frames, 1), name="magnitude")
    x = inp
    skips = []
    for i, ch in enumerate(cfg.channels):
        x = layers.Conv2D(ch, cfg.kernel_size, strides=cfg.stride, padding="same", name=f"enc{i + 1}_conv")(x)
        x = layers.BatchNormalization(name=f"enc{i + 1}_bn")(x)
        x = layers.LeakyReLU(negative_slope=cfg.leaky_slope, name=f"enc{i + 1}_act")(x)
        skips.append(x)
    # decoder: mirror of the encoder, ending with one channel
    out_channels = list(reversed(cfg.channels[:-1])) + [1]
    for i, ch in enumerate(out_channels):
        if i > 0:
            x = layers.Concatenate(axis=-1, name=f"dec{i + 1}_skip")([x, skips[-1 - i]])
        x = layers.Conv2DTranspose(ch, cfg.kernel_size, strides=cfg.stride, padding="same", name=f"dec{i + 1}_deconv")(x)
        if i == len(out_channels) - 1:
            x = layers.Activation("sigmoid", name="mask")(x)
            break
        x = layers.BatchNormalization(name=f"dec{i + 1}_bn")(x)
        x = layers.ReLU(name=f"dec{i + 1}_act")(x)
        if i < cfg.dropout_layers and cfg.dropout > 0:
            x = layers.Dropout(cfg.dropout, name=f"dec{i + 1}_dropout")(x)
    return keras.Model(inp, x, name="unet")


@dataclass
class ModelFile:
    """What a ``.vsep`` file holds: the configs, float16 weights and (optionally) the LiteRT model."""

    spectral: SpectralConfig
    model: ModelConfig
    weights: list[np.ndarray]
    tflite: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the file it was loaded from, for messages

    def save(self, path: str | Path) -> None:
        """Write atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = {
            "format": FORMAT_VERSION,
            "spectral": asdict(self.spectral),
            "model": {**asdict(self.model), "channels": list(self.model.channels)},
            "info": self.info,
        }
        with np.errstate(over="ignore", invalid="ignore"):
            w16 = [np.asarray(w, dtype=np.float16) for w in self.weights]
        bad = nonfinite(w16)
        if bad:
            raise VocalsepError(f"{path}: not written: {bad} of {len(w16)} weight arrays hold NaN or infinite values "
                                "(or values beyond float16's range); a model that diverged cannot separate")
        buf = io.BytesIO()
        np.savez(buf, *w16)
        with atomic_path(path) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as z:
                z.writestr("config.json", json.dumps(cfg, indent=2))
                z.writestr("weights.npz", buf.getvalue())
                if self.tflite is not None:
                    z.writestr("model.tflite", self.tflite)

    @classmethod
    def load(cls, path: str | Path, weights: bool = True) -> "ModelFile":
        """Read a model file.  Reads regular files only, and no member beyond what a network of the file's
        settings needs (so a crafted file cannot exhaust memory); the settings' types and ranges are
        checked, the weights' shapes against the network's and their values for NaN and infinities.
        ``weights=False`` skips the weights (LiteRT needs only ``model.tflite``).  Any problem: one-line
        VocalsepError naming the file."""
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise VocalsepError(f"{path}: model file does not exist") from None
        except OSError as e:
            raise VocalsepError(f"{path}: cannot read the model file ({e.strerror})") from None
        if not stat.S_ISREG(st.st_mode):
            raise VocalsepError(f"{path}: not a regular file (a folder, pipe or device); expected a .vsep model file")
        try:
            with zipfile.ZipFile(path) as z:
                cfg = json.loads(read_member(z, path, "config.json", CONFIG_LIMIT))
                if not isinstance(cfg, dict) or cfg.get("format") != FORMAT_VERSION:
                    fmt = cfg.get("format") if isinstance(cfg, dict) else None
                    raise VocalsepError(f"{path}: model format {str(fmt)[:20]} is not supported")
                spectral, model = model_settings(path, cfg)
                shapes = weight_shapes(model)
                n_params = sum(math.prod(s) for s in shapes)
                w: list[np.ndarray] = []
                if weights:
                    data = read_member(z, path, "weights.npz", 2 * n_params + 512 * len(shapes) + (64 << 10))
                    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                        w = [npz[f"arr_{i}"] for i in range(len(npz.files))]
                    got = [tuple(a.shape) for a in w]
                    if got != shapes or any(a.dtype.kind != "f" for a in w):
                        raise VocalsepError(f"{path}: weights.npz does not fit the network of its config.json "
                                            f"({len(got)} arrays, expected {len(shapes)} of the network's shapes)")
                    bad = nonfinite(w)
                    if bad:
                        raise VocalsepError(f"{path}: damaged model: {bad} of {len(w)} weight arrays hold NaN or "
                                            "infinite values")
                tfl = (read_member(z, path, "model.tflite", 8 * n_params + (4 << 20))
                       if "model.tflite" in z.namelist() else None)
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zlib.error, NotImplementedError,
                RecursionError) as e:  # RecursionError: JSON nested thousands deep
            msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise VocalsepError(f"{path}: not a vocalsep model file ({msg})") from None
        info = cfg.get("info", {})
        return cls(spectral, model, w, tfl, info if isinstance(info, dict) else {}, path)

    @classmethod
    def from_keras(cls, keras_model, spectral: SpectralConfig, model: ModelConfig, info: dict | None = None,
                   tflite: bool = True) -> "ModelFile":
        mf = cls(spectral, model, [np.asarray(w) for w in keras_model.get_weights()], None, dict(info or {}))
        if tflite:
            mf.tflite = to_tflite(keras_model, model)
        return mf

    def keras_model(self):
        """Rebuild the Keras model with these weights (float32)."""
        m = build_unet(self.model)
        if self.weights:
            m.set_weights([w.astype(np.float32) for w in self.weights])
        return m


def nonfinite(weights) -> int:
    """How many of the arrays ``weights`` hold a NaN or an infinity."""
    return sum(not np.isfinite(w).all() for w in weights)


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("vocalsep") / "models" / DEFAULT_MODEL))


def _fold_bn(kernel: np.ndarray, bias: np.ndarray, bn, out_axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Fold an inference-mode batch norm that follows a convolution into its kernel and bias."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
    scale = gamma / np.sqrt(var + bn.epsilon)
    shape = [1] * kernel.ndim
    shape[out_axis] = -1
    return kernel * scale.reshape(shape), (bias - mean) * scale + beta


# Transposed 5x5 convolution, stride 2, 'same' padding, as a 3x3 convolution to 4x the channels followed by
# depth-to-space: output phase r (0 or 1) along an axis takes, at input offsets -1, 0, +1, these kernel taps.
_PHASE_TAPS = {0: (3, 1, None), 1: (4, 2, 0)}


def _subpixel_kernel(w: np.ndarray) -> np.ndarray:
    """(5, 5, out, in) transposed-conv kernel -> (3, 3, in, 4 * out) conv kernel, phases (row, col) major."""
    _, _, c_out, c_in = w.shape
    v = np.zeros((3, 3, c_in, 4 * c_out), dtype=np.float64)
    for rh in (0, 1):
        for rw in (0, 1):
            group = slice((rh * 2 + rw) * c_out, (rh * 2 + rw + 1) * c_out)
            for th, kh in enumerate(_PHASE_TAPS[rh]):
                for tw, kw in enumerate(_PHASE_TAPS[rw]):
                    if kh is not None and kw is not None:
                        v[th, tw, :, group] = w[kh, kw].T
    return v


def to_tflite(keras_model, cfg: ModelConfig) -> bytes:
    """Convert the Keras U-Net (inference mode) to a LiteRT flatbuffer with float16 weights.

    Batch norms are folded into the convolutions, and each 5x5 stride-2 transposed convolution becomes
    the equivalent 3x3 convolution plus depth-to-space, which XNNPACK runs about 3x faster.  Weights are
    rounded through float16 first, as in the model file.  Input: (batch, freq_bins, frames, 1), any batch.
    """
    import tensorflow as tf

    if cfg.kernel_size != 5 or cfg.stride != 2:
        raise VocalsepError("LiteRT export supports kernel_size 5 and stride 2 only")
    get = keras_model.get_layer
    f16 = lambda a: np.asarray(a, np.float16).astype(np.float64)  # noqa: E731
    enc, dec = [], []
    for i in range(len(cfg.channels)):
        k, b = (f16(w) for w in get(f"enc{i + 1}_conv").get_weights())
        bn = get(f"enc{i + 1}_bn")
        k, b = _fold_bn(k, b, _F16Layer(bn), out_axis=3)
        enc.append((tf.constant(k, tf.float32), tf.constant(b, tf.float32)))
    for i in range(len(cfg.channels)):
        k, b = (f16(w) for w in get(f"dec{i + 1}_deconv").get_weights())
        last = i == len(cfg.channels) - 1
        if not last:
            k, b = _fold_bn(k, b, _F16Layer(get(f"dec{i + 1}_bn")), out_axis=2)
        dec.append((tf.constant(_subpixel_kernel(k), tf.float32), tf.constant(np.tile(b, 4), tf.float32)))
    slope = cfg.leaky_slope

    @tf.function(input_signature=[tf.TensorSpec([None, cfg.freq_bins, cfg.frames, 1], tf.float32)])
    def unet(x):
        skips = []
        for k, b in enc:
            x = tf.nn.leaky_relu(tf.nn.conv2d(x, k, 2, "SAME") + b, alpha=slope)
            skips.append(x)
        for i, (k, b) in enumerate(dec):
            if i > 0:
                x = tf.concat([x, skips[-1 - i]], axis=-1)
            x = tf.nn.depth_to_space(tf.nn.conv2d(x, k, 1, "SAME") + b, 2)
            x = tf.sigmoid(x) if i == len(dec) - 1 else tf.nn.relu(x)
        return x

    converter = tf.lite.TFLiteConverter.from_concrete_functions([unet.get_concrete_function()])
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.float16]
    return converter.convert()


class _F16Layer:
    """A batch-norm layer's weights rounded through float16, as stored in the model file."""

    def __init__(self, bn):
        self.epsilon = bn.epsilon
        self._w = [np.asarray(w, np.float16).astype(np.float64) for w in bn.get_weights()]

    def get_weights(self):
        return self._w


class KerasRunner:
    """Runs the Keras model (imports TensorFlow).  ``__call__``: (n, F, T, 1) float32 -> mask, same shape."""

    name = "keras"

    def __init__(self, mf: ModelFile, batch: int = 8):
        require("train", "the keras backend (--backend keras)")
        tf = import_tensorflow()

        if not mf.weights:  # never run a network without its trained weights
            raise VocalsepError(f"{mf.path or 'model'}: the Keras backend needs the model's weights, "
                                "which were not loaded")
        self.model = mf.keras_model()
        self.batch = batch
        self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = [np.asarray(self._fn(x[i:i + self.batch])) for i in range(0, len(x), self.batch)]
        return np.concatenate(out, axis=0)


class LiteRunner:
    """Runs the LiteRT flatbuffer with XNNPACK, batch by batch.  No TensorFlow import."""

    name = "litert"

    def __init__(self, mf: ModelFile, batch: int = 4, threads: int | None = None):
        from ai_edge_litert.interpreter import Interpreter

        name = mf.path or "model"
        if mf.tflite is None:
            raise VocalsepError(f"{name}: model file has no LiteRT model")
        self.batch = batch
        self._shape = (batch, mf.model.freq_bins, mf.model.frames, 1)
        try:
            with quiet_stderr():  # LiteRT announces its XNNPACK delegate on stderr
                self.interp = Interpreter(model_content=mf.tflite, num_threads=threads or os.cpu_count() or 1)
            inp, out = self.interp.get_input_details(), self.interp.get_output_details()
            if (len(inp) != 1 or len(out) != 1 or tuple(inp[0]["shape"][1:]) != self._shape[1:]
                    or tuple(out[0]["shape"][1:]) != self._shape[1:]):
                raise VocalsepError(f"{name}: its LiteRT model does not take the patches of its config.json "
                                    f"({self._shape[1:]})")
            self._inp, self._out = inp[0]["index"], out[0]["index"]
            self.interp.resize_tensor_input(self._inp, self._shape)
            with quiet_stderr():
                self.interp.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            why = str(e).splitlines()[0][:200] if str(e) else repr(e)
            raise VocalsepError(f"{name}: damaged LiteRT model ({why})") from None

    def __call__(self, x: np.ndarray) -> np.ndarray:
        n = len(x)
        out = np.empty(x.shape, dtype=np.float32)
        for i in range(0, n, self.batch):
            b = x[i:i + self.batch]
            if len(b) < self.batch:  # keep one fixed shape: pad the last batch
                b = np.concatenate([b, np.zeros((self.batch - len(b),) + b.shape[1:], np.float32)])
            self.interp.set_tensor(self._inp, np.ascontiguousarray(b, dtype=np.float32))
            self.interp.invoke()
            out[i:i + self.batch] = self.interp.get_tensor(self._out)[: min(self.batch, n - i)]
        return out


def litert_available() -> bool:
    """Whether the LiteRT runtime (ai-edge-litert) can be imported."""
    try:
        from ai_edge_litert.interpreter import Interpreter  # noqa: F401
    except ImportError:
        return False
    return True


def make_runner(mf: ModelFile, backend: str = "auto", batch: int = 4, threads: int | None = None):
    """``auto``: LiteRT when the file has a LiteRT model and the runtime is installed, else Keras (which
    needs ``mf`` loaded with its weights: VocalsepError otherwise, never an untrained network).
    ``batch``: patches per LiteRT invocation (>= 1); ``threads``: LiteRT's threads (None: one per CPU)."""
    if backend not in ("auto", "litert", "keras"):
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
        raise VocalsepError("this model file has no LiteRT model; use --backend keras")
    return KerasRunner(mf)
