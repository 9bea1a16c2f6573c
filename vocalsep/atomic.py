"""Atomic file output: write to a temporary file beside the target, rename it into place when complete.

A reader never sees a half-written file under the final name, and an interrupted write leaves nothing
behind but nothing under that name either.  Temporary names carry the writer's process id
(``.<name>.<pid>.<random>.part``), so that :func:`clear_stale` can remove those of dead runs (kill -9, a
power cut) without touching those of a live one.
"""

from __future__ import annotations

import errno
import os
import re
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


#: a temporary name written by :func:`temporary_beside`: ``.<name>.<pid>.<random>.part``
_PART = re.compile(r"^\..+\.(\d+)\.[^.]+\.part$")


def temporary_beside(path: str | Path) -> Path:
    """Create an empty temporary file in ``path``'s folder (hidden, ``.part``, named with this process's id)
    and return its path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (it may belong to another user)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError as e:  # pragma: no cover
        return e.errno != errno.ESRCH
    return True


def clear_stale(folder: str | Path) -> list[Path]:
    """Remove the temporary files (:func:`temporary_beside`) in ``folder`` whose writing process is gone
    (a run killed with kill -9 or by a power cut); those of live processes stay.  Returns what was removed."""
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        m = _PART.match(name)
        if m and int(m.group(1)) != os.getpid() and not pid_alive(int(m.group(1))):
            p = Path(folder) / name
            try:
                if p.is_file() and not p.is_symlink():
                    p.unlink()
                    removed.append(p)
            except OSError:
                pass
    return removed


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` sets it for every
    thread: another thread creating a file or folder meanwhile would get mode 0666/0777)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)  # elsewhere: briefly the strictest usual value, never a looser one
    os.umask(umask)
    return umask


def normal_mode(tmp: str | Path) -> None:
    """Give ``tmp`` (made private by mkstemp) the permissions of a normally created file: 0666 less the umask."""
    os.chmod(tmp, 0o666 & ~_umask())


def publish(tmp: str | Path, path: str | Path) -> None:
    """Give ``tmp`` the permissions of a normally created file (0666 less the umask) and rename it to
    ``path`` (atomic on one file system)."""
    normal_mode(tmp)
    os.replace(tmp, path)


def publish_new(tmp: str | Path, path: str | Path) -> None:
    """:func:`publish`, but never over an existing file: FileExistsError if ``path`` exists, also when it
    appeared while ``tmp`` was written (a hard link, which fails on an existing name; on a file system
    without hard links, checked, then renamed)."""
    normal_mode(tmp)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: check, then rename
        if os.path.lexists(path):
            raise FileExistsError(errno.EEXIST, "File exists", str(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """``with atomic_path(p) as tmp: write(tmp)``: on success ``tmp`` becomes ``p``; on any error it is removed."""
    tmp = temporary_beside(path)
    try:
        yield tmp
        publish(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` atomically, flushed to disk."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
