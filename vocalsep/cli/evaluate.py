"""``vocalsep evaluate``: separations scored against reference stems (:mod:`vocalsep.evaluate`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from ..errors import VocalsepError
from ..extras import require, tensorflow_if_backend
from . import EXIT_FAILED, FAST_HELP, chosen_models, fail, main, setup_output, verbosity


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
@verbosity
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
    progress = setup_output(quiet, verbose)  # songs left out of a data set are warned about on stderr
    if backend == "keras" and method == "model" and estimates is None:
        require("train", "the keras backend (--backend keras)")
        tensorflow_if_backend()
    from .. import evaluate as ev
    from ..data import detect_kind

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
        from ..config import load_config

        dc = load_config(config_path).data
        tracks = ev.split_tracks(tracks, split, dc.validation, dc.validation_fraction)
    tracks = ev.select_tracks(tracks, track_names, prefixes)
    estimator = ev.make_estimator(method, chosen_models(models, fast), backend, estimates)
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
        fail("no track could be scored")
    if any(d["kind"] == "error" for d in results["left_out"]):
        sys.exit(EXIT_FAILED)
