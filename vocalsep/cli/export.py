"""``vocalsep export``: model files converted for LiteRT, float16 or int8 (:mod:`vocalsep.export`)."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..errors import VocalsepError
from ..extras import require
from . import main, setup_output, verbosity

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
@verbosity
def export(models: tuple[Path, ...], out_dir: Path, weights: str, quiet: bool, verbose: bool) -> None:
    """Convert model files for LiteRT, the runtime 'vocalsep separate' uses: MODELS (default: the shipped
    ones) into OUT_DIR.  Needs the train extra (TensorFlow).

    \b
    A faster ensemble:  vocalsep export --weights int8 -o fast/
                        vocalsep separate -m fast/default.vsep -m fast/default-seed1.vsep song.mp3
    A model trained on Keras's JAX backend has no LiteRT conversion: export adds one.
    """
    setup_output(quiet, verbose)
    from ..model import shipped_model_paths

    sources = list(models) or shipped_model_paths()
    real = [os.path.realpath(src) for src in sources]
    for i, src in enumerate(sources):
        if real[i] in real[:i]:
            raise VocalsepError(f"{src}: given twice")
    outs = [out_dir / Path(m).name for m in sources]
    twice = sorted({o.name for o in outs if outs.count(o) > 1})
    if twice:
        raise VocalsepError(f"{out_dir}: two models would be written as {twice[0]}; export them into different folders")
    if out_dir.exists() and not out_dir.is_dir():
        raise VocalsepError(f"{out_dir}: not a folder")
    for o in outs:  # every problem with the outputs before the first conversion
        if os.path.lexists(o):
            raise VocalsepError(f"{o}: exists; give another folder or remove it")
    require("train", "vocalsep export", ("tensorflow", "keras"))
    os.environ["KERAS_BACKEND"] = "tensorflow"  # before Keras is imported: only TensorFlow converts
    from ..export import exported
    from ..extras import import_tensorflow

    import_tensorflow()
    converted = [exported(src, weights) for src in sources]  # all of them before anything is written
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VocalsepError(f"{out_dir}: cannot be created ({e.strerror})") from None
    for mf, o in zip(converted, outs):
        mf.save_new(o)  # (never over a file, also one that appeared meanwhile)
        if not quiet:
            click.echo(f"Wrote {o} (LiteRT, {weights} weights)", err=True)
