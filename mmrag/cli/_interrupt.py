"""Ctrl-C for long commands (``ingest``, ``ask``, ``eval``): stop within a couple of seconds, whatever is running.

Python's default Ctrl-C raises KeyboardInterrupt in the main thread only. A command whose work runs in thread
pools (OCR, model calls, retrieval) then still waits for the queued work when the pools shut down, and again when
the interpreter joins their threads at exit: the user saw nothing for up to 80 s. Here:

- the first Ctrl-C prints "stopping…", sets :attr:`Interrupt.event` (the ingest pipeline checks it before
  preparing a source and before committing a group: no new commit starts), and raises KeyboardInterrupt in the
  main thread so the command unwinds; if the process has not ended :data:`GRACE` seconds later, it exits
  with 130 without waiting for the threads;
- a second Ctrl-C exits with 130 at once.

Exiting without joining the worker threads is safe for a collection: a source is committed in the manifest only
after its vectors and objects are durable, so whatever an abandoned thread was doing is redone (or cleaned up) by
the next run, as after a crash (tests/faults/test_crash_points.py).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from types import FrameType

__all__ = ["GRACE", "Interrupt", "interruptible"]

GRACE = 0.75
"""Seconds between the first Ctrl-C and the hard exit, for the command to unwind and print its last line."""

EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class Interrupt:
    """The cancellation hook a command passes to the library: set on the first Ctrl-C."""

    event: threading.Event = field(default_factory=threading.Event)

    def requested(self) -> bool:
        """True once Ctrl-C was pressed (a callable the library polls between units of work)."""
        return self.event.is_set()


def _exit_now() -> None:
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()
    os._exit(EXIT_INTERRUPTED)


@contextmanager
def interruptible() -> Iterator[Interrupt]:
    """Handle Ctrl-C as the module docstring says, inside the block; the previous handler comes back after it.

    Only in the main thread (signal handlers can be set nowhere else): elsewhere the block runs with the handler
    it had.
    """
    interrupt = Interrupt()
    if threading.current_thread() is not threading.main_thread():
        yield interrupt
        return

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        if interrupt.event.is_set():
            _exit_now()
        interrupt.event.set()
        with suppress(OSError, ValueError):
            os.write(sys.stderr.fileno(), "\nstopping… (Ctrl-C again to quit at once)\n".encode())
        watchdog = threading.Timer(GRACE, _exit_now)
        watchdog.daemon = True
        watchdog.start()
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield interrupt
    finally:
        if not interrupt.event.is_set():  # after Ctrl-C, a late second one must still exit at once
            signal.signal(signal.SIGINT, previous)
