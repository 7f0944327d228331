"""The example gallery's rules: notebooks stored without outputs, an introduction and a "where next", no
`!pip` cells, and every notebook in the index. (CI executes them: nbmake, `python -m pytest examples/` in the
gallery environment, the last step of .ci/run.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).parents[2] / "examples"
NOTEBOOKS = sorted(EXAMPLES.glob("*.ipynb"))


def _cells(path: Path) -> list[dict[str, object]]:
    return list(json.loads(path.read_text(encoding="utf-8"))["cells"])


def _source(cell: dict[str, object]) -> str:
    source = cell["source"]
    return "".join(source) if isinstance(source, list) else str(source)


def test_the_gallery_has_its_notebooks() -> None:
    assert len(NOTEBOOKS) >= 7
    assert all(re.fullmatch(r"\d\d-[a-z0-9-]+\.ipynb", p.name) for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    for cell in _cells(path):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, (
                f"{path.name}: strip outputs before committing (jupyter nbconvert --clear-output --inplace)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_says_what_it_shows_and_where_to_go_next(path: Path) -> None:
    cells = _cells(path)
    first, last = cells[0], cells[-1]
    assert first["cell_type"] == "markdown" and _source(first).startswith("# ")
    intro = [line for line in _source(first).splitlines()[1:] if line.strip()]
    assert 2 <= len(intro) <= 5, f"{path.name}: the introduction should be 2-4 lines"
    assert last["cell_type"] == "markdown" and "Where next" in _source(last)
    for cell in cells:
        source = _source(cell)
        assert source.strip(), f"{path.name}: empty cell"
        if cell["cell_type"] == "code":
            assert not re.search(r"^\s*[!%]pip", source, re.M), f"{path.name}: no install cells"


def test_every_notebook_is_in_the_index() -> None:
    index = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for path in NOTEBOOKS:
        assert f"]({path.name})" in index, f"{path.name} is missing from examples/README.md"
