"""MkDocs hooks of the docs site (loaded by mkdocs.yml ``hooks:``; not a page of the site).

- The navigation lists every page under docs/, in the reading order of ``NAV`` below; a page that is not named
  there goes to the end of its section (``Guide`` for top-level pages), so adding a page needs no edit anywhere
  and no page can be left out of the navigation or named in it without existing.
- mkdocstrings reads the source statically (griffe), and griffe cannot follow setuptools' ``package-dir`` mapping
  (``parsers/`` is installed as ``mmrag.parsers``). So, as ``.ci/typecheck`` does for mypy, the build reads a
  linked tree shaped like the installed package, made in a temp folder for the length of the build.
- A line ``<!-- api: PACKAGE -->`` in a page becomes one ``::: identifier`` per name of ``PACKAGE.__all__``, each
  at the module that defines it. The packages export most names lazily (``__getattr__``), which static analysis
  cannot see; listing them here keeps the reference complete when a name is added, with nothing to maintain.
- A line ``<!-- settings-table -->`` becomes the table of every ``mmrag.Settings`` field: its ``MMRAG_*``
  variable, default and description.
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
_SETTINGS = re.compile(r"^<!--\s*settings-table\s*-->\s*$", re.MULTILINE)
_tree: Path | None = None

# Reading order. Pages named here that do not exist (yet) are skipped.
NAV: dict[str, list[str]] = {
    "": ["index.md", "getting-started.md"],
    "Guide": ["parsing.md", "formats.md", "ingest-and-ask.md", "querying.md", "answers.md", "chat-and-cache.md",
              "search.md", "collections.md", "shared-collections.md", "ray.md", "video.md", "langchain.md",
              "evaluation.md"],
    "Reference": ["models.md", "configuration.md", "aws-setup.md", "aws.md", "limits-and-errors.md",
                  "development.md"],
    "API reference": ["api/index.md", "api/core.md", "api/parsers.md", "api/chains.md", "api/retrievers.md",
                      "api/render.md", "api/eval.md", "api/stores.md", "api/providers.md", "api/testing.md"],
}


def navigation(docs_dir: Path) -> list[Any]:
    """Every Markdown page of ``docs_dir`` (but ``hooks/``), as an MkDocs ``nav`` in the order of ``NAV``."""
    pages = sorted(p.relative_to(docs_dir).as_posix() for p in docs_dir.rglob("*.md")
                   if p.relative_to(docs_dir).parts[0] != "hooks")
    sections = {title: [p for p in order if p in pages] for title, order in NAV.items()}
    placed = {p for order in sections.values() for p in order}
    for page in (p for p in pages if p not in placed):
        folder = page.split("/")[0] if "/" in page else ""
        title = "API reference" if folder == "api" else "Guide" if not folder else folder.replace("-", " ").title()
        sections.setdefault(title, []).append(page)
    top = sections.pop("")
    nav: list[Any] = [{"Home": p} if p == "index.md" else p for p in top]
    nav.extend({title: order} for title, order in sections.items() if order)
    return nav


def settings_table() -> str:
    """Markdown table of every ``Settings`` field (variable, default, description)."""
    from mmrag.config import Settings

    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        shown = "–" if default is None else f"`{default}`"
        text = (field.description or "").replace("|", "\\|")
        rows.append(f"| `MMRAG_{name.upper()}` | {shown} | {text} |")
    return "\n".join(rows)


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
    """The ``:::`` lines for every public name of ``package``, in ``__all__`` order, dunders left out.

    A name re-exported from another documented package (``Hit``, defined in ``mmrag.answers``, is exported by
    ``mmrag.chains`` and ``mmrag.retrievers`` too) is documented once, where it is defined; here it gets an anchor
    and a link there (one object documented on several pages is an error for autorefs under ``--strict``)."""
    names = [n for n in importlib.import_module(package).__all__ if not n.startswith("__")]
    lines = []
    for name in names:
        target = identifier(package, name)
        if package != "mmrag" and not target.startswith(package + ".") and target.startswith("mmrag.answers."):
            lines.append(f'<a id="{package}.{name}"></a>`{name}`: the same object as [`{target}`][{target}].')
        else:
            lines.append(f"::: {target}")
    return "\n\n".join(lines)


@event_priority(100)  # before mkdocstrings' on_config, which creates its handlers with their search paths
def on_config(config: Any) -> Any:
    global _tree
    if _tree is not None:  # `mkdocs serve` calls this again on every rebuild
        shutil.rmtree(_tree, ignore_errors=True)
    _tree = Path(tempfile.mkdtemp(prefix="mmrag-docs-"))
    handlers = config.plugins["mkdocstrings"].config.handlers
    handlers.setdefault("python", {})["paths"] = [str(linked_tree(_tree))]
    config["nav"] = navigation(Path(config["docs_dir"]))
    return config


def on_page_markdown(markdown: str, **_: Any) -> str:
    markdown = _SETTINGS.sub(lambda _: settings_table(), markdown)
    return _MARKER.sub(lambda m: api_listing(m.group(1)), markdown)


def on_shutdown() -> None:
    if _tree is not None:
        shutil.rmtree(_tree, ignore_errors=True)
