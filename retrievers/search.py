"""Search without an answer: text → elements or images, and image → similar images.

- :func:`search_text`: a text query over a collection, fused (RRF) from the dense text list, BM25 and — when
  the image model can embed text (Titan Multimodal, CLIP) — the image space. With ``images_only`` the lists
  are restricted to image and page elements: text→image search. Offline with the local image descriptor,
  text finds images through their captions, OCR text and surrounding text (the dense and BM25 lists).
- :func:`search_image`: an image's vector searched in the image space: image→image search (every profile).
- :func:`search_images`: the library entry point for both, from a collection or from Settings.

The same image inside an HTML page and as a file in a folder is one element (its id is its bytes; ingest
indexes it once, see :mod:`mmrag.chains._places`): its hit lists the other places, from the manifest, in
``duplicates`` (``also_in`` in ``--json``). Collections ingested before that may still hold two elements with
one object: results are collapsed by object too. Every hit carries ``object_uri``, an openable link (a
``file://`` URI or a presigned S3 URL).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.answers import Hit, object_link
from mmrag.elements import Element
from mmrag.errors import ParseError
from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion
from mmrag.retrievers.multimodal import MultimodalRetriever

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = [
    "VISUAL_KINDS",
    "SearchFilter",
    "collapse_duplicates",
    "search_image",
    "search_images",
    "search_text",
    "with_links",
    "with_places",
]

VISUAL_KINDS = ["image", "page"]
_OVERFETCH = 3  # candidates per wanted hit: duplicates and threshold cuts must not leave the result short


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """What a search may return, beyond the store's exact-match filter.

    Attributes:
        kinds: element kinds to keep (``image``, ``page``, ``table``, ``text``); empty: all.
        source: a glob matched against each ingested source and its file name (``*.pdf``, ``*/sklearn/*``).
        page: keep elements of this 1-based page only.
        threshold: drop hits whose similarity is below this (cosine similarity, for the vector lists).
    """

    kinds: tuple[str, ...] = ()
    source: str | None = None
    page: int | None = None
    threshold: float | None = None

    def store_filter(self, collection: Collection, base: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
        """The exact-match store filter (kinds, page, the sources the glob matches), merged into ``base``.

        Returns:
            The filter, or None when nothing can match (the glob matches no ingested source).
        """
        active: dict[str, Any] = dict(base or {})
        if self.kinds:
            active["kind"] = list(self.kinds)
        if self.page is not None:
            active["page"] = self.page
        if self.source:
            names = matching_sources(self.source, (s.source for s in collection.manifest.sources()))
            if not names:
                return None
            # A picture the glob's sources share with another source is indexed under its primary place (maybe
            # that other source): let those sources through too; _finish keeps only hits placed in ``names``.
            shared = collection.manifest.places_in(names)
            active["source"] = sorted({*names, *(p.source for places in shared.values() for p in places)})
        return active


def matching_sources(pattern: str, sources: Iterable[str]) -> list[str]:
    """The sources that ``pattern`` matches, as a whole or by their file name (``*.png`` matches ``/a/b.png``)."""
    out = []
    for source in sources:
        name = source.rstrip("/").rsplit("/", 1)[-1]
        if fnmatch.fnmatchcase(source, pattern) or fnmatch.fnmatchcase(name, pattern):
            out.append(source)
    return out


def _content_key(element: Element) -> str:
    # Objects are content-addressed, so one key is one picture wherever it was found; text falls back to its hash.
    return element.object_key or f"{element.kind}:{element.content_hash}"


def collapse_duplicates(hits: Sequence[Hit], limit: int | None = None) -> list[Hit]:
    """One hit per content: later hits with the same object (or the same text) join the first one's
    ``duplicates`` instead of taking a rank of their own. Order and scores of the kept hits are unchanged."""
    kept: dict[str, Hit] = {}
    for hit in hits:
        key = _content_key(hit.element)
        first = kept.get(key)
        if first is None:
            kept[key] = hit
            continue
        extra = tuple(e for e in (hit.element, *hit.duplicates) if e.id != first.element.id
                      and all(e.id != d.id for d in first.duplicates))
        lists = first.lists + tuple(name for name in hit.lists if name not in first.lists)
        kept[key] = replace(first, lists=lists, duplicates=first.duplicates + extra)
    out = list(kept.values())
    return out if limit is None else out[:limit]


def _finish(hits: Sequence[Hit], collection: Collection, where: SearchFilter, k: int) -> list[Hit]:
    """Collapse, add every place, keep the hits placed in the source glob (any of their places), cut, link."""
    placed = with_places(collapse_duplicates(hits), collection)
    if where.source:
        names = set(matching_sources(where.source, (s.source for s in collection.manifest.sources())))
        placed = [h for h in placed if h.element.source in names or any(d.source in names for d in h.duplicates)]
    return _linked(placed[:k], collection)


def _linked(hits: Sequence[Hit], collection: Collection) -> list[Hit]:
    return [h if h.object_uri else replace(h, object_uri=object_link(h.element, collection.objects)) for h in hits]


def with_links(hits: Sequence[Hit], collection: Collection) -> list[Hit]:
    """The hits with ``object_uri`` filled in from the collection's object store (presigned on S3), and every
    other place of a shared picture (from the manifest: :func:`with_places`) in ``duplicates``."""
    return _linked(with_places(hits, collection), collection)


def with_places(hits: Sequence[Hit], collection: Collection) -> list[Hit]:
    """The hits with the other places of their element (a picture in a page and as a file) in ``duplicates``.

    An image is one element wherever it appears; the index record shows its primary place, the manifest keeps
    all of them (:class:`~mmrag.stores.manifest.Place`).
    """
    ids = [h.element.id for h in hits if h.element.kind == "image"]
    places = collection.manifest.places(ids) if ids else {}
    if not places:
        return list(hits)
    out = []
    for hit in hits:
        e = hit.element
        known = {(d.source, d.page, d.bbox) for d in hit.duplicates} | {(e.source, e.page, e.bbox)}
        extra = []
        for p in places.get(e.id, ()):
            if (p.source, p.page, p.bbox) in known:
                continue
            known.add((p.source, p.page, p.bbox))
            extra.append(Element.restore(id=p.id, kind="image", source=p.source, text=p.text, page=p.page,
                                         bbox=p.bbox, mime_type=p.mime_type, object_key=p.object_key or e.object_key,
                                         metadata=p.metadata))
        out.append(replace(hit, duplicates=hit.duplicates + tuple(extra)) if extra else hit)
    return out


def search_text(query: str, providers: Providers, collection: Collection, *, k: int = 10,
                images_only: bool = False, filter: dict[str, Any] | None = None,
                where: SearchFilter | None = None) -> list[Hit]:
    """The k best elements for a text query (``images_only``: images and page renders only), fused by RRF.

    Args:
        query: the text.
        providers: the collection's models.
        collection: where to search.
        k: hits wanted.
        images_only: only image and page elements (text→image).
        filter: an exact-match store filter (``{"kind": "table"}``).
        where: kinds, source glob, page and a similarity threshold for the vector lists.

    Raises:
        ValueError: the query is empty.
    """
    if not query.strip():
        raise ValueError("the query is empty")
    where = where or SearchFilter()
    if images_only:
        where = replace(where, kinds=tuple(VISUAL_KINDS))
    active = where.store_filter(collection, filter)
    if active is None:
        return []
    retriever = MultimodalRetriever(collection=collection, text_embeddings=providers.text_embeddings,
                                    image_embedder=providers.image_embedder, k=k * _OVERFETCH,
                                    filter=active or None, score_threshold=where.threshold)
    fused = reciprocal_rank_fusion(retriever.rank(query), RRF_K)
    return _finish(fused, collection, where, k)


def search_image(image: bytes, providers: Providers, collection: Collection, *, k: int = 10,
                 filter: dict[str, Any] | None = None, name: str = "the query image",
                 where: SearchFilter | None = None) -> list[Hit]:
    """The k images most similar to ``image`` in the collection's image space (score: cosine similarity).

    Copies of one picture (same object) come back as one hit with the other copies in ``duplicates``.

    Raises:
        ParseError: ``image`` is not an image that can be decoded (``name`` says which file in the message).
    """
    where = where or SearchFilter()
    _check_header(image, name)
    active = where.store_filter(collection, filter)
    if active is None:
        return []
    # Nova embeds a query image with a retrieval purpose, not the index purpose; other models have one way.
    embed = getattr(providers.image_embedder, "embed_image_queries", providers.image_embedder.embed_images)
    try:
        [vector] = embed([image])
    except (OSError, ValueError, SyntaxError) as e:  # Pillow's errors for a corrupt or truncated file
        raise ParseError(name, f"not a readable image ({type(e).__name__}: {e})") from e
    found = collection.image.search(vector, k=k * _OVERFETCH, filter=active or None)
    hits = [Hit(h.element, h.score, ("image",)) for h in found
            if where.threshold is None or h.score >= where.threshold]
    return _finish(hits, collection, where, k)


def _check_header(image: bytes, name: str) -> None:
    """Refuse what is not an image, or is over the byte or pixel caps, from its header alone.

    The query image is decoded once, by the embedder (a corrupt body fails there, as a ParseError too):
    decoding it here as well doubled the cost of an image→image search.
    """
    import io

    from PIL import Image, UnidentifiedImageError

    from mmrag.parsers import ParseOptions

    options = ParseOptions()
    if len(image) > options.max_image_bytes:
        raise ParseError(name, f"image of {len(image):,} bytes is over the {options.max_image_bytes:,}-byte cap "
                               "(max_image_bytes)")
    try:
        with Image.open(io.BytesIO(image)) as img:
            width, height = img.size
    except UnidentifiedImageError as e:  # its message names a BytesIO object, which tells a user nothing
        raise ParseError(name, "not an image (no image format Pillow reads)") from e
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ParseError(name, f"not a readable image ({type(e).__name__}: {e})") from e
    if width * height > options.max_image_pixels:
        raise ParseError(name, f"image of {width}x{height} pixels is over the {options.max_image_pixels:,}-pixel "
                               "limit (raise MMRAG_MAX_IMAGE_PIXELS to allow it)")


def search_images(
    target: Collection | Settings,
    *,
    text: str | None = None,
    image: bytes | str | Path | None = None,
    k: int = 10,
    filter: dict[str, Any] | None = None,
    where: SearchFilter | None = None,
    providers: Providers | None = None,
) -> list[Hit]:
    """Find pictures (image and page elements) by a text (text→image) or by an image (image→image).

    Args:
        target: an open :class:`~mmrag.stores.collection.Collection`, or :class:`~mmrag.config.Settings` naming
            one (it must exist: searching never creates a collection).
        text: the text query; exactly one of ``text`` and ``image``.
        image: the query image: its bytes, or a path to it.
        k: hits wanted.
        filter: an exact-match store filter, e.g. ``{"source": ["/data/report.pdf"]}``.
        where: kinds, source glob, page and similarity threshold.
        providers: the collection's models; built from the Settings (or default Settings) when None.

    Returns:
        The hits, best first, each with an openable ``object_uri``. In Jupyter, wrap them in
        :class:`mmrag.render.HitList` to see a gallery.

    Raises:
        ValueError: neither or both of ``text`` and ``image``.
        NotFoundError: the Settings name a collection that does not exist.
    """
    if (text is None) == (image is None):
        raise ValueError("give exactly one of text= or image=")
    from mmrag.config import Settings

    if isinstance(target, Settings):
        collection, built = _open(target)
        providers = providers or built
    else:
        collection = target
        if providers is None:
            from mmrag.providers.factory import build_providers

            providers = build_providers(Settings(), read_only=True)
    if text is not None:
        return search_text(text, providers, collection, k=k, images_only=True, filter=filter, where=where)
    assert image is not None
    name = "the query image"
    if not isinstance(image, bytes):
        name = str(image)
        image = Path(image).read_bytes()
    where = where or SearchFilter()
    if not where.kinds:
        where = replace(where, kinds=tuple(VISUAL_KINDS))
    return search_image(image, providers, collection, k=k, filter=filter, name=name, where=where)


def _open(settings: Settings) -> tuple[Collection, Providers]:
    from mmrag.providers.factory import build_providers
    from mmrag.stores.collection import SpaceInfo, open_collection, require_collection

    require_collection(settings)
    providers = build_providers(settings, read_only=True)
    embeddings = providers.text_embeddings
    dims = getattr(embeddings, "dimensions", None) or len(embeddings.embed_query("dimension probe"))
    text = SpaceInfo(str(getattr(embeddings, "model_id", type(embeddings).__name__)), int(dims))
    image = SpaceInfo(providers.image_embedder.model_id, providers.image_embedder.dimensions)
    return open_collection(settings, text=text, image=image, create=False), providers
