"""A folder batch: ``vocalsep separate``'s loop over its inputs (collected by :mod:`vocalsep.inputs`).

Each input's outputs go where the :class:`~vocalsep.outspec.OutputOptions` template puts them below the
output root; two inputs whose outputs would be the same files (``a.mp3`` and ``a.wav`` with the default
template) make the second a failure, never a silent replacement.
"""

from __future__ import annotations

import itertools
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import outputs
from .errors import VocalsepError
from .inputs import Job, duration, same_file
from .outspec import OutputOptions


@dataclass
class Outcome:
    job: Job
    status: str          # "done", "skipped", "twice" (the same file given again: done once) or "failed"
    message: str = ""


def _count(n: int, noun: str) -> str:
    """``1 file``, ``2 files``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def run_batch(sep, jobs: list[Job], out_root: str | Path, fmt: str = "wav", overwrite: bool = False,
              progress: bool | None = True, echo=None, report_failures: bool = True, quiet: bool = False,
              verbose: bool = False, options: OutputOptions | None = None) -> list[Outcome]:
    """Separate every job with ``sep`` (a Separator) into ``out_root`` (``options``: stems, names, sample
    format; default: both stems as ``out_root/<job.name>/<stem>.<fmt>``); one failure never stops the batch.

    Prints (on stderr, or through ``echo``) a progress bar (``progress=None``: only when stderr is a
    terminal) and a closing summary that names each failure; with ``report_failures=False`` a run with
    failures prints nothing more and clears its bar (the caller reports them: one song's error is one
    line).  ``quiet``: no summary and no "skipped" notes unless something failed; ``verbose``: a line per
    file done.  Returns the failed outcomes (empty when all went well), each message starting with the
    input's path.
    """
    from tqdm import tqdm

    opts = options or OutputOptions(fmt)
    out_root = Path(out_root)
    if out_root.exists() and not out_root.is_dir():
        raise VocalsepError(f"{out_root}: is a file, not an output folder (-o names the folder the stems go to)")
    try:
        out_root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise VocalsepError(f"{out_root}: cannot create output folder ({e.strerror})") from None
    if not os.access(out_root, os.W_OK):
        raise VocalsepError(f"{out_root}: output folder is not writable")
    seen: dict[Path, Path] = {}  # output file (relative) -> the input that claimed it
    outcomes: list[Outcome] = []
    durations = [duration(job.path) for job in jobs]
    ends = list(itertools.accumulate(durations))
    bar = tqdm(total=ends[-1] if ends else 0, unit="s", disable=None if progress is None else not progress,
               dynamic_ncols=True, file=sys.stderr,
               bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s of audio [{elapsed}<{remaining}]{postfix}")
    say = echo or (lambda msg: bar.write(msg, file=sys.stderr))

    def advance(seconds: float, end: float) -> None:
        bar.n = min(bar.n + seconds, end)  # header lengths can be estimates: never run past this file's end
        bar.refresh()

    t0 = time.perf_counter()
    try:
        for i, (job, end) in enumerate(zip(jobs, ends)):
            bar.set_postfix_str(f"{i + 1}/{len(jobs)} {job.path.name[:40]}")
            files: list[Path] = []
            try:
                if job.error:
                    raise VocalsepError(job.error)
                folder, names = opts.files(job.name, job.path)
                files = [folder / n for n in names.values()]
                other = next((seen[f] for f in files if f in seen), None)
                if other is not None and (other == job.path or same_file(other, job.path)):
                    outcomes.append(Outcome(job, "twice"))  # overlapping globs: nothing failed
                    logging.getLogger("vocalsep").warning("%s: given twice (as %s); taken once", job.path, other)
                    advance(end, end)
                    continue
                if other is not None:
                    hint = ("add {track} to --filename" if "{track}" not in opts.template else
                            "add {input_ext} to --filename" if other.suffix != job.path.suffix else
                            "give a folder that holds both (their paths below it keep them apart), or separate them "
                            "into different -o folders")
                    raise VocalsepError(f"{job.path}: same output files as {other} ({out_root / files[0]}); rename "
                                        f"one of them, or {hint}")
                seen.update({f: job.path for f in files})
                sep.separate_file(job.path, out_root / folder, overwrite=overwrite, options=opts, names=names,
                                  progress=lambda sec, end=end: advance(sec, end))
                outcomes.append(Outcome(job, "done"))
                if verbose:
                    say(f"{job.path}: separated into {out_root / folder}")
            except outputs.OutputsExist:  # all there (perhaps another run finished this song meanwhile)
                outcomes.append(Outcome(job, "skipped"))
                if not quiet:
                    say(f"{job.path}: skipped, {out_root / files[0].parent} already has outputs "
                        "(use --overwrite to replace them)")
            except VocalsepError as e:
                outcomes.append(Outcome(job, "failed", str(e)))
            except (OSError, MemoryError) as e:
                outcomes.append(Outcome(job, "failed", f"{job.path}: {e}"))
            except Exception as e:  # a bug of ours, or a library's error we do not know: this file fails, not the batch
                outcomes.append(Outcome(job, "failed", f"{job.path}: unexpected error ({type(e).__name__}: {e})"))
            advance(end, end)
    except KeyboardInterrupt:  # the song being written is left as it was (its files are committed together)
        bar.close()
        done = sum(o.status == "done" for o in outcomes)
        rest = "" if overwrite else "; the same command again does the rest (finished songs are skipped)"
        sys.stderr.write(f"Interrupted after {done} of {_count(len(jobs), 'file')} separated into {out_root}"
                         f"{rest}\n")
        raise
    failed = [o for o in outcomes if o.status == "failed"]
    for o in failed:
        if not o.message.startswith(str(o.job.path)):
            o.message = f"{o.job.path}: {o.message}"
    bar.leave = report_failures or not failed
    bar.close()
    if failed and not report_failures:
        return failed
    if quiet and not failed:
        return failed
    done = sum(o.status == "done" for o in outcomes)
    skipped = sum(o.status == "skipped" for o in outcomes)
    summary = f"Separated {done} of {_count(len(jobs), 'file')} into {out_root} in {time.perf_counter() - t0:.1f} s"
    if skipped:
        summary += f"; {skipped} skipped (outputs exist)"
    twice = sum(o.status == "twice" for o in outcomes)
    if twice:
        summary += f"; {twice} given twice"
    if failed:
        summary += f"; {len(failed)} FAILED:"
    say(summary)
    for o in failed:
        say(f"  {o.message}")
    return failed
