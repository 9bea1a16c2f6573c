"""SIGTERM handled like Ctrl-C, for the commands that must clean up or save when stopped."""

from __future__ import annotations

import contextlib
import signal
import threading


@contextlib.contextmanager
def sigterm_as_ctrl_c():
    """While active, SIGTERM (``kill PID``, a batch scheduler's stop) raises KeyboardInterrupt like Ctrl-C does,
    so that a stopped run cleans up (``separate``: its temporary files) or saves (``train``: its
    checkpoint) as it does on Ctrl-C.  Needed because a background job started by a shell
    ignores SIGINT.  Python delivers signals to the main thread only; elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
