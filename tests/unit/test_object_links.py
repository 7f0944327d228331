"""``LocalObjectStore.uri`` is built as a string (it runs per hit): it must equal ``Path.as_uri`` exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.errors import StoreError
from mmrag.stores.objects import LocalObjectStore


@pytest.mark.parametrize("key", ["sha256/ab/" + "c" * 64 + ".png", "x y/ä#?%.png", "a.png", "deep/er/still/b.jpg"])
def test_the_link_is_the_paths_file_uri(tmp_path: Path, key: str) -> None:
    store = LocalObjectStore(tmp_path / "a root with spaces" / "ü")
    assert store.uri(key) == store.root.joinpath(*key.split("/")).as_uri()


@pytest.mark.parametrize("key", ["../escape.png", "/abs.png", "a\\b.png", "c:x.png", "a//b.png"])
def test_a_bad_key_gets_no_link(tmp_path: Path, key: str) -> None:
    with pytest.raises(StoreError, match="invalid object key"):
        LocalObjectStore(tmp_path).uri(key)
