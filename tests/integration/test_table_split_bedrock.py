"""A table longer than Titan Text V2's 8,192-token input, ingested on the bedrock profile through the real boto3
client and the strict loopback emulator: it becomes several table elements of whole rows (issue 12, defect 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmrag.chains.ingestion import ingest, open_components
from mmrag.config import Settings
from mmrag.providers.bedrock.catalog import approx_tokens
from mmrag.retrievers.search import search_text
from mmrag.testing import BedrockEmulator

pytestmark = pytest.mark.integration

ROWS = 900
_PLACES = ("harbour", "quarry", "orchard", "glacier", "meadow", "canyon", "estuary", "plateau")


def _row(i: int) -> tuple[str, str, str, str]:
    return (f"S{i:04d}", f"{_PLACES[i % len(_PLACES)]} station {i}", f"{i * 0.37:.2f}", f"sensor batch b{i % 17}")


def _page(tmp_path: Path) -> Path:
    rows = "\n".join("<tr>" + "".join(f"<td>{c}</td>" for c in _row(i)) + "</tr>" for i in range(1, ROWS + 1))
    html = (f"<html><body><h1>Field readings</h1><p>Every station of the survey, read once.</p><table>"
            f"<caption>Readings by station</caption><thead><tr><th>code</th><th>station</th><th>reading</th>"
            f"<th>batch</th></tr></thead><tbody>{rows}</tbody></table></body></html>")
    path = tmp_path / "readings.html"
    path.write_text(html, encoding="utf-8")
    return path


@pytest.fixture
def emu(emu: BedrockEmulator) -> BedrockEmulator:
    """The conftest's emulator, summarising every table the same way."""
    emu.script_chat(lambda request: "Survey readings per station: code, place, reading and sensor batch.")
    return emu


def test_a_900_row_table_becomes_parts_and_every_row_is_embedded_and_found(emu: BedrockEmulator,
                                                                           tmp_path: Path) -> None:
    settings = Settings(profile="bedrock", bedrock_endpoint_url=emu.url, aws_region="us-east-1",
                        home=tmp_path / "home", text_embedding_dims=256, image_embedding_dims=384)
    source = _page(tmp_path)
    assert len(source.read_text()) > 40_000
    report = ingest([source], settings)
    assert report.complete, report.to_dict()
    assert all(r.status == 200 for r in emu.requests)  # no ValidationException, nothing retried truncated

    providers, collection = open_components(settings, create=False)
    tables = [h.element for h in search_text("station reading", providers, collection, k=50)
              if h.element.kind == "table"]
    parts = sorted({e.id: e for e in tables}.values(), key=lambda e: e.metadata["part"])
    n = report.sources[0].elements["table"]
    assert n >= 3 and len(parts) == n
    assert [p.metadata["part"] for p in parts] == list(range(1, n + 1)) and {p.metadata["parts"] for p in parts} == {n}
    assert parts[0].metadata["part_rows"][0] == 1 and parts[-1].metadata["part_rows"][1] == ROWS
    for part in parts:
        assert "Readings by station" in part.text and "| code | station | reading | batch |" in part.text
        assert part.source == parts[0].source and part.object_key  # its rows' CSV
    assert len({p.object_key for p in parts}) == n
    last = collection.objects.mget([parts[-1].object_key])[0]
    assert last is not None and last.decode().splitlines()[-1] == ",".join(_row(ROWS))

    # Every row reached Titan whole: each embedded text is within the limit, and each row is in one of them.
    titan = [r.body["inputText"] for r in emu.requests if r.model_id == settings.text_embedding_model]
    assert all(approx_tokens(t) <= 8_192 for t in titan)
    embedded = "\n".join(titan)
    assert all(f"| {' | '.join(_row(i))} |" in embedded for i in (1, ROWS // 2, ROWS - 1, ROWS))

    # A row from the end is found, by the dense list too, in the part that holds it.
    hits = search_text(f"{_row(ROWS - 3)[1]} {_row(ROWS - 3)[0]}", providers, collection, k=3)
    best = hits[0]
    assert best.element.id == parts[-1].id and _row(ROWS - 3)[0] in best.element.text
    assert any(name.startswith("dense") for name in best.lists)
