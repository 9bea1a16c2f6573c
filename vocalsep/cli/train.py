"""``vocalsep train``: a model from stems (:mod:`vocalsep.train`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click

from ..extras import require, tensorflow_if_backend
from . import main, setup_output, verbosity


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
@verbosity
def train(datasets: tuple[Path, ...], dataset: str | None, dataset_weights: tuple[float, ...],
          config_path: Path | None, out_dir: Path,
          batch_size: int | None, steps: int | None, lr: float | None, seed: int | None, workers: int | None,
          resume: bool, init: Path | None, validation: tuple[str, ...], quiet: bool, verbose: bool) -> None:
    """Train a separation model; writes OUT/model.vsep (and OUT/best.vsep, the best on validation)."""
    require("train", "vocalsep train")
    progress = setup_output(quiet, verbose)
    tensorflow_if_backend()
    from ..config import find_config, load_config
    from ..train import train as run_training

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
        from ..model import ModelFile

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
