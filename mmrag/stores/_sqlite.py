"""The one way mmrag opens the small sqlite files it keeps beside a collection (answer cache, chat history)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from mmrag.errors import StoreError

__all__ = ["open_sqlite"]


def open_sqlite(path: Path, schema: str, what: str) -> sqlite3.Connection:
    """``path`` opened (its folder created) in WAL mode with ``schema`` applied, in autocommit mode and usable from
    any thread (callers serialise with their own lock); waits up to 30 s for another writer.

    Raises:
        StoreError: the file cannot be created or opened; the message names it and ``what`` it holds.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except (OSError, sqlite3.Error) as e:
        raise StoreError(f"{path}: cannot open the {what} ({e})") from e
    return db
