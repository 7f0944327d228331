"""MmragVectorStore writes survive kill -9 at each write point: searches never see an uncommitted Document, the
committed one stays visible, and writing again completes the change without leftovers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmrag import MmragVectorStore, Settings
from mmrag.providers.local.local_text import HashingEmbeddings

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

CHILD = """
import sys
from mmrag import MmragVectorStore, Settings
from mmrag.providers.local.local_text import HashingEmbeddings
store = MmragVectorStore("crash", HashingEmbeddings(64), settings=Settings(home=sys.argv[1]))
store.add_texts([sys.argv[3]], ids=[sys.argv[2]])
"""


def _killed_while_adding(home: Path, doc_id: str, text: str, point: str) -> None:
    env = {**os.environ, "MMRAG_CRASH_AT": point}
    done = subprocess.run([sys.executable, "-c", CHILD, str(home), doc_id, text], env=env, capture_output=True,
                          timeout=300)
    assert done.returncode == -9, done.stderr.decode()[-2000:]


def _store(home: Path) -> MmragVectorStore:
    return MmragVectorStore("crash", HashingEmbeddings(64), settings=Settings(home=home))


def test_killed_after_the_index_write_the_new_document_stays_hidden_until_written_again(tmp_path: Path) -> None:
    home = tmp_path / "home"
    store = _store(home)
    store.add_texts(["alpha stays committed"], ids=["a"])
    store.close()
    _killed_while_adding(home, "b", "beta was being written", "index")
    store = _store(home)
    collection = store.collection
    assert collection is not None
    assert collection.text.count() == 2 and collection.manifest.uncommitted_count() == 1  # written, not committed
    assert [d.id for d in store.similarity_search("beta was being written", k=5)] == ["a"]
    assert store.get_by_ids(["b"]) == []
    store.add_texts(["beta was being written"], ids=["b"])
    assert store.similarity_search("beta was being written", k=1)[0].id == "b"
    assert collection.text.count() == 2 and collection.manifest.uncommitted_count() == 0
    store.close()


@pytest.mark.parametrize("point", ["index", "delete"])
def test_killed_while_changing_a_document_no_search_sees_the_uncommitted_text(tmp_path: Path, point: str) -> None:
    home = tmp_path / "home"
    store = _store(home)
    store.add_texts(["the old text of a"], ids=["a"])
    store.close()
    _killed_while_adding(home, "a", "the new text of a", point)
    store = _store(home)
    # Killed after the index write the old version is still the committed one; killed after the stale record's
    # deletion (the order ingest uses: a stale record must never outlive its commit) the Document is absent.
    old = ["the old text of a"] if point == "index" else []
    assert [d.page_content for d in store.get_by_ids(["a"])] == old
    assert [d.page_content for d in store.similarity_search("the new text of a", k=5)] == old
    store.add_texts(["the new text of a"], ids=["a"])
    assert [d.page_content for d in store.similarity_search("text of a", k=5)] == ["the new text of a"]
    collection = store.collection
    assert collection is not None and collection.text.count() == 1  # no record of the old text is left
    assert collection.manifest.uncommitted_count() == 0
    store.close()
