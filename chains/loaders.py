"""Any LangChain document loader as a source: ``mmrag ingest --loader MODULE:CLASS --loader-arg KEY=VALUE``.

A loader is any class implementing langchain-core's ``BaseLoader`` (``lazy_load``), from any installed package:
a standalone integration (``langchain_<vendor>``), ``langchain_community.document_loaders`` (``pip install
'mmrag[community]'``; it is being sunset upstream, so prefer a standalone package where one exists) or your own
module. Its Documents go to :func:`mmrag.chains.documents.ingest_documents`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from mmrag.errors import ConfigError, MissingDependencyError, MmragError, NotFoundError, ParseError

if TYPE_CHECKING:
    from langchain_core.document_loaders import BaseLoader
    from langchain_core.documents import Document

__all__ = ["load_documents", "loader_arguments", "make_loader"]

_EXTRAS = {"langchain_community": "community"}
"""Top-level packages of loaders and the mmrag extra that installs them."""


def loader_arguments(pairs: Sequence[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as keyword arguments: a value that is JSON (``true``, ``3``, ``["a", "b"]``) is
    decoded, anything else stays a string (``glob=**/*.eml``).

    Raises:
        ValueError: a pair without ``=`` or with an empty key.
    """
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--loader-arg wants KEY=VALUE, not {pair!r}")
        try:
            out[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip()] = value
    return out


def make_loader(spec: str, arguments: Mapping[str, Any] | None = None) -> BaseLoader:
    """The loader ``MODULE:CLASS`` built with ``arguments``.

    Raises:
        ValueError: ``spec`` is not ``MODULE:CLASS``.
        MissingDependencyError: the module's package is not installed and an mmrag extra provides it.
        NotFoundError: the module or the class does not exist.
        ConfigError: the class is not a ``BaseLoader``, or it refused the arguments.
    """
    import importlib

    from langchain_core.document_loaders import BaseLoader

    module_name, sep, name = spec.partition(":")
    if not sep or not module_name or not name:
        raise ValueError(f"--loader wants MODULE:CLASS (e.g. langchain_community.document_loaders:TextLoader), "
                         f"not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        top = module_name.split(".")[0]
        if top in _EXTRAS and e.name is not None and e.name.split(".")[0] == top:
            raise MissingDependencyError(top, _EXTRAS[top], f"the loader {spec}") from e
        raise NotFoundError(f"cannot import {module_name!r} for the loader {spec} ({e}): install the package "
                            "that provides it") from e
    cls = getattr(module, name, None)
    if cls is None:
        raise NotFoundError(f"{module_name!r} has no {name!r}: check the loader's name ({spec})")
    if not (isinstance(cls, type) and issubclass(cls, BaseLoader)):
        raise ConfigError(f"{spec} is not a LangChain document loader (a langchain_core BaseLoader)")
    try:
        return cls(**dict(arguments or {}))
    except MmragError:
        raise
    except Exception as e:  # the loader's own validation: a missing file, a bad or missing argument...
        raise ConfigError(f"{spec} refused its arguments ({type(e).__name__}: {' '.join(str(e).split())}): "
                          "pass them with --loader-arg KEY=VALUE") from e


def load_documents(loader: BaseLoader, name: str) -> Iterator[Document]:
    """``loader.lazy_load()``, with any failure of the loader raised as a :class:`ParseError` naming it."""
    try:
        yield from loader.lazy_load()
    except MmragError:
        raise
    except Exception as e:
        raise ParseError(name, f"the loader failed ({type(e).__name__}: {' '.join(str(e).split())})") from e
