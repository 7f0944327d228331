"""mmrag: multimodal retrieval-augmented generation over PDFs, web pages and images.

Importing ``mmrag`` is cheap: SDKs and parsers load on first use.
"""

import logging

from mmrag.elements import Blob, Element, ElementKind, Parser
from mmrag.errors import (
    ConfigError,
    FetchError,
    MissingDependencyError,
    MmragError,
    NotFoundError,
    ParseError,
    ProviderError,
    StoreError,
    UnsafeURLError,
)

__version__ = "0.1.0"

# Library code logs; applications decide where logs go (no "No handlers could be found" noise, no lastResort).
logging.getLogger("mmrag").addHandler(logging.NullHandler())

__all__ = [
    "Blob",
    "ConfigError",
    "Element",
    "ElementKind",
    "FetchError",
    "MissingDependencyError",
    "MmragError",
    "MmragVectorStore",
    "NotFoundError",
    "ParseError",
    "Parser",
    "ProviderError",
    "Settings",
    "StoreError",
    "UnsafeURLError",
    "__version__",
    "ingest_documents",
]


def __getattr__(name: str) -> object:
    # Settings pulls in pydantic-settings; load it only when asked for so `mmrag --help` stays fast.
    if name == "Settings":
        from mmrag.config import Settings

        return Settings
    # The LangChain-facing entry points live in mmrag.chains (they load langchain-core and the stores).
    if name in ("MmragVectorStore", "ingest_documents"):
        import mmrag.chains

        return getattr(mmrag.chains, name)
    raise AttributeError(f"module 'mmrag' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names and the lazily loaded ``Settings``: what tab completion offers."""
    return sorted({*globals(), *__all__})
