"""Writing a separation: the (mixture, vocals) pieces of a song into complete temporary stem files.

:meth:`vocalsep.separate.Separator.separate_file` streams a song block by block; this module writes the
pieces it yields (each (samples, channels) float32 at the file's own rate) into one
:class:`~vocalsep.audiowrite.AtomicWriter` per stem (its title naming the stem), with one I/O thread that
decodes the next block and encodes the last piece while the network works on the current one.  Committing
the finished files is :mod:`vocalsep.outputs`' job.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from . import audiowrite
from .errors import VocalsepError
from .outspec import OutputOptions


def write_stems(path: Path, pieces: Callable[[ThreadPoolExecutor], Iterator[tuple[np.ndarray, np.ndarray]]],
                sr: int, channels: int, out_dir: Path, names: dict[str, str], opts: OutputOptions,
                subtype: str | None, clamp: bool, encoding, progress: Callable[[float], None] | None = None,
                record: Path | None = None, gain: float = 1.0) -> dict[str, audiowrite.AtomicWriter]:
    """Write the (mixture, vocals) pieces of ``pieces(io)`` (``io``: the I/O thread, which may read ahead)
    into complete, closed temporary files of ``opts.stems`` (x ``gain``) beside their names, and the
    vocals as raw float32 into ``record`` if given; on any error they are removed."""
    writers: dict[str, audiowrite.AtomicWriter] = {}
    try:
        try:
            for s in opts.stems:
                writers[s] = audiowrite.AtomicWriter(out_dir / names[s], sr, channels, opts.fmt, subtype,
                                                     clamp, encoding.for_stem(opts.stem_name(s)))
            rec = open(record, "wb") if record is not None else None
        except OSError as e:
            raise VocalsepError(f"{out_dir}: cannot write there ({e.strerror})") from None
        # one I/O thread decodes the next block and encodes the last piece while this one computes
        # (libsndfile runs without the GIL); leaving the `with` waits for it, also on an error, and then
        # closes the record
        with rec or contextlib.nullcontext(), ThreadPoolExecutor(1, thread_name_prefix="vocalsep-io") as io:
            written = None
            for mix, voc in pieces(io):
                if written is not None:
                    written.result()  # at most one piece waits to be written
                written = io.submit(_write_piece, writers, mix, voc, gain, rec)
                if progress is not None:
                    progress(len(mix) / sr)
            if written is not None:
                written.result()
        for x in writers.values():
            x.finish()
        return writers
    except BaseException as e:
        for x in writers.values():
            x.discard()
        if isinstance(e, (RuntimeError, ValueError)) and not isinstance(e, VocalsepError):
            raise VocalsepError(f"{path}: could not be decoded ({str(e).splitlines()[0]})") from None
        raise


def finite(blocks: Iterator[np.ndarray], path: Path) -> Iterator[np.ndarray]:
    """The blocks of a file, each checked for NaN and infinite samples before any work is done on it."""
    for x in blocks:
        if not np.isfinite(x).all():
            raise VocalsepError(f"{path}: contains NaN or infinite samples")
        yield x


def read_ahead(items: Iterator[np.ndarray], pool: ThreadPoolExecutor) -> Iterator[np.ndarray]:
    """The items of ``items``, each next one fetched in ``pool`` while the caller works on the current."""
    pending = pool.submit(next, items, None)
    try:
        while (item := pending.result()) is not None:
            pending = pool.submit(next, items, None)
            yield item
    finally:
        pending.cancel() or pending.exception()  # never leave `items` running in the pool


def _write_piece(writers: dict, mix: np.ndarray, voc: np.ndarray, gain: float = 1.0, record=None) -> None:
    """Write one piece: vocals and mixture - vocals (x ``gain``) to their writers, the vocals to ``record``."""
    if record is not None:  # the vocals as float32 for --clip rescale; a failed write names the output folder
        try:
            np.ascontiguousarray(voc, dtype=np.float32).tofile(record)
        except OSError as e:
            raise audiowrite.write_error(Path(record.name).parent, e) from None
    if gain != 1.0:
        mix, voc = mix * np.float32(gain), voc * np.float32(gain)
    if "vocals" in writers:
        writers["vocals"].write(voc)
    if "accompaniment" in writers:
        writers["accompaniment"].write(mix - voc)
