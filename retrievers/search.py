"""Search without an answer: text → elements or images, and image → similar images.

- :func:`search_text`: a text query over a collection, fused (RRF) from the dense text list, BM25 and — when
  the image model can embed text (Titan Multimodal, CLIP) — the image space. With ``images_only`` the lists
  are restricted to image and page elements: text→image search. Offline with the local image descriptor,
  text finds images through their captions, OCR text and surrounding text (the dense and BM25 lists).
- :func:`search_image`: an image's vector searched in the image space: image→image search (every profile).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmrag.answers import Hit
from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion
from mmrag.retrievers.multimodal import MultimodalRetriever

if TYPE_CHECKING:
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = ["search_image", "search_text"]

VISUAL_KINDS = ["image", "page"]


def search_text(query: str, providers: Providers, collection: Collection, *, k: int = 10,
                images_only: bool = False, filter: dict[str, Any] | None = None) -> list[Hit]:
    """The k best elements for a text query (``images_only``: images and page renders only), fused by RRF."""
    if not query.strip():
        raise ValueError("the query is empty")
    active = dict(filter or {})
    if images_only:
        active["kind"] = VISUAL_KINDS
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings,
                                    image_embedder=providers.image_embedder, k=k, filter=active or None)
    return reciprocal_rank_fusion(retriever.rank(query), RRF_K, limit=k)


def search_image(image: bytes, providers: Providers, collection: Collection, *, k: int = 10,
                 filter: dict[str, Any] | None = None, name: str = "the query image") -> list[Hit]:
    """The k images most similar to ``image`` in the collection's image space (score: cosine similarity).

    Raises:
        ParseError: ``image`` is not an image that can be decoded (``name`` says which file in the message).
    """
    from mmrag.parsers.images import probe_image

    probe_image(image, name)
    [vector] = providers.image_embedder.embed_images([image])
    hits = collection.image.search(vector, k=k, filter=filter)
    return [Hit(h.element, h.score, ("image",)) for h in hits]
