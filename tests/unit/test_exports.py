"""What a user reaches by tab completion and imports: the lazily loaded names are listed by ``dir()``, and ``Hit``
(what a retriever's lists hold and a custom fusion returns) comes from the packages where it is used."""

from __future__ import annotations

import importlib

import pytest

from mmrag.answers import Hit


@pytest.mark.parametrize("package", ["mmrag.chains", "mmrag.retrievers"])
def test_hit_is_exported_where_custom_fusions_are_written(package: str) -> None:
    module = importlib.import_module(package)
    assert module.Hit is Hit and "Hit" in module.__all__


@pytest.mark.parametrize("package, names", [
    ("mmrag.chains", {"ingest", "build_query_chain", "rrf_fusion", "Hit"}),
    ("mmrag.retrievers", {"MultimodalRetriever", "reciprocal_rank_fusion", "Hit"}),
    ("mmrag.eval", {"evaluate", "parse_golden"}),
    ("mmrag", {"Settings", "Element"}),
])
def test_dir_lists_the_lazily_loaded_names(package: str, names: set[str]) -> None:
    module = importlib.import_module(package)
    listed = set(dir(module))
    assert names <= listed, names - listed
    assert set(module.__all__) <= listed
    for name in module.__all__:
        assert getattr(module, name) is not None
