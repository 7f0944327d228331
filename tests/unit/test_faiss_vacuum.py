"""Issue 23 item 9: removing most of a FAISS collection gives the record database's space back."""

from __future__ import annotations

import random
from pathlib import Path

from mmrag.stores.faiss import DB_NAME, FaissIndex
from mmrag.testing.conformance import make_record

DIMS = 64


def _records(n: int) -> list:  # type: ignore[type-arg]
    rng = random.Random(7)
    return [make_record(f"paragraph {i} " + "lorem ipsum dolor sit amet " * 20,
                        [rng.uniform(-1, 1) for _ in range(DIMS)], source=f"doc{i % 50}.pdf") for i in range(n)]


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.name.startswith(DB_NAME))


def test_a_large_delete_shrinks_the_record_database(tmp_path: Path) -> None:
    records = _records(3000)
    index = FaissIndex(tmp_path / "idx", DIMS)
    index.add(records)
    index.persist()
    full = _size(tmp_path / "idx")
    keep = records[:4]
    assert index.delete([r.element.id for r in records[4:]]) == 2996
    index.persist()
    after = _size(tmp_path / "idx")
    assert after < full * 0.2, f"{full} -> {after} bytes after removing 2996 of 3000 records"
    hits = index.search(list(keep[2].vector), k=10)
    assert [h.element.id for h in hits][0] == keep[2].element.id and len(hits) == 4
    index.close()
    reopened = FaissIndex(tmp_path / "idx", DIMS)  # the FAISS cache still matches the (kept) row ids
    assert reopened.count() == 4
    assert reopened.search(list(keep[0].vector), k=1)[0].element.id == keep[0].element.id
    assert {r.element.id for r in reopened.keyword_search("paragraph", k=10)} == {r.element.id for r in keep}
    reopened.close()


def test_a_small_delete_does_not_rewrite_the_file(tmp_path: Path) -> None:
    records = _records(600)
    index = FaissIndex(tmp_path / "idx", DIMS)
    index.add(records)
    index.persist()
    index.delete([r.element.id for r in records[:20]])
    assert not index._db.vacuum_if_worthwhile()
    index.close()
