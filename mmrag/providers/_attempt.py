"""One model request waited for a bounded time, while the request itself runs on to its real end.

A client that gives up on a request (read timeout) does not stop the service: it goes on working on it and counting
it against the account's quota. :func:`run_attempt` lets the caller stop waiting without closing the connection,
and tells (``on_late_end``) when the request is really over, so its concurrency slot is held until then.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["AttemptTimeout", "run_attempt"]

T = TypeVar("T")


class AttemptTimeout(Exception):
    """One attempt outlived ``RetryPolicy.attempt_timeout``; it goes on in the background, holding its slot."""


def run_attempt(fn: Callable[[], T], timeout: float, on_late_end: Callable[[], None]) -> T:
    """``fn()`` on a daemon thread, waited for ``timeout`` seconds.

    Raises:
        AttemptTimeout: ``fn`` is still running; ``on_late_end`` is called when it really ends.
    """
    done = threading.Event()
    lock = threading.Lock()
    abandoned = False
    box: dict[str, Any] = {}
    context = contextvars.copy_context()  # callbacks and tracing configured by the caller follow the request

    def run() -> None:
        nonlocal abandoned
        try:
            box["value"] = context.run(fn)
        except BaseException as exc:  # handed to the caller, or dropped when the caller has given up
            box["error"] = exc
        with lock:
            done.set()
            late = abandoned
        if late:
            on_late_end()

    threading.Thread(target=run, name="mmrag-request", daemon=True).start()
    if not done.wait(timeout):
        with lock:
            if not done.is_set():
                abandoned = True
                raise AttemptTimeout(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
