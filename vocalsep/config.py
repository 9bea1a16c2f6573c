"""Typed configuration: spectral front end, network, data and training.

A YAML file in ``configs/`` holds four sections (``spectral``, ``model``, ``data``, ``train``), each mapped
onto one dataclass below; keys that are left out keep the defaults.  The ``model`` section's ``arch`` (default
``unet``) names a registered architecture (:mod:`vocalsep.models`), whose settings class (a subclass of
:class:`ModelConfig`) checks the section's other keys.  A saved model stores its ``spectral`` and ``model``
sections, so a model file is all that separation needs.  The files of
``configs/`` are shipped with the package: ``--config unet`` finds ``configs/unet.yaml`` from anywhere.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .errors import VocalsepError


@dataclass
class SpectralConfig:
    """The STFT the network sees.

    sample_rate: Hz at which the network runs (audio is resampled to it).
    n_fft: window and FFT length in samples at ``sample_rate``.
    hop_length: hop in samples at ``sample_rate``.
    """

    sample_rate: int = 16384
    n_fft: int = 1024
    hop_length: int = 512

    @property
    def hop_seconds(self) -> float:
        return self.hop_length / self.sample_rate


@dataclass
class ModelConfig:
    """A spectral network's settings: those every architecture shares, which are the whole of the U-Net of
    Jansson et al. (2017), architecture ``unet``.  Another architecture's settings extend this class (see
    :mod:`vocalsep.models`).

    freq_bins x frames is the patch the network sees (the lowest ``freq_bins`` STFT bins; the Nyquist bin
    is dropped).  ``channels`` lists the encoder's filters; the decoder mirrors them.  The first
    ``dropout_layers`` decoder layers use ``dropout``.  ``arch``: the registered architecture these settings
    are for (``model: {arch: resunet, ...}`` in a YAML config picks its settings class); a subclass's instances
    get their class's registered name when they are not given one.
    """

    freq_bins: int = 512
    frames: int = 128
    channels: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    kernel_size: int = 5
    stride: int = 2
    dropout: float = 0.5
    dropout_layers: int = 3
    leaky_slope: float = 0.2
    arch: str = "unet"

    def __post_init__(self) -> None:
        if type(self) is not ModelConfig and self.arch == "unet":  # a subclass's instance: its own name
            self.arch = _registered_name(type(self), self.arch)
        self.channels = tuple(int(c) for c in self.channels)
        factor = self.stride ** len(self.channels)
        if self.freq_bins % factor or self.frames % factor:
            raise VocalsepError(
                f"model: freq_bins ({self.freq_bins}) and frames ({self.frames}) must be multiples of "
                f"stride**depth = {factor}"
            )

    @classmethod
    def tiny(cls) -> "ModelConfig":
        """A tiny instance for tests: 64 x 16 patches, two levels of 4 and 8 channels (a few thousand weights,
        built and exported in seconds).  An architecture whose settings need other values overrides it."""
        return cls(freq_bins=64, frames=16, channels=(4, 8), dropout_layers=1)

    def io_shapes(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(input, output) shapes of one example of the network, without the batch axis: a spectral network
        maps a (freq_bins, frames, 1) patch to a mask of the same shape.  A waveform architecture overrides
        it ((samples in, 1) -> (samples out, 1))."""
        return (self.freq_bins, self.frames, 1), (self.freq_bins, self.frames, 1)

    def to_dict(self) -> dict[str, Any]:
        """``arch`` first, then the settings, tuples as lists (as YAML and config.json hold them)."""
        d = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}
        return {"arch": d.pop("arch"), **d}


def _registered_name(kind: type, default: str) -> str:
    """The name an architecture registered with settings class ``kind`` (the first, when several share it);
    ``default`` when none did (building or saving such settings is then an error that names the class)."""
    from .models import registry

    for load in (False, True):
        if load:
            registry._load_all()
        names = [a.name for a in registry.ARCHS.values() if a.config is kind]
        if names:
            return names[0]
    return default


def model_class(values: Any, source: str) -> type:
    """The settings class of the architecture that the model section ``values`` names with ``arch``
    (``unet`` when it names none); VocalsepError naming ``source`` and the known architectures otherwise."""
    arch = values.get("arch", "unet") if isinstance(values, dict) else "unet"
    if not isinstance(arch, str):
        raise VocalsepError(f"{source}: model.arch = {arch!r}: the name of an architecture is expected")
    from .models.registry import get_arch

    try:
        return get_arch(arch).config
    except VocalsepError as e:
        raise VocalsepError(f"{source}: model.arch = {arch!r}: {e}") from None


@dataclass
class DataConfig:
    """Where training examples come from and how they are mixed.

    datasets: paths, each a MUSDB18 root, a MUSDB18-HQ root, a CCMixter folder or a folder of stems.
    dataset: ``auto`` (detect per path), ``musdb``, ``musdb-hq``, ``ccmixter`` or ``stems``.
    dataset_weights: the share of the examples drawn from each of ``datasets`` (same order, relative, each
        > 0; a song within its data set uniformly at random); a data set with no training song left (all
        held out, or unreadable) drops out and the others share its draws.  Empty: every song equally likely,
        so that a data set's share is its share of the songs.  ``vocalsep train --data`` replaces these
        with its ``--dataset-weight`` values (none: every song alike).
    validation: song names held out for validation (exact names or name prefixes).
    validation_fraction: if ``validation`` is empty, this share of songs (chosen by a seeded hash of the
        song name, so whole songs) is held out.
    gain_db: random gain per source, uniform in [-gain_db, +gain_db] dB (0 turns it off).
    channel_swap: the network is mono, so for stereo songs this takes the left, the right or the mid
        channel at random per example; off: always the mid.
    remix_probability: probability that an example's vocals come from another song than its accompaniment.
    remix_across: a remixed example takes its accompaniment from another data set than its vocals (MIR-1K
        voices over MUSDB18 accompaniment and the reverse), when there is more than one.
    circular_shift: probability that an example that is not remixed takes its accompaniment from another
        random point of the same song (Huang et al. 2014's circular shift of the voice against the
        accompaniment: new mixtures of a song's own voice and band).
    silent_vocals_probability: probability of an example with no vocals at all (teaches the network silence).
    pitch_shift, formant_shift: largest shift (semitones, either way) of the vocals' pitch (formants kept) and
        of their formants (pitch kept); 0 turns it off.  See :mod:`vocalsep.augment`.
    speed_shift: largest shift (semitones, either way) of the vocals played faster or slower (pitch, formants
        and tempo together); 0 turns it off.
    time_stretch: the vocals' tempo times up to 1 + this, or divided by it (pitch and formants kept; at most
        0.5: at the fastest tempo the margin the sampler reads after a patch shrinks to a third); 0 turns it off.
    vocal_eq_db: largest gain (dB, either way) of the random EQ of the vocals; 0 turns it off.
    vocal_reverb: probability of reverb on the vocals (its own: ``effect_probability`` does not govern it).
    effect_probability: probability that each of pitch_shift, formant_shift, speed_shift, time_stretch and
        vocal_eq_db acts on an example (with shift_copies: that an example's vocals are a shifted copy).
    shift_copies: 0, or how many pitch- and formant-shifted copies of each training song's vocals are made
        once before training (cached; :mod:`vocalsep.shifted`) for examples to draw from, instead of shifting
        on the fly (Rubber Band's high-quality engine is too slow for one data worker).
    workers: processes that read and mix examples in parallel (0: one thread of the training process).
    validation_patches: how many fixed patches of the held-out songs the validation loss is computed on.
    cache_dir: where training keeps what it makes once for fast random reads (empty: ``$VOCALSEP_CACHE``,
        else ``$XDG_CACHE_HOME/vocalsep``, else ``~/.cache/vocalsep``): MUSDB18 .stem.mp4 tracks decoded to
        wav in ``<hash of the track file>/`` (in ``musdb/`` of the default cache), stems libsndfile cannot
        read decoded in ``decoded/`` (:mod:`vocalsep.decoded`), shifted copies of the vocals in ``shifted/``
        (:mod:`vocalsep.shifted`).
    cache_subtype: sample format of those wav files, ``FLOAT`` (exact) or ``PCM_16`` (half the disk).
    """

    datasets: list[str] = field(default_factory=list)
    dataset: str = "auto"
    dataset_weights: list[float] = field(default_factory=list)
    validation: list[str] = field(default_factory=list)
    validation_fraction: float = 0.1
    gain_db: float = 3.0
    channel_swap: bool = True
    remix_probability: float = 0.25
    remix_across: bool = False
    circular_shift: float = 0.0
    silent_vocals_probability: float = 0.0
    pitch_shift: float = 0.0
    formant_shift: float = 0.0
    speed_shift: float = 0.0
    time_stretch: float = 0.0
    vocal_eq_db: float = 0.0
    vocal_reverb: float = 0.0
    effect_probability: float = 0.5
    shift_copies: int = 0
    workers: int = 1
    validation_patches: int = 64
    cache_dir: str = ""
    cache_subtype: str = "FLOAT"

    def __post_init__(self) -> None:
        self.check_dataset_weights()
        for name in ("gain_db", "pitch_shift", "formant_shift", "speed_shift", "time_stretch", "vocal_eq_db"):
            if not 0 <= getattr(self, name) < math.inf:
                raise VocalsepError(f"data.{name} = {getattr(self, name)!r}: must be 0 (off) or more")
        for name in ("remix_probability", "circular_shift", "silent_vocals_probability", "vocal_reverb",
                     "effect_probability"):
            if not 0 <= getattr(self, name) <= 1:
                raise VocalsepError(f"data.{name} = {getattr(self, name)!r}: a probability, from 0 to 1")
        if not 0 <= self.shift_copies <= 64:
            raise VocalsepError(f"data.shift_copies = {self.shift_copies!r}: 0 (off) to 64")
        if self.time_stretch > 0.5:
            raise VocalsepError(f"data.time_stretch = {self.time_stretch!r}: at most 0.5 (1.5 times the tempo, or "
                                "two thirds of it)")

    def check_dataset_weights(self) -> None:
        """A :class:`VocalsepError` unless ``dataset_weights`` is empty or one finite weight > 0 per data set
        (run at construction, and again by the sampler, since ``datasets`` may be set after it)."""
        w = self.dataset_weights
        if w and len(w) != len(self.datasets):
            raise VocalsepError(f"data.dataset_weights has {len(w)} value{'s'[:len(w) != 1]} for "
                                f"{len(self.datasets)} data set{'s'[:len(self.datasets) != 1]}; give one per "
                                "data set (in the order of data.datasets, or of --data), or none")
        if any(not 0 < x < math.inf for x in w):  # refuses NaN too
            raise VocalsepError(f"data.dataset_weights = {list(w)}: each weight must be > 0 and finite")


@dataclass
class TrainConfig:
    """Optimisation.  ``steps`` is the total number of training steps; validation runs each epoch
    (every ``steps_per_epoch`` steps); a checkpoint is written every ``checkpoint_every`` steps; the CSV and
    TensorBoard logs get the mean training loss every ``log_every`` steps; ``snapshot_every`` keeps a
    model file of the weights every that many steps (to score a run's progress afterwards).  ``init``: a ``.vsep`` model
    file whose weights start the run (fine-tuning; its spectral and model settings must match), empty for
    a random initialisation."""

    batch_size: int = 8
    learning_rate: float = 1e-3
    lr_decay_steps: int = 0          # 0: constant rate; else cosine decay to lr_min over this many steps
    lr_min: float = 1e-5
    weight_decay: float = 0.0        # 0: Adam; else AdamW: kernels shrink by weight_decay x rate each step
    loss: Literal["vocals", "both"] = "vocals"  # the vocals' error, or the vocals' plus the accompaniment's
    steps: int = 20000
    steps_per_epoch: int = 500
    checkpoint_every: int = 500
    snapshot_every: int = 0          # 0: none; else keep a model file step-NNNNNN.vsep every this many steps
    validation_songs_sdr: int = 3
    seed: int = 0
    threads: int = 0                 # 0: let TensorFlow choose
    # the training network's arithmetic: float32, or Keras's mixed_bfloat16 (bfloat16 compute, float32
    # weights; 1.25-1.45x faster steps on a CPU with AVX512-BF16, far slower on one without); the model file and
    # separation are float32 either way
    precision: Literal["float32", "mixed_bfloat16"] = "float32"
    log_every: int = 10
    init: str = ""


@dataclass
class Config:
    spectral: SpectralConfig = field(default_factory=SpectralConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config") -> "Config":
        sections = {f.name: f.type for f in dataclasses.fields(cls)}
        unknown = set(d) - set(sections)
        if unknown:
            raise VocalsepError(f"{source}: unknown section(s) {sorted(unknown)}; expected {sorted(sections)}")
        kwargs = {}
        for f in dataclasses.fields(cls):
            values = d.get(f.name) or {}
            kind = model_class(values, source) if f.name == "model" else f.default_factory
            kwargs[f.name] = _build(kind, values, f"{source}: {f.name}")  # type: ignore[misc]
        return cls(**kwargs)


def _build(kind, values: dict[str, Any], where: str):
    if not isinstance(values, dict):
        raise VocalsepError(f"{where} must be a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(values) - names
    if unknown:
        raise VocalsepError(f"{where}: unknown key(s) {sorted(unknown)}; expected some of {sorted(names)}")
    from pydantic import ValidationError

    source, _, section = where.rpartition(": ")
    # pydantic's lax mode takes true / false (YAML's yes / no too) for 1 / 0: never what a number meant
    for f in dataclasses.fields(kind):
        v = values.get(f.name)
        if (isinstance(v, bool) and _numeric(f.type)) or (
                isinstance(v, (list, tuple)) and any(isinstance(x, bool) for x in v) and _numeric_items(f.type)):
            raise VocalsepError(f"{source}: {section}.{f.name} = {v!r}: a number is expected, "
                                f"not true or false")
    try:
        return _validator(kind).validate_python(values)
    except ValidationError as e:
        raise VocalsepError(f"{source}: " + "; ".join(_problem(section, err) for err in e.errors())) from None
    except VocalsepError as e:  # a check of the dataclass itself (ModelConfig's sizes)
        raise VocalsepError(f"{source}: {e}") from None


def _numeric(annotation) -> bool:
    """Whether a field's annotation (a string under ``from __future__ import annotations``) is int or float."""
    return str(annotation) in ("int", "float", "<class 'int'>", "<class 'float'>")


def _numeric_items(annotation) -> bool:
    """Whether a field's annotation is a list or tuple of ints or floats (``list[float]``, ``tuple[int, ...]``)."""
    return str(annotation).replace("typing.", "").lower().startswith(("list[int", "list[float", "tuple[int",
                                                                       "tuple[float"))


@functools.lru_cache(maxsize=None)
def _validator(kind):
    """A pydantic validator of the dataclass ``kind`` from its field types, in pydantic's lax mode: a value of
    another type is taken when it converts exactly (the string "1e-4", which YAML 1.1 reads for 1e-4, for a
    float; 8.0 for an int), anything else ("ten" for an int) is an error."""
    from pydantic import TypeAdapter

    return TypeAdapter(kind)


def _problem(section: str, err: dict) -> str:
    """``section.key = 'value': what is wrong`` for one of pydantic's errors."""
    key = ".".join([section] + [str(part) for part in err["loc"]])
    return f"{key} = {err['input']!r}: {err['msg'][0].lower()}{err['msg'][1:]}"


#: the configs shipped with vocalsep (in a checkout, vocalsep/configs is a link to the top-level configs/)
CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def find_config(name: str | Path) -> Path:
    """The config file ``name`` names: a path, when it exists; else a config shipped with vocalsep, by its
    name with or without ``.yaml`` (``unet``, ``default.yaml``, ``ablations/short``, ``configs/unet.yaml``)."""
    path = Path(name)
    if path.exists() or path.is_absolute():
        return path
    rel = Path(*path.parts[1:]) if path.parts[0] == "configs" and len(path.parts) > 1 else path
    for candidate in (rel, rel.with_name(rel.name + ".yaml")):
        if (CONFIG_DIR / candidate).is_file():
            return CONFIG_DIR / candidate
    shipped = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    folders = sorted(f"{p.name}/..." for p in CONFIG_DIR.iterdir() if p.is_dir()) if CONFIG_DIR.is_dir() else []
    raise VocalsepError(f"{name}: no such config file, nor a config shipped with vocalsep "
                        f"({', '.join(shipped + folders) or 'none found'})")


def load_config(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Read a YAML config (or the defaults when ``path`` is None) and apply ``{section: {key: value}}``.

    ``path``: a file, or the name of a config shipped with vocalsep (see :func:`find_config`).
    A config may start from another: a top-level ``extends: other.yaml`` (a path relative to the file that
    names it) reads that file first, and this file's keys then replace its keys one by one, section by
    section (a list such as ``data.validation`` is replaced whole)."""
    path = find_config(path) if path is not None else None
    data = _read_yaml(path) if path is not None else {}
    _merge(data, overrides or {}, "config", skip_none=True)
    return Config.from_dict(data, source=str(path) if path else "config")


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The sections of the YAML file at ``path``, with its ``extends`` chain resolved."""
    import yaml

    if path.resolve() in seen:
        raise VocalsepError(f"{path}: 'extends' loops back to this file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        named_by = f" (named by 'extends' in {seen[-1]})" if seen else ""
        raise VocalsepError(f"{path}: config file does not exist{named_by}") from None
    except yaml.YAMLError as e:
        raise VocalsepError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise VocalsepError(f"{path}: expected a mapping of sections at the top level")
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise VocalsepError(f"{path}: 'extends' must name one config file")
    base = _read_yaml(path.parent / parent, seen + (path.resolve(),))
    _merge(base, data, str(path))
    return base


def _merge(data: dict[str, Any], changes: dict[str, Any], where: str, skip_none: bool = False) -> None:
    """Set ``data[section][key] = value`` for each of ``changes`` (``{section: {key: value}}``), in place;
    ``skip_none``: leave the keys whose new value is None alone (command-line options not given)."""
    for section, values in changes.items():
        target = data.get(section) or {}
        if not isinstance(target, dict) or not isinstance(values or {}, dict):
            raise VocalsepError(f"{where}: {section} must be a mapping")
        target.update({k: v for k, v in (values or {}).items() if not (skip_none and v is None)})
        data[section] = target
