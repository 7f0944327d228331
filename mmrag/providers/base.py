"""Provider protocols: the small interfaces chains depend on. Concrete classes live beside this module.

Text embeddings use LangChain's ``Embeddings`` (``embed_documents``/``embed_query``) and chat models LangChain's
``BaseChatModel``; mmrag adds only what LangChain has no interface for.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from mmrag.elements import Element

__all__ = [
    "CAPTION_KEY",
    "SUMMARY_KEY",
    "Captioner",
    "ImageEmbedder",
    "KindAwareImageEmbedder",
    "RoleInfo",
    "embed_images_of_kinds",
    "embedding_text",
]

CAPTION_KEY = "caption"
"""Metadata key a captioner sets on image and page elements (the element's ``text`` stays its context)."""
SUMMARY_KEY = "summary"
"""Metadata key a captioner sets on table elements."""


@runtime_checkable
class Captioner(Protocol):
    """Describes images and summarises tables.

    ``caption`` returns the elements in the same order. Image and page elements get
    ``metadata["caption"]``, table elements ``metadata["summary"]``, plus ``metadata["caption_model"]`` naming
    what wrote it; other elements come back unchanged. ``text`` is never changed, so element ids stay stable.
    An element that could not be described comes back unchanged (the failure is logged), never dropped.
    """

    def caption(self, elements: Sequence[Element]) -> list[Element]: ...


@runtime_checkable
class ImageEmbedder(Protocol):
    """Embeds images (optionally with their caption) and text queries into one image space.

    Attributes:
        model_id: what produced the vectors (part of every cache key and index name).
        dimensions: length of every vector.
        supports_text_queries: False when ``embed_texts`` cannot place text in this space (a pure image
            descriptor); text→image search then goes through captions/OCR text in the text space.
    """

    model_id: str
    dimensions: int
    supports_text_queries: bool

    def embed_images(self, images: Sequence[bytes], captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """One vector per image; ``captions[i]`` (if given) is embedded jointly with ``images[i]``."""
        ...

    def embed_texts(self, texts: Sequence[str]) -> list[list[float]]:
        """Text queries into the image space (text→image search); raises ``ConfigError`` if unsupported."""
        ...


@runtime_checkable
class KindAwareImageEmbedder(ImageEmbedder, Protocol):
    """An image embedder that embeds page renders differently from other images (an optional capability).

    Nova Multimodal Embeddings, for one, reads a rendered or scanned page with ``detailLevel: DOCUMENT_IMAGE``
    and a photo or figure with ``STANDARD_IMAGE``. Ingest calls :meth:`embed_images_by_kind` when an embedder has
    it (see :func:`embed_images_of_kinds`), else :meth:`ImageEmbedder.embed_images`.
    """

    def embed_images_by_kind(self, images: Sequence[bytes], kinds: Sequence[str],
                             captions: Sequence[str | None] | None = None) -> list[list[float]]:
        """One vector per image; ``kinds[i]`` is the element kind of ``images[i]`` (``image`` or ``page``)."""
        ...


def embed_images_of_kinds(embedder: ImageEmbedder, images: Sequence[bytes], kinds: Sequence[str],
                          captions: Sequence[str | None] | None = None) -> list[list[float]]:
    """Index vectors of images of the given element kinds: through ``embed_images_by_kind`` where the embedder
    has it (a wrapper such as the cache forwards it when its inner model has it), else ``embed_images``."""
    if len(kinds) != len(images):
        raise ValueError(f"got {len(images)} images but {len(kinds)} kinds")
    by_kind = getattr(embedder, "embed_images_by_kind", None)
    if callable(by_kind):
        return list(by_kind(images, kinds, captions))
    return embedder.embed_images(images, captions)


@dataclass(frozen=True, slots=True)
class RoleInfo:
    """Which provider serves a role, and why: what ``mmrag models`` prints."""

    role: str
    provider: str
    model: str
    why: str
    available: bool = True


def embedding_text(element: Element) -> str:
    """The text an element is embedded with in the text space: its caption or summary, then its own text."""
    extra = element.metadata.get(CAPTION_KEY) or element.metadata.get(SUMMARY_KEY) or ""
    return f"{extra}\n\n{element.text}".strip() if extra else element.text
