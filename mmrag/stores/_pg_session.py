"""One PostgreSQL connection shared by a collection's two pgvector indexes and its manifest.

Sharing the connection is what makes a source's vectors and its manifest commit one transaction: inside
:meth:`PgSession.atomic` the indexes' ``persist()`` does not commit, and the block's end commits everything
written in it, or nothing. Outside it, every ``persist()`` and every manifest write commits what is pending.

Threads share the connection one operation at a time (an ``RLock``); an ``atomic`` block holds the lock from
start to end, so another thread's statement never joins (or commits) the block's transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from mmrag.errors import MissingDependencyError, StoreError
from mmrag.stores._pgvector_sql import describe_dsn

if TYPE_CHECKING:
    import psycopg

__all__ = ["PgSession", "require_psycopg"]

logger = logging.getLogger(__name__)


def require_psycopg(feature: str) -> None:
    try:
        import pgvector.psycopg  # noqa: F401
        import psycopg  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(e.name or "psycopg", "pgvector", feature=feature) from e


class PgSession:
    """A lazily opened connection, the lock that serialises its users, and whether writes are pending.

    Args:
        dsn: libpq connection string or URI (never shown: messages use :attr:`where`).
        connect_timeout: seconds to wait for the server.

    Users register ``prepare(conn)`` callbacks (create or check their tables); they run once on every new
    connection, before anything else, and are committed on their own.
    """

    def __init__(self, dsn: str, *, connect_timeout: int = 10) -> None:
        self._dsn, self.connect_timeout = dsn, connect_timeout
        self.where, self.password = describe_dsn(dsn)
        self.lock = threading.RLock()
        self.dirty = False
        self._depth = 0
        self._conn: psycopg.Connection[Any] | None = None
        self._prepare: list[Callable[[psycopg.Connection[Any]], None]] = []

    @property
    def in_atomic(self) -> bool:
        return self._depth > 0

    def on_connect(self, prepare: Callable[[psycopg.Connection[Any]], None]) -> None:
        """Run ``prepare`` on the current connection now (if any) and on every new one."""
        with self.lock:
            self._prepare.append(prepare)
            if self._conn is not None and not self._conn.closed:
                if self.dirty or self._depth:  # never commit others' pending writes early: theirs commits this
                    prepare(self._conn)
                else:
                    self._run_prepare(self._conn, [prepare])

    def connection(self) -> psycopg.Connection[Any]:
        with self.lock:
            if self._conn is not None and not self._conn.closed:
                return self._conn
            import psycopg

            try:
                conn = psycopg.connect(self._dsn, autocommit=False, connect_timeout=self.connect_timeout)
            except psycopg.ProgrammingError:
                # libpq quotes the malformed part of the DSN, which may be the password.
                raise StoreError("invalid PostgreSQL connection string (not shown: it may hold a password); "
                                 "use postgresql://user:password@host:port/dbname or key=value pairs") from None
            except psycopg.Error as e:
                raise StoreError(f"PostgreSQL at {self.where}: connecting failed: {self.redact(e)}; check that the "
                                 "server is running and reachable, and the user and password in the DSN") from e
            self._run_prepare(conn, self._prepare)
            self._conn = conn
            return conn

    def _run_prepare(self, conn: psycopg.Connection[Any], prepare: list[Callable[[psycopg.Connection[Any]], None]]
                     ) -> None:
        try:
            for fn in prepare:
                fn(conn)
            conn.commit()
        except BaseException:
            conn.close()
            raise

    def commit(self) -> None:
        """Commit what is pending, unless an ``atomic`` block is open (its end commits)."""
        with self.lock:
            if self._depth or self._conn is None or not self.dirty:
                return
            try:
                self._conn.commit()
            except Exception as e:
                self.drop()
                raise StoreError(f"PostgreSQL at {self.where}: committing failed: {self.redact(e)}; the writes since "
                                 "the last commit were lost: run the command again") from e
            self.dirty = False

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """Everything written in the block commits together at its end, or is rolled back with an error."""
        with self.lock:
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                if not self._depth:
                    self.rollback()
                raise
            self._depth -= 1
            if not self._depth:
                self.commit()

    def rollback(self) -> None:
        with self.lock:
            if self._conn is not None and not self._conn.closed:
                try:
                    self._conn.rollback()
                except Exception:
                    logger.debug("rollback failed on %s", self.where, exc_info=True)
                    self.drop()
            self.dirty = False

    def drop(self) -> None:
        with self.lock:
            if self._conn is not None:
                self._conn.close()
            self._conn, self.dirty = None, False

    def redact(self, e: BaseException) -> str:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        return reason.replace(self.password, "***") if self.password else reason

    def __repr__(self) -> str:
        return f"PgSession({self.where})"
