"""The run folder of ``vocalsep train``: what a new run may write into, and what a resumed run must keep.

A new run refuses a folder that holds a checkpoint (resume it instead) or a trained model (nothing there
is overwritten); a resumed run needs the checkpoint, and the settings that define the run as its
``config.yaml`` saved them: the STFT and network (the weights' shapes), the loss and the precision (the
best validation loss so far), the data sets and the validation split (another split would train on songs
validated so far), the batch size and the seed (a resumed run sees the batches an uninterrupted one would
have), and the songs on each side of the validation split (``validation.txt``: songs that fail to read
since can move others).  Where ``validation.txt`` exists the songs decide, not the settings: other names
for the same validation songs resume; runs begun before it keep ``data.validation`` and
``data.validation_fraction`` as they were.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import atomic
from .config import Config, load_config
from .errors import VocalsepError

CHECKPOINT = "checkpoint.npz"
VALIDATION = "validation.txt"  # the names of the run's validation songs, one a line


def _resolved(datasets) -> list[str]:
    return [str(Path(p).expanduser().resolve()) for p in datasets]


def write_config(cfg: Config, path: Path) -> None:
    """The resolved configuration as YAML (what ``--resume`` without ``--config`` reads back), atomically;
    its data sets as absolute paths, so that a run resumed from another working directory reads the same."""
    import yaml

    d = cfg.to_dict()  # absolute, the links kept (data moved behind a link it names is still found)
    d["data"]["datasets"] = [os.path.abspath(os.path.expanduser(p)) for p in cfg.data.datasets]
    atomic.write_bytes(path, yaml.safe_dump(d, sort_keys=False).encode())


def check_resume_config(cfg: Config, out_dir: Path) -> None:
    """VocalsepError naming the setting when ``cfg`` changes what the run in ``out_dir`` must keep (above)."""
    saved = out_dir / "config.yaml"
    if not saved.exists():
        return
    old = load_config(saved)
    for section in ("spectral", "model"):
        if getattr(old, section) != getattr(cfg, section):
            raise VocalsepError(f"{saved}: the {section} settings differ from this run's; resume with the same "
                                f"{section} section (or train into another --out)")
    for key in ("loss", "precision"):  # the best validation loss so far would be of another loss / arithmetic
        if getattr(old.train, key) != getattr(cfg.train, key):
            raise VocalsepError(f"{saved}: train.{key} was {getattr(old.train, key)!r}, this run's is "
                                f"{getattr(cfg.train, key)!r}; resume with the same {key} (or train into another "
                                "--out)")
    # what splits the songs (another split would train on songs validated so far), and what fixes the batches
    # (a resumed run sees those an uninterrupted one would have seen); steps, schedule and the rest may change
    same = {"data.datasets": lambda c: _resolved(c.data.datasets), "data.dataset": lambda c: c.data.dataset,
            "train.batch_size": lambda c: c.train.batch_size, "train.seed": lambda c: c.train.seed}
    if not (out_dir / VALIDATION).is_file():  # a run begun before validation.txt: its split by its settings;
        # with the file, check_split compares the songs themselves (other names for the same songs resume)
        same["data.validation"] = lambda c: sorted(set(c.data.validation))
        # the share held out counts only where no songs are named
        same["data.validation_fraction"] = lambda c: None if c.data.validation else c.data.validation_fraction
    for key, get in same.items():
        if get(old) != get(cfg):
            raise VocalsepError(f"{saved}: {key} was {get(old)!r}, this run's is {get(cfg)!r}; resume with the "
                                "run's own (leave --config out to take them from its config.yaml), or train "
                                "into another --out")


def _recorded(path: Path) -> set[str]:
    """The song names of a run's :data:`VALIDATION` file."""
    return set(path.read_text(encoding="utf-8").split("\n")) - {""}


def check_split(out_dir: Path, train_songs, val_songs) -> None:
    """On a resume, before any patch is made: compare the run's validation songs (:data:`VALIDATION`, where
    the run has one) with the split of the songs found now.  Songs left out or added since (a stem that no
    longer reads) can move others across a ``validation_fraction`` split, and other validation settings can
    select other songs: a song validated so far that would now be trained on, or one trained on that would
    now be validated, is a VocalsepError (the validation figures would no longer be of songs the network
    never trained on); validation songs merely gone are a warning."""
    import logging

    path = out_dir / VALIDATION
    if not path.is_file():
        return
    before = _recorded(path)
    now = {s.name for s in val_songs}
    moved = sorted((before & {s.name for s in train_songs}) | (now - before))
    if moved:
        raise VocalsepError(f"{path}: the validation split moved since the run began ({moved[0]}"
                            f"{f' and {len(moved) - 1} more' if len(moved) > 1 else ''} changed sides: the "
                            "songs read, or the validation settings, differ from the run's); resume with the "
                            "run's songs and its data.validation / data.validation_fraction (its "
                            "config.yaml), or train into another --out")
    if before != now:
        logging.getLogger("vocalsep.train").warning(
            "%s: validation songs of the run not read now: %d; the validation loss is no longer comparable "
            "with the run's so far", path, len(before - now))


def write_split(out_dir: Path, val_songs, resume: bool) -> None:
    """Record the names of the run's validation songs in ``out_dir`` (:data:`VALIDATION`), one a line; a
    resumed run (past :func:`check_split`) keeps those it validated before and does not read now, so that
    a song that reads again later is still one the network never trained on."""
    path = out_dir / VALIDATION
    names = {s.name for s in val_songs}
    if resume and path.is_file():
        names |= _recorded(path)
    atomic.write_bytes(path, "".join(f"{n}\n" for n in sorted(names)).encode())


def check_out_dir(out_dir: Path, resume: bool) -> None:
    """Before any data is read: ``out_dir`` must be a folder (or one that can be made) that holds no trained
    model when this is not a resumed run; VocalsepError naming it otherwise."""
    if out_dir.exists() and not out_dir.is_dir():
        raise VocalsepError(f"{out_dir}: is a file, not a folder for the run")
    if resume:
        if not (out_dir / CHECKPOINT).exists():
            raise VocalsepError(f"{out_dir / CHECKPOINT}: no checkpoint to resume from")
        return
    if (out_dir / CHECKPOINT).exists():
        raise VocalsepError(f"{out_dir}: already holds a training run; use --resume or another --out")
    done = [n for n in ("model.vsep", "best.vsep") if (out_dir / n).exists()] + sorted(
        p.name for p in out_dir.glob("step-*.vsep")) if out_dir.is_dir() else []
    if done:
        raise VocalsepError(f"{out_dir}: already holds a trained model ({done[0]}) and no checkpoint to resume "
                            "from; train into another --out (nothing there is overwritten)")
    parent = next(p for p in (out_dir, *out_dir.absolute().parents) if p.exists())
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise VocalsepError(f"{out_dir}: cannot write the run there ({parent} is not a writable folder)")
