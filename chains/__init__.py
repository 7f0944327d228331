"""Chains (imported as ``mmrag.chains``): ingest, the query chain and its stages, conversation, the answer cache.

The query chain is its stages joined with ``|``; compose them by hand as well::

    from mmrag.chains import decompose_stage, retrieve_stage, weighted_fusion, synthesize_stage

Names load on first use, so ``import mmrag.chains`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# A public name never equals a submodule's name: ``from mmrag.chains import ingest`` must give the function, not
# the module (tests/unit/test_package.py checks every lazily exported package).
_EXPORTS = {
    "Hit": "mmrag.answers",  # what a retriever's lists hold and a custom fusion returns
    "IngestReport": "mmrag.chains.ingestion",
    "SourceReport": "mmrag.chains.ingestion",
    "aingest": "mmrag.chains.ingestion",
    "ingest": "mmrag.chains.ingestion",
    "ingest_documents": "mmrag.chains.documents",
    "MmragVectorStore": "mmrag.chains.vectorstore",
    "open_components": "mmrag.chains._components",
    "remove_sources": "mmrag.chains.upkeep",
    "collect_garbage": "mmrag.chains.upkeep",
    "QueryOptions": "mmrag.chains.query",
    "build_query_chain": "mmrag.chains.query",
    "metadata_filter": "mmrag.chains.query",
    "decompose_chain": "mmrag.chains.decomposition",
    "decompose_stage": "mmrag.chains.stages",
    "retrieve_stage": "mmrag.chains.stages",
    "fuse_stage": "mmrag.chains.stages",
    "rrf_fusion": "mmrag.chains.stages",
    "weighted_fusion": "mmrag.chains.stages",
    "relative_fusion": "mmrag.chains.stages",
    "synthesize_stage": "mmrag.chains.stages",
    "condense_question": "mmrag.chains.conversation",
    "conversational_chain": "mmrag.chains.conversation",
    "SQLiteChatHistory": "mmrag.chains.conversation",
    "sqlite_chat_history": "mmrag.chains.conversation",
    "with_message_history": "mmrag.chains.conversation",
    "AnswerCache": "mmrag.chains.answer_cache",
    "CachedAnswer": "mmrag.chains.answer_cache",
    "with_answer_cache": "mmrag.chains.answer_cache",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmrag.chains' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public names (loaded lazily, so not in the module's globals): what tab completion offers."""
    return list(__all__)
