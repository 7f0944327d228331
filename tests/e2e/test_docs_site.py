"""The docs site: `mkdocs build --strict` of mkdocs.yml + docs/, and what the README keeps.

The build runs once per module, into a temp folder (the repository gets no `site/`). --strict turns every
warning into a failure: a broken link between pages, a link to a missing anchor, a docstring that documents a
parameter its function does not have, an API entry that cannot be found. The checks below then read the built
HTML: every page is in the site and its navigation, every public name of every package has its API entry, and the
settings table lists every setting.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from readme_blocks import DOCS, README, ROOT, commands, docs_pages, markdown_blocks  # tests/e2e/readme_blocks.py

# Public packages and the API page that documents each.
API_PAGES = {
    "mmrag": "api/core", "mmrag.answers": "api/core", "mmrag.parsers": "api/parsers", "mmrag.chains": "api/chains",
    "mmrag.retrievers": "api/retrievers", "mmrag.render": "api/render", "mmrag.eval": "api/eval",
    "mmrag.stores": "api/stores", "mmrag.providers": "api/providers", "mmrag.testing": "api/testing",
}
README_MAX_LINES = 150


def _hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("mmrag_docs_hooks", DOCS / "hooks" / "docs_site.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
                           str(ROOT / "mkdocs.yml"), "--site-dir", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}"
    return out


def _page_html(site: Path, page: str) -> str:
    name = page.removesuffix(".md")
    target = site / "index.html" if name == "index" else site / name.removesuffix("/index") / "index.html"
    assert target.is_file(), f"{page} was not built ({target})"
    return target.read_text(encoding="utf-8")


def test_every_page_is_built_and_in_the_navigation(site: Path) -> None:
    pages = [p.relative_to(DOCS).as_posix() for p in docs_pages()]
    assert "index.md" in pages and "api/index.md" in pages
    home = _page_html(site, "index.md")
    for page in pages:
        _page_html(site, page)
        if page != "index.md":
            link = page.removesuffix(".md").removesuffix("index") + ("" if page.endswith("index.md") else "/")
            assert f'href="{link}"' in home, f"{page} is missing from the navigation"
    assert not (site / "hooks").exists(), "the hooks folder is code, not part of the site"


@pytest.mark.parametrize("package", sorted(API_PAGES))
def test_every_public_name_has_an_api_entry(site: Path, package: str) -> None:
    html = _page_html(site, API_PAGES[package] + ".md")
    ids = set(re.findall(r'id="([\w.]+)"', html))
    names = [n for n in importlib.import_module(package).__all__ if not n.startswith("__")]
    missing = [n for n in names if not any(i == f"{package}.{n}" or i.endswith(f".{n}") for i in ids)]
    assert not missing, f"{API_PAGES[package]}.md has no API entry for {package}: {missing}"


def test_api_entries_show_the_docstrings(site: Path) -> None:
    html = _page_html(site, "api/chains.md")
    entry = html[html.index('id="mmrag.chains.query.build_query_chain"'):][:20000]
    assert "The query chain over one collection" in entry  # its summary line
    assert "Parameters:" in entry and "replaces the fuse stage" in entry  # its Args, as a table
    for page in API_PAGES.values():
        assert not re.search(r":(func|class|mod|meth|data|attr):`", _page_html(site, page + ".md")), page


def test_sphinx_roles_read_as_markdown() -> None:
    spec = importlib.util.spec_from_file_location("mmrag_griffe_roles", DOCS / "hooks" / "griffe_roles.py")
    assert spec is not None and spec.loader is not None
    roles = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(roles)
    text = "See :func:`~mmrag.retrievers.search.with_links` and :class:`Hit`. Compose them::\n\n    a | b\n::\n"
    assert roles.markdown_docstring(text) == "See `with_links` and `Hit`. Compose them:\n\n    a | b\n::\n"


def test_settings_table_lists_every_setting(site: Path) -> None:
    from mmrag.config import Settings

    html = _page_html(site, "configuration.md")
    missing = [f for f in Settings.model_fields if f"MMRAG_{f.upper()}" not in html]
    assert not missing, missing


def test_navigation_takes_new_pages_without_an_edit(tmp_path: Path) -> None:
    """A page nobody listed lands in its section; a listed page that does not exist is left out, not an error."""
    hooks = _hooks()
    for page in ("index.md", "parsing.md", "zebra.md", "api/index.md", "api/extra.md", "recipes/one.md",
                 "hooks/not-a-page.md"):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("# x\n", encoding="utf-8")
    nav = hooks.navigation(tmp_path)
    assert nav[0] == {"Home": "index.md"}
    sections = {title: pages for item in nav[1:] for title, pages in item.items()}
    assert sections["Guide"] == ["parsing.md", "zebra.md"]
    assert sections["API reference"] == ["api/index.md", "api/extra.md"]
    assert sections["Recipes"] == ["recipes/one.md"]
    assert "Reference" not in sections  # none of its pages exists here
    assert all("hooks/" not in p for pages in sections.values() for p in pages)


def test_readme_is_short_and_links_into_the_docs() -> None:
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; the reference belongs in docs/"
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in t]
    assert [t for t in targets if not (ROOT / t).exists()] == []
    linked = {t for t in targets if t.startswith("docs/")}
    # The pages that took over the README's reference material (and its examples) are linked from it.
    moved = {"getting-started", "parsing", "ingest-and-ask", "querying", "search", "collections", "evaluation",
             "models", "aws-setup", "configuration", "development", "api/index"}
    assert {f"docs/{p}.md" for p in moved} <= linked


def test_block_kinds_of_a_docs_page() -> None:
    """```console runs its `$ ` lines only; ```sh is bash; ```text and unknown fences never run; directives stick."""
    page = """# Page
## One
```console
$ mmrag collections
default  399 elements
$ mmrag search "polar plot" \\
    -k 3
```
<!-- readme-test: exit=3 -->
```sh
mmrag ask -c nope "x"   # fails on purpose
```
```text
$ not a command
```
```pycon
>>> 1
```
```python
print("hi")
```
"""
    blocks = markdown_blocks(DOCS / "example.md", page)
    assert [(b.language, b.line, b.section, b.file) for b in blocks] == [
        ("console", 3, "One", "docs/example.md"), ("bash", 10, "One", "docs/example.md"),
        ("python", 19, "One", "docs/example.md")]
    assert commands(blocks[0]) == ["mmrag collections", 'mmrag search "polar plot" -k 3']
    assert commands(blocks[1]) == ['mmrag ask -c nope "x"   # fails on purpose'] and blocks[1].expected_exit == 3
    assert blocks[2].label == "docs/example.md:19 (One)"
