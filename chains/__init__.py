"""Chains (imported as ``mmrag.chains``): ingest, decomposition, synthesis and the query chain.

Names load on first use, so ``import mmrag.chains`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "IngestReport": "mmrag.chains.ingest",
    "SourceReport": "mmrag.chains.ingest",
    "aingest": "mmrag.chains.ingest",
    "ingest": "mmrag.chains.ingest",
    "open_components": "mmrag.chains.ingest",
    "QueryOptions": "mmrag.chains.query",
    "build_query_chain": "mmrag.chains.query",
    "decompose_chain": "mmrag.chains.decompose",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmrag.chains' has no attribute {name!r}")
