"""Training: the network of ``cfg.model.arch`` (the U-Net of Jansson et al. by default; :mod:`vocalsep.models`)
on streamed patches, with checkpoints, resume and validation.

``train(cfg, out_dir)`` writes into ``out_dir``:

    config.yaml       the resolved configuration
    checkpoint.npz    model variables (weights, batch-norm statistics, dropout RNG state), the optimizer's state and
                      the step, written atomically every ``train.checkpoint_every`` steps, on Ctrl-C or
                      SIGTERM and at the end; ``resume=True`` continues from it at the same step
    log.csv           step, loss (mean since the previous row), lr, val_loss, time (s of training), val_sdr
    tb/               TensorBoard scalars (loss, lr, val_loss, val_sdr); on TensorFlow only
    best.vsep         the model with the lowest validation loss so far
    model.vsep        the final model (also written on Ctrl-C or SIGTERM)
    step-NNNNNN.vsep  the model every ``train.snapshot_every`` steps, when that is > 0

Examples, loss and the validation's separation are the front end's of the model's domain
(:func:`vocalsep.frontend.for_model`): for a spectral network the loss is the mean absolute difference
between ``mask * mixture`` and the vocals' magnitude on patches normalised by the mixture's maximum (the
U-Net paper's L1 loss; with ``train.loss: both`` plus the same of ``(1 - mask) * mixture`` and the
accompaniment's); for a waveform one (:mod:`vocalsep.wavefront`) the mean squared error of the vocals'
waveform (the Wave-U-Net paper's).  Adam (AdamW with ``weight_decay`` > 0), optionally with cosine decay to
``lr_min``.

Validation, every ``train.steps_per_epoch`` steps: the loss on a fixed set of patches of the held-out songs
(``val_loss``, which picks ``best.vsep``), and, when ``train.validation_songs_sdr`` > 0, the mean SDR (dB,
``10 log10(|v|^2 / |v - v_est|^2)``) of the mid of that many held-out songs (at most 30 s of each) separated
at their own rate as ``vocalsep separate`` separates them (overlapping patches, the full-band stage and its
rule above the model's band; ``val_sdr``: a progress figure over a few songs, not the evaluation).  Both run
the training network as it computes: in bfloat16 under ``train.precision: mixed_bfloat16``, where the model
files (float32) separate a little differently (about 50 dB apart on a tiny network).

Batch ``k`` of the data stream is a function of (seed, k) only (see :class:`data.BatchStream`) and the
checkpoint holds the dropout RNG state with the weights, so a run is repeatable with the same ``--seed``, and a
resumed run sees the batches that an uninterrupted one would have seen.

A training song whose stem fails to read mid-run (a file cut short or damaged after discovery) is left out
with a warning naming the file, and training goes on with the others; with no song left (or a data worker
failing) the checkpoint and the model are saved and :func:`train` raises :class:`VocalsepError` (one line);
before the first step (or on Ctrl-C then) nothing is saved: no model file of untrained weights.  Stems that
libsndfile cannot read (m4a, aac, wma) are decoded once into the cache (:mod:`vocalsep.decoded`).
"""

from __future__ import annotations

import io
import json
import logging
import math
import time
import zipfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from . import atomic, checks
from . import data as datamod
from .config import Config
from .decoded import readable
from .runfolder import (CHECKPOINT, check_out_dir, check_resume_config, check_split, write_config,
                        write_split)
from .errors import VocalsepError
from .interrupt import sigterm_as_ctrl_c as _sigterm_as_ctrl_c
from .shifted import with_copies
from .steps import make_steps
from .trainlog import LOG_FIELDS, RunLog  # noqa: F401  (LOG_FIELDS re-exported)

log = logging.getLogger("vocalsep.train")


def learning_rate(cfg, step: int) -> float:
    """The learning rate at ``step`` (the same formula as Keras' CosineDecay with alpha = lr_min / lr)."""
    t = cfg.train
    if t.lr_decay_steps <= 0:
        return float(t.learning_rate)
    p = min(step, t.lr_decay_steps) / t.lr_decay_steps
    alpha = t.lr_min / t.learning_rate
    return float(t.learning_rate * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * p)) + alpha))


def save_checkpoint(path: Path, model, optimizer, meta: dict) -> None:
    """Model and optimizer variables plus ``meta`` (json) in one npz, written atomically."""
    arrays = {f"model_{i}": np.asarray(v.numpy()) for i, v in enumerate(model.variables)}
    arrays.update({f"opt_{i}": np.asarray(v.numpy()) for i, v in enumerate(optimizer.variables)})
    arrays["meta"] = np.array(json.dumps(meta))
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic.write_bytes(path, buf.getvalue())


def load_checkpoint(path: Path, model, optimizer) -> dict:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            mv, ov = model.variables, optimizer.variables
            n_m = sum(1 for k in z.files if k.startswith("model_"))
            n_o = sum(1 for k in z.files if k.startswith("opt_"))
            if n_m != len(mv) or n_o != len(ov):
                raise VocalsepError(f"{path}: checkpoint does not fit this model ({n_m} variables, expected {len(mv)})")
            for i, v in enumerate(mv):
                a = z[f"model_{i}"]
                if tuple(a.shape) != tuple(v.shape):
                    raise VocalsepError(f"{path}: checkpoint does not fit this model ({v.path}: {a.shape} vs {v.shape})")
                v.assign(a)
            for i, v in enumerate(ov):
                v.assign(z[f"opt_{i}"])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise VocalsepError(f"{path}: unreadable checkpoint ({str(e).splitlines()[0] if str(e) else e!r})") from None
    return meta


def make_optimizer(t, lr):
    """Adam at learning rate ``lr`` (a number or a Keras schedule); with ``t.weight_decay`` > 0, AdamW
    (Loshchilov and Hutter 2019): after each step every kernel w becomes w - weight_decay x rate x w, the
    decay decoupled from the gradient.  Biases and batch-norm scales and offsets are not decayed (they do
    not set the size of the function a layer computes)."""
    import keras

    if t.weight_decay < 0:
        raise VocalsepError(f"train: weight_decay must be >= 0, not {t.weight_decay}")
    if t.weight_decay == 0:
        return keras.optimizers.Adam(learning_rate=lr)
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=t.weight_decay)
    opt.exclude_from_weight_decay(var_names=[r"(^|/)(bias|gamma|beta)(:\d+)?$"])  # the whole name, or its last part
    return opt


def song_sdr(predict, mix: np.ndarray, vocals: np.ndarray, spec, model_cfg, sample_rate: int | None = None
             ) -> float:
    """SDR (dB) of the vocals of ``mix`` (mono (samples,), at ``sample_rate``, default the model's) separated as
    :class:`~vocalsep.separate.Separator` separates a block (the front end's ``separate``: for a spectral
    network overlapping patches and overlap-added masks; then the full-band stage and its high-band rule).
    ``predict``: a runner of the network (for a spectral one (n, freq_bins, frames, 1) -> masks)."""
    from .frontend import for_model

    sr = sample_rate or spec.sample_rate
    est = for_model(spec, model_cfg).separate(np.asarray(mix, np.float32)[:, None], sr, predict)[:, 0]
    err = np.sum((vocals.astype(np.float64) - est) ** 2)
    return float(10 * np.log10((np.sum(vocals.astype(np.float64) ** 2) + 1e-9) / (err + 1e-9)))


def _init_model(cfg: Config):
    """The model file ``train.init`` that fine-tuning starts from, read once, before any data is read; it
    needs the file's own network: VocalsepError naming each setting that differs (the architecture alone
    when that differs)."""
    from .model import ModelFile

    start = ModelFile.load(cfg.train.init)
    if start.spectral == cfg.spectral and start.model == cfg.model:
        return start
    theirs = {f"spectral.{k}": v for k, v in asdict(start.spectral).items()}
    ours = {f"spectral.{k}": v for k, v in asdict(cfg.spectral).items()}
    if start.model.arch != cfg.model.arch:  # other settings classes: compare the names only
        theirs["model.arch"], ours["model.arch"] = start.model.arch, cfg.model.arch
    else:
        theirs.update({f"model.{k}": v for k, v in start.model.to_dict().items()})
        ours.update({f"model.{k}": v for k, v in cfg.model.to_dict().items()})
    diff = ", ".join(f"{k} {theirs[k]!r} (config: {ours[k]!r})" for k in theirs if theirs[k] != ours[k])
    raise VocalsepError(f"{cfg.train.init}: this model file's network differs from the config's: {diff}; "
                        "fine-tune with the file's spectral and model settings (vocalsep train takes them "
                        "from the file when no --config is given)")


def train(cfg: Config, out_dir: str | Path, resume: bool = False, progress: bool = True,
          source: str = "config") -> Path:
    """Train the network of ``cfg.model`` on ``cfg.data``; returns the path of the final model file.
    ``source`` names where ``cfg`` came from in the error of a setting that cannot train."""
    out_dir = Path(out_dir)
    t = cfg.train
    ckpt_path = out_dir / CHECKPOINT
    checks.training_config(cfg, source)
    check_out_dir(out_dir, resume)
    if resume:
        check_resume_config(cfg, out_dir)
    start = _init_model(cfg) if t.init and not resume else None

    # data first (no TensorFlow needed): a problem with it shows at once
    found = datamod.discover_all(cfg.data)
    songs = readable(found, cfg.data.cache_dir or None, cfg.data.cache_subtype)
    if not songs:
        raise VocalsepError(f"{', '.join(cfg.data.datasets)}: no song left to train on: the stems of all "
                            f"{len(found)} could not be decoded (see the warnings above)")
    train_songs, val_songs = datamod.split_songs(songs, cfg.data.validation, cfg.data.validation_fraction)
    if resume:
        check_split(out_dir, train_songs, val_songs)
    log.info("%d training song%s, %d validation song%s", len(train_songs), "s"[:len(train_songs) != 1],
             len(val_songs), "s"[:len(val_songs) != 1])
    train_songs = with_copies(train_songs, cfg.data, cfg.data.cache_dir or None)
    sampler = datamod.PatchSampler(train_songs, cfg.spectral, cfg.model, cfg.data)
    loss_fn = sampler.frontend.training_loss(t.loss)  # a loss the model's domain lacks: an error before any work
    val_mix, val_voc, val_acc = datamod.validation_patches(val_songs, cfg.spectral, cfg.model,
                                                           cfg.data.validation_patches)
    val_audio = datamod.validation_audio(val_songs, t.validation_songs_sdr)

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VocalsepError(f"{out_dir}: cannot make the run folder ({e.strerror})") from None
    atomic.clear_stale(out_dir)  # temporary files of runs killed while writing (kill -9)
    write_split(out_dir, val_songs, resume)
    write_config(cfg, out_dir / "config.yaml")

    from .extras import tensorflow_if_backend

    tf = tensorflow_if_backend()  # None on JAX
    import keras

    from .model import ModelFile, build_model, dtype_policy, nonfinite
    from .runners import KerasRunner

    try:  # the LiteRT converter's deprecation notices would break the progress bar
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass

    if t.threads > 0 and tf is None:
        log.warning("train.threads: set on TensorFlow only; the %s backend takes its own", keras.backend.backend())
    elif t.threads > 0:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(t.threads)
            tf.config.threading.set_inter_op_parallelism_threads(t.threads)
        except RuntimeError as e:  # already initialised (a second run in one process)
            log.warning("threads: %s", e)

    keras.utils.set_random_seed(t.seed)
    with dtype_policy(t.precision):  # the layers keep the policy they were made with
        model = build_model(cfg.model)
    log.info("architecture %s: %d weights", cfg.model.arch, model.count_params())
    if t.lr_decay_steps > 0:
        lr = keras.optimizers.schedules.CosineDecay(t.learning_rate, t.lr_decay_steps,
                                                    alpha=t.lr_min / t.learning_rate)
    else:
        lr = t.learning_rate
    optimizer = make_optimizer(t, lr)
    optimizer.build(model.trainable_variables)

    if start is not None:
        model.set_weights([w.astype(np.float32) for w in start.weights])
        log.info("starting from the weights of %s", t.init)

    meta = {"step": 0, "best_val_loss": None, "val_loss": None, "elapsed": 0.0, "seed": t.seed}
    if resume:
        meta.update(load_checkpoint(ckpt_path, model, optimizer))
    step = int(optimizer.iterations.numpy())
    best_val = meta.get("best_val_loss")
    last_val = meta.get("val_loss")
    last_sdr = meta.get("val_sdr")
    elapsed0 = float(meta.get("elapsed", 0.0))

    train_step, eval_step, sync = make_steps(model, optimizer, t.batch_size, loss_fn)

    def validate() -> float | None:
        if len(val_mix) == 0:
            return None
        total = 0.0
        for i in range(0, len(val_mix), t.batch_size):
            part = slice(i, i + t.batch_size)
            total += float(eval_step(val_mix[part], val_voc[part], val_acc[part]))
        return total / len(val_mix)

    predict = KerasRunner.for_model(model, t.batch_size)

    def validate_sdr() -> float | None:
        if not val_audio:
            return None
        sync()
        return float(np.mean([song_sdr(predict, m, v, cfg.spectral, cfg.model, sr) for _, m, v, sr in val_audio]))

    def info(val: float | None) -> dict:
        return {"steps": step, "data": list(cfg.data.datasets), "train_songs": len(train_songs),
                "validation_songs": len(val_songs), "val_loss": val, "best_val_loss": best_val, "val_sdr": last_sdr,
                "seed": t.seed, "batch_size": t.batch_size, "learning_rate": t.learning_rate, "loss": t.loss,
                "weight_decay": t.weight_decay, "precision": t.precision, "keras_backend": keras.backend.backend()}

    def check_finite() -> None:
        sync()  # every save and checkpoint comes through here: the Keras variables hold the latest values
        bad = nonfinite(model.get_weights())
        if bad:
            raise VocalsepError(f"training diverged by step {step}: {bad} of {len(model.get_weights())} weight arrays "
                                "are NaN or infinite (lower --lr); no model or checkpoint was written from them")

    def save_model(path: Path, val: float | None) -> None:
        check_finite()
        ModelFile.from_keras(model, cfg.spectral, cfg.model, info=info(val)).save(path)

    def checkpoint() -> None:
        check_finite()
        save_checkpoint(ckpt_path, model, optimizer,
                        {"step": step, "best_val_loss": best_val, "val_loss": last_val, "val_sdr": last_sdr,
                         "elapsed": elapsed0 + time.time() - t0, "seed": t.seed})

    logger = RunLog(out_dir, step)
    stream = datamod.BatchStream(sampler, t.batch_size, t.seed, cfg.data.workers, start=step)
    from tqdm import tqdm

    bar = tqdm(total=t.steps, initial=step, desc="train", unit="step", disable=not progress, dynamic_ncols=True)
    t0 = time.time()
    interrupted = False
    data_error: VocalsepError | None = None
    losses: list[float] = []
    ema = None
    try:
        with _sigterm_as_ctrl_c():
            while step < t.steps:
                try:
                    mix, voc, acc = next(stream)
                except VocalsepError as e:  # no song left, or a worker failed: save what was learnt, then stop
                    data_error = e
                    break
                loss = float(train_step(mix, voc, acc))
                step += 1  # (the optimizer's own count is written back on JAX only at a sync)
                if not math.isfinite(loss):
                    raise VocalsepError(f"training diverged at step {step} (loss {loss}); lower --lr")
                losses.append(loss)
                ema = loss if ema is None else 0.98 * ema + 0.02 * loss
                val = sdr = None
                if (t.steps_per_epoch > 0 and step % t.steps_per_epoch == 0) or step == t.steps:
                    check_finite()
                    val = last_val = validate()
                    sdr = last_sdr = validate_sdr()
                    if val is not None and (best_val is None or val < best_val):
                        best_val = val
                        save_model(out_dir / "best.vsep", val)
                if val is not None or step % max(1, t.log_every) == 0 or step == t.steps:
                    logger.row(step, float(np.mean(losses)) if losses else None, learning_rate(cfg, step - 1),
                               val, elapsed0 + time.time() - t0, sdr)
                    losses = []
                if t.checkpoint_every > 0 and step % t.checkpoint_every == 0:
                    checkpoint()
                if t.snapshot_every > 0 and step % t.snapshot_every == 0:
                    save_model(out_dir / f"step-{step:06d}.vsep", last_val)
                bar.update(1)
                bar.set_postfix(loss=f"{ema:.4f}", val="-" if last_val is None else f"{last_val:.4f}",
                                sdr="-" if last_sdr is None else f"{last_sdr:.2f}", refresh=False)
    except KeyboardInterrupt:
        interrupted = True
        bar.close()
        sync()  # a step may have finished after the count was taken (on JAX, while the loss was awaited)
        step = int(optimizer.iterations.numpy())
        log.warning("interrupted at step %d", step)
    finally:
        stream.close()
        bar.close()
    if (interrupted or data_error is not None) and step == 0:  # nothing learnt: no untrained model file
        logger.close()
        if interrupted:
            log.warning("interrupted before the first step: nothing saved")
            raise KeyboardInterrupt
        raise VocalsepError(f"{data_error}; training stopped before its first step, nothing saved")
    try:
        if not interrupted and last_val is None and len(val_mix):  # no step was run
            last_val = validate()
            last_sdr = validate_sdr()
            if last_val is not None and (best_val is None or last_val < best_val):
                best_val = last_val
                save_model(out_dir / "best.vsep", last_val)
            logger.row(step, None, learning_rate(cfg, max(0, step - 1)), last_val, elapsed0 + time.time() - t0,
                       last_sdr)
        checkpoint()
        final = out_dir / "model.vsep"
        save_model(final, last_val)
    finally:
        logger.close()
    if interrupted:
        log.warning("checkpoint at step %d saved in %s; continue with --resume", step, ckpt_path)
        raise KeyboardInterrupt
    if data_error is not None:
        raise VocalsepError(f"{data_error}; training stopped at step {step}, checkpoint and model saved in {out_dir}")
    return final
