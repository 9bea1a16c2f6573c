"""The model file (``.vsep``): a trained network's settings, weights and LiteRT conversion in one zip archive.

Model file, format 2:
    config.json   {"format": 2, "spectral": {...}, "model": {"arch": "unet", ...}, "info": {...}}: the STFT,
                  the architecture's name (:mod:`vocalsep.models`) and its settings, and facts about the run
    weights.npz   the Keras weights in float16, in ``model.get_weights()`` order (arr_0, arr_1, ...)
    model.tflite  the same network converted for LiteRT (optional; :mod:`vocalsep.export`), used for fast
                  separation without importing TensorFlow; config.json's ``litert_weights`` says whether its
                  weights are ``float16`` (also when the key is absent: files written before it) or ``int8``

Format 1 (vocalsep 0.1 and 0.2, and the U-Net they shipped) is format 2 without ``model.arch``: a U-Net.
Reading either checks everything against the architecture's settings (:mod:`vocalsep.checks`).  The ways to
run a network are in :mod:`vocalsep.runners`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import logging
import math
import stat
import zipfile
import zlib
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path, publish_new, temporary_beside
from .checks import MAX_WEIGHTS, model_settings, read_member, weight_shapes
from .config import ModelConfig, SpectralConfig
from .errors import VocalsepError
from .export import check_weights
from .models.registry import get_arch
from .models.unet import build_unet  # noqa: F401  (the U-Net's builder, importable from here as before)

FORMAT_VERSION = 2
#: the formats :meth:`ModelFile.load` reads
READABLE_FORMATS = (1, 2)
DEFAULT_MODEL = "default.vsep"
#: what separates when no model is named: an ensemble of the default model and the same recipe trained with
#: seed 1 (scripts/train_default.sh --seed 1); ``vocalsep separate --fast`` takes DEFAULT_MODEL alone
SHIPPED_MODELS = (DEFAULT_MODEL, "default-seed1.vsep")
#: bytes of a model file's config.json read at most
CONFIG_LIMIT = 1 << 20


def build_model(cfg: ModelConfig):
    """The Keras network of ``cfg``'s architecture (``cfg.arch``), untrained.  Imports Keras."""
    build_model_check(cfg)
    return get_arch(cfg.arch).build(cfg)


@dataclass
class ModelFile:
    """What a ``.vsep`` file holds: the configs, float16 weights and (optionally) the LiteRT model."""

    spectral: SpectralConfig
    model: ModelConfig
    weights: list[np.ndarray]
    tflite: bytes | None = None
    info: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None  # the file it was loaded from, for messages
    #: the weights of ``tflite``: one of :data:`vocalsep.export.LITERT_WEIGHTS`
    litert_weights: str = "float16"

    def save(self, path: str | Path) -> None:
        """Write in format 2, atomically (temporary file, then rename)."""
        build_model_check(self.model)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        cfg = {
            "format": FORMAT_VERSION,
            "spectral": asdict(self.spectral),
            "model": self.model.to_dict(),
            "info": self.info,
        }
        if self.tflite is not None:
            check_weights(self.litert_weights)
            cfg["litert_weights"] = self.litert_weights
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

    def save_new(self, path: str | Path) -> None:
        """:meth:`save` to a file that must not exist, never over one, also if one appears while this is
        written (a temporary file of this process's own, then :func:`vocalsep.atomic.publish_new`).  An
        existing file or an unwritable place: one-line VocalsepError naming ``path``."""
        path = Path(path)
        tmp = None
        try:
            tmp = temporary_beside(path)
            self.save(tmp)
            publish_new(tmp, path)
        except FileExistsError:
            raise VocalsepError(f"{path}: exists; give a new file") from None
        except OSError as e:
            raise VocalsepError(f"{path}: cannot be written ({e.strerror})") from None
        finally:
            if tmp is not None:
                tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, weights: bool = True) -> "ModelFile":
        """Read a model file.  Reads regular files only, and no member beyond what a network of the file's
        settings needs (so a crafted file cannot exhaust memory); the settings' types and ranges are
        checked, the weights' values for NaN and infinities and their shapes against the network's (the
        U-Net's here; another architecture's when :meth:`keras_model` builds its network, before its
        weights take memory).  Formats 1 and 2.
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
                fmt = cfg.get("format") if isinstance(cfg, dict) else None
                if isinstance(fmt, bool) or fmt not in READABLE_FORMATS:
                    raise VocalsepError(f"{path}: model format {str(fmt)[:20]} is not supported")
                spectral, model = model_settings(path, cfg, fmt)
                shapes = weight_shapes(model)
                if shapes is not None:
                    n_params = sum(math.prod(s) for s in shapes)
                    weights_limit = 2 * n_params + 512 * len(shapes) + (64 << 10)
                else:  # unknown without Keras: bounded by the most any model may have, and by weights.npz
                    weights_limit = 2 * MAX_WEIGHTS + (1 << 20)
                    if "weights.npz" not in z.namelist():
                        raise VocalsepError(f"{path}: not a vocalsep model file (it has no weights.npz)")
                    n_params = min(MAX_WEIGHTS, z.getinfo("weights.npz").file_size // 2)
                w: list[np.ndarray] = []
                if weights:
                    data = read_member(z, path, "weights.npz", weights_limit)
                    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                        w = [npz[f"arr_{i}"] for i in range(len(npz.files))]
                    got = [tuple(a.shape) for a in w]
                    if (shapes is not None and got != shapes) or any(a.dtype.kind != "f" for a in w):
                        raise _misfit(path, got, shapes)
                    bad = nonfinite(w)
                    if bad:
                        raise VocalsepError(f"{path}: damaged model: {bad} of {len(w)} weight arrays hold NaN or "
                                            "infinite values")
                tfl = (read_member(z, path, "model.tflite", 8 * n_params + (4 << 20))
                       if "model.tflite" in z.namelist() else None)
                litert_weights = cfg.get("litert_weights", "float16")
                check_weights(litert_weights, f"{path}: config.json: litert_weights")
        except (zipfile.BadZipFile, KeyError, ValueError, OSError, EOFError, zlib.error, NotImplementedError,
                RecursionError) as e:  # RecursionError: JSON nested thousands deep
            msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            raise VocalsepError(f"{path}: not a vocalsep model file ({msg})") from None
        info = cfg.get("info", {})
        return cls(spectral, model, w, tfl, info if isinstance(info, dict) else {}, path, litert_weights)

    @classmethod
    def from_keras(cls, keras_model, spectral: SpectralConfig, model: ModelConfig, info: dict | None = None,
                   tflite: bool = True) -> "ModelFile":
        """The model file of ``keras_model`` (the network of ``model``), with its LiteRT conversion (float16
        weights) when ``tflite`` (:func:`vocalsep.export.to_tflite`; imports TensorFlow) and Keras runs on
        TensorFlow: on another backend (:func:`vocalsep.extras.keras_backend`) the file has no
        ``model.tflite``, and separation runs it on Keras (``vocalsep export`` adds the conversion where
        TensorFlow is)."""
        import keras

        mf = cls(spectral, model, [np.asarray(w) for w in keras_model.get_weights()], None, dict(info or {}))
        if tflite and keras.backend.backend() != "tensorflow":
            _warn_no_litert(keras.backend.backend())
        elif tflite:
            from .export import to_tflite

            if keras_model.compute_dtype != "float32":  # trained in mixed precision: separation runs float32
                keras_model = mf.keras_model()
            mf.tflite = to_tflite(keras_model, model)
        return mf

    def keras_model(self):
        """Rebuild the Keras model with these weights (float32); weights that do not fit the network of the
        file's settings are a one-line VocalsepError naming the file, found before the network's weights
        take any memory (a crafted file's settings cannot make Keras allocate more than the file holds)."""
        got = [tuple(w.shape) for w in self.weights]
        if self.weights and weight_shapes(self.model) is None:  # (the U-Net's were compared on load)
            want = abstract_weight_shapes(self.model)
            if got != want:
                raise _misfit(self.path or "model", got, want)
        with dtype_policy("float32"):  # (whatever the caller's global policy)
            m = build_model(self.model)
        if self.weights:
            want = [tuple(v.shape) for v in m.weights]
            if got != want:
                raise _misfit(self.path or "model", got, want)
            m.set_weights([w.astype(np.float32) for w in self.weights])
        return m


@contextlib.contextmanager
def dtype_policy(name: str):
    """Keras's global dtype policy ``name`` (``float32``, ``mixed_bfloat16``) while networks are built in the
    ``with`` block (each layer keeps the policy it was made with), the caller's again after it."""
    import keras

    before = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(before)


def abstract_weight_shapes(cfg: ModelConfig) -> list[tuple[int, ...]]:
    """Shapes of the weights of ``cfg``'s network in ``get_weights()`` order, for any architecture: its
    builder runs in a Keras ``StatelessScope`` whose variables are created uninitialised and dropped, so
    the weights take no memory (an architecture's settings need no weight formula of their own)."""
    import keras
    from keras.src.backend.common import global_state  # (Keras's list of variables waiting for a value)

    waiting = list(global_state.get_global_attribute("uninitialized_variables", None) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            return [tuple(v.shape) for v in build_model(cfg).weights]
    finally:  # never initialised, not even by a later scope
        global_state.set_global_attribute("uninitialized_variables", waiting)


def _misfit(path, got: list, want: list) -> VocalsepError:
    return VocalsepError(f"{path}: weights.npz does not fit the network of its config.json "
                         f"({len(got)} arrays, expected {len(want)} of the network's shapes)")


@functools.cache
def _warn_no_litert(backend: str) -> None:
    """The warning of :meth:`ModelFile.from_keras` on a backend that cannot convert for LiteRT, once."""
    logging.getLogger("vocalsep.model").warning(
        "Keras runs on %s: model files are written without their LiteRT conversion (separation runs them on "
        "Keras; `vocalsep export` adds it on a machine with TensorFlow)", backend)


def build_model_check(cfg: ModelConfig) -> None:
    """VocalsepError unless ``cfg`` is the settings class of its architecture (as :func:`build_model` needs)."""
    arch = get_arch(cfg.arch)
    if type(cfg) is not arch.config:
        raise VocalsepError(f"model: settings of class {type(cfg).__name__} are not those of architecture "
                            f"{cfg.arch!r} ({arch.config.__name__}); register the class or set its arch")


def nonfinite(weights) -> int:
    """How many of the arrays ``weights`` hold a NaN or an infinity."""
    return sum(not np.isfinite(w).all() for w in weights)


def default_model_path() -> Path:
    """The first model shipped inside the package (alone: ``vocalsep separate --fast``)."""
    return shipped_model_paths()[0]


def shipped_model_paths() -> list[Path]:
    """The models shipped inside the package, which separate as an ensemble when no model is named."""
    return [Path(str(resources.files("vocalsep") / "models" / name)) for name in SHIPPED_MODELS]
