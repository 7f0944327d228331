"""FaissIndex: the conformance suite (flat and HNSW), atomic writes, the FAISS cache, filters against brute force."""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pytest

from mmrag.elements import Element
from mmrag.errors import StoreError
from mmrag.stores.base import Filter, IndexRecord, VectorIndex, matches_filter
from mmrag.stores.faiss import CACHE_NAME, DB_NAME, FaissIndex
from mmrag.testing.conformance import VectorIndexConformance, make_record

T = TypeVar("T")
ALLOWED_FILES = {DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", CACHE_NAME}


class TestFaissIndex(VectorIndexConformance):
    hnsw_threshold = 50_000
    exact_filter_limit = 20_000

    @pytest.fixture
    def make_index(self, tmp_path: Path) -> Callable[[int], VectorIndex]:
        counter = itertools.count()
        return lambda dims: FaissIndex(
            tmp_path / f"idx{next(counter)}", dims,
            hnsw_threshold=self.hnsw_threshold, exact_filter_limit=self.exact_filter_limit,
        )

    @pytest.fixture
    def reopen(self) -> Callable[[VectorIndex], VectorIndex]:
        def again(index: VectorIndex) -> VectorIndex:
            assert isinstance(index, FaissIndex)
            return FaissIndex(index.path, index.dimensions, hnsw_threshold=self.hnsw_threshold,
                              exact_filter_limit=self.exact_filter_limit)

        return again


class TestFaissIndexHnsw(TestFaissIndex):
    """The same suite on an HNSW graph (with tombstones after deletes) and FAISS ID selectors for filters."""

    hnsw_threshold = 4
    exact_filter_limit = 0

    def test_uses_hnsw_and_its_cache(self, filled: VectorIndex) -> None:
        assert isinstance(filled, FaissIndex)
        filled.search([1.0] + [0.0] * 7, k=1)
        filled.persist()
        header = (filled.path / CACHE_NAME).read_bytes()[:200]
        assert b'"kind": "hnsw"' in header


def _records(n: int, dims: int, seed: int = 0, start: int = 0) -> list[IndexRecord]:
    rng = random.Random(seed)
    sources = ["a.pdf", "b.pdf", "c.html", "d.pdf", "e.html"]
    out = []
    for i in range(start, start + n):
        source = sources[i % 5]
        page = None if source.endswith(".html") else i % 9 + 1
        kind = ("text", "text", "table", "image")[i % 4]
        out.append(make_record(f"record {i}", [rng.gauss(0, 1) for _ in range(dims)], source=source, kind=kind,
                               page=page))
    return out


def _batched(items: list[T], n: int) -> list[list[T]]:
    return [items[i : i + n] for i in range(0, len(items), n)]


def _brute_force(records: list[IndexRecord], query: list[float], k: int, filter: Filter | None) -> list[str]:
    q = np.asarray(query) / np.linalg.norm(query)
    scored = [(float(np.dot(np.asarray(r.vector) / np.linalg.norm(r.vector), q)), r.id)
              for r in records if matches_filter(r.element, filter)]
    return [i for _, i in sorted(scored, reverse=True)[:k]]


# --- filters: numpy exact path and FAISS selector path against brute force ------------------------------------


FILTERS: list[Filter | None] = [
    None,
    {"kind": "image"},  # 25 %
    {"kind": ["text", "table"], "page": [None, 1, 2, 3, 4, 5]},
    {"source": ["a.pdf", "c.html"]},
    {"page": None},  # the two HTML sources: 40 %
    {"source": "a.pdf", "page": 3},  # tiny: always exact
    {"mime_type": "text/plain", "source": ["b.pdf", "d.pdf", "e.html"]},
    {"source": "nowhere"},
    {"page": "3"},  # a string never equals an integer page
]


@pytest.mark.parametrize("exact_filter_limit", [20_000, 0], ids=["numpy-exact", "faiss-selector"])
def test_filtered_search_matches_brute_force(tmp_path: Path, exact_filter_limit: int) -> None:
    records = _records(3000, 16)
    index = FaissIndex(tmp_path / "idx", 16, exact_filter_limit=exact_filter_limit)
    index.add(records)
    index.persist()
    rng = random.Random(5)
    for filter in FILTERS:
        for _ in range(5):
            query = [rng.gauss(0, 1) for _ in range(16)]
            hits = index.search(query, k=12, filter=filter)
            assert [h.id for h in hits] == _brute_force(records, query, 12, filter), filter
            assert all(matches_filter(h.element, filter) for h in hits)
            assert all(a.score >= b.score for a, b in itertools.pairwise(hits))


def test_filtered_hnsw_search_finds_what_brute_force_finds(tmp_path: Path) -> None:
    records = _records(2000, 16, seed=3)
    index = FaissIndex(tmp_path / "idx", 16, hnsw_threshold=100, exact_filter_limit=0)
    index.add(records)
    index.persist()
    rng = random.Random(9)
    found = wanted = 0
    for filter in [None, {"kind": "image"}, {"page": None}, {"source": ["a.pdf", "b.pdf"]}]:
        for _ in range(10):
            query = [rng.gauss(0, 1) for _ in range(16)]
            hits = index.search(query, k=10, filter=filter)
            assert len(hits) == 10 and all(matches_filter(h.element, filter) for h in hits)
            truth = set(_brute_force(records, query, 10, filter))
            found += len(truth & {h.id for h in hits})
            wanted += len(truth)
    assert found / wanted >= 0.95  # an approximate graph, but on 2000 points it misses next to nothing


def test_hnsw_deletes_are_never_returned_and_rebuild(tmp_path: Path) -> None:
    records = _records(300, 8, seed=4)
    index = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=50)
    index.add(records)
    index.search(list(records[0].vector), k=1)  # build the graph before deleting
    rng = random.Random(2)
    gone = {r.id for r in rng.sample(records, 120)}  # 40 %: past the rebuild share
    deleted: set[str] = set()
    for batch in _batched(sorted(gone), 30):
        assert index.delete(batch) == len(batch)
        deleted.update(batch)
        for r in records[:40]:
            hits = index.search(list(r.vector), k=10)
            assert len(hits) == 10 and not deleted & {h.id for h in hits}
    kept = [r for r in records if r.id not in gone]
    assert index.count() == len(kept)
    for r in kept[:50]:
        assert index.search(list(r.vector), k=1)[0].id == r.id


# --- atomic writes ---------------------------------------------------------------------------------------------


def test_a_failing_batch_leaves_the_previous_state(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path / "idx", 8)
    first = _records(10, 8)
    index.add(first)
    index.persist()
    changed = IndexRecord(first[3].element, [0.0] * 7 + [1.0], "record 3 with a new vector")
    bad = IndexRecord(Element(kind="text", source="x.pdf", text="bad", metadata={"when": object()}), [1.0] * 8, "bad")
    batch = [changed, *_records(20, 8, seed=1, start=10), bad, *_records(5, 8, seed=2, start=40)]
    with pytest.raises(StoreError, match="JSON"):
        index.add(batch)
    assert index.count() == 10
    assert index.get([r.id for r in batch[1:]]) == []
    assert index.search(list(first[3].vector), k=1)[0].id == first[3].id  # the upsert was rolled back too
    assert math.isclose(index.search(list(first[3].vector), k=1)[0].score, 1.0, abs_tol=1e-5)
    again = FaissIndex(tmp_path / "idx", 8)
    assert again.count() == 10 and again.keyword_search("bad", k=5) == []


_WRITER = textwrap.dedent("""
    import random, sys
    from pathlib import Path
    from mmrag.stores.faiss import FaissIndex
    from mmrag.testing.conformance import make_record

    index = FaissIndex(Path(sys.argv[1]), 8, hnsw_threshold=200)
    rng = random.Random(0)
    for b in range(10_000):
        batch = [make_record(f"batch {b} item {i}", [rng.gauss(0, 1) for _ in range(8)]) for i in range(25)]
        index.add(batch)
        index.search(batch[0].vector, k=3)
        if b % 3 == 0:
            index.persist()  # also rewrites the FAISS cache: the kill may land in the middle of it
""")


def test_killed_writer_leaves_a_committed_state(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    FaissIndex(folder, 8).close()
    writer = subprocess.Popen([sys.executable, "-c", _WRITER, str(folder)])
    try:
        reader = FaissIndex(folder, 8)
        deadline = time.monotonic() + 60
        while reader.count() < 400 and writer.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert writer.poll() is None, "the writer died on its own"
        time.sleep(random.Random().uniform(0, 0.2))
        os.kill(writer.pid, signal.SIGKILL)
        assert writer.wait(10) == -signal.SIGKILL
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    again = FaissIndex(folder, 8, hnsw_threshold=200)
    n = again.count()
    assert n >= 400 and n % 25 == 0  # whole batches only
    rng = random.Random(0)  # replay the writer's records to check what was committed
    for b in range(n // 25):
        batch = [make_record(f"batch {b} item {i}", [rng.gauss(0, 1) for _ in range(8)]) for i in range(25)]
        if b in (0, n // 25 - 1) or b % 5 == 0:
            assert [e.id for e in again.get([r.id for r in batch])] == [r.id for r in batch]
            assert again.search(list(batch[7].vector), k=1)[0].id == batch[7].id
    late = [make_record(f"batch {n // 25} item {i}", [rng.gauss(0, 1) for _ in range(8)]) for i in range(25)]
    assert again.get([r.id for r in late]) == []  # the batch in flight at the kill left nothing behind
    again.persist()
    assert {p.name for p in folder.iterdir()} <= ALLOWED_FILES  # the killed writer's temp cache file is cleaned up


def test_no_pickle_anywhere(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=10)
    index.add(_records(40, 8))
    index.search([1.0] * 8, k=3)
    index.persist()
    files = list((tmp_path / "idx").iterdir())
    assert {p.name for p in files} <= ALLOWED_FILES and (tmp_path / "idx" / CACHE_NAME) in files
    for p in files:
        head = p.read_bytes()[:2]
        assert not (head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")), p


# --- the FAISS cache -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("hnsw_threshold", [50_000, 10], ids=["flat", "hnsw"])
def test_a_stale_cache_is_brought_up_to_date(tmp_path: Path, hnsw_threshold: int) -> None:
    folder = tmp_path / "idx"
    records = _records(60, 8)
    first = FaissIndex(folder, 8, hnsw_threshold=hnsw_threshold)
    first.add(records)
    first.persist()
    first.search(list(records[0].vector), k=1)
    cache = (folder / CACHE_NAME).read_bytes()

    # Another writer commits without persist (as one killed before persist would): the cache is now stale.
    other = FaissIndex(folder, 8, hnsw_threshold=hnsw_threshold)
    new = make_record("a late arrival", [0.0] * 7 + [1.0])
    other.add([new])
    assert (folder / CACHE_NAME).read_bytes() == cache

    for index in (FaissIndex(folder, 8, hnsw_threshold=hnsw_threshold), first):
        assert index.search([0.0] * 7 + [1.0], k=1)[0].id == new.id
        assert index.search(list(records[9].vector), k=1)[0].id == records[9].id
    cache = (folder / CACHE_NAME).read_bytes()  # the stale cache was replaced after catching up...

    assert other.delete([records[5].id]) == 1  # ...and goes stale again by a delete alone
    for index in (FaissIndex(folder, 8, hnsw_threshold=hnsw_threshold), first):
        assert records[5].id not in {h.id for h in index.search(list(records[5].vector), k=10)}
        assert index.search([0.0] * 7 + [1.0], k=1)[0].id == new.id
    assert (folder / CACHE_NAME).read_bytes() != cache


def test_an_instance_sees_its_own_and_others_writes(tmp_path: Path) -> None:
    records = _records(40, 8)
    index = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=30)
    index.add(records[:20])
    assert index.search(list(records[3].vector), k=1)[0].id == records[3].id  # no persist needed to search
    index.add(records[20:35])  # crosses the HNSW threshold
    assert index.search(list(records[33].vector), k=1)[0].id == records[33].id
    FaissIndex(tmp_path / "idx", 8).add(records[35:])
    assert index.search(list(records[39].vector), k=1)[0].id == records[39].id
    assert index.count() == 40


def _truncate(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _flip(data: bytes) -> bytes:
    i = len(data) - 197  # the sign and exponent byte of a stored float (vectors come last, flat and HNSW)
    return data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1 :]


def _garbage(data: bytes) -> bytes:
    return os.urandom(len(data))


def _empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize("damage", [_truncate, _flip, _garbage, _empty])
@pytest.mark.parametrize("hnsw_threshold", [50_000, 10], ids=["flat", "hnsw"])
def test_a_corrupted_cache_is_rebuilt(tmp_path: Path, damage: Callable[[bytes], bytes], hnsw_threshold: int) -> None:
    folder = tmp_path / "idx"
    records = _records(50, 8)
    index = FaissIndex(folder, 8, hnsw_threshold=hnsw_threshold)
    index.add(records)
    index.search([1.0] * 8, k=1)
    index.persist()
    cache = folder / CACHE_NAME
    cache.write_bytes(damage(cache.read_bytes()))

    again = FaissIndex(folder, 8, hnsw_threshold=hnsw_threshold)
    for r in records:  # every vector intact: a flipped byte in one of them must not go unnoticed
        [hit] = again.search(list(r.vector), k=1)
        assert hit.id == r.id and math.isclose(hit.score, 1.0, abs_tol=1e-5)
    rebuilt = cache.read_bytes()
    assert rebuilt.startswith(b"MMRAGFAISS") and rebuilt != damage(rebuilt)


def test_a_cache_of_another_database_is_ignored(tmp_path: Path) -> None:
    folder = tmp_path / "idx"
    index = FaissIndex(folder, 8)
    index.add(_records(30, 8))
    index.search([1.0] * 8, k=1)
    index.persist()
    index.close()
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm"):
        (folder / name).unlink(missing_ok=True)
    fresh = FaissIndex(folder, 8)
    assert fresh.count() == 0 and fresh.search([1.0] * 8, k=5) == []


# --- elements come back exactly ------------------------------------------------------------------------------


def test_stored_elements_come_back_equal(tmp_path: Path) -> None:
    image = Element(kind="image", source="https://example.org/a page.html", text="Ünïcode caption ✓", page=None,
                    bbox=(0.123456, 1 / 3, 500, 600.005), mime_type="image/png", data=b"\x89PNG fake",
                    metadata={"width": 10, "nested": {"a": [1, 2.5, None]}, "flag": True})
    elements = [
        image.detach("objects/ab/cd.png"),  # its id rests on the hash of bytes that are gone: kept in metadata
        Element(kind="text", source="doc.pdf", text="plain", page=3),
        Element(kind="table", source="doc.pdf", text="| a | b |", page=1, bbox=(1.0, 2.0, 3.0, 4.0),
                mime_type="text/csv", metadata={"csv": "a,b"}),
        Element(kind="page", source="doc.pdf", text="", page=7, object_key="objects/p7.png"),
    ]
    index = FaissIndex(tmp_path / "idx", 4)
    index.add([IndexRecord(e, [float(i == j) for j in range(4)], f"indexed {i}") for i, e in enumerate(elements)])
    index.persist()
    again = FaissIndex(tmp_path / "idx", 4)
    got = again.get([e.id for e in reversed(elements)])
    assert got == list(reversed(elements)) and [hash(g) for g in got] == [hash(e) for e in reversed(elements)]
    for i, e in enumerate(elements):
        [hit] = again.search([float(i == j) for j in range(4)], k=1)
        assert hit.element == e and hit.text == f"indexed {i}"
        assert dataclasses.replace(hit.element).id == e.id  # rebuilt through the constructor: same id
        with pytest.raises(TypeError):
            hit.element.metadata["x"] = 1  # type: ignore[index]


# --- dimensions, threads ---------------------------------------------------------------------------------------


def test_dimension_mismatch_on_reopen(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path / "idx", 8)
    index.add(_records(3, 8))
    index.close()
    with pytest.raises(StoreError, match=r"8-dimensional.*16 dimensions.*new collection") as info:
        FaissIndex(tmp_path / "idx", 16)
    assert str(tmp_path / "idx") in str(info.value)
    assert FaissIndex(tmp_path / "idx", 8).count() == 3


def test_writer_thread_and_reader_share_an_index(tmp_path: Path) -> None:
    index = FaissIndex(tmp_path / "idx", 8, hnsw_threshold=300)
    records = _records(600, 8)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            for batch in _batched(records[50:], 50):
                index.add(list(batch))
        except BaseException as e:  # surfaced by the assert below
            errors.append(e)

    index.add(records[:50])
    writer = threading.Thread(target=write)
    writer.start()
    while writer.is_alive():
        hits = index.search([1.0] * 8, k=5)
        assert len(hits) == 5 and all(a.score >= b.score for a, b in itertools.pairwise(hits))
        index.keyword_search("record", k=3)
    writer.join()
    assert not errors
    index.persist()
    assert index.count() == 600
    for r in records[::50]:
        assert index.search(list(r.vector), k=1)[0].id == r.id
