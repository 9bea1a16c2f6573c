"""Checks of what reaches vocalsep from outside: library arguments and the contents of model files.

Each raises :class:`VocalsepError` with a one-line message naming the argument, or the file and setting.
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from .config import ModelConfig, SpectralConfig
from .errors import VocalsepError
from .models.registry import get_arch


def check_number(name: str, value, low: float, high: float, low_open: bool = False) -> float:
    """``value`` as a float if it is a real number in [low, high] ((low, high] with ``low_open``), else
    VocalsepError naming the argument ``name``."""
    ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
          and math.isfinite(value) and (value > low if low_open else value >= low) and value <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"
        raise VocalsepError(f"{name} must be a number in {interval}, not {value!r}")
    return float(value)


def check_rate(sample_rate) -> int:
    """A sample rate in Hz as an int, or VocalsepError: a whole number in [1000, 1000000]."""
    if (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, float, np.integer, np.floating))
            or not math.isfinite(sample_rate) or sample_rate != int(sample_rate)
            or not 1000 <= sample_rate <= 1_000_000):
        raise VocalsepError(f"sample_rate must be a whole number of Hz in [1000, 1000000], not {sample_rate!r}")
    return int(sample_rate)


def read_member(z: zipfile.ZipFile, path: Path, name: str, limit: int) -> bytes:
    """The bytes of zip member ``name``, refused before reading when it is larger than ``limit`` bytes."""
    try:
        info = z.getinfo(name)
    except KeyError:
        raise VocalsepError(f"{path}: not a vocalsep model file (it has no {name})") from None
    if info.file_size > limit:
        raise VocalsepError(f"{path}: {name} is {info.file_size} bytes, more than the {limit} its settings allow; "
                            "not read")
    with z.open(info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # pragma: no cover  (zipfile stops at the declared size)
        raise VocalsepError(f"{path}: {name} is larger than its settings allow; not read")
    return data


#: (lowest, highest) of each integer setting of a model file; floats are checked in model_settings
_INT_RANGES = {
    "sample_rate": (1000, 384000), "n_fft": (16, 1 << 16), "hop_length": (1, 1 << 16),
    "freq_bins": (1, 1 << 15), "frames": (1, 1 << 12), "kernel_size": (1, 15), "stride": (1, 4),
    "dropout_layers": (0, 64),
}
#: most weights a model file's network may have
MAX_WEIGHTS = 1 << 27


def model_settings(path: Path | str, cfg: dict, fmt: int = 2, member: str = "config.json: "
                   ) -> tuple[SpectralConfig, ModelConfig]:
    """The spectral and model settings of a model file's config.json (format ``fmt``), each checked for its
    type and range (VocalsepError naming the file and the setting).  Format 1 has no ``model.arch``: its
    settings are the U-Net's; format 2 names the architecture, whose settings class checks the others (the
    shared ones here, by type and range; its own ones through :mod:`vocalsep.config`'s pydantic checks and
    its ``__post_init__``).  ``member``: what the messages name after ``path`` (a training config: "")."""
    def bad(key, value, want):
        return VocalsepError(f"{path}: {member}{key} must be {want}, not {repr(value)[:40]}")

    out = {}
    for section in ("spectral", "model"):
        d = cfg.get(section)
        if not isinstance(d, dict):
            raise bad(section, d, "a mapping of settings")
        if section == "spectral":
            kind = SpectralConfig
        else:
            arch = d.get("arch", "unet") if fmt >= 2 else "unet"
            if not isinstance(arch, str):
                raise bad("model.arch", arch, "the name of an architecture")
            try:
                kind = get_arch(arch).config
            except VocalsepError as e:
                raise VocalsepError(f"{path}: {member}model.arch: {str(e)[:200]}") from None
        names = {f.name for f in fields(kind)} - ({"arch"} if fmt < 2 else set())
        unknown = sorted(str(k)[:40] for k in d if k not in names)
        if unknown:
            raise VocalsepError(f"{path}: {member}unknown {section} setting(s) {unknown}")
        for key, value in d.items():
            if key in _INT_RANGES:
                lo, hi = _INT_RANGES[key]
                if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
                    raise bad(f"{section}.{key}", value, f"a whole number in [{lo}, {hi}]")
            elif key == "channels":
                if (not isinstance(value, list) or not 1 <= len(value) <= 12
                        or any(isinstance(c, bool) or not isinstance(c, int) or not 1 <= c <= 4096 for c in value)):
                    raise bad(f"{section}.{key}", value, "a list of 1 to 12 whole numbers in [1, 4096]")
            elif key in ("dropout", "leaky_slope"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
                    raise bad(f"{section}.{key}", value, "a number in [0, 1)")
        out[section] = (kind, d)
    sp = SpectralConfig(**out["spectral"][1])
    if sp.hop_length > sp.n_fft:
        raise bad("spectral.hop_length", sp.hop_length, f"at most n_fft ({sp.n_fft})")
    from .config import _build  # the YAML configs' checks: types of the architecture's own settings

    mc = _build(*out["model"], f"{path}: {member}model")
    if mc.freq_bins > sp.n_fft // 2:
        raise bad("model.freq_bins", mc.freq_bins, f"at most n_fft / 2 ({sp.n_fft // 2})")
    if mc.freq_bins * mc.frames > 1 << 20:
        raise bad("model.frames", mc.frames, f"such that freq_bins x frames <= {1 << 20}")
    shapes = weight_shapes(mc)
    if shapes is not None and sum(math.prod(s) for s in shapes) > MAX_WEIGHTS:
        raise VocalsepError(f"{path}: {member}a network of these settings would have over {MAX_WEIGHTS} weights")
    return sp, mc


def weight_shapes(cfg: ModelConfig) -> list[tuple[int, ...]] | None:
    """Shapes of the weight arrays of ``cfg``'s network in ``get_weights()`` order, known without Keras for
    the U-Net (:func:`vocalsep.models.unet.weight_shapes`); None for other architectures, whose weights are
    checked against the network when it is built (:meth:`vocalsep.model.ModelFile.keras_model`)."""
    if cfg.arch != "unet":
        return None
    from .models.unet import weight_shapes as unet_shapes

    return unet_shapes(cfg)


def training_config(cfg, source: str = "config") -> None:
    """Check a training :class:`~vocalsep.config.Config` before any data is read: its network as a model file's
    (:func:`model_settings`: so that training never makes a model file that separation refuses, such as
    ``freq_bins`` above ``n_fft / 2``), and the numbers of its ``train`` and ``data`` sections that the types
    alone do not bound.  VocalsepError naming ``source`` and the setting."""
    from dataclasses import asdict

    model_settings(source, {"spectral": asdict(cfg.spectral), "model": cfg.model.to_dict()}, member="")
    t, d = cfg.train, cfg.data

    def need(ok: bool, key: str, value, want: str) -> None:
        if not ok:
            raise VocalsepError(f"{source}: {key} = {value!r}: must be {want}")

    need(math.isfinite(t.learning_rate) and t.learning_rate > 0, "train.learning_rate", t.learning_rate,
         "a number > 0")
    if t.lr_decay_steps > 0:  # the floor of the cosine decay; a constant rate (no decay) never reaches it
        need(0 <= t.lr_min <= t.learning_rate, "train.lr_min", t.lr_min,
             f"from 0 to train.learning_rate ({t.learning_rate:g}) when train.lr_decay_steps is set")
    need(math.isfinite(t.weight_decay) and t.weight_decay >= 0, "train.weight_decay", t.weight_decay, "0 or more")
    need(t.batch_size >= 1, "train.batch_size", t.batch_size, "1 or more")
    for key in ("steps", "lr_decay_steps", "steps_per_epoch", "checkpoint_every", "snapshot_every",
                "validation_songs_sdr", "threads", "log_every"):
        need(getattr(t, key) >= 0, f"train.{key}", getattr(t, key), "0 or more")
    need(0 <= d.validation_fraction < 1, "data.validation_fraction", d.validation_fraction,
         "from 0 to below 1 (the share of songs held out)")
    need(d.workers >= 0, "data.workers", d.workers, "0 (one thread of the training process) or more")
    need(d.validation_patches >= 0, "data.validation_patches", d.validation_patches, "0 or more")
    need(d.cache_subtype in ("FLOAT", "PCM_16"), "data.cache_subtype", d.cache_subtype, "FLOAT or PCM_16")
    need(t.precision in ("float32", "mixed_bfloat16"), "train.precision", t.precision,
         "float32 or mixed_bfloat16")  # (float16 would need loss scaling; bfloat16 weights lose the small updates)
