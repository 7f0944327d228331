"""Telling a full disk from other I/O errors, so that the user is told to free space (exit 7), not to delete data.

SQLite reports a full disk as ``database or disk is full`` when a write runs out of space, but as ``disk I/O
error`` when it cannot grow its ``-shm`` file on opening; the OS as ``ENOSPC`` (``EDQUOT`` past a quota). An
error counts as disk-full when it says so anywhere in its chain of causes, or when it is an I/O error and the file
system of the path it names has no room left (a database that :func:`mmrag._sqlite.connect_wal` could only open
to read, because the disk is full, answers a write with "attempt to write a readonly database").
"""

from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from mmrag.errors import DiskFullError

__all__ = ["LOW_SPACE", "as_disk_full", "free_bytes"]

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
LOW_SPACE = 1 << 20  # below this an I/O error is taken to be the disk being full (SQLite needs a few pages)


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes available to this user on the file system holding ``path`` (or its nearest existing parent)."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        stats = os.statvfs(probe)
    except (OSError, AttributeError):  # not POSIX, or gone
        return None
    return stats.f_bavail * stats.f_frsize


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def as_disk_full(error: BaseException, path: str | os.PathLike[str] | None = None) -> DiskFullError | None:
    """The :class:`DiskFullError` that ``error`` really is, or None.

    Args:
        error: any exception (its causes are looked at too).
        path: the file being written, when the error does not name it.
    """
    if isinstance(error, DiskFullError):
        return error
    chain = _chain(error)
    named = path
    for item in chain:
        if isinstance(item, OSError) and item.filename and named is None:
            named = item.filename
    said = any((isinstance(e, OSError) and e.errno in _FULL_ERRNOS)
               or (isinstance(e, sqlite3.Error) and "disk is full" in str(e)) for e in chain)
    if not said:
        io = any((isinstance(e, OSError) and e.errno == errno.EIO) or
                 (isinstance(e, sqlite3.Error) and ("disk I/O error" in str(e) or "readonly database" in str(e)))
                 for e in chain)
        where = named or _path_in(error)
        free = free_bytes(where) if io and where else None
        if free is None or free >= LOW_SPACE:
            return None
        named = where
    return DiskFullError(str(named) if named else None)


def _path_in(error: BaseException) -> str | None:
    """The first absolute path that mmrag's own messages name (``/home/u/.mmrag/cache/models.sqlite: cannot...``)."""
    for word in str(error).replace("'", " ").split():
        word = word.rstrip(":,;.)")
        if word.startswith("/") and len(word) > 1:
            return word
    return None
