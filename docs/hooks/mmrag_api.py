"""MkDocs hooks for the API reference (loaded by mkdocs.yml ``hooks:``; not a page of the site).

Two jobs:

- mkdocstrings reads the source statically (griffe), and griffe cannot follow setuptools' ``package-dir`` mapping
  (``parsers/`` is installed as ``mmrag.parsers``). So, as ``.ci/typecheck`` does for mypy, the build reads a
  linked tree shaped like the installed package, made in a temp folder for the length of the build.
- A line ``<!-- api: PACKAGE -->`` in a page becomes one ``::: identifier`` per name of ``PACKAGE.__all__``, each
  at the module that defines it. The packages export most names lazily (``__getattr__``), which static analysis
  cannot see; listing them here keeps the reference complete when a name is added, with nothing to maintain.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.plugins import event_priority

ROOT = Path(__file__).resolve().parents[2]
MAPPED = ("parsers", "retrievers", "chains")  # top-level folders installed as mmrag.<name>
_MARKER = re.compile(r"^<!--\s*api:\s*([\w.]+)\s*-->\s*$", re.MULTILINE)
_tree: Path | None = None


def linked_tree(target: Path) -> Path:
    """Lay out ``target/mmrag`` as the installed package: links to ``mmrag/*`` plus the mapped folders."""
    package = target / "mmrag"
    package.mkdir(parents=True)
    for entry in sorted((ROOT / "mmrag").iterdir()):
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    for name in MAPPED:
        (package / name).symlink_to(ROOT / name, target_is_directory=True)
    return target


def identifier(package: str, name: str) -> str:
    """Where ``package.name`` is defined, for ``:::`` (a lazily exported name is invisible at the package)."""
    module = importlib.import_module(package)
    lazy = getattr(module, "_EXPORTS", None) or {}
    if name in lazy:
        return f"{lazy[name]}.{name}"
    where = getattr(module, "_WHERE", None) or {}
    if name in where:
        return f"{package}.{where[name]}.{name}"
    obj = getattr(module, name)
    home = getattr(obj, "__module__", "") if inspect.isclass(obj) or inspect.isfunction(obj) else ""
    if home.startswith("mmrag") and getattr(obj, "__qualname__", "") == name:
        return f"{home}.{name}"
    return f"{package}.{name}"  # an eager re-export: griffe follows the import statically


def api_listing(package: str) -> str:
    """The ``:::`` lines for every public name of ``package``, in ``__all__`` order, dunders left out."""
    names = [n for n in importlib.import_module(package).__all__ if not n.startswith("__")]
    return "\n\n".join(f"::: {identifier(package, name)}" for name in names)


@event_priority(100)  # before mkdocstrings' on_config, which creates its handlers with their search paths
def on_config(config: Any) -> Any:
    global _tree
    _tree = Path(tempfile.mkdtemp(prefix="mmrag-docs-"))
    handlers = config.plugins["mkdocstrings"].config.handlers
    handlers.setdefault("python", {})["paths"] = [str(linked_tree(_tree))]
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    return _MARKER.sub(lambda m: api_listing(m.group(1)), markdown)


def on_shutdown() -> None:
    if _tree is not None:
        shutil.rmtree(_tree, ignore_errors=True)
