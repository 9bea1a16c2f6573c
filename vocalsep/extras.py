"""The optional parts of the install: ``pip install vocalsep`` is what separation needs; training and
evaluation come with the extras ``[train]`` and ``[eval]`` (pyproject.toml).  A command whose extra is
missing says so in one line, before it imports anything."""

from __future__ import annotations

import importlib.util

from .errors import VocalsepError

#: extra -> (what it is called in messages, the modules it brings; for "train", what it needs depends on
#: Keras's backend: :func:`require`)
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
    modules (or just ``modules`` of it) are installed.  For ``train`` on JAX (:func:`keras_backend`), which
    the extra would not bring, the error names jax and keras instead."""
    name, default = EXTRAS[extra]
    if extra == "train" and modules is None:
        backend = keras_backend()
        default = (backend, "keras")  # Keras and its backend's module (named as the backend)
        if backend != "tensorflow" and not all(installed(m) for m in default):  # the extra would bring TensorFlow
            raise VocalsepError(f"{what}: Keras on {backend} needs {' and '.join(default)} installed "
                                "(install them, or set KERAS_BACKEND=tensorflow)")
    missing = [m for m in (modules or default) if not installed(m)]
    if missing:
        raise VocalsepError(f'{what}: needs the {name} extra ({", ".join(missing)} not installed): '
                            f'pip install "vocalsep[{extra}]"')


#: the Keras backends vocalsep trains and runs networks on (each the name of the module it needs)
KERAS_BACKENDS = ("tensorflow", "jax")


def keras_backend() -> str:
    """The Keras backend that training and ``--backend keras`` run on, resolved as Keras resolves it: the
    imported Keras's own when Keras is imported already (it picks once, at import), else
    ``$KERAS_BACKEND``, else the ``backend`` of ``$KERAS_HOME/keras.json`` (default ``~/.keras``), else
    TensorFlow, which the ``train`` extra installs.  JAX trains too (on a GPU where only JAX is installed,
    say: docs/gpu.md); only TensorFlow converts a network for LiteRT, so model files written on JAX carry
    no ``model.tflite`` (:meth:`vocalsep.model.ModelFile.from_keras`; `vocalsep export` adds it).
    Any other backend is a one-line VocalsepError."""
    import json
    import os
    import sys
    from pathlib import Path

    imported = getattr(getattr(sys.modules.get("keras"), "backend", None), "backend", None)
    if callable(imported):  # (sys.modules may hold None for a module hidden as not installed)
        name = imported()
        source = f"Keras runs on {name}"
    else:
        name = os.environ.get("KERAS_BACKEND", "")
        source = f"KERAS_BACKEND={name}"
        if not name:
            home = Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras")
            try:
                name = str(json.loads((home / "keras.json").read_text()).get("backend", ""))
                source = f"{home / 'keras.json'}: backend {name}"
            except (OSError, ValueError, AttributeError):
                name = ""
        name = name or "tensorflow"
    if name not in KERAS_BACKENDS:
        raise VocalsepError(f"{source}: not a Keras backend vocalsep runs on ({', '.join(KERAS_BACKENDS)})")
    return name


def tensorflow_if_backend():
    """The TensorFlow module, imported quietly (:func:`import_tensorflow`), when Keras runs on TensorFlow;
    None on JAX, whose Keras needs nothing imported first."""
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
