"""``MultimodalRetriever``: one query → ranked lists from every side of a collection.

For one query it returns up to three ranked lists:

- ``dense``: the query embedded by the text model, searched in the text space (text chunks, table summaries,
  image captions and OCR text: this is also how text finds images when the image space cannot embed text);
- ``bm25``: the query's words matched against the same texts (BM25, or the backend's full-text ranking);
- ``image``: the query embedded into the image space (Titan Multimodal, or CLIP) and searched there, when the
  image model can embed text. The local image descriptor cannot, so offline this list is absent.

When the query names a kind of evidence (a figure, chart, diagram, screenshot... or a table; see
:mod:`mmrag.retrievers.cues`), the dense and BM25 lists are added again restricted to that kind: ``dense-image``,
``bm25-image`` (image and page elements), ``dense-table``, ``bm25-table``, each holding the ``cue_k`` best
elements of that kind (default 1). The query is embedded once for all of them. The code (quoted code, or the
statement that sets a name the query asks the value of), label and source cues
add BM25 lists too: ``bm25-code``, ``bm25-label`` and ``bm25-source`` (the best keyword match in the document the
query names by its file name, "the strucchange introduction"). ``cues=False`` switches all of these off.

As a LangChain ``BaseRetriever`` it fuses those lists with reciprocal rank fusion and returns Documents; the
query chain uses :meth:`MultimodalRetriever.rank` to fuse the lists of every sub-question at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from mmrag.retrievers.cues import (
    CODE_POOL,
    CUE_K,
    CUES,
    assigned_names,
    code_terms,
    cue_filter,
    holds_assignment,
    holds_code,
    holds_label,
    label_terms,
    name_words,
    query_words,
    question_cues,
)
from mmrag.retrievers.fusion import RRF_K, reciprocal_rank_fusion
from mmrag.stores.base import Filter, ScoredRecord

__all__ = ["INVOKE_OPTIONS", "LIST_KINDS", "LIST_NAMES", "MultimodalRetriever"]

logger = logging.getLogger(__name__)

LIST_NAMES = ("dense", "bm25", "image")
LIST_KINDS = (*LIST_NAMES, "bm25-code", "bm25-label", "bm25-source",
              *(f"{kind}-{cue.name}" for cue in CUES for kind in ("dense", "bm25")))
"""Every kind of list :meth:`MultimodalRetriever.rank` may return (in the query chain a list is ``<kind>:q<i>``, the
kind for its i-th sub-question): what fusion weights may name."""


INVOKE_OPTIONS = ("k", "filter", "score_threshold", "use_bm25", "use_images", "cues", "cue_k")
"""Fields ``invoke(query, **options)`` may set for one call (``retriever.invoke("q", k=1)``)."""


class MultimodalRetriever(BaseRetriever):
    """Dense, keyword and image-space retrieval over one collection.

    Attributes:
        collection: a :class:`mmrag.stores.collection.Collection` (its text and image indexes are used).
        text_embeddings: the LangChain ``Embeddings`` the text space was built with.
        image_embedder: the collection's image embedder (its ``embed_texts`` places queries in the image space),
            or None to skip the image list.
        k: results per list.
        filter: metadata filter for every list (``{"kind": "table"}``, ``{"source": [...]}``...).
        score_threshold: drop dense and image hits whose cosine similarity is below this.
        use_bm25, use_images: switch lists off.
        cues: add kind-restricted dense/BM25 lists when the query names a figure, chart... or a table.
        cue_k: results per cue list (default :data:`~mmrag.retrievers.cues.CUE_K`: the best element of the named
            kind, per list and query).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    collection: Any
    text_embeddings: Any
    image_embedder: Any = None
    k: int = Field(8, ge=1, le=1000)
    filter: dict[str, Any] | None = None
    score_threshold: float | None = None
    use_bm25: bool = True
    use_images: bool = True
    cues: bool = True
    cue_k: int = Field(CUE_K, ge=1, le=1000)

    @property
    def image_queries(self) -> bool:
        """Whether text queries can be searched in the image space (False for the local image descriptor)."""
        return bool(self.use_images and self.image_embedder is not None
                    and getattr(self.image_embedder, "supports_text_queries", False)
                    and self.collection.image.count() > 0)

    def rank(self, query: str, *, filter: Filter | None = None) -> dict[str, list[ScoredRecord]]:
        """The ranked lists for one query, by name, best first: ``dense``, ``bm25``, ``image``, then the cue lists:
        ``bm25-code`` when the query quotes code (or asks what a name is set to, and a match sets it),
        ``bm25-label`` when it names a numbered figure or table, ``bm25-source`` when it names a document by a word
        of its file name, and
        ``dense-image``, ``bm25-image``, ``dense-table``, ``bm25-table`` for the kinds it names."""
        active = filter if filter is not None else self.filter
        lists: dict[str, list[ScoredRecord]] = {}
        vector = self.text_embeddings.embed_query(query)
        has_vector = any(vector)
        dense = self.collection.text.search(vector, k=self.k, filter=active) if has_vector else []
        lists["dense"] = self._threshold(dense)
        terms = code_terms(query) if self.cues and self.use_bm25 else ()
        names = assigned_names(query) if self.cues and self.use_bm25 else ()
        labels = label_terms(query) if self.cues and self.use_bm25 else ()
        if self.use_bm25:
            pool = CODE_POOL if terms or names or labels else 0
            keyword = self.collection.text.keyword_search(query, k=max(self.k, pool), filter=active)
            lists["bm25"] = keyword[: self.k]
            if terms or names:
                code = self._holding(keyword, lambda text: holds_code(text, terms) or holds_assignment(text, names))
                if code or terms:
                    lists["bm25-code"] = code
            if labels:
                lists["bm25-label"] = self._holding(keyword, lambda text: holds_label(text, labels))
            named = self._named_sources(query, active) if self.cues else []
            if named and 2 * sum(h.element.source in named for h in lists["bm25"]) <= len(lists["bm25"]):
                narrowed_source = {**(active or {}), "source": named}
                lists["bm25-source"] = self.collection.text.keyword_search(query, k=self.cue_k,
                                                                           filter=narrowed_source)
        if self.image_queries:
            [image_vector] = self.image_embedder.embed_texts([query])
            lists["image"] = self._threshold(self.collection.image.search(image_vector, k=self.k, filter=active))
        for cue in question_cues(query) if self.cues else ():
            narrowed = cue_filter(cue, active)
            if narrowed is None:
                continue
            if has_vector:
                found = self.collection.text.search(vector, k=self.cue_k, filter=narrowed)
                lists[f"dense-{cue.name}"] = self._threshold(found)
            if self.use_bm25:
                lists[f"bm25-{cue.name}"] = self.collection.text.keyword_search(query, k=self.cue_k, filter=narrowed)
        return lists

    def _named_sources(self, query: str, active: Filter | None) -> list[str]:
        """The sources the query names by a word of their file name that mostly occurs in them (see
        :mod:`mmrag.retrievers.cues`); none when the filter already picks sources, or without a manifest."""
        manifest = getattr(self.collection, "manifest", None)
        if manifest is None or (active and "source" in active):
            return []
        words = query_words(query)
        by_word: dict[str, list[str]] = {}
        for entry in manifest.sources():
            for word in name_words(entry.source) & words:
                by_word.setdefault(word, []).append(entry.source)
        named: list[str] = []
        for word, sources in sorted(by_word.items()):
            hits = self.collection.text.keyword_search(word, k=CODE_POOL, filter=active)
            if hits and 2 * sum(h.element.source in sources for h in hits) > len(hits):
                named.extend(s for s in sources if s not in named)
        return named

    def _holding(self, keyword: list[ScoredRecord], holds: Callable[[str], bool]) -> list[ScoredRecord]:
        """The ``cue_k`` best of ``keyword`` whose text ``holds`` the quoted code or label; none when most of the
        plain BM25 list holds it already (a module name on every page of its manual picks nothing out)."""
        flags = [holds(h.element.text) for h in keyword]
        top = flags[: self.k]
        if 2 * sum(top) > len(top):
            return []
        return [h for h, held in zip(keyword, flags, strict=True) if held][: self.cue_k]

    def _threshold(self, hits: list[ScoredRecord]) -> list[ScoredRecord]:
        if self.score_threshold is None:
            return hits
        return [h for h in hits if h.score >= self.score_threshold]

    def with_options(self, **options: Any) -> MultimodalRetriever:
        """A copy with some of :data:`INVOKE_OPTIONS` changed, validated as the constructor validates them.

        Raises:
            TypeError: an option that is not one of :data:`INVOKE_OPTIONS`.
            pydantic.ValidationError: a bad value (``k=0``).
        """
        unknown = sorted(set(options) - set(INVOKE_OPTIONS))
        if unknown:
            raise TypeError(f"MultimodalRetriever got unexpected option(s) {', '.join(unknown)}: it accepts "
                            f"{', '.join(INVOKE_OPTIONS)}")
        return type(self).model_validate({**{name: getattr(self, name) for name in type(self).model_fields},
                                          **options})

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun, **options: Any
    ) -> list[Document]:
        # ``invoke(query, k=1)`` and the other fields as keyword arguments apply to this call only (LangChain's
        # standard retriever tests ask for ``k``; ``filter`` and ``score_threshold`` are what apps pass most).
        retriever = self.with_options(**options) if options else self
        fused = reciprocal_rank_fusion(retriever.rank(query), RRF_K, limit=retriever.k)
        docs = []
        for hit in fused:
            doc = hit.element.to_document()
            doc.metadata.update({"score": hit.score, "lists": list(hit.lists)})
            docs.append(doc)
        return docs
