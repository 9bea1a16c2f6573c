"""The ``vocalsep`` command line: a thin layer over the library.

Library code raises :class:`vocalsep.VocalsepError`; this module alone turns it into a one-line message on
stderr and a non-zero exit.  Heavy imports happen inside the commands, so ``vocalsep --help`` is instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from . import __version__
from .errors import VocalsepError

# exit codes
EXIT_FAILED = 1      # a command failed, or some files of a batch did
EXIT_USAGE = 2       # click's own code for bad options


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _fail(msg: str) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(EXIT_FAILED)


class _Group(click.Group):
    """Turns VocalsepError into one line and exit code 1; Ctrl-C into exit code 130 without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VocalsepError as e:
            _fail(str(e))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vocalsep")
def main() -> None:
    """Separate the singing voice from the accompaniment of songs."""
    _quiet_tensorflow()


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("separated"),
              show_default=True, help="Folder for the results: OUTPUT/<song>/vocals.<fmt> and accompaniment.<fmt>.")
@click.option("-f", "--format", "fmt", type=click.Choice(["wav", "flac", "mp3"]), default="wav", show_default=True,
              help="Codec of the written files (wav and flac: 16-bit).")
@click.option("-m", "--model", type=click.Path(path_type=Path), default=None,
              help="A model file written by 'vocalsep train' (default: the model shipped with vocalsep).")
@click.option("--overwrite", is_flag=True, help="Replace existing outputs instead of skipping their song.")
@click.option("--backend", type=click.Choice(["auto", "litert", "keras"]), default="auto", show_default=True,
              help="Inference runtime: LiteRT (fast start) or Keras/TensorFlow.")
def separate(inputs: tuple[Path, ...], out_dir: Path, fmt: str, model: Path | None, overwrite: bool,
             backend: str) -> None:
    """Separate INPUTS (audio files or folders of them) into vocals and accompaniment."""
    from .separate import Separator, collect_inputs, run_batch

    jobs = collect_inputs(inputs)
    sep = Separator(model, backend=backend)
    failures = run_batch(sep, jobs, out_dir, fmt=fmt, overwrite=overwrite)
    if failures:
        sys.exit(EXIT_FAILED)


def _log_to_stderr() -> None:
    """Library messages (logger ``vocalsep``) as one line each on stderr: ``warning: ...``."""
    import logging

    class Handler(logging.StreamHandler):
        def emit(self, record) -> None:
            self.stream = sys.stderr  # whatever it is now (click's test runner swaps it)
            record.prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
            super().emit(record)

    logger = logging.getLogger("vocalsep")
    if not any(getattr(h, "_vocalsep", False) for h in logger.handlers):
        h = Handler()
        h.setFormatter(logging.Formatter("%(prefix)s%(message)s"))
        h._vocalsep = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # TensorFlow's absl puts a handler on the root logger: print once


@main.command()
@click.option("--data", "datasets", multiple=True, type=click.Path(path_type=Path),
              help="Training data folder (repeatable): a MUSDB18 or MUSDB18-HQ root, a CCMixter folder, or a "
                   "folder of <song>/vocals.* + accompaniment.* (or other stems).  Default: data.datasets.")
@click.option("--dataset", type=click.Choice(["auto", "musdb", "musdb-hq", "ccmixter", "stems"]), default=None,
              help="Kind of every --data folder (default: data.dataset, normally auto: detected per folder).")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML config (e.g. configs/unet.yaml); options given here override it.  Default: built-in "
                   "defaults (the same as configs/unet.yaml).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run folder: checkpoint, logs, config.yaml, best.vsep and model.vsep.")
@click.option("--batch-size", type=int, default=None, help="Patches per step (default: train.batch_size).")
@click.option("--steps", type=int, default=None, help="Total training steps (default: train.steps).")
@click.option("--lr", type=float, default=None, help="Adam learning rate (default: train.learning_rate).")
@click.option("--seed", type=int, default=None, help="Seed of initialisation and data (default: train.seed).")
@click.option("--workers", type=int, default=None, help="Data worker processes (default: data.workers).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.")
@click.option("--validation", multiple=True,
              help="Song name or name prefix to hold out for validation (repeatable; default: data.validation, "
                   "else data.validation_fraction of the songs).")
def train(datasets: tuple[Path, ...], dataset: str | None, config_path: Path | None, out_dir: Path,
          batch_size: int | None, steps: int | None, lr: float | None, seed: int | None, workers: int | None,
          resume: bool, validation: tuple[str, ...]) -> None:
    """Train a separation model; writes OUT/model.vsep (and OUT/best.vsep, the best on validation)."""
    from .config import load_config
    from .train import train as run_training

    _log_to_stderr()
    overrides = {
        "data": {"datasets": [str(p) for p in datasets] or None, "dataset": dataset,
                 "validation": list(validation) or None, "workers": workers},
        "train": {"batch_size": batch_size, "steps": steps, "learning_rate": lr, "seed": seed},
    }
    cfg = load_config(config_path, overrides)
    final = run_training(cfg, out_dir, resume=resume, progress=True)
    click.echo(f"Model written to {final}")


if __name__ == "__main__":  # pragma: no cover
    main()
