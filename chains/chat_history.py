"""Chat history kept in sqlite, one conversation per (collection, session).

A conversation belongs to the collection it is about: the same session id in another collection is another
conversation, so what was said about one collection never follows the user into another (nor, on Bedrock, is
sent along with its questions). All conversations live in one file, ``MMRAG_HOME/chat_history.sqlite``, table
``chat_messages``; the table ``messages`` of earlier versions, keyed by session only, is left as it was and never
read.

A damaged row (not JSON, not a LangChain message) is skipped with one warning naming the file and the row, so a
conversation with a bad row still opens and ``/reset`` still clears it.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_core.chat_history import BaseChatMessageHistory
from langchain_core.messages import BaseMessage, message_to_dict, messages_from_dict

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = ["SQLiteChatHistory", "history_path", "sqlite_chat_history"]

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chat_messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, session TEXT NOT NULL, message TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS chat_messages_key ON chat_messages (collection, session, id);
"""


class SQLiteChatHistory(BaseChatMessageHistory):
    """A LangChain chat history kept in a sqlite file, one conversation per collection and session id.

    Args:
        path: the sqlite file (created with its folder).
        session_id: which conversation.
        collection: the collection the conversation is about.
    """

    def __init__(self, path: Path | str, session_id: str, *, collection: str) -> None:
        if not session_id:
            raise ValueError("the session id is empty")
        if not collection:
            raise ValueError("the collection name is empty")
        self.path, self.session_id, self.collection = Path(path), session_id, collection
        self._lock = threading.Lock()
        self._warned: set[int] = set()
        from mmrag._sqlite import open_sqlite

        self._db = open_sqlite(self.path, _SCHEMA, "chat history")

    @property
    def messages(self) -> list[BaseMessage]:  # type: ignore[override]
        """The conversation so far, oldest first; damaged rows are skipped (one WARNING each)."""
        with self._lock:
            try:
                rows = self._db.execute(
                    "SELECT id, message FROM chat_messages WHERE collection = ? AND session = ? ORDER BY id",
                    (self.collection, self.session_id)).fetchall()
            except sqlite3.DatabaseError as e:  # a damaged page: the conversation starts afresh, the chat goes on
                logger.warning("chat history %s cannot be read (%s); this conversation starts without it",
                               self.path, e)
                return []
        out: list[BaseMessage] = []
        for row_id, raw in rows:
            try:
                out.extend(messages_from_dict([json.loads(raw)]))
            except Exception as e:  # any malformed row: skip it, keep the rest
                if row_id not in self._warned:
                    self._warned.add(row_id)
                    logger.warning("chat history %s: skipped damaged row %d of session %r (%s: %s)", self.path,
                                   row_id, self.session_id, type(e).__name__, str(e)[:120])
        return out

    def add_messages(self, messages: Sequence[BaseMessage]) -> None:
        """Append messages (one transaction)."""
        now = time.time()
        rows = [(self.collection, self.session_id, json.dumps(message_to_dict(m), ensure_ascii=False, default=str),
                 now) for m in messages]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO chat_messages (collection, session, message, created) VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def clear(self) -> None:
        """Forget this conversation (damaged rows included)."""
        with self._lock:
            self._db.execute("DELETE FROM chat_messages WHERE collection = ? AND session = ?",
                             (self.collection, self.session_id))
        self._warned.clear()

    def close(self) -> None:
        with self._lock:
            self._db.close()


def history_path(settings: Settings) -> Path:
    """Where conversations are kept: ``MMRAG_HOME/chat_history.sqlite`` (a file, so never taken for a
    collection)."""
    return Path(settings.home) / "chat_history.sqlite"


def sqlite_chat_history(settings: Settings | None = None, *, path: Path | str | None = None,
                        collection: str | None = None) -> Callable[[str], SQLiteChatHistory]:
    """A ``get_session_history`` for ``RunnableWithMessageHistory``: session id -> :class:`SQLiteChatHistory`
    of ``collection`` (default: the settings' collection) in ``path`` (default ``MMRAG_HOME/chat_history.sqlite``).
    """
    if path is None or collection is None:
        from mmrag.config import Settings

        settings = settings or Settings()
        path = history_path(settings) if path is None else path
        collection = collection or settings.collection
    where, name = Path(path), collection
    opened: dict[str, SQLiteChatHistory] = {}  # one connection per session, reused turn after turn

    def get(session_id: str) -> SQLiteChatHistory:
        if session_id not in opened:
            opened[session_id] = SQLiteChatHistory(where, session_id, collection=name)
        return opened[session_id]

    return get
