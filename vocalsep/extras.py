"""The optional parts of the install: ``pip install vocalsep`` is what separation needs; training and
evaluation come with the extras ``[train]`` and ``[eval]`` (pyproject.toml).  A command whose extra is
missing says so in one line, before it imports anything."""

from __future__ import annotations

import importlib.util

from .errors import VocalsepError

#: extra -> (what it is called in messages, the modules it brings; "train": with TensorFlow as Keras's
#: backend, see :func:`training_modules`)
EXTRAS = {
    "train": ("training", ("tensorflow", "keras")),
    "eval": ("evaluation", ("museval", "mir_eval")),
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported (found without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(extra: str, what: str, modules: tuple[str, ...] | None = None) -> None:
    """VocalsepError ``WHAT: needs the <extra> extra: pip install "vocalsep[<extra>]"`` unless the extra's
    modules (or just ``modules`` of it) are installed."""
    name, default = EXTRAS[extra]
    if extra == "train" and modules is None:
        default = training_modules()
        backend = keras_backend()
        if backend != "tensorflow" and not installed(BACKENDS[backend]):  # the extra would not bring it
            raise VocalsepError(f"{what}: KERAS_BACKEND={backend} needs {BACKENDS[backend]}, which is not installed "
                                "(install it, or unset KERAS_BACKEND to train on TensorFlow)")
    missing = [m for m in (modules or default) if not installed(m)]
    if missing:
        raise VocalsepError(f'{what}: needs the {name} extra ({", ".join(missing)} not installed): '
                            f'pip install "vocalsep[{extra}]"')


#: Keras backends that train (``KERAS_BACKEND``) -> the module each needs
BACKENDS = {"tensorflow": "tensorflow", "jax": "jax"}


def keras_backend() -> str:
    """The Keras backend that training and ``--backend keras`` run on: ``$KERAS_BACKEND`` (as Keras reads
    it), else TensorFlow, which the ``train`` extra installs.  JAX trains too (on a GPU where only JAX is
    installed, say: docs/gpu.md); only TensorFlow converts a network for LiteRT, so model files written on
    JAX carry no ``model.tflite`` (:meth:`vocalsep.model.ModelFile.from_keras`; scripts/add_litert.py adds
    it).  Any other name is a VocalsepError."""
    import os

    name = os.environ.get("KERAS_BACKEND", "tensorflow") or "tensorflow"
    if name not in BACKENDS:
        raise VocalsepError(f"KERAS_BACKEND={name}: not a Keras backend vocalsep trains on ({', '.join(BACKENDS)})")
    return name


def training_modules() -> tuple[str, ...]:
    """What training needs installed: Keras and its backend's module."""
    return (BACKENDS[keras_backend()], "keras")


def import_backend():
    """Import Keras's backend before Keras: TensorFlow quietly (:func:`import_tensorflow`); another backend
    needs nothing first.  Returns the TensorFlow module, or None on another backend."""
    return import_tensorflow() if keras_backend() == "tensorflow" else None


def import_tensorflow():
    """``import tensorflow``, without the banners that its C++ libraries print on stderr while they load
    (absl's "All log messages before absl::InitializeLog() ...", oneDNN's and the CUDA stub's notes, which
    TF_CPP_MIN_LOG_LEVEL no longer silences), and with absl's Python logging at errors only."""
    import os
    import sys

    if "tensorflow" not in sys.modules:
        from .audio import quiet_stderr

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        with quiet_stderr():
            import tensorflow  # noqa: F401
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass
    return sys.modules["tensorflow"]
