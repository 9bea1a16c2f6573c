"""Atomic file output: write to a temporary file beside the target, rename it into place when complete.

A reader never sees a half-written file under the final name, and an interrupted write leaves nothing
behind but nothing under that name either.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def temporary_beside(path: str | Path) -> Path:
    """Create an empty temporary file in ``path``'s folder (hidden, ``.part``) and return its path."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def publish(tmp: str | Path, path: str | Path) -> None:
    """Give ``tmp`` the permissions of a normally created file (0666 less the umask) and rename it to
    ``path`` (atomic on one file system)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, path)


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
