"""The conformance suite every :class:`~mmrag.stores.base.VectorIndex` passes.

Subclass :class:`VectorIndexConformance` in a test module and provide the ``make_index`` fixture: a callable
``make_index(dimensions) -> VectorIndex`` giving a fresh, empty index each call. Provide ``reopen`` too when
the backend persists (a callable ``reopen(index) -> VectorIndex`` opening the same data anew)::

    class TestMyIndex(VectorIndexConformance):
        @pytest.fixture
        def make_index(self, tmp_path):
            return lambda dims: MyIndex(tmp_path / "idx", dims)

A backend that cannot run some part against its test server sets a class attribute to False
(``supports_vector_search``, ``supports_keyword_search``) and must then test that part another way.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pytest

from mmrag.elements import Element, content_hash
from mmrag.errors import StoreError
from mmrag.stores.base import IndexRecord, VectorIndex

__all__ = ["VectorIndexConformance", "make_record"]

DIMS = 8


def _unit(i: int, dims: int = DIMS) -> list[float]:
    v = [0.0] * dims
    v[i % dims] = 1.0
    return v


def make_record(
    text: str,
    vector: list[float],
    *,
    source: str = "doc.pdf",
    kind: str = "text",
    page: int | None = 1,
    indexed_text: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> IndexRecord:
    """A record for one element; image/page kinds get an object key, as after ingest."""
    element = Element(
        kind=kind,  # type: ignore[arg-type]
        source=source,
        text=text,
        page=page,
        bbox=(10.0, 20.5, 300.25, 400.0),
        mime_type="image/png" if kind in ("image", "page") else "text/plain",
        object_key=f"objects/{content_hash(text)[:16]}.png" if kind in ("image", "page") else None,
        metadata={"width": 640, "caption": "a chart", **(metadata or {})},
    )
    return IndexRecord(element=element, vector=vector, text=text if indexed_text is None else indexed_text)


class VectorIndexConformance:
    """Behaviour every vector index must show. Subclasses provide ``make_index`` (and optionally ``reopen``)."""

    supports_vector_search = True
    supports_keyword_search = True

    @pytest.fixture
    def make_index(self) -> Callable[[int], VectorIndex]:
        raise NotImplementedError("provide a make_index fixture")

    @pytest.fixture
    def reopen(self) -> Callable[[VectorIndex], VectorIndex] | None:
        return None

    @pytest.fixture
    def index(self, make_index: Callable[[int], VectorIndex]) -> VectorIndex:
        return make_index(DIMS)

    @pytest.fixture
    def filled(self, index: VectorIndex) -> VectorIndex:
        """Six records over two sources, three kinds and a page-less HTML chunk."""
        index.add([
            make_record("revenue grew in europe", _unit(0), source="a.pdf", page=1),
            make_record("revenue table by region", _unit(1), source="a.pdf", kind="table", page=2),
            make_record("bar chart of revenue", _unit(2), source="a.pdf", kind="image", page=2),
            make_record("cats sleep most of the day", _unit(3), source="b.html", page=None),
            make_record("dogs bark at the mail carrier", _unit(4), source="b.html", page=None),
            make_record("a photo of a cat on a mat", _unit(5), source="b.html", kind="image", page=None),
        ])
        index.persist()
        return index

    # --- writes and counts -------------------------------------------------------------------------------

    def test_empty_index(self, index: VectorIndex) -> None:
        assert index.count() == 0
        assert index.get(["nope"]) == []
        if self.supports_vector_search:
            assert index.search(_unit(0), k=5) == []
        if self.supports_keyword_search:
            assert index.keyword_search("anything", k=5) == []

    def test_add_counts_and_upserts_by_id(self, filled: VectorIndex) -> None:
        assert filled.count() == 6
        again = make_record("revenue grew in europe", _unit(7), source="a.pdf", page=1)
        filled.add([again])  # same element: replaces, never duplicates
        filled.persist()
        assert filled.count() == 6
        if self.supports_vector_search:
            top = filled.search(_unit(7), k=1)
            assert top[0].id == again.id and math.isclose(top[0].score, 1.0, abs_tol=1e-4)

    def test_get_round_trips_the_element(self, filled: VectorIndex) -> None:
        original = make_record("bar chart of revenue", _unit(2), source="a.pdf", kind="image", page=2).element
        [got] = filled.get([original.id, "missing-id"])
        assert got == original and got.id == original.id
        assert got.object_key == original.object_key and got.bbox == original.bbox
        assert dict(got.metadata) == dict(original.metadata)

    def test_wrong_dimensions_are_refused(self, index: VectorIndex) -> None:
        with pytest.raises(StoreError, match=str(DIMS)):
            index.add([make_record("x", [1.0, 0.0, 0.0])])
        if self.supports_vector_search:
            with pytest.raises(StoreError, match=str(DIMS)):
                index.search([1.0, 0.0], k=1)

    def test_many_records_in_one_add(self, index: VectorIndex) -> None:
        rng = random.Random(7)
        records = [make_record(f"chunk number {i}", [rng.gauss(0, 1) for _ in range(DIMS)], page=i % 7 + 1)
                   for i in range(1200)]
        index.add(records)
        index.persist()
        assert index.count() == 1200
        if self.supports_vector_search:
            assert filled_top(index, records[321]) == records[321].id

    # --- deletes -----------------------------------------------------------------------------------------

    def test_delete_by_ids(self, filled: VectorIndex) -> None:
        gone = make_record("cats sleep most of the day", _unit(3), source="b.html", page=None)
        assert filled.delete([gone.id, "not-there"]) == 1
        filled.persist()
        assert filled.count() == 5 and filled.get([gone.id]) == []
        if self.supports_vector_search:
            assert gone.id not in [h.id for h in filled.search(_unit(3), k=6)]
        if self.supports_keyword_search:
            assert gone.id not in [h.id for h in filled.keyword_search("cats sleep", k=6)]

    def test_delete_source_removes_only_that_source(self, filled: VectorIndex) -> None:
        assert filled.delete_source("a.pdf") == 3
        filled.persist()
        assert filled.count() == 3
        assert filled.delete_source("a.pdf") == 0
        if self.supports_vector_search:
            assert {h.element.source for h in filled.search(_unit(0), k=6)} == {"b.html"}

    # --- vector search -----------------------------------------------------------------------------------

    def test_search_orders_by_cosine_similarity(self, filled: VectorIndex) -> None:
        if not self.supports_vector_search:
            pytest.skip("vector search is tested separately for this backend")
        query = [0.0] * DIMS
        query[3], query[5] = 3.0, 1.0  # not normalised: the index must use cosine, not dot product
        hits = filled.search(query, k=3)
        assert [h.element.text for h in hits[:2]] == ["cats sleep most of the day", "a photo of a cat on a mat"]
        assert math.isclose(hits[0].score, 3 / math.sqrt(10), abs_tol=1e-4)
        assert all(a.score >= b.score for a, b in zip(hits, hits[1:], strict=False))
        assert len(filled.search(query, k=2)) == 2

    def test_search_filters(self, filled: VectorIndex) -> None:
        if not self.supports_vector_search:
            pytest.skip("vector search is tested separately for this backend")
        hits = filled.search(_unit(0), k=6, filter={"kind": "image"})
        assert {h.element.text for h in hits} == {"bar chart of revenue", "a photo of a cat on a mat"}
        hits = filled.search(_unit(0), k=6, filter={"kind": ["table", "image"], "source": "a.pdf"})
        assert {h.element.kind for h in hits} == {"table", "image"} and len(hits) == 2
        assert {h.element.source for h in filled.search(_unit(0), k=6, filter={"page": None})} == {"b.html"}
        assert [h.element.text for h in filled.search(_unit(0), k=6, filter={"page": 2, "kind": "table"})] == [
            "revenue table by region"
        ]
        assert filled.search(_unit(0), k=6, filter={"source": "nowhere.pdf"}) == []

    def test_bad_filter_field_is_a_clear_error(self, filled: VectorIndex) -> None:
        with pytest.raises(StoreError, match="cannot filter on 'colour'"):
            if self.supports_vector_search:
                filled.search(_unit(0), k=3, filter={"colour": "red"})
            else:
                filled.keyword_search("revenue", k=3, filter={"colour": "red"})

    # --- keyword search ----------------------------------------------------------------------------------

    def test_keyword_search_ranks_by_bm25(self, filled: VectorIndex) -> None:
        if not self.supports_keyword_search:
            pytest.skip("keyword search is tested separately for this backend")
        hits = filled.keyword_search("revenue", k=6)
        assert {h.element.text for h in hits} == {
            "revenue grew in europe", "revenue table by region", "bar chart of revenue"
        }
        assert all(h.score > 0 for h in hits)
        assert filled.keyword_search("europe revenue", k=1)[0].element.text == "revenue grew in europe"
        assert filled.keyword_search("zebra", k=6) == []

    def test_keyword_search_filters_and_uses_the_indexed_text(self, index: VectorIndex) -> None:
        if not self.supports_keyword_search:
            pytest.skip("keyword search is tested separately for this backend")
        index.add([
            make_record("figure 3", _unit(0), kind="image", indexed_text="figure 3. a pie chart of market share"),
            make_record("market share grew", _unit(1), source="c.pdf"),
        ])
        index.persist()
        assert [h.element.text for h in index.keyword_search("pie", k=5)] == ["figure 3"]
        assert [h.element.source for h in index.keyword_search("market share", k=5, filter={"source": "c.pdf"})] == [
            "c.pdf"
        ]

    def test_keyword_queries_with_syntax_characters_do_not_break(self, filled: VectorIndex) -> None:
        if not self.supports_keyword_search:
            pytest.skip("keyword search is tested separately for this backend")
        for query in ['"revenue', "revenue AND (europe", "revenue: -europe*", "NOT OR", "", "   ", "ünïcödé ✓"]:
            hits = filled.keyword_search(query, k=3)
            assert all(isinstance(h.score, float) for h in hits)
        assert filled.keyword_search('revenue "europe"', k=1)[0].element.text == "revenue grew in europe"

    # --- persistence -------------------------------------------------------------------------------------

    def test_reopen_sees_persisted_state(
        self, filled: VectorIndex, reopen: Callable[[VectorIndex], VectorIndex] | None
    ) -> None:
        if reopen is None:
            pytest.skip("this backend has no separate reopen step")
        filled.delete_source("b.html")
        filled.persist()
        again = reopen(filled)
        assert again.count() == 3
        if self.supports_vector_search:
            assert again.search(_unit(2), k=1)[0].element.text == "bar chart of revenue"
        if self.supports_keyword_search:
            assert [h.element.source for h in again.keyword_search("revenue", k=5)] == ["a.pdf"] * 3


def filled_top(index: VectorIndex, record: IndexRecord) -> str:
    return index.search(list(record.vector), k=1)[0].id
