"""The ``vocalsep`` command line: a thin layer over the library.

Library code raises :class:`vocalsep.VocalsepError`; this module alone turns it into a one-line message on
stderr and a non-zero exit.  Heavy imports happen inside the commands, so ``vocalsep --help`` is instant.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click

from . import __version__, outspec  # outspec: the output options' names (standard library only: --help stays light)
from .errors import VocalsepError
from .extras import tensorflow_if_backend, require

# exit codes
EXIT_FAILED = 1      # a command failed, or some files of a batch did
EXIT_USAGE = 2       # bad options (click's own code for them)


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _fail(msg: str, code: int = 1) -> None:
    click.echo(f"Error: {msg}", err=True)
    sys.exit(code)


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


def _verbosity(command):
    """-q/--quiet and -v/--verbose, on every command."""
    command = click.option("-v", "--verbose", is_flag=True,
                           help="More messages on stderr (each file as it is done, debug details).")(command)
    return click.option("-q", "--quiet", is_flag=True,
                        help="Only warnings and errors on stderr: no progress bar, no summary.")(command)


#: --fast's help (separate and evaluate); the figures: docs/choices.md, "The shipped ensemble"
FAST_HELP = ("One shipped model instead of the ensemble of two (the same recipe trained with two seeds, their "
             "masks averaged): 1.5x faster, 0.1 to 1.2 dB lower vocals SDR on voices the models never heard.")


def _models(models: tuple[Path, ...], fast: bool) -> list[Path] | None:
    """The model files of -m/--model and --fast (None: the shipped ensemble)."""
    if fast:
        if models:
            raise click.UsageError("--fast takes the first shipped model alone; with -m, name the models you want")
        from .model import default_model_path

        return [default_model_path()]
    return list(models) or None


def _output(quiet: bool, verbose: bool) -> bool:
    """Set up the messages for -q / -v; returns whether to show progress bars (not with -q, and only when
    stderr is a terminal, so that logs and pipes get no bar)."""
    if quiet and verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose are alternatives; give one of them")
    import logging

    _log_to_stderr(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    return not quiet and sys.stderr.isatty()


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
@_verbosity
def separate(inputs: tuple[Path, ...], out_dir: Path, fmt: str, int16: bool, int24: bool, float32: bool,
             clip: str | None,
             stem: str | None, accompaniment_name: str, two_stems: str | None, template: str, mp3_bitrate: int | None,
             mp3_quality: float | None, tags: bool, start: float,
             duration: float | None, models: tuple[Path, ...], fast: bool, overwrite: bool, backend: str,
             threads: int | None, quiet: bool, verbose: bool) -> None:
    """Separate INPUTS (audio files or folders of them) into vocals and accompaniment."""
    from .interrupt import sigterm_as_ctrl_c
    from .outspec import STEMS, OutputOptions
    progress = _output(quiet, verbose)
    depth = _depth(int16=int16, int24=int24, float32=float32)
    if two_stems:
        given = click.get_current_context().get_parameter_source("accompaniment_name")
        if accompaniment_name != "no_vocals" and given != click.core.ParameterSource.DEFAULT:
            _fail(f"--two-stems vocals names the accompaniment no_vocals; --stem-names {accompaniment_name} "
                  "names it otherwise: give one of them", EXIT_USAGE)
        accompaniment_name = "no_vocals"
    try:  # options that contradict each other are bad options: exit code 2, as for click's own checks
        options = OutputOptions(fmt, depth, clip, (stem,) if stem else STEMS, accompaniment_name, template,
                                mp3_bitrate, start, duration, mp3_quality=mp3_quality, tags=tags)
    except VocalsepError as e:
        _fail(str(e), EXIT_USAGE)
    if backend == "keras":
        require("train", "the keras backend (--backend keras)")
        tensorflow_if_backend()
    from .separate import Separator, collect_inputs, run_batch

    jobs = collect_inputs(inputs)
    sep = Separator(_models(models, fast), backend=backend, threads=threads)
    # one song: its error, if any, is the whole report; a batch ends with a summary of all failures.
    # SIGTERM (kill PID) stops it like Ctrl-C: its temporary files are removed, the exit code is 130
    with sigterm_as_ctrl_c():
        failures = run_batch(sep, jobs, out_dir, overwrite=overwrite, report_failures=len(jobs) > 1,
                             progress=progress, quiet=quiet, verbose=verbose, options=options)
    if failures:
        if len(jobs) == 1:
            _fail(failures[0].message)
        sys.exit(EXIT_FAILED)


def _depth(**flags: bool) -> str | None:
    """The sample format of --int16 / --int24 / --float32 (None: the input's); two of them are a usage error,
    not the last one silently."""
    given = [name for name, on in flags.items() if on]
    if len(given) > 1:
        raise click.UsageError(" and ".join(f"--{g}" for g in given) + " are alternatives; give one of them")
    return given[0] if given else None


def _log_to_stderr(level: int = 20) -> None:
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


@main.command()
@click.option("--data", "datasets", multiple=True, type=click.Path(path_type=Path),
              help="Training data folder (repeatable): a MUSDB18 or MUSDB18-HQ root, a CCMixter folder, or a "
                   "folder of <song>/vocals.* + accompaniment.* (or other stems).  Default: data.datasets.")
@click.option("--dataset", type=click.Choice(["auto", "musdb", "musdb-hq", "ccmixter", "stems"]), default=None,
              help="Kind of every --data folder (default: data.dataset, normally auto: detected per folder).")
@click.option("--dataset-weight", "dataset_weights", multiple=True, type=float,
              help="Share of the examples drawn from each --data folder (repeatable, one per folder in order, "
                   "relative; e.g. --dataset-weight 1 --dataset-weight 3).  Default: data.dataset_weights, or "
                   "with --data every song alike.")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML config: a file, or the name of one shipped with vocalsep (unet, default, holdout, "
                   "all, ablations/NAME: --config unet); options given here override it.  Default: built-in "
                   "defaults (the same as --config unet).")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True,
              help="Run folder: checkpoint, logs, config.yaml, best.vsep and model.vsep.")
@click.option("--batch-size", type=int, default=None, help="Patches per step (default: train.batch_size).")
@click.option("--steps", type=int, default=None, help="Total training steps (default: train.steps).")
@click.option("--lr", type=float, default=None,
              help="Peak learning rate (Adam; AdamW with train.weight_decay) (default: train.learning_rate).")
@click.option("--seed", type=int, default=None, help="Seed of initialisation and data (default: train.seed).")
@click.option("--workers", type=int, default=None, help="Data worker processes (default: data.workers).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint (without --config: "
                                            "with the run's own OUT/config.yaml).")
@click.option("--init", "init", type=click.Path(path_type=Path), default=None,
              help="Start from the weights of this model file (fine-tuning; e.g. the first shipped model, "
                   "vocalsep/models/default.vsep).  Without --config, the STFT and network settings are "
                   "taken from it (the rest: built-in defaults).")
@click.option("--validation", multiple=True,
              help="Song name or name prefix to hold out for validation (repeatable; default: data.validation, "
                   "else data.validation_fraction of the songs).")
@_verbosity
def train(datasets: tuple[Path, ...], dataset: str | None, dataset_weights: tuple[float, ...],
          config_path: Path | None, out_dir: Path,
          batch_size: int | None, steps: int | None, lr: float | None, seed: int | None, workers: int | None,
          resume: bool, init: Path | None, validation: tuple[str, ...], quiet: bool, verbose: bool) -> None:
    """Train a separation model; writes OUT/model.vsep (and OUT/best.vsep, the best on validation)."""
    require("train", "vocalsep train")
    progress = _output(quiet, verbose)
    tensorflow_if_backend()
    from .config import find_config, load_config
    from .train import train as run_training

    overrides = {
        "data": {"datasets": [str(p) for p in datasets] or None, "dataset": dataset,
                 # new folders drop the config's weights, which were for its folders
                 "dataset_weights": list(dataset_weights) if dataset_weights or datasets else None,
                 "validation": list(validation) or None, "workers": workers},
        "train": {"batch_size": batch_size, "steps": steps, "learning_rate": lr, "seed": seed,
                  "init": str(init) if init else None},
    }
    if resume and config_path is None and (out_dir / "config.yaml").is_file():
        config_path = out_dir / "config.yaml"  # the run's own settings, as it wrote them
    elif init is not None and config_path is None:
        # fine-tuning without a config: the network the model file holds, not the built-in U-Net
        from .model import ModelFile

        start = ModelFile.load(init, weights=False)
        overrides["spectral"] = dataclasses.asdict(start.spectral)
        overrides["model"] = start.model.to_dict()
    cfg = load_config(config_path, overrides)
    # where a setting that cannot train came from: the config file, and the options that replace its values
    given = [f"--{k} {v:g}" if isinstance(v, float) else f"--{k} {v}" for k, v in (
        ("lr", lr), ("batch-size", batch_size), ("steps", steps), ("seed", seed), ("workers", workers))
        if v is not None]
    source = (str(find_config(config_path)) if config_path is not None else
              f"the built-in config with the network of {init}" if init is not None else "the built-in config")
    source += f" with {' '.join(given)}" if given else ""
    final = run_training(cfg, out_dir, resume=resume, progress=progress, source=source)
    if not quiet:
        click.echo(f"Model written to {final}")


#: export's --weights (vocalsep.export.LITERT_WEIGHTS; written out here so that --help imports nothing)
EXPORT_WEIGHTS = ("float16", "int8")


@main.command()
@click.argument("models", nargs=-1, type=click.Path(path_type=Path))
@click.option("-o", "--out-dir", required=True, type=click.Path(path_type=Path),
              help="Folder for the converted files, each under its model's file name (never over a file).")
@click.option("--weights", type=click.Choice(EXPORT_WEIGHTS), default="float16", show_default=True,
              help="float16: the network as trained (what training writes).  int8: dynamic-range int8 weights: "
                   "separation 1.5-2x faster, the vocals as good, the accompaniment about 0.05 dB lower SDR on "
                   "produced stereo songs (docs/choices.md, 'Int8 weights for LiteRT').")
@_verbosity
def export(models: tuple[Path, ...], out_dir: Path, weights: str, quiet: bool, verbose: bool) -> None:
    """Convert model files for LiteRT, the runtime 'vocalsep separate' uses: MODELS (default: the shipped
    ones) into OUT_DIR.  Needs the train extra (TensorFlow).

    \b
    A faster ensemble:  vocalsep export --weights int8 -o fast/
                        vocalsep separate -m fast/default.vsep -m fast/default-seed1.vsep song.mp3
    A model trained on Keras's JAX backend has no LiteRT conversion: export adds one.
    """
    _output(quiet, verbose)
    from .model import shipped_model_paths

    sources = list(models) or shipped_model_paths()
    outs = [out_dir / Path(m).name for m in sources]
    twice = sorted({o.name for o in outs if outs.count(o) > 1})
    if twice:
        raise VocalsepError(f"{out_dir}: two models would be written as {twice[0]}; export them into different folders")
    for o in outs:  # every problem with the outputs before the first conversion
        if os.path.lexists(o):
            raise VocalsepError(f"{o}: exists; give another folder or remove it")
    require("train", "vocalsep export", ("tensorflow", "keras"))
    os.environ["KERAS_BACKEND"] = "tensorflow"  # before Keras is imported: only TensorFlow converts
    from .export import export_model
    from .extras import import_tensorflow

    import_tensorflow()
    out_dir.mkdir(parents=True, exist_ok=True)
    for src, o in zip(sources, outs):
        export_model(src, o, weights)
        if not quiet:
            click.echo(f"Wrote {o} (LiteRT, {weights} weights)", err=True)


@main.command()
@click.option("--data", "data", required=True, type=click.Path(path_type=Path),
              help="MUSDB18 root (stems), MUSDB18-HQ root (wav folders), a CCMixter folder or a folder of "
                   "<song>/vocals.* + accompaniment.* (or other stems).")
@click.option("--dataset", type=click.Choice(["auto", "musdb", "musdb-hq", "ccmixter", "stems"]), default="auto",
              show_default=True, help="Layout of --data (auto: detect).")
@click.option("--subset", type=click.Choice(["train", "test"]), default="test", show_default=True,
              help="MUSDB18 / MUSDB18-HQ subset (ignored for other layouts).")
@click.option("--tracks", "track_names", multiple=True, metavar="NAME",
              help="Evaluate only these tracks (exact names; repeat the option for several).")
@click.option("--songs", multiple=True, metavar="PREFIX",
              help="Evaluate only tracks whose name starts with PREFIX followed by a separator, e.g. a MIR-1K "
                   "song 'amy_3' selects amy_3_01, amy_3_02, ... but not amy_30_01 (repeatable).")
@click.option("--songs-file", type=click.Path(path_type=Path), default=None,
              help="A list file of names or prefixes (one per line, # comments), e.g. a validation split.")
@click.option("--split", type=click.Choice(["train", "validation"]), default=None,
              help="Only one side of the split 'vocalsep train' makes of this folder (data.validation, else "
                   "data.validation_fraction of the songs by a fixed hash; a song's clips stay together).")
@click.option("-c", "--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="YAML config (a file or a shipped config's name) whose data.validation / "
                   "data.validation_fraction define --split (default: the built-in defaults).")
@click.option("--protocol", type=click.Choice(["sisec18", "mir1k"]), default="sisec18", show_default=True,
              help="sisec18: BSSEval v4, 1 s windows, medians (MUSDB18).  mir1k: bss_eval v3 on whole mono clips, "
                   "GNSDR/GSIR/GSAR (length-weighted means).")
@click.option("--method", type=click.Choice(["model", "mixture", "irm"]), default="model", show_default=True,
              help="model: separate with --model.  mixture: the mixture as both estimates (the floor).  "
                   "irm: the oracle ideal ratio mask (an upper bound for mask methods).")
@click.option("--estimates", type=click.Path(path_type=Path), default=None,
              help="Score separations written by vocalsep separate or another tool: ESTIMATES/<track>/vocals.wav "
                   "and accompaniment.wav (or instrumental, no_vocals; any audio format).")
@click.option("-m", "--model", "models", type=click.Path(path_type=Path), multiple=True, metavar="FILE",
              help="Model file for --method model (default: the models shipped with vocalsep); repeat it for an "
                   "ensemble (the mean of the models' masks).")
@click.option("--fast", is_flag=True, help=FAST_HELP)
@click.option("--backend", type=click.Choice(["auto", "litert", "keras"]), default="auto", show_default=True,
              help="Inference runtime for --method model.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Score only the first SECONDS of each track (quick checks; not the protocol).")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Processes that score tracks in parallel.")
@click.option("-o", "--out", type=click.Path(), default=None,  # a str: Path would drop a trailing "/"
              help="Write every figure (per track, per window, aggregate) to this JSON file (an existing file only "
                   "with --overwrite).")
@click.option("--overwrite", is_flag=True, help="Replace an existing --out file.")
@_verbosity
def evaluate(data: Path, dataset: str, subset: str, track_names: tuple[str, ...], songs: tuple[str, ...],
             songs_file: Path | None, split: str | None, config_path: Path | None, protocol: str, method: str,
             estimates: Path | None, models: tuple[Path, ...], fast: bool, backend: str, seconds: float | None,
             jobs: int, out: str | Path | None, overwrite: bool, quiet: bool, verbose: bool) -> None:
    """Score separations against reference stems (SDR, SIR, SAR, ISR or GNSDR, GSIR, GSAR).

    Prints a table per track and the aggregate; tracks that cannot be scored are reported and left out
    (exit code 1 if any failed; tracks with silent references, or too short for the protocol, are only
    warned about).
    """
    require("eval", "vocalsep evaluate", ("museval",) if protocol == "sisec18" else ("mir_eval",))
    progress = _output(quiet, verbose)  # songs left out of a data set are warned about on stderr
    if backend == "keras" and method == "model" and estimates is None:
        require("train", "the keras backend (--backend keras)")
        tensorflow_if_backend()
    from . import evaluate as ev
    from .data import detect_kind

    if estimates is not None and method != "model":
        raise click.UsageError("--estimates and --method are alternatives; give one of them")
    if (models or fast) and (estimates is not None or method != "model"):
        raise click.UsageError("-m/--model and --fast choose the model of --method model; "
                               "they mean nothing with --estimates, --method mixture or --method irm")
    folder_name = out is not None and (os.path.isdir(out) or out.endswith(("/", os.sep)))  # "-o results/"
    out = Path(out) if out is not None else None
    if out is not None and not out.parent.is_dir():
        raise VocalsepError(f"{out}: the folder {out.parent} does not exist")
    if out is not None and (folder_name or not os.access(out.parent, os.W_OK)):  # before the scoring, not after
        raise VocalsepError(f"{out}: is a folder (name); --out takes a JSON file name" if folder_name
                            else f"{out}: the folder {out.parent} is not writable")
    if out is not None and os.path.lexists(out) and not overwrite:
        raise VocalsepError(f"{out}: already exists (use --overwrite to replace it)")
    prefixes = list(songs) + (ev.read_list_file(songs_file) if songs_file is not None else [])
    tracks = ev.load_tracks(data, dataset, subset)
    if split is not None:
        from .config import load_config

        dc = load_config(config_path).data
        tracks = ev.split_tracks(tracks, split, dc.validation, dc.validation_fraction)
    tracks = ev.select_tracks(tracks, track_names, prefixes)
    estimator = ev.make_estimator(method, _models(models, fast), backend, estimates)
    run = ev.evaluate_mir1k if protocol == "mir1k" else ev.evaluate_museval
    results = run(tracks, estimator, jobs=jobs, progress=progress, seconds=seconds)
    kind = dataset if dataset != "auto" else detect_kind(data, subset)
    results["data"] = {"path": str(data), "dataset": kind, "subset": subset,
                       "selected": {"tracks": list(track_names), "prefixes": prefixes, "split": split,
                                    "config": str(config_path) if config_path else None}}
    click.echo(ev.format_table(results))
    if out is not None:
        ev.write_json(results, out)
        if not quiet:
            click.echo(f"Wrote {out}", err=True)
    if results["n_tracks"] == 0:
        _fail("no track could be scored")
    if any(d["kind"] == "error" for d in results["left_out"]):
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":  # pragma: no cover
    main()
