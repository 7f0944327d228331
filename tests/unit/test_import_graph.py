"""The import graph of the package, read from the source with ``ast``: :mod:`mmrag.answers` and :mod:`mmrag.render`
depend one way only (issue 25). The answer types draw themselves in a notebook through the renderer
(``_repr_html_``); the renderer reads them through its own protocols and never imports them, not even for types."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"mmrag": ROOT / "mmrag", "mmrag.parsers": ROOT / "parsers", "mmrag.retrievers": ROOT / "retrievers",
            "mmrag.chains": ROOT / "chains"}


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    line: int
    typing_only: bool  # under ``if TYPE_CHECKING:``: never executed


def modules() -> dict[str, Path]:
    """Every module of the installed package, by its dotted name (``parsers/pdf.py`` is ``mmrag.parsers.pdf``)."""
    found: dict[str, Path] = {}
    for prefix, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([prefix, *parts])] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, typing_only: bool = False) -> Iterator[tuple[ast.Import | ast.ImportFrom, bool]]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node, typing_only
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), True)
            for child in node.orelse:
                yield from _imports(ast.Module(body=[child], type_ignores=[]), typing_only)
        else:  # function bodies too: a lazy import is still an import
            yield from _imports(node, typing_only)


def edges(known: dict[str, Path]) -> list[Edge]:
    """Each import statement of each module, resolved to the package's modules it loads."""
    out = []
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node, typing_only in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
            out.extend(Edge(name, t, node.lineno, typing_only) for t in targets if t in known)
    return out


def reachable(start: str, graph: list[Edge]) -> set[str]:
    seen, todo = {start}, [start]
    while todo:
        here = todo.pop()
        for e in graph:
            if e.source == here and e.target not in seen:
                seen.add(e.target)
                todo.append(e.target)
    return seen


def test_the_graph_sees_both_kinds_of_import() -> None:
    graph = edges(modules())
    lazy = [e for e in graph if e.source == "mmrag.answers" and e.target.startswith("mmrag.render")]
    assert lazy, "Answer._repr_html_ draws through mmrag.render (a function-level import the graph must see)"
    typed = [e for e in graph if e.source == "mmrag.render._media" and e.typing_only]
    assert any(e.target == "mmrag.stores.collection" for e in typed), "TYPE_CHECKING imports are seen and marked"


def test_render_never_imports_answers() -> None:
    graph = edges(modules())
    direct = [e for e in graph if e.source.startswith("mmrag.render") and e.target == "mmrag.answers"]
    assert not direct, f"mmrag.render imports mmrag.answers: {direct}"
    runtime = [e for e in graph if not e.typing_only]
    for module in (m for m in modules() if m.startswith("mmrag.render")):
        assert "mmrag.answers" not in reachable(module, runtime), f"{module} loads mmrag.answers through others"


def test_answers_and_render_are_not_in_one_import_cycle() -> None:
    graph = edges(modules())  # every import, lazy and typing-only ones included
    back = reachable("mmrag.render", graph) | reachable("mmrag.render._html", graph)
    forth = reachable("mmrag.answers", graph)
    assert not ("mmrag.answers" in back and any(m.startswith("mmrag.render") for m in forth)), (
        "mmrag.answers and mmrag.render import each other")


def test_importing_the_renderer_loads_no_answer_types() -> None:
    code = "import sys, mmrag.render; print('mmrag.answers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == "False"
