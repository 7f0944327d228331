"""Retrievers (imported as ``mmrag.retrievers``): multimodal retrieval, rank fusion (RRF, weighted, relative), what
the query chain does after fusion (sub-question coverage, continuations of cut sentences) and image search.

Names load on first use, so ``import mmrag.retrievers`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Hit": "mmrag.answers",  # what a retriever's lists hold and a custom fusion returns
    "MultimodalRetriever": "mmrag.retrievers.multimodal",
    "RRF_K": "mmrag.retrievers.fusion",
    "cover_sub_questions": "mmrag.retrievers.coverage",
    "reciprocal_rank_fusion": "mmrag.retrievers.fusion",
    "relative_score_fusion": "mmrag.retrievers.fusion",
    "weighted_reciprocal_rank_fusion": "mmrag.retrievers.fusion",
    "with_continuations": "mmrag.retrievers.continuation",
    "search_images": "mmrag.retrievers.search",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmrag.retrievers' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (loaded lazily, so not in the module's globals): what tab completion offers."""
    return list(__all__)
