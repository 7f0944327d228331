"""The one way mmrag opens its sqlite files (manifest, index records, model cache, answer cache, chat history).

Every file is opened in WAL mode and its schema applied with idempotent statements (``IF NOT EXISTS``), which take
no write lock when the schema is there already, so opening never waits for another process's write. Two processes
creating the same new file at once can deadlock on their schema locks; SQLite then fails one of them at once with
"database is locked" without waiting for the busy timeout (https://www.sqlite.org/lockingv3.html, "deadlock";
https://www.sqlite.org/c3ref/busy_timeout.html: the busy handler is not invoked when that would deadlock). The
set-up is idempotent, so it is retried until the timeout.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from mmrag.errors import StoreError

__all__ = ["SetupStep", "connect_wal", "open_sqlite"]

SetupStep = str | Callable[[sqlite3.Connection], None]
"""An idempotent schema script, or an idempotent function that inspects and migrates."""

_RETRY_PAUSE = 0.05


def _is_locked(e: sqlite3.OperationalError) -> bool:
    text = str(e)
    return "locked" in text or "busy" in text


def _retrying(step: Callable[[], object], deadline: float) -> None:
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as e:
            if not _is_locked(e) or time.monotonic() >= deadline:
                raise
            time.sleep(_RETRY_PAUSE)


def _step(db: sqlite3.Connection, step: SetupStep) -> Callable[[], object]:
    if isinstance(step, str):
        return lambda: db.executescript(step)
    return lambda: step(db)


def connect_wal(
    path: Path, *setup: SetupStep, timeout: float = 30.0, synchronous: str = "NORMAL"
) -> sqlite3.Connection:
    """``path`` opened in WAL mode, autocommit, usable from any thread (callers serialise with their own lock),
    waiting up to ``timeout`` seconds for other writers; each ``setup`` step applied in order and retried while the
    file is locked. The folder must exist.

    Raises:
        sqlite3.Error: the file cannot be opened or set up (still locked after ``timeout``); callers turn it into
            their own :class:`~mmrag.errors.StoreError`.
    """
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout,
                         cached_statements=256)
    try:
        deadline = time.monotonic() + timeout
        _retrying(lambda: db.execute("PRAGMA journal_mode=WAL"), deadline)
        db.execute(f"PRAGMA synchronous={synchronous}")
        for step in setup:
            _retrying(_step(db, step), deadline)
    except sqlite3.Error:
        db.close()
        frozen = _frozen_on_full_disk(path)
        if frozen is None:
            raise
        return frozen
    except BaseException:
        db.close()
        raise
    return db


def _frozen_on_full_disk(path: Path) -> sqlite3.Connection | None:
    """``path`` opened to read, as it is on disk, when the disk is too full for SQLite's ``-shm`` file; else None.

    A reader of a WAL database needs that file, which holds nothing when no connection is open; a full disk refuses
    it. When the ``-wal`` file is absent or empty the database file alone is the committed state, and with the
    disk full no other process can write either (it needs the same file), so reading it as immutable is exact.
    Search and ask then go on working; any write fails ("readonly database"), reported as disk full.
    """
    from mmrag._disk import LOW_SPACE, free_bytes

    wal = Path(f"{path}-wal")
    free = free_bytes(path)
    if not path.is_file() or free is None or free >= LOW_SPACE or (wal.exists() and wal.stat().st_size > 0):
        return None
    try:
        db = sqlite3.connect(f"{Path(path).resolve().as_uri()}?immutable=1", uri=True, check_same_thread=False,
                             isolation_level=None, cached_statements=256)
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error:
        return None
    return db


def open_sqlite(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """``path`` opened (its folder created) by :func:`connect_wal` with ``schema`` applied; waits up to 30 s for
    another writer.

    Raises:
        StoreError: the file cannot be created or opened; the message names it and ``what`` it holds.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return connect_wal(path, schema)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot open the {what} ({e})") from e
