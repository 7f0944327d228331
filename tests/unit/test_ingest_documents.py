"""ingest_documents and ``mmrag ingest --loader``: any LangChain loader's Documents as text elements of a
collection, idempotent, cited by source and page, with one-line errors for a bad loader."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from langchain_core.documents import Document

from mmrag import ingest_documents
from mmrag.chains.loaders import loader_arguments, make_loader
from mmrag.cli import cli
from mmrag.config import Settings
from mmrag.errors import ConfigError, NotFoundError
from mmrag.providers.local.local_text import HashingEmbeddings
from mmrag.stores.collection import SpaceInfo, open_collection


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home", ocr="off")


def _docs(second: str = "Volcanoes vent magma and ash.") -> list[Document]:
    return [Document("Glaciers carve valleys slowly.", metadata={"source": "geo.pdf", "page": 0}),
            Document(second, metadata={"source": "geo.pdf", "page": 1}),
            Document("Rivers deposit silt in deltas.", metadata={"source": "rivers.html", "title": "Rivers"}),
            Document("   ", metadata={"source": "blank.txt"})]


def test_documents_become_text_elements_with_source_and_page(settings: Settings) -> None:
    report = ingest_documents(_docs(), settings=settings, embedding=HashingEmbeddings(64))
    assert [(s.source, s.status, s.added) for s in report.sources] == [("geo.pdf", "new", 2), ("rivers.html", "new", 1)]
    assert report.elements == {"text": 3} and report.ok
    collection = open_collection(settings, text=SpaceInfo("local:hashing-64", 64),
                                 image=SpaceInfo(*_image_space()))
    hits = collection.text.keyword_search("magma", k=1)
    assert (hits[0].element.source, hits[0].element.page, hits[0].element.kind) == ("geo.pdf", 2, "text")
    assert hits[0].text.startswith("geo.pdf")  # indexed as mmrag ingest indexes text: with the document's name


def _image_space() -> tuple[str, int]:
    from mmrag.providers.local.local_image import LocalImageEmbedder

    image = LocalImageEmbedder()
    return image.model_id, image.dimensions


def test_a_second_run_is_unchanged_and_a_changed_source_is_updated(settings: Settings) -> None:
    embedding = HashingEmbeddings(64)
    ingest_documents(_docs(), settings=settings, embedding=embedding)
    again = ingest_documents(_docs(), settings=settings, embedding=embedding)
    assert {s.status for s in again.sources} == {"unchanged"} and again.model_calls["new"] == 0
    changed = ingest_documents(_docs("Volcanoes vent lava."), settings=settings, embedding=embedding)
    geo = next(s for s in changed.sources if s.source == "geo.pdf")
    assert (geo.status, geo.added, geo.removed, geo.elements) == ("updated", 1, 1, {"text": 2})
    assert changed.model_calls["new"] == 1


def test_mmrag_search_finds_loader_documents(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_HOME", str(settings.home))
    monkeypatch.setenv("MMRAG_OCR", "off")
    report = ingest_documents(_docs(), collection="loaded")  # the settings' own text model
    assert report.collection == "loaded"
    result = CliRunner().invoke(cli, ["search", "glaciers carving valleys", "-c", "loaded", "--json"])
    assert result.exit_code == 0, result.output
    first = json.loads(result.output.splitlines()[0])
    assert (first["source"], first["page"]) == ("geo.pdf", 1)


def test_loader_arguments_decode_json_values_and_keep_other_strings() -> None:
    assert loader_arguments(["file_path=a.csv", "autodetect_encoding=true", "n=3", "glob=**/*.eml"]) == {
        "file_path": "a.csv", "autodetect_encoding": True, "n": 3, "glob": "**/*.eml"}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        loader_arguments(["novalue"])


def test_bad_loaders_fail_with_a_reason(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="MODULE:CLASS"):
        make_loader("TextLoader")
    with pytest.raises(NotFoundError, match="cannot import 'no_such_pkg"):
        make_loader("no_such_pkg.loaders:X")
    with pytest.raises(NotFoundError, match="has no 'NoLoader'"):
        make_loader("langchain_community.document_loaders:NoLoader")
    with pytest.raises(ConfigError, match="not a LangChain document loader"):
        make_loader("pathlib:Path")
    with pytest.raises(ConfigError, match="refused its arguments"):
        make_loader("langchain_community.document_loaders:CSVLoader", {"nope": 1})


def _csv(path: Path) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["city", "river"])
        writer.writerows([["Cairo", "Nile"], ["Vienna", "Danube"], ["Manaus", "Amazon"]])
    return path


def test_cli_ingests_what_a_community_loader_yields(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MMRAG_OCR", "off")
    table = _csv(tmp_path / "rivers.csv")
    args = ["ingest", "--loader", "langchain_community.document_loaders:CSVLoader",
            "--loader-arg", f"file_path={table}", "-c", "rivers", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report["collection"] == "rivers" and report["elements"] == {"text": 3}
    assert [s["status"] for s in report["sources"]] == ["new"]
    again = json.loads(CliRunner().invoke(cli, args).output.splitlines()[-1])
    assert [s["status"] for s in again["sources"]] == ["unchanged"]
    found = CliRunner().invoke(cli, ["search", "Danube", "-c", "rivers", "--json"])
    assert "Vienna" in json.loads(found.output.splitlines()[0])["text"]


def test_cli_loader_errors_are_one_line_and_create_nothing(tmp_path: Path) -> None:
    missing = CliRunner().invoke(cli, ["ingest", "--loader", "langchain_community.document_loaders:TextLoader",
                                       "--loader-arg", f"file_path={tmp_path / 'gone.txt'}", "-c", "x"])
    assert missing.exit_code == 1
    assert "gone.txt" in missing.output and "Traceback" not in missing.output
    assert len(missing.output.strip().splitlines()) == 1
    assert not (Path(os.environ["MMRAG_HOME"]) / "x").exists()
    usage = CliRunner().invoke(cli, ["ingest", "a.pdf", "--loader", "m:C"])
    assert usage.exit_code == 2 and "not both" in usage.output
    unknown = CliRunner().invoke(cli, ["ingest", "--loader", "no_such_pkg:Loader"])
    assert unknown.exit_code == 3 and "Traceback" not in unknown.output


def test_cli_without_sources_or_loader_says_what_to_give() -> None:
    result = CliRunner().invoke(cli, ["ingest"])
    assert result.exit_code == 2 and "nothing to ingest: give SOURCES" in result.output
