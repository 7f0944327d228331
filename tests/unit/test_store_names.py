"""Store names per collection are injective: no two collection names share a table, index or prefix."""

from __future__ import annotations

import itertools
import random
import re

from mmrag.stores._pgvector_sql import TABLE_NAME, collection_table
from mmrag.stores.collection import opensearch_index, s3_collection_prefix


def _names() -> list[str]:
    rng = random.Random(7)
    fixed = ["default", "team-a", "team_a", "team--a", "team__a", "a" * 63, "a" * 62 + "b", "a" * 62 + "-",
             "x-y_z", "x_y-z", "0", "0-", "0_"]
    alphabet = "ab-_0"
    fixed += ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 63))) for _ in range(2000)]
    return [n for n in dict.fromkeys(fixed) if re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", n)]


def test_pgvector_tables_are_injective_and_valid() -> None:
    names = _names()
    tables = {(n, s): collection_table(n, s) for n, s in itertools.product(names, ("text", "image"))}
    assert len(set(tables.values())) == len(tables)
    for table in tables.values():
        assert TABLE_NAME.fullmatch(table) and len(table.encode()) <= 63, table
    assert collection_table("default", "text") == "mmrag_default_text"  # existing collections keep their tables
    assert collection_table("team-a", "text") != collection_table("team_a", "text")


def test_opensearch_indexes_and_s3_prefixes_are_injective() -> None:
    names = _names()
    indexes = {opensearch_index(n, s) for n, s in itertools.product(names, ("text", "image"))}
    assert len(indexes) == 2 * len(names)
    prefixes = [s3_collection_prefix("mmrag/", n) for n in names]
    assert not any(a != b and b.startswith(a) for a, b in itertools.permutations(prefixes, 2))
