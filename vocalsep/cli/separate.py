"""``vocalsep separate``: songs into vocals and accompaniment (:mod:`vocalsep.separate`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import (
    outspec,  # the output options' names (standard library only: --help stays light)
)
from ..errors import VocalsepError
from ..extras import require, tensorflow_if_backend
from . import (
    EXIT_FAILED,
    EXIT_USAGE,
    FAST_HELP,
    chosen_models,
    fail,
    main,
    setup_output,
    verbosity,
)


@main.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", type=click.Path(path_type=Path), default=Path("separated"),
              show_default=True, help="Folder for the results: OUTPUT/<song>/vocals.<fmt> and accompaniment.<fmt>.")
@click.option("-f", "--format", "fmt", type=click.Choice(list(outspec.FORMATS)), default="wav", show_default=True,
              help="Codec of the written files.")
@click.option("--int16", is_flag=True,
              help="16-bit samples (wav, flac).  Default: the input's (16, 24 bit or float; lossy inputs: 16).")
@click.option("--int24", is_flag=True, help="24-bit samples (wav, flac).")
@click.option("--float32", is_flag=True,
              help="32-bit float samples (wav): nothing clipped (unless --clip clamp).")
@click.option("--clip", type=click.Choice(list(outspec.CLIPS)), default=None,
              help="Samples beyond full scale: rescale (both stems by one gain, so they still add up), clamp, or "
                   "none (float only).  Default: rescale for integer and lossy formats, none for float.  Warns when "
                   "it acts.")
@click.option("--stem", "stem", type=click.Choice(list(outspec.STEMS)), default=None,
              help="Write this stem only (default: both).")
@click.option("--stem-names", "accompaniment_name", type=click.Choice(list(outspec.ACCOMPANIMENT_NAMES)),
              default="accompaniment", show_default=True,
              help="Name of the accompaniment stem's file: instrumental, or no_vocals as Demucs writes it.")
@click.option("--two-stems", "two_stems", type=click.Choice(["vocals"]), default=None,
              help="Demucs's spelling: vocals and no_vocals (what --stem-names no_vocals writes).")
@click.option("--filename", "template", metavar="TEMPLATE", default=outspec.DEFAULT_TEMPLATE, show_default=True,
              help="Output path below OUTPUT, with {track} (the input's path below its folder, without extension), "
                   "{stem}, {ext} and {input_ext}; e.g. '{track}_{input_ext}/{stem}.{ext}' keeps a.mp3 and a.wav "
                   "apart.  A song's stems share one folder.")
@click.option("--mp3-bitrate", type=click.IntRange(8, 320), default=None, metavar="KBPS",
              help="Constant bitrate of mp3 outputs, e.g. 320 (default: variable bitrate, LAME's -V 4).")
@click.option("--mp3-quality", type=click.FloatRange(0, 9), default=None, metavar="V",
              help="Variable bitrate of mp3 outputs at LAME's quality V: 0 (best, ~245 kbps) to 9 (~65 kbps); "
                   "default 4.")
@click.option("--tags/--no-tags", default=True, show_default=True,
              help="Copy the input's tags (title, artist, album, date, track, genre, comment, copyright) and "
                   "cover picture to each stem, the stem named in its title: 'Song (vocals)'.")
@click.option("--start", type=click.FloatRange(min=0), default=0.0, metavar="SECONDS",
              help="Separate from this time in each input (default: its start).")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS",
              help="Separate this many seconds (default: to the end).")
@click.option("-m", "--model", "models", type=click.Path(path_type=Path), multiple=True, metavar="FILE",
              help="A model file written by 'vocalsep train' (default: the models shipped with vocalsep).  "
                   "Repeat it for an ensemble: the mean of the models' masks (they must share the STFT and "
                   "number of bins; N models: N times the network's time).")
@click.option("--fast", is_flag=True, help=FAST_HELP)
@click.option("--overwrite", is_flag=True,
              help="Replace existing outputs (a song whose outputs are all vocalsep's, from the same model and "
                   "options, is skipped without it; other existing outputs fail the song).")
@click.option("--backend", type=click.Choice(["auto", "litert", "keras"]), default="auto", show_default=True,
              help="Inference runtime: LiteRT (fast start) or Keras/TensorFlow (needs vocalsep[train]).")
@click.option("-j", "--threads", type=click.IntRange(min=1), default=None,
              help="Threads of the network (LiteRT; default: one per CPU).")
@verbosity
def separate(inputs: tuple[Path, ...], out_dir: Path, fmt: str, int16: bool, int24: bool, float32: bool,
             clip: str | None,
             stem: str | None, accompaniment_name: str, two_stems: str | None, template: str, mp3_bitrate: int | None,
             mp3_quality: float | None, tags: bool, start: float,
             duration: float | None, models: tuple[Path, ...], fast: bool, overwrite: bool, backend: str,
             threads: int | None, quiet: bool, verbose: bool) -> None:
    """Separate INPUTS (audio files or folders of them) into vocals and accompaniment."""
    from ..interrupt import sigterm_as_ctrl_c
    from ..outspec import STEMS, OutputOptions
    progress = setup_output(quiet, verbose)
    depth = _depth(int16=int16, int24=int24, float32=float32)
    if two_stems:
        given = click.get_current_context().get_parameter_source("accompaniment_name")
        if accompaniment_name != "no_vocals" and given != click.core.ParameterSource.DEFAULT:
            fail(f"--two-stems vocals names the accompaniment no_vocals; --stem-names {accompaniment_name} "
                  "names it otherwise: give one of them", EXIT_USAGE)
        accompaniment_name = "no_vocals"
    try:  # options that contradict each other are bad options: exit code 2, as for click's own checks
        options = OutputOptions(fmt, depth, clip, (stem,) if stem else STEMS, accompaniment_name, template,
                                mp3_bitrate, start, duration, mp3_quality=mp3_quality, tags=tags)
    except VocalsepError as e:
        fail(str(e), EXIT_USAGE)
    if backend == "keras":
        require("train", "the keras backend (--backend keras)")
        tensorflow_if_backend()
    from ..separate import Separator, collect_inputs, run_batch

    jobs = collect_inputs(inputs)
    sep = Separator(chosen_models(models, fast), backend=backend, threads=threads)
    # one song: its error, if any, is the whole report; a batch ends with a summary of all failures.
    # SIGTERM (kill PID) stops it like Ctrl-C: its temporary files are removed, the exit code is 130
    with sigterm_as_ctrl_c():
        failures = run_batch(sep, jobs, out_dir, overwrite=overwrite, report_failures=len(jobs) > 1,
                             progress=progress, quiet=quiet, verbose=verbose, options=options)
    if failures:
        if len(jobs) == 1:
            fail(failures[0].message)
        sys.exit(EXIT_FAILED)


def _depth(**flags: bool) -> str | None:
    """The sample format of --int16 / --int24 / --float32 (None: the input's); two of them are a usage error,
    not the last one silently."""
    given = [name for name, on in flags.items() if on]
    if len(given) > 1:
        raise click.UsageError(" and ".join(f"--{g}" for g in given) + " are alternatives; give one of them")
    return given[0] if given else None
