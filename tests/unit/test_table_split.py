"""Tables longer than the text model's input split by rows (chains/_split.py): pure functions, no models."""

from __future__ import annotations

from types import SimpleNamespace

from mmrag.chains._split import SUMMARY_HEADROOM, fit_tables, split_long_tables, text_input_limit
from mmrag.elements import Element
from mmrag.providers.bedrock.catalog import approx_tokens

CONTEXT = "Table 3: measurements by station\nResults > Stations"
HEADER = "| station | reading | note |\n|---|---|---|"


def _rows(n: int) -> list[str]:
    return [f"| station{i:04d} | {i * 1.5:.1f} | calibrated on day {i % 30} of the campaign |" for i in range(1, n + 1)]


def _csv(rows: range) -> str:
    return "".join(f"station{i:04d},{i * 1.5:.1f},calibrated on day {i % 30} of the campaign\n" for i in rows)


def _table(n: int, context: str = CONTEXT, csv: str | None = None) -> Element:
    body = "\n".join([HEADER, *_rows(n)])
    return Element(kind="table", source="/data/stations.html", text=f"{context}\n\n{body}" if context else body,
                   page=2, bbox=(10.0, 20.0, 300.0, 700.0), mime_type="text/markdown",
                   metadata={"csv": "station,reading,note\n" + _csv(range(1, n + 1)) if csv is None else csv,
                             "rows": n, "columns": 3, "header": ["station"]})


def test_short_tables_and_other_elements_pass_unchanged() -> None:
    text = Element(kind="text", source="/data/a.txt", text="word " * 5000)
    short = _table(10)
    assert list(split_long_tables([text, short], 2_000)) == [text, short]


def test_a_long_table_becomes_parts_of_whole_rows_each_with_context_and_header() -> None:
    table = _table(900)
    parts = list(split_long_tables([table], 2_000))
    assert len(parts) > 3
    rows = _rows(900)
    seen: list[str] = []
    for number, part in enumerate(parts, 1):
        assert part.kind == "table" and approx_tokens(part.text) <= 2_000
        assert part.text.startswith(CONTEXT + "\n\n" + HEADER + "\n")
        assert (part.source, part.page, part.bbox, part.mime_type) == (table.source, table.page, table.bbox,
                                                                       table.mime_type)
        assert (part.metadata["part"], part.metadata["parts"]) == (number, len(parts))
        body = part.text.split(HEADER + "\n", 1)[1].splitlines()
        first, last = part.metadata["part_rows"]
        assert body == rows[first - 1 : last]
        assert (part.metadata["rows"], part.metadata["table_rows"]) == (len(body), 900)
        # Its stored object (what a citation opens) is the header and its own rows.
        assert part.metadata["csv"] == "station,reading,note\n" + _csv(range(first, last + 1))
        seen.extend(body)
    assert seen == rows  # every row exactly once, in order
    assert len({p.id for p in parts}) == len(parts) and table.id not in {p.id for p in parts}
    assert [p.id for p in split_long_tables([_table(900)], 2_000)] == [p.id for p in parts]  # stable ids


def test_a_csv_that_does_not_match_the_rows_is_kept_whole() -> None:
    parts = list(split_long_tables([_table(900, csv="a,b\n1,2\n")], 2_000))
    assert len(parts) > 3 and {p.metadata["csv"] for p in parts} == {"a,b\n1,2\n"}


def test_a_table_without_context_or_without_markdown() -> None:
    parts = list(split_long_tables([_table(900, context="")], 2_000))
    assert len(parts) > 3 and all(p.text.startswith(HEADER + "\n") for p in parts)
    flat = Element(kind="table", source="/data/x.pdf", text="cell " * 20_000)
    assert list(split_long_tables([flat], 2_000)) == [flat]  # no rows to split by: the provider cuts it


def test_the_limit_comes_from_the_catalog_for_the_bedrock_text_model_only() -> None:
    titan = SimpleNamespace(model_id="amazon.titan-embed-text-v2:0")
    assert text_input_limit(titan) == 8_192
    assert text_input_limit(SimpleNamespace(model_id="all-MiniLM-L6-v2")) is None
    assert text_input_limit(SimpleNamespace(model_id="amazon.titan-embed-image-v1")) is None  # not a text model
    assert text_input_limit(object()) is None
    table = _table(900)
    parts = list(fit_tables([table], titan))
    assert len(parts) > 1 and all(approx_tokens(p.text) <= 8_192 - SUMMARY_HEADROOM for p in parts)
    # The offline profile (MiniLM) does not split: BM25 indexes every row of the whole table.
    assert list(fit_tables([table], SimpleNamespace(model_id="all-MiniLM-L6-v2"))) == [table]
