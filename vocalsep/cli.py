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


if __name__ == "__main__":  # pragma: no cover
    main()
