from __future__ import annotations

import dataclasses
import json

import pytest

from mmrag import Element
from mmrag.elements import Blob, content_hash


def test_id_is_a_stable_content_hash() -> None:
    a = Element(kind="text", source="doc.pdf", text="hello", page=2)
    b = Element(kind="text", source="doc.pdf", text="hello", page=2)
    assert a.id == b.id and len(a.id) == 32
    assert a == b and hash(a) == hash(b)
    assert Element(kind="text", source="doc.pdf", text="hello", page=3).id != a.id
    assert Element(kind="text", source="other.pdf", text="hello", page=2).id != a.id
    assert Element(kind="table", source="doc.pdf", text="hello", page=2).id != a.id


def test_image_id_depends_on_bytes_not_caption() -> None:
    a = Element(kind="image", source="d.html", data=b"\x89PNG...", text="a cat")
    b = Element(kind="image", source="d.html", data=b"\x89PNG...", text="another caption")
    assert a.content_hash == b.content_hash == content_hash(b"\x89PNG...")
    assert a.id == b.id


def test_elements_are_immutable_and_replace_recomputes_id() -> None:
    el = Element(kind="text", source="s", text="one", metadata={"k": [1]})
    with pytest.raises(dataclasses.FrozenInstanceError):
        el.text = "two"  # type: ignore[misc]
    with pytest.raises(TypeError):
        el.metadata["k"] = 2  # type: ignore[index]
    changed = dataclasses.replace(el, text="two")
    assert changed.text == "two" and changed.id != el.id and el.text == "one"


def test_metadata_is_copied_not_shared() -> None:
    meta = {"a": 1}
    el = Element(kind="text", source="s", text="x", metadata=meta)
    meta["a"] = 2
    assert el.metadata["a"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"kind": "video"}, "kind must be one of"), ({"kind": "text", "page": 0}, "1-based")],
)
def test_invalid_elements_are_rejected(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Element(source="s", **kwargs)  # type: ignore[arg-type]


def test_json_has_no_bytes_and_previews_text() -> None:
    el = Element(kind="image", source="a.png", text="x" * 500, data=b"\x00" * 10, mime_type="image/png",
                 bbox=(1.234, 2, 3, 4), metadata={"width": 10, "height": 20, "csv": "a,b"})
    row = json.loads(el.to_json(preview=100))
    assert row["id"] == el.id and row["kind"] == "image" and row["page"] is None
    assert row["width"] == 10 and row["height"] == 20 and row["bytes"] == 10
    assert row["bbox"] == [1.23, 2.0, 3.0, 4.0]
    assert len(row["text"]) == 101 and row["text"].endswith("…")
    assert "csv" not in row["metadata"] and "data" not in row


def test_to_document_carries_metadata() -> None:
    el = Element(kind="table", source="t.pdf", text="| a |", page=3, metadata={"rows": 2})
    doc = el.to_document()
    assert doc.page_content == "| a |" and doc.id == el.id
    assert doc.metadata["page"] == 3 and doc.metadata["kind"] == "table" and doc.metadata["rows"] == 2


def test_blob_repr_hides_bytes() -> None:
    assert "data" not in repr(Blob(data=b"secret" * 100, source="x", mime_type="text/html"))


def test_restore_gives_the_constructed_element_without_hashing() -> None:
    E = Element
    metadata = {"width": 640, "tags": ["a", "b"]}
    for made in (E(kind="text", source="a.pdf", text="hello", page=3, bbox=(1.0, 2.5, 3.0, 4.0), mime_type="text/plain",
                   metadata=metadata),
                 E(kind="image", source="https://example.com/x", text="", object_key="objects/ab.png")):
        back = E.restore(id=made.id, kind=made.kind, source=made.source, text=made.text, page=made.page,
                         bbox=list(made.bbox) if made.bbox else None, mime_type=made.mime_type,
                         object_key=made.object_key, metadata=dict(made.metadata))
        assert back == made and repr(back) == repr(made) and hash(back) == hash(made)
        assert back.data is None and isinstance(back.bbox, tuple | type(None))
    given = {"n": 1}
    restored = E.restore(id="i" * 32, kind="table", source="s.html", text=None, metadata=given)  # type: ignore[arg-type]
    given["n"] = 2  # a copy is held, behind a read-only view
    assert restored.metadata == {"n": 1} and restored.text == "" and restored.id == "i" * 32
    with pytest.raises(TypeError):
        restored.metadata["n"] = 3  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        restored.text = "changed"  # type: ignore[misc]
