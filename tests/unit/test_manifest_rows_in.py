"""The manifest's chunked ``IN (...)`` queries: more ids than one statement may carry, one or two lists each."""

from __future__ import annotations

import sqlite3

from mmrag.stores._manifest_sqlite import _CHUNK, _rows_in


def test_every_value_is_asked_once_across_chunks_and_lists() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE a (id TEXT)")
    db.execute("CREATE TABLE b (id TEXT)")
    ids = [f"id{i:05d}" for i in range(2 * _CHUNK + 7)]
    db.executemany("INSERT INTO a VALUES (?)", [(i,) for i in ids])
    db.executemany("INSERT INTO b VALUES (?)", [(i,) for i in ids[::3]])
    wanted = ids[1:]  # all but the first: three chunks, the last one short
    assert sorted(r[0] for r in _rows_in(db, "SELECT id FROM a WHERE id IN ({marks})", wanted)) == wanted
    both = "SELECT id FROM a WHERE id IN ({marks}) EXCEPT SELECT id FROM b WHERE id IN ({marks})"
    assert sorted(r[0] for r in _rows_in(db, both, wanted)) == [i for i in wanted if i not in set(ids[::3])]
    assert list(_rows_in(db, "SELECT id FROM a WHERE id IN ({marks})", [])) == []
