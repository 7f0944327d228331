"""Packaging facts: import names, lazy imports, no bare top-level imports, wheel contents."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("pymupdf", "fitz", "bs4", "httpx", "PIL", "boto3", "botocore", "langchain_core", "pydantic_settings",
         "opensearchpy", "psycopg", "faiss", "torch", "rich")


def _imported_after(code: str) -> set[str]:
    probe = f"import sys; {code}; print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


def test_import_mmrag_and_cli_load_no_heavy_sdk() -> None:
    for code in ("import mmrag", "import mmrag.cli", "import mmrag.parsers, mmrag.chains, mmrag.retrievers"):
        assert not (_imported_after(code) & set(HEAVY)), code


def test_help_imports_no_heavy_sdk() -> None:
    code = "sys.argv = ['mmrag', '--help']\ntry:\n import mmrag.cli as c; c.main()\nexcept SystemExit: pass"
    loaded = _imported_after(code)
    assert not (loaded & set(HEAVY))


def test_subpackages_live_in_top_level_folders() -> None:
    import mmrag.chains
    import mmrag.parsers
    import mmrag.retrievers

    assert Path(mmrag.parsers.__file__).parent == ROOT / "parsers"
    assert Path(mmrag.retrievers.__file__).parent == ROOT / "retrievers"
    assert Path(mmrag.chains.__file__).parent == ROOT / "chains"


def test_bare_top_level_imports_are_banned_by_ruff(tmp_path: Path) -> None:
    ruff = Path(sys.executable).parent / "ruff"
    if not ruff.exists():
        pytest.skip("ruff is not installed (pip install -e '.[dev]')")
    bad = tmp_path / "probe.py"
    bad.write_text("import parsers\nfrom chains import x\n")
    out = subprocess.run([str(ruff), "check", "--no-cache", "--config", str(ROOT / "pyproject.toml"),
                          "--select", "TID251", str(bad)], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 1 and out.stdout.count("TID251") == 2


def test_wheel_contains_all_subpackages(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, cwd=tmp_path)
    wheel = next(tmp_path.glob("mmrag-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for module in ("mmrag/cli/__init__.py", "mmrag/cli/_ask.py", "mmrag/py.typed", "mmrag/parsers/pdf.py",
                   "mmrag/parsers/html.py",
                   "mmrag/retrievers/__init__.py", "mmrag/chains/__init__.py", "mmrag/testing/__init__.py",
                   "mmrag/testing/_eventstream.py"):
        assert module in names
    assert not any(n.startswith(("parsers/", "tests/", "chains/", "retrievers/")) for n in names)


@pytest.mark.parametrize("package", ["mmrag", "mmrag.chains", "mmrag.retrievers", "mmrag.parsers", "mmrag.cli",
                                     "mmrag.stores", "mmrag.providers", "mmrag.testing"])
def test_no_public_name_is_also_a_submodule(package: str) -> None:
    """``from mmrag.chains import ingest`` once gave the module, not the function (the README example crashed):
    in a package, an exported name and a submodule name must never be the same."""
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    submodules = {m.name for m in pkgutil.iter_modules(pkg.__path__)}
    exported = set(getattr(pkg, "__all__", ())) | set(getattr(pkg, "_EXPORTS", {}))
    assert not (exported & submodules), f"{package}: {sorted(exported & submodules)} are both names and modules"
    for name in exported:
        value = getattr(pkg, name)
        assert not isinstance(value, type(pkg)) or name in ("cli",), f"{package}.{name} resolves to a module"


def test_readme_style_import_gives_functions() -> None:
    from mmrag.chains import QueryOptions, build_query_chain, ingest

    assert callable(ingest) and callable(build_query_chain) and isinstance(QueryOptions, type)


def test_the_emulators_client_without_boto3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    from mmrag.errors import MissingDependencyError
    from mmrag.testing import BedrockEmulator

    monkeypatch.setitem(sys.modules, "boto3", None)  # as in a base install: importing boto3 fails
    with pytest.raises(MissingDependencyError, match=re.escape("install with pip install 'mmrag[aws]'")):
        BedrockEmulator().client()
