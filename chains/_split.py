"""Tables longer than the text model's input become several table elements, split by rows.

Titan Text Embeddings V2 reads at most 8,192 tokens ([titan-v2] in :mod:`mmrag.providers.bedrock.catalog`); a
900-row table is about three times that. Embedding it whole would embed only its first rows (the provider cuts the
text to the limit), so the dense list could never find a row near the end. Instead, right after parsing, such a
table becomes parts of whole rows, each a table element of its own that:

- starts with the table's context lines (caption, section, the sentence above) and its header row, so each part
  still reads, is summarised and is embedded as a table;
- keeps the source, page and bbox; its CSV (the stored object, and what a citation opens) is the header and its
  own rows, so each part is a result of its own in search (results are collapsed by stored object);
- has a stable id (ids are content hashes: the same table always splits into the same parts) and
  ``metadata["part"]`` (1-based), ``metadata["parts"]``, ``metadata["part_rows"]`` (first and last data row,
  1-based), ``metadata["rows"]`` (its rows) and ``metadata["table_rows"]`` (the whole table's) for citations.

Which profiles split: those whose text model has a documented input limit in the model catalog, i.e. the bedrock
profile (Titan Text V2). The offline profile does not: MiniLM reads 256 wordpieces, so rows parts would be a few
rows each (hundreds of elements for one long table), while offline every row of a table stays findable anyway
through the BM25 list (it indexes the table's whole text) and the dense list sees the table's structural summary
first. A user who wants parts offline can call :func:`split_long_tables` with a limit of their choosing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Any

from mmrag.elements import Element

__all__ = ["SUMMARY_HEADROOM", "fit_tables", "split_long_tables", "split_table_rows", "text_input_limit"]

SUMMARY_HEADROOM = 2_048
"""Tokens of the text model's input kept free in each part for what is embedded with it: the table summary the
captioner writes (at most ``fast_max_tokens``, 1,024 by default, scaled for newer models) and a margin."""


def text_input_limit(embeddings: Any) -> int | None:
    """The documented input limit (tokens) of a text-embedding model, from the model catalog; None when unknown.

    ``embeddings`` is a LangChain ``Embeddings`` carrying ``model_id`` (mmrag's providers and cache wrappers do).
    """
    model_id = getattr(embeddings, "model_id", None)
    if not isinstance(model_id, str) or not model_id:
        return None
    from mmrag.providers.bedrock.catalog import facts_for

    facts = facts_for(model_id)
    return facts.max_input_tokens if facts is not None and facts.kind == "text-embedding" else None


def fit_tables(elements: Iterable[Element], embeddings: Any) -> Iterator[Element]:
    """``elements`` with every table too long for ``embeddings`` split by rows (see the module docstring)."""
    limit = text_input_limit(embeddings)
    if limit is None:
        yield from elements
        return
    yield from split_long_tables(elements, max(256, limit - SUMMARY_HEADROOM))


def _table_start(lines: list[str]) -> int | None:
    """Index of the markdown table's header row: a ``|`` line followed by a ``|---|`` separator line."""
    for i in range(len(lines) - 1):
        if lines[i].lstrip().startswith("|") and lines[i + 1].strip().startswith("|") and \
                set(lines[i + 1].replace("|", "").strip()) <= set("-: ") and "-" in lines[i + 1]:
            return i
    return None


def split_long_tables(elements: Iterable[Element], max_tokens: int) -> Iterator[Element]:
    """``elements`` with each table whose text is over ``max_tokens`` (conservative count) split into parts of whole
    rows, each within ``max_tokens`` with its context and header; other elements pass through unchanged.

    A table whose text holds no markdown table (nothing to split by rows) passes through unchanged: the embedding
    provider cuts it to the model's limit.
    """
    from mmrag.providers.bedrock.catalog import approx_tokens

    for element in elements:
        if element.kind != "table" or approx_tokens(element.text) <= max_tokens:
            yield element
            continue
        lines = element.text.splitlines()
        start = _table_start(lines)
        if start is None:
            yield element
            continue
        context = "\n".join(lines[:start]).strip()
        body = "\n".join(lines[start:])
        budget = max(64, max_tokens - (approx_tokens(context) + 2 if context else 0))
        pieces = split_table_rows(body, budget)
        if len(pieces) < 2:
            yield element
            continue
        csv_rows = _csv_rows(element.metadata.get("csv"), len(body.splitlines()) - 2)
        first = 1
        for number, piece in enumerate(pieces, 1):
            rows = len(piece.splitlines()) - 2  # the header row and its separator
            meta = {**element.metadata, "part": number, "parts": len(pieces), "part_rows": [first, first + rows - 1],
                    "rows": rows, "table_rows": len(body.splitlines()) - 2}
            if csv_rows is not None:
                meta["csv"] = _csv_text([csv_rows[0], *csv_rows[first : first + rows]])
            first += rows
            yield replace(element, text=f"{context}\n\n{piece}" if context else piece, metadata=meta)


def split_table_rows(markdown: str, max_tokens: int = 8_000) -> list[str]:
    """A markdown table cut into pieces of whole rows, each within ``max_tokens`` (:func:`approx_tokens`) and each
    starting with the header row (and its ``|---|`` separator), so every piece still reads as a table.

    For tables longer than an embedding model's input (Titan Text V2: 8,192 tokens): index one element per piece
    instead of embedding a truncated table. A single row over the limit is cut to it. Short tables come back as one
    piece, unchanged.
    """
    from mmrag.providers.bedrock.catalog import approx_tokens, truncate_to_tokens

    if approx_tokens(markdown) <= max_tokens:
        return [markdown]
    lines = markdown.splitlines()
    header_end = 2 if len(lines) > 1 and set(lines[1].replace("|", "").strip()) <= set("-: ") else 1
    header = "\n".join(lines[:header_end])
    budget = max(1, max_tokens - approx_tokens(header) - 1)
    pieces: list[str] = []
    rows: list[str] = []
    used = 0
    for row in lines[header_end:]:
        cost = approx_tokens(row) + 1
        if rows and used + cost > budget:
            pieces.append("\n".join([header, *rows]))
            rows, used = [], 0
        rows.append(row if cost <= budget else truncate_to_tokens(row, budget - 1))
        used += min(cost, budget)
    if rows:
        pieces.append("\n".join([header, *rows]))
    return pieces


def _csv_rows(text: Any, body_rows: int) -> list[list[str]] | None:
    """The table's CSV as rows (header first) when it has one row per markdown row, else None (kept whole)."""
    if not isinstance(text, str) or not text:
        return None
    import csv
    import io

    rows = list(csv.reader(io.StringIO(text)))
    return rows if len(rows) == body_rows + 1 else None


def _csv_text(rows: list[list[str]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()
