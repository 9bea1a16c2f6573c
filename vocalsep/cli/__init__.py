"""The ``vocalsep`` command line: a thin layer over the library, one module per command (``separate``,
``train``, ``evaluate``, ``export``) and this one for the group and what the commands share.

Library code raises :class:`vocalsep.VocalsepError`; this module alone turns it into a one-line message on
stderr and a non-zero exit.  Heavy imports happen inside the commands, so ``vocalsep --help`` is instant.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .. import __version__
from ..errors import VocalsepError

# exit codes
EXIT_FAILED = 1      # a command failed, or some files of a batch did
EXIT_USAGE = 2       # bad options (click's own code for them)


def quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def fail(msg: str, code: int = 1) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(code)


class _Group(click.Group):
    """Turns VocalsepError into one line and exit code 1; Ctrl-C into exit code 130 without a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except VocalsepError as e:
            fail(str(e))
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="vocalsep")
def main() -> None:
    """Separate the singing voice from the accompaniment of songs."""
    quiet_tensorflow()


def verbosity(command):
    """-q/--quiet and -v/--verbose, on every command."""
    command = click.option("-v", "--verbose", is_flag=True,
                           help="More messages on stderr (each file as it is done, debug details).")(command)
    return click.option("-q", "--quiet", is_flag=True,
                        help="Only warnings and errors on stderr: no progress bar, no summary.")(command)


#: --fast's help (separate and evaluate); the figures: docs/choices.md, "The shipped ensemble"
FAST_HELP = ("One shipped model instead of the ensemble of two (the same recipe trained with two seeds, their "
             "masks averaged): 1.5x faster, 0.1 to 1.2 dB lower vocals SDR on voices the models never heard.  "
             "Faster still, and the ensemble's vocals: int8 copies of both ('vocalsep export --help').")


def chosen_models(models: tuple[Path, ...], fast: bool) -> list[Path] | None:
    """The model files of -m/--model and --fast (None: the shipped ensemble)."""
    if fast:
        if models:
            raise click.UsageError("--fast takes the first shipped model alone; with -m, name the models you want")
        from ..model import default_model_path

        return [default_model_path()]
    return list(models) or None


def setup_output(quiet: bool, verbose: bool) -> bool:
    """Set up the messages for -q / -v; returns whether to show progress bars (not with -q, and only when
    stderr is a terminal, so that logs and pipes get no bar)."""
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose are alternatives; give one of them")
    import logging

    log_to_stderr(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    return not quiet and sys.stderr.isatty()


def log_to_stderr(level: int = 20) -> None:
    """Library messages (logger ``vocalsep``) as one line each on stderr: ``warning: ...``."""
    import logging

    class Handler(logging.StreamHandler):
        def emit(self, record) -> None:
            from tqdm import tqdm

            self.stream = sys.stderr  # whatever it is now (click's test runner swaps it)
            record.prefix = "" if record.levelno <= logging.INFO else f"{record.levelname.lower()}: "
            with tqdm.external_write_mode(file=sys.stderr):  # a line of its own, not glued to a progress bar
                super().emit(record)

    logger = logging.getLogger("vocalsep")
    if not any(getattr(h, "_vocalsep", False) for h in logger.handlers):
        h = Handler()
        h.setFormatter(logging.Formatter("%(prefix)s%(message)s"))
        h._vocalsep = True  # type: ignore[attr-defined]
        logger.addHandler(h)
    logger.setLevel(level)
    logger.propagate = False  # TensorFlow's absl puts a handler on the root logger: print once


# the commands register themselves on ``main`` (after it and the helpers above exist)
from . import evaluate, export, separate, train  # noqa: F401
