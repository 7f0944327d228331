"""Chains (imported as ``mmrag.chains``): ingest, decomposition, synthesis and the query chain.

Names load on first use, so ``import mmrag.chains`` stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# A public name never equals a submodule's name: ``from mmrag.chains import ingest`` must give the function, not
# the module (tests/unit/test_package.py checks every lazily exported package).
_EXPORTS = {
    "IngestReport": "mmrag.chains.ingestion",
    "SourceReport": "mmrag.chains.ingestion",
    "aingest": "mmrag.chains.ingestion",
    "ingest": "mmrag.chains.ingestion",
    "open_components": "mmrag.chains._components",
    "QueryOptions": "mmrag.chains.query",
    "build_query_chain": "mmrag.chains.query",
    "decompose_chain": "mmrag.chains.decomposition",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mmrag.chains' has no attribute {name!r}")
