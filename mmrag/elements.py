"""Core value types: :class:`Blob` (fetched bytes) and :class:`Element` (one parsed piece of a source).

Both are frozen. Change an element with :func:`dataclasses.replace`; its id is recomputed from the new content.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

if TYPE_CHECKING:
    from langchain_core.documents import Document

__all__ = ["TABLE_RULE", "BBox", "Blob", "Element", "ElementKind", "Parser", "content_hash"]

TABLE_RULE = re.compile(r"[ \t]*\|?(?:[ \t]*:?-+:?[ \t]*\|)+[ \t]*")
"""The rule under a Markdown table's header (``|---|:--:|``), matched against a whole line (``fullmatch``): a table
element's text is a Markdown table, and extractive answers quote its rows so."""

ElementKind = Literal["text", "table", "image", "page"]
ELEMENT_KINDS: tuple[str, ...] = get_args(ElementKind)
BBox = tuple[float, float, float, float]
"""(x0, y0, x1, y1) in PDF points, origin top-left, as PyMuPDF reports them."""


def content_hash(*parts: bytes | str) -> str:
    """Hex SHA-256 over length-prefixed parts, so ("ab", "c") and ("a", "bc") differ."""
    h = hashlib.sha256()
    for part in parts:
        raw = part.encode("utf-8") if isinstance(part, str) else part
        h.update(len(raw).to_bytes(8, "big"))
        h.update(raw)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Blob:
    """Raw bytes of one source, ready for a parser.

    Attributes:
        data: the bytes.
        source: the path or URL the bytes came from (what users see in citations).
        mime_type: sniffed from the bytes first, then the name or Content-Type.
        base: where relative links resolve: the final URL after redirects, or the file's folder.
    """

    data: bytes = field(repr=False)
    source: str
    mime_type: str
    base: str | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Element:
    """One piece of a source: a text chunk, a table, an image or a rendered page.

    Attributes:
        kind: ``text``, ``table``, ``image`` or ``page``.
        source: path or URL of the document it came from.
        text: chunk text; table markdown; image context (alt text, caption, nearby text).
        page: 1-based page number in a PDF, else None.
        bbox: region on the page in PDF points, if known.
        mime_type: type of ``data`` (``image/png``, ``text/csv``) or of the text.
        data: the raw object (image bytes, page render) until an object store takes it; not in ``repr``.
        object_key: key of the raw object in the object store once stored.
        metadata: free-form, JSON-serialisable facts (``width``, ``height``, ``csv``, ``needs_ocr``...).
        id: content hash of kind, source, page and content; for an image with bytes, of its kind and bytes alone
            (one picture is one element wherever it appears); computed, never passed.
    """

    kind: ElementKind
    source: str
    text: str = ""
    page: int | None = None
    bbox: BBox | None = None
    mime_type: str | None = None
    data: bytes | None = field(default=None, repr=False)
    object_key: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    id: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.kind not in ELEMENT_KINDS:
            raise ValueError(f"kind must be one of {ELEMENT_KINDS}, not {self.kind!r}")
        if self.page is not None and self.page < 1:
            raise ValueError(f"page numbers are 1-based, got {self.page}")
        # Freeze metadata: a copy behind a read-only view, so no caller can change an element in place.
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        if self.bbox is not None:
            object.__setattr__(self, "bbox", tuple(round(float(v), 2) for v in self.bbox))
        object.__setattr__(self, "id", self._compute_id())

    @property
    def content_hash(self) -> str:
        """Hash of the content alone (bytes if any, else text): the cache key for captions and embeddings."""
        if self.data is not None:
            return content_hash(self.data)
        stored = self.metadata.get("content_hash")  # set by detach(): the bytes now live in an object store
        return stored if isinstance(stored, str) and stored else content_hash(self.text)

    @classmethod
    def restore(
        cls,
        *,
        id: str,
        kind: ElementKind,
        source: str,
        text: str = "",
        page: int | None = None,
        bbox: Sequence[float] | None = None,
        mime_type: str | None = None,
        object_key: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Element:
        """An element read back from a store that recorded its ``id``, without recomputing content hashes.

        For rows mmrag itself wrote from constructed elements: the constructor's two SHA-256 passes cost more
        than a flat FAISS search of 10k vectors per hit. Fields are normalised as the constructor does them.
        """
        element = object.__new__(cls)
        # The slots' own setters: what the frozen dataclass's object.__setattr__ reaches, without the lookup.
        put_kind, put_source, put_text, put_page, put_bbox, put_mime_type, put_data, put_key, put_metadata, put_id = (
            _SLOT_SETTERS
        )
        put_kind(element, kind)
        put_source(element, source)
        put_text(element, text or "")
        put_page(element, page)
        put_bbox(element, tuple(bbox) if bbox else None)
        put_mime_type(element, mime_type)
        put_data(element, None)
        put_key(element, object_key)
        put_metadata(element, MappingProxyType(dict(metadata) if metadata else {}))
        put_id(element, id)
        return element

    def detach(self, object_key: str) -> Element:
        """This element with its bytes moved out to an object store under ``object_key``.

        The id stays the same: the content hash of the bytes is kept in ``metadata["content_hash"]``.
        """
        if self.data is None:
            return self if self.object_key == object_key else replace(self, object_key=object_key)
        meta = {**self.metadata, "content_hash": self.content_hash}
        return replace(self, data=None, object_key=object_key, metadata=meta)

    @property
    def shareable(self) -> bool:
        """An image with bytes: its id is its content alone, the same wherever it appears (see :meth:`_compute_id`)."""
        return self.kind == "image" and (self.data is not None or bool(self.metadata.get("content_hash")))

    def _compute_id(self) -> str:
        # The same content at the same place of the same source always gets the same id; re-parsing is stable.
        # A picture is one element wherever it appears (inside a page, as a file in a folder, twice in a PDF): its
        # id is its bytes alone, and the manifest records each place (mmrag.stores.manifest.Place).
        if self.shareable:
            return content_hash(self.kind, self.content_hash)[:32]
        return content_hash(self.kind, self.source, str(self.page or 0), self.content_hash)[:32]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Element):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self))

    def __hash__(self) -> int:
        return hash(self.id)

    def to_dict(self, *, preview: int | None = None) -> dict[str, Any]:
        """A JSON-ready dict without the raw bytes.

        Args:
            preview: cut ``text`` to this many characters (with an ellipsis) when given.
        """
        text = self.text
        if preview is not None and len(text) > preview:
            text = text[:preview].rstrip() + "…"
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "page": self.page,
            "bbox": list(self.bbox) if self.bbox else None,
            "text": text,
            "mime_type": self.mime_type,
            "object_key": self.object_key,
            "bytes": len(self.data) if self.data is not None else None,
        }
        for key in ("width", "height", "needs_ocr"):
            if key in self.metadata:
                out[key] = self.metadata[key]
        out["metadata"] = {k: v for k, v in self.metadata.items() if k not in out and k != "csv"}
        return out

    def to_json(self, *, preview: int | None = None) -> str:
        return json.dumps(self.to_dict(preview=preview), ensure_ascii=False, default=str)

    def to_document(self) -> Document:
        """This element as a LangChain ``Document`` (metadata carries id, kind, source, page, bbox, object_key)."""
        from langchain_core.documents import Document

        meta = {k: v for k, v in self.to_dict().items() if k not in ("text", "metadata", "bytes")}
        meta.update(self.metadata)
        return Document(page_content=self.text, metadata=meta, id=self.id)


_SLOT_SETTERS = tuple(
    Element.__dict__[name].__set__
    for name in ("kind", "source", "text", "page", "bbox", "mime_type", "data", "object_key", "metadata", "id")
)
"""The setters of :class:`Element`'s slots, for :meth:`Element.restore` (a field it does not set fails its tests)."""


class Parser(Protocol):
    """Turns one blob into elements. Implementations raise :class:`mmrag.errors.ParseError` for bad input."""

    def parse(self, blob: Blob) -> Iterator[Element]: ...
