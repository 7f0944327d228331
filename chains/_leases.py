"""Leases on sources, so that two machines (or two processes) never ingest one source at once.

An ingest takes a source's lease in the manifest before reading it (:meth:`ManifestStore.acquire`); a commit
drops it. A source whose lease another live ingest holds is put off to the end of the run, then waited for: by
then the other ingest has usually committed it, and it is judged unchanged like any other. A heartbeat thread
renews the run's leases every third of their length; the leases of a process that died expire after
:data:`~mmrag.stores.manifest.LEASE_SECONDS` (the setting ``MMRAG_LEASE_SECONDS``) and its sources are taken over
(its claims are cleaned up by the taker, as after any crash).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from types import TracebackType

from mmrag.errors import StoreError
from mmrag.stores.manifest import LEASE_SECONDS, ManifestStore

__all__ = ["Heartbeat", "lease_owner", "wait_for_lease"]

logger = logging.getLogger(__name__)

WAIT_LIMIT = 600.0
"""Seconds to wait for a source another live ingest keeps leased before reporting it as failed."""


def lease_owner() -> str:
    """A name for this run that no other run shares: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def wait_for_lease(manifest: ManifestStore, source: str, owner: str, *, limit: float = WAIT_LIMIT,
                   poll: float = 0.5, seconds: float = LEASE_SECONDS) -> None:
    """Block until ``owner`` holds the lease on ``source`` (taken for ``seconds``).

    Raises:
        StoreError: another ingest kept it for ``limit`` seconds.
    """
    deadline = time.monotonic() + limit
    while not manifest.acquire(source, owner, seconds):
        if time.monotonic() > deadline:
            raise StoreError(f"another ingest has been working on it for over {limit:g} s: run this again when it "
                             "has finished")
        time.sleep(poll)


class Heartbeat:
    """Renews ``owner``'s leases for ``seconds`` every ``seconds / 3`` (or ``every``) in a daemon thread; gives
    them all up at exit."""

    def __init__(self, manifest: ManifestStore, owner: str, every: float | None = None, *,
                 seconds: float = LEASE_SECONDS) -> None:
        self.manifest, self.owner, self.seconds = manifest, owner, seconds
        self.every = seconds / 3 if every is None else every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mmrag-lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.manifest.unlease(self.owner)
        except StoreError:  # they expire by themselves
            logger.warning("could not give up this run's leases; they expire in %g s", self.seconds)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.manifest.renew(self.owner, self.seconds)
            except StoreError as e:
                logger.warning("could not renew this run's leases: %s", e)
