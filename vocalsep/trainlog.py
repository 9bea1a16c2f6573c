"""A training run's log: ``log.csv`` (kept up to the resumed step) and TensorBoard scalars (``tb/``)."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

log = logging.getLogger("vocalsep.train")

#: the columns of log.csv
LOG_FIELDS = ("step", "loss", "lr", "val_loss", "time", "val_sdr")


class RunLog:
    """log.csv (kept up to ``start`` rows on resume) and TensorBoard scalars."""

    def __init__(self, out_dir: Path, start: int):
        self.path = out_dir / "log.csv"
        rows = []
        if start > 0 and self.path.exists():
            with open(self.path, newline="") as f:
                rows = [r for r in csv.DictReader(f) if r.get("step") and int(r["step"]) <= start]
        with open(self.path, "w", newline="") as f:
            w = csv.DictWriter(f, LOG_FIELDS)
            w.writeheader()
            w.writerows(rows)
        self._f = open(self.path, "a", newline="")
        self._w = csv.DictWriter(self._f, LOG_FIELDS)
        self._tb = None
        from .extras import keras_backend

        backend = keras_backend()
        if backend != "tensorflow":  # TensorBoard's writer is TensorFlow's: log.csv alone there
            log.info("%s: no TensorBoard log on Keras's %s backend (log.csv has the same figures)", out_dir / "tb",
                     backend)
            return
        try:
            import tensorflow as tf

            self._tb = tf.summary.create_file_writer(str(out_dir / "tb"))
        except Exception as e:  # pragma: no cover
            log.warning("%s: no TensorBoard log (%s)", out_dir / "tb", e)

    def _scalar(self, tag: str, value: float, step: int) -> None:
        import tensorflow as tf

        try:
            tf.summary.scalar(tag, value, step=step)
        except Exception:  # the tensorboard package is not installed: write the same record by hand
            from tensorflow.core.framework import summary_pb2

            md = summary_pb2.SummaryMetadata()
            md.plugin_data.plugin_name = "scalars"
            tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=md.SerializeToString())

    def row(self, step: int, loss: float | None, lr: float, val_loss: float | None, elapsed: float,
            val_sdr: float | None = None) -> None:
        fmt = lambda v: "" if v is None else f"{v:.6g}"  # noqa: E731
        self._w.writerow({"step": step, "loss": fmt(loss), "lr": fmt(lr), "val_loss": fmt(val_loss),
                          "time": f"{elapsed:.1f}", "val_sdr": fmt(val_sdr)})
        self._f.flush()
        if self._tb is not None:
            with self._tb.as_default():
                if loss is not None:
                    self._scalar("loss", loss, step)
                self._scalar("lr", lr, step)
                if val_loss is not None:
                    self._scalar("val_loss", val_loss, step)
                if val_sdr is not None:
                    self._scalar("val_sdr", val_sdr, step)
            self._tb.flush()

    def close(self) -> None:
        self._f.close()
        if self._tb is not None:
            self._tb.close()
