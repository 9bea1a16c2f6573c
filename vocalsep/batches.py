"""Batching: a stream of training batches made ahead of time by worker processes (or a thread), each batch a
function of (seed, index) only.  Nothing here imports TensorFlow."""

from __future__ import annotations

import logging
import multiprocessing as mp
import queue
import threading
import traceback
from typing import Iterable

import numpy as np

from . import spectral
from .errors import VocalsepError
from .sampler import PatchSampler

log = logging.getLogger("vocalsep.data")


def batch_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of batch ``index`` of a run with ``seed``: each batch has its own, so the stream does
    not depend on the number of workers, and a run resumed at step s gets the batches it would have had."""
    return np.random.default_rng([int(seed), int(index)])


def _worker_main(sampler: PatchSampler, batch_size: int, seed: int, first: int, stride: int, q) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    spectral.FFT_WORKERS = 1                      # one core per worker
    k = first
    try:
        while True:
            q.put(("batch", sampler.batch(batch_rng(seed, k), batch_size)))
            k += stride
    except Exception:
        q.put(("error", traceback.format_exc()))


class BatchStream:
    """An endless iterator of training batches (mixture, vocals, accompaniment), each
    (batch_size, freq_bins, frames, 1) float32, made ahead of time.

    Batch ``k`` (counted from 0 at the run's first step; the stream begins at ``start``) is drawn with
    :func:`batch_rng` (seed, k), so the stream is the same for any number of workers, any timing, and a
    resumed run.  ``workers`` >= 1: that many processes, each with its own queue of ``prefetch`` batches,
    worker w making batches start + w, start + w + workers, ...; ``workers`` = 0: one background thread.
    :meth:`close` stops them.
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, seed: int = 0, workers: int = 1,
                 start: int = 0, prefetch: int = 4):
        self.workers = max(0, int(workers))
        self._k = 0
        self._closed = False
        if self.workers == 0:
            self._stop = threading.Event()
            self._tq: queue.Queue = queue.Queue(maxsize=prefetch)

            def run():
                k = start
                try:
                    while not self._stop.is_set():
                        item = ("batch", sampler.batch(batch_rng(seed, k), batch_size))
                        k += 1
                        while not self._stop.is_set():
                            try:
                                self._tq.put(item, timeout=0.1)
                                break
                            except queue.Full:
                                pass
                except Exception:
                    self._tq.put(("error", traceback.format_exc()))

            self._thread = threading.Thread(target=run, daemon=True, name="vocalsep-data")
            self._thread.start()
        else:
            ctx = mp.get_context("spawn")  # never fork a process that may hold TensorFlow's threads
            self._queues = [ctx.Queue(maxsize=prefetch) for _ in range(self.workers)]
            self._procs = [ctx.Process(target=_worker_main, args=(sampler, batch_size, seed, start + w, self.workers, q),
                                       daemon=True, name=f"vocalsep-data-{w}")
                           for w, q in enumerate(self._queues)]
            for p in self._procs:
                p.start()

    def __iter__(self):
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._closed:
            raise StopIteration
        if self.workers == 0:
            kind, item = self._tq.get()
        else:
            w = self._k % self.workers
            while True:
                try:
                    kind, item = self._queues[w].get(timeout=1.0)
                    break
                except queue.Empty:
                    if not self._procs[w].is_alive():
                        raise VocalsepError(f"data worker {w} died (exit code {self._procs[w].exitcode})") from None
        self._k += 1
        if kind == "error":
            log.error("data pipeline failed:\n%s", item)
            raise VocalsepError(f"data pipeline failed: {item.strip().splitlines()[-1]}")
        return item

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.workers == 0:
            self._stop.set()
            self._thread.join(timeout=5)
        else:
            for p in self._procs:
                if p.is_alive():
                    p.terminate()
            for p in self._procs:
                p.join(timeout=5)
            for q in self._queues:
                q.cancel_join_thread()
                q.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


def iter_batches(sampler: PatchSampler, batch_size: int, seed: int, count: int, start: int = 0) -> Iterable:
    """Batches ``start .. start + count - 1`` of the stream, made in this process (tests, benchmarks)."""
    for k in range(start, start + count):
        yield sampler.batch(batch_rng(seed, k), batch_size)
