"""Batching: a stream of training batches made ahead of time by worker processes (or a thread), each batch a
function of (seed, index) only.  Nothing here imports TensorFlow.

Worker processes end with their parent: each watches its parent's pid and exits at once when the parent is
gone (killed with SIGKILL, say), so no worker outlives a training run, blocked on a full queue and holding
the run's stdout and stderr; multiprocessing's resource tracker then ends too (its pipe closes).
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import queue
import threading
import time
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


#: seconds between a worker's looks at its parent
PARENT_POLL = 0.2


def exit_with_parent(parent: int, interval: float = PARENT_POLL) -> threading.Thread:
    """Start a daemon thread that ends this process (``os._exit(1)``, whatever its other threads are doing,
    e.g. blocked putting into a full queue) within ``interval`` seconds of its parent, pid ``parent``, being
    gone (the process is then adopted by another, so its parent pid changes)."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    t = threading.Thread(target=watch, daemon=True, name="vocalsep-parent-watch")
    t.start()
    return t


def _worker_main(sampler: PatchSampler, batch_size: int, seed: int, first: int, stride: int, q, dead=None,
                 parent: int | None = None) -> None:
    """A worker process: batches first, first + stride, ... of the stream into ``q`` until stopped.

    Items put: ("batch", arrays), ("warning", one line: a song left out), ("fail", one line: a VocalsepError,
    e.g. no song left), ("error", traceback of anything else).  ``dead``: the songs' shared left-out flags;
    ``parent``: the parent's pid, whose end ends this process."""
    import signal

    if parent is not None:
        exit_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops us
    spectral.FFT_WORKERS = 1                      # one core per worker
    if dead is not None:
        sampler.dead = dead  # a song one worker leaves out, the others leave out too
    sampler.report = lambda msg: q.put(("warning", msg))
    k = first
    try:
        while True:
            q.put(("batch", sampler.batch(batch_rng(seed, k), batch_size)))
            k += stride
    except VocalsepError as e:
        q.put(("fail", str(e)))
    except Exception:
        q.put(("error", traceback.format_exc()))


class BatchStream:
    """An endless iterator of training batches (mixture, vocals, accompaniment), each
    (batch_size, freq_bins, frames, 1) float32, made ahead of time.

    Batch ``k`` (counted from 0 at the run's first step; the stream begins at ``start``) is drawn with
    :func:`batch_rng` (seed, k), so the stream is the same for any number of workers, any timing, and a
    resumed run (with every song readable: a song that fails to read is left out with a warning, see
    :class:`~vocalsep.sampler.PatchSampler`, and the batches from then on differ).  ``workers`` >= 1: that
    many processes, each with its own queue of ``prefetch`` batches, worker w making batches start + w,
    start + w + workers, ..., each ending by itself when this process ends (see the module docstring);
    ``workers`` = 0: one background thread.  :meth:`close` stops them.  With no song left, or a worker
    failing, :meth:`__next__` raises :class:`VocalsepError` (one line).
    """

    def __init__(self, sampler: PatchSampler, batch_size: int, seed: int = 0, workers: int = 1,
                 start: int = 0, prefetch: int = 4):
        self.workers = max(0, int(workers))
        self._k = 0
        self._closed = False
        self._warned: set[str] = set()
        #: the songs' left-out flags (one byte per song of ``sampler``, nonzero: left out), as the workers set them
        self.dead = sampler.dead
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
                except VocalsepError as e:
                    self._tq.put(("fail", str(e)))
                except Exception:
                    self._tq.put(("error", traceback.format_exc()))

            self._thread = threading.Thread(target=run, daemon=True, name="vocalsep-data")
            self._thread.start()
        else:
            ctx = mp.get_context("spawn")  # never fork a process that may hold TensorFlow's threads
            self._queues = [ctx.Queue(maxsize=prefetch) for _ in range(self.workers)]
            dead = self.dead = ctx.Array("B", bytes(sampler.dead), lock=False)  # shared by the workers
            self._procs = [ctx.Process(target=_worker_main,
                                       args=(sampler, batch_size, seed, start + w, self.workers, q, dead, os.getpid()),
                                       daemon=True, name=f"vocalsep-data-{w}")
                           for w, q in enumerate(self._queues)]
            for p in self._procs:
                p.start()

    def __iter__(self):
        return self

    def __next__(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._closed:
            raise StopIteration
        while True:
            kind, item = self._get()
            if kind != "warning":
                break
            key = str(item).rsplit(" (", 1)[0]  # without the count of songs left, which differs per worker
            if key not in self._warned:  # two workers may both meet a bad song before either flags it
                self._warned.add(key)
                log.warning("%s", item)
        self._k += 1
        if kind == "fail":
            raise VocalsepError(item)
        if kind == "error":
            log.error("data pipeline failed:\n%s", item)
            raise VocalsepError(f"data pipeline failed: {item.strip().splitlines()[-1]}")
        return item

    def _get(self) -> tuple[str, object]:
        if self.workers == 0:
            return self._tq.get()
        w = self._k % self.workers
        while True:
            try:
                return self._queues[w].get(timeout=1.0)
            except queue.Empty:
                if not self._procs[w].is_alive():
                    raise VocalsepError(f"data worker {w} died (exit code {self._procs[w].exitcode})") from None

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
