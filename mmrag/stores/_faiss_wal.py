"""The WAL-index header of a SQLite database, read from its ``-shm`` file: one memory read tells whether any
connection of any process committed since the last look (see :meth:`RecordDB.current_version
<mmrag.stores._faiss_db.RecordDB.current_version>`)."""

from __future__ import annotations

import mmap
import os
from pathlib import Path

__all__ = ["WAL_HEADER", "WalIndexHeader"]

WAL_HEADER = 48  # bytes of the WAL-index header in the -shm file (https://www.sqlite.org/walformat.html)


class WalIndexHeader:
    """The WAL-index header of a database in WAL mode, read from its ``-shm`` file mapped into memory.

    SQLite rewrites this header on every commit by any connection of any process (its ``iChange`` counter goes
    up, ``mxFrame`` moves, a restarted WAL gets new salts): the same bytes mean no commit since they were read.
    The file is only truncated by the first connection to open a database that no connection has open, so while
    the :class:`RecordDB` connection lives (it holds SQLite's shared lock on the file) the mapping stays valid.
    Without the file (another journal mode, a VFS that keeps the index in heap memory) :meth:`header` is None and
    callers ask SQLite.
    """

    def __init__(self, path: Path) -> None:
        self.map: mmap.mmap | None = None  # the first two headers' bytes; None when the file cannot be mapped
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return
        try:
            if os.fstat(fd).st_size >= 2 * WAL_HEADER:
                self.map = mmap.mmap(fd, 2 * WAL_HEADER, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            self.map = None
        finally:
            os.close(fd)  # the mapping keeps its own reference

    def header(self) -> bytes | None:
        return self.map[:WAL_HEADER] if self.map is not None else None

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
