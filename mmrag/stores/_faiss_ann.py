"""The FAISS side of :class:`~mmrag.stores.faiss.FaissIndex`: an in-memory accelerator over SQLite row ids.

FAISS positions map to SQLite row ids through one sorted array (new rows always get larger ids, so appending
keeps it sorted). A flat index (exact inner product) removes deleted rows; an HNSW graph cannot, so deleted
rows stay in it as tombstones, masked out of every search, until they pass :data:`MAX_DEAD_SHARE` and the
graph is rebuilt. The index is cached in one file (see :mod:`mmrag.stores._faiss_cache`), which a reader maps
into memory: its vectors and graph are used where they lie in the file, and copied only before a change.
"""

from __future__ import annotations

import logging
import math
import struct
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "HNSW_EF_SEARCH", "HNSW_EF_SEARCH_MAX", "HNSW_M", "MAX_DEAD_SHARE", "Ann", "QueryRow", "as_query", "ef_search",
    "normalise",
]

logger = logging.getLogger(__name__)

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64
HNSW_EF_SEARCH_MAX = 256
HNSW_ROWS_PER_EF = 4000


def ef_search(n: int) -> int:
    """The HNSW search breadth for a graph of ``n`` vectors: :data:`HNSW_EF_SEARCH` up to 256k vectors, then
    growing with the graph to :data:`HNSW_EF_SEARCH_MAX` at 1M. Measured on bench/scale.py's clustered vectors
    (M=32, efConstruction=40): recall@10 against exact search 0.99 at 100k with 64; at 1M 0.75 with 64, 0.85 with
    128, 0.91 with 256 (about 3 ms a query more), 0.93 with 512."""
    return max(HNSW_EF_SEARCH, min(HNSW_EF_SEARCH_MAX, n // HNSW_ROWS_PER_EF))
MAX_DEAD_SHARE = 0.2

Kind = Literal["flat", "hnsw"]
Vectors = npt.NDArray[np.float32]
RowIds = npt.NDArray[np.int64]


class Ann:
    """A FAISS index whose position ``i`` holds the vector of SQLite row ``rowids[i]``.

    Attributes:
        kind: ``flat`` (IndexFlatIP, exact) or ``hnsw`` (IndexHNSWFlat, inner product).
        version: the database version this index reflects.
        alive_known: whether ``alive`` is known to match the database at ``version`` (False for a cache file that
            held tombstones: they are not saved, so the row ids must be compared with the database's).
        mapping: the memory map of the cache file when ``index`` reads its vectors and graph from there (FAISS
            cannot grow or shrink such an index: :meth:`add` and :meth:`remove` copy it into memory first).
    """

    def __init__(self, kind: Kind, index: Any, rowids: RowIds, version: int, mapping: Any = None) -> None:
        self.mapping = mapping
        self.alive_known = True
        self.ef = ef_search(len(rowids)) if kind == "hnsw" else 0  # the graph's efSearch (kept by add)
        if kind == "hnsw":
            index.hnsw.efSearch = self.ef
        self.kind = kind
        self.index = index
        self.rowids = rowids
        self.alive = np.ones(len(rowids), dtype=bool)
        self.n_dead = 0
        self.version = version
        self._alive_sel: tuple[Any, Any] | None = None  # (IDSelectorBitmap, the bits it points to)
        self._rows: memoryview | None = None  # rowids as Python ints on indexing, for top(); None when stale

    @classmethod
    def build(cls, kind: Kind, dims: int, rowids: RowIds, vectors: Vectors, version: int) -> Ann:
        faiss = _faiss()

        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(dims, HNSW_M, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        else:
            index = faiss.IndexFlatIP(dims)
        if len(rowids):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(kind, index, rowids, version)

    @property
    def n_alive(self) -> int:
        return len(self.rowids) - self.n_dead

    def vectors(self) -> Vectors:
        """All stored vectors (alive or not) as an (n, dims) view on FAISS's memory: valid until the next change."""
        faiss = _faiss()

        flat = self.index if self.kind == "flat" else faiss.downcast_index(self.index.storage)
        n, d = self.index.ntotal, self.index.d
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        view: Vectors = faiss.rev_swig_ptr(flat.get_xb(), n * d).reshape(n, d)
        return view

    def add(self, rowids: RowIds, vectors: Vectors) -> None:
        """Append rows whose ids are all larger than any held (the database never reuses an id)."""
        if not len(rowids):
            return
        self._own()
        self.index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        self.rowids = np.concatenate([self.rowids, rowids])
        self.alive = np.concatenate([self.alive, np.ones(len(rowids), dtype=bool)])
        self._alive_sel = None
        self._rows = None

    def remove(self, rowids: RowIds) -> None:
        """Drop rows: removed from a flat index, tombstoned in an HNSW graph."""
        if not len(rowids):
            return
        positions = np.searchsorted(self.rowids, rowids)
        if self.kind == "flat":
            self._own()
            self.index.remove_ids(positions.astype(np.int64))
            self.rowids = np.delete(self.rowids, positions)
            self.alive = np.ones(len(self.rowids), dtype=bool)
        else:
            newly = self.alive[positions]
            self.alive[positions] = False
            self.n_dead += int(newly.sum())
        self._alive_sel = None
        self._rows = None

    def _own(self) -> None:
        """Copy a memory-mapped index into memory, where FAISS can change it (it aborts the process, not raises,
        when asked to resize a mapped vector)."""
        if self.mapping is None:
            return
        faiss = _faiss()

        ef = self.index.hnsw.efSearch if self.kind == "hnsw" else None
        self.index = faiss.deserialize_index(faiss.serialize_index(self.index))
        if ef is not None:
            self.index.hnsw.efSearch = ef
        self.mapping = None  # the old index, and with it the last use of the map, is gone

    def positions(self, rowids: RowIds) -> npt.NDArray[np.int64]:
        """Positions of those of ``rowids`` (sorted) that are held and alive."""
        if not len(self.rowids) or not len(rowids):
            return np.zeros(0, dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.rowids, rowids), len(self.rowids) - 1)
        hit = (self.rowids[pos] == rowids) & self.alive[pos]
        out: npt.NDArray[np.int64] = pos[hit].astype(np.int64)
        return out

    def top(self, query: QueryRow, vector: Sequence[float], k: int) -> tuple[list[float], list[int], float] | None:
        """(inner products, row ids, 1/the query's length) of the best ``k`` alive rows for ``vector``, best first;
        None when the general :meth:`search` is needed (tombstones to mask, ``k`` above an HNSW graph's efSearch,
        or a vector :meth:`QueryRow.load` does not take).

        The per-query path, where every call counts once FAISS has flushed the CPU caches: FAISS's C++ search
        writes straight into ``query``'s buffers (the Python wrapper of ``index.search`` checks and allocates on
        every call), and the results come back as Python lists through memoryviews, with no numpy call.
        """
        if self.n_dead or (k > self.ef and self.kind == "hnsw"):
            return None
        n = len(self.rowids)
        if k > n:
            if not n:
                return [], [], 1.0
            k = n
        scale = query.load(vector)
        if scale is None:
            return None
        scores, labels = query.results.get(k) or query.add_results(k)
        threads = _omp_get()
        _omp_set(1)  # see _single_threaded
        try:
            self.index.search_c(1, query.pointer, k, scores.pointer, labels.pointer)
        finally:
            _omp_set(threads)
        positions = labels.view.tolist()
        rows = self._rows
        if rows is None:
            self._rows = rows = self.rowids.data
        values: list[float] = scores.view.tolist()  # type: ignore[assignment]  # typeshed: list[int] for any format
        if positions[-1] < 0:  # FAISS pads a short result with -1 at the end
            while positions and positions[-1] < 0:
                positions.pop()
            del values[len(positions) :]
        return values, list(map(rows.__getitem__, positions)), scale

    def search(self, query: Vectors, k: int, allowed: npt.NDArray[np.bool_] | None = None) -> tuple[Vectors, RowIds]:
        """(scores, row ids) of the best ``k`` rows, best first; ``allowed`` masks positions (None: all alive)."""
        if allowed is None and not self.n_dead and (self.kind == "flat" or k <= self.ef):
            with _single_threaded():
                scores, labels = self.index.search(query, k)  # the common case, kept short: it runs per query
            found = labels[0]
            if found[-1] >= 0:  # FAISS pads a short result with -1 at the end
                return scores[0], self.rowids[found]
            keep = found >= 0
            return scores[0][keep], self.rowids[found[keep]]
        faiss = _faiss()

        sel: Any = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")
            sel = (faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bits)), bits)
        elif self.n_dead:
            if self._alive_sel is None:
                bits = np.packbits(self.alive, bitorder="little")
                self._alive_sel = (faiss.IDSelectorBitmap(len(self.alive), faiss.swig_ptr(bits)), bits)
            sel = self._alive_sel
        params: Any = None
        if self.kind == "hnsw" and (sel is not None or k > self.ef):
            params = faiss.SearchParametersHNSW(efSearch=max(self.ef, k))
            if sel is not None:
                params.sel = sel[0]
        elif sel is not None:
            params = faiss.SearchParameters(sel=sel[0])
        with _single_threaded():
            scores, labels = self.index.search(query, k, params=params)
        keep = labels[0] >= 0
        return scores[0][keep], self.rowids[labels[0][keep]]

    def exact(self, query: Vectors, positions: npt.NDArray[np.int64], k: int) -> tuple[Vectors, RowIds]:
        """Exact top ``k`` among ``positions`` with numpy: for allowed sets too small for a graph search."""
        if not len(positions):
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        scores = self.vectors()[positions] @ query[0]
        top = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
        top = top[np.argsort(-scores[top], kind="stable")]
        return scores[top], self.rowids[positions[top]]


def _omp_get() -> int:
    return int(_faiss().omp_get_max_threads())


def _omp_set(threads: int) -> None:
    _faiss().omp_set_num_threads(threads)


@contextmanager
def _single_threaded() -> Iterator[None]:
    """FAISS's OpenMP threads off for one query, in the calling thread only (OpenMP keeps the setting per thread,
    so a graph build elsewhere keeps both cores). Splitting one query's scan of a flat index across threads gains
    little on 2 cores, and on a loaded machine the threads wait for each other: a 10k flat search measured 40 ms
    with them and 1 ms without."""
    threads = _omp_get()
    _omp_set(1)
    try:
        yield
    finally:
        _omp_set(threads)


def _faiss() -> Any:
    """The faiss module, imported on first use (and typed loosely: its SWIG stubs lag behind the library)."""
    import faiss

    return faiss


class _Buffer:
    """A float32 or int64 array that FAISS writes into: its SWIG pointer and a memoryview to read it back."""

    __slots__ = ("array", "pointer", "view")

    def __init__(self, size: int, dtype: type[np.float32] | type[np.int64]) -> None:
        self.array = np.zeros((1, size), dtype=dtype)
        self.pointer = _faiss().swig_ptr(self.array)
        self.view = self.array.data.cast("B").cast("f" if dtype is np.float32 else "q")


class QueryRow:
    """A reusable query row and result buffers for :meth:`Ann.top`: no allocation and no numpy call per query.

    After a flat search of 10k vectors has flushed the CPU caches, each numpy call on a query costs several
    microseconds (``array.array`` + ``np.frombuffer`` + a dot product + an in-place scale took about 40 us, a
    twelfth of the search), while ``struct`` writes 384 floats in about 2 us. The row holds the query as given,
    not normalised: :meth:`load` returns 1/norm and the caller scales the (few) scores instead of the (many)
    components; the ranking of an inner-product search does not depend on the query's length.

    One search at a time: :class:`~mmrag.stores.faiss.FaissIndex` uses it under its lock.
    """

    def __init__(self, dims: int) -> None:
        self.row = _Buffer(dims, np.float32)
        self.pointer = self.row.pointer
        self.results: dict[int, tuple[_Buffer, _Buffer]] = {}  # k → (scores, labels) of exactly k results
        self._pack = struct.Struct(f"={dims}f").pack_into
        self._raw = self.row.view.cast("B")

    def load(self, vector: Sequence[float]) -> float | None:
        """Write ``vector`` (a list or tuple of ``dims`` numbers) into the row; returns 1/its length (1.0 for a zero
        vector), or None, with the row left undefined, for anything else (other types, values a float32 cannot
        hold, infinities, NaN): the caller then takes the general path with :func:`as_query`."""
        if type(vector) is not list and type(vector) is not tuple:
            return None
        try:
            self._pack(self._raw, 0, *vector)
            norm = math.hypot(*vector)
        except (struct.error, TypeError, OverflowError):
            return None
        if norm > 0.0 and norm != math.inf:
            return 1.0 / norm
        return 1.0 if norm == 0.0 else None

    def add_results(self, k: int) -> tuple[_Buffer, _Buffer]:
        """New (scores, labels) buffers for ``k`` results (a few sizes kept: callers use one or two ``k``)."""
        if len(self.results) >= 8:
            self.results.clear()
        self.results[k] = buffers = _Buffer(k, np.float32), _Buffer(k, np.int64)
        return buffers


def as_query(vector: Sequence[float]) -> tuple[npt.NDArray[np.float32], float]:
    """``vector`` as a (1, dims) float32 row, not normalised, and 1/its length (1.0 for a zero or non-finite
    length): an inner-product score times that is the cosine similarity. The arithmetic of :class:`QueryRow`
    (the same row, the length of the same values), so every path gives a query the same scores."""
    values = vector.tolist() if isinstance(vector, np.ndarray) else vector
    query = np.array(values, dtype=np.float32).reshape(1, -1)
    try:
        norm = math.hypot(*values)
    except (TypeError, ValueError, OverflowError):
        norm = math.hypot(*query[0].tolist())
    return query, (1.0 / norm if 0.0 < norm < math.inf else 1.0)


def normalise(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Rows scaled to unit length, so inner product is cosine similarity (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.where(norms > 0, norms, 1.0), dtype=np.float32)
