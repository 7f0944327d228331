"""``mmrag ingest s3://bucket/prefix/``: listing with pagination, include/exclude globs, ETag+size fingerprints
(an unchanged object is not downloaded again), and a missing object failing alone; on moto's S3 server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmrag.chains.ingestion import ingest
from mmrag.config import Settings
from mmrag.parsers.s3_sources import _client, expand_s3
from mmrag.parsers.sources import SUPPORTED_SUFFIXES, expand_sources
from mmrag.testing.s3 import MotoS3Server

pytestmark = pytest.mark.integration

BUCKET = "source-docs"


@pytest.fixture
def bucket(s3: MotoS3Server, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> MotoS3Server:
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    client = s3.client()
    client.create_bucket(Bucket=BUCKET)
    client.put_object(Bucket=BUCKET, Key="team/reports/tabula-data.pdf",
                      Body=(data_dir / "pdf/tabula-data.pdf").read_bytes())
    client.put_object(Bucket=BUCKET, Key="team/figures/img_029.png",
                      Body=(data_dir / "images/img_029.png").read_bytes())
    client.put_object(Bucket=BUCKET, Key="team/notes/todo.txt", Body=b"not a supported type")
    client.put_object(Bucket=BUCKET, Key="other/elsewhere.pdf", Body=(data_dir / "pdf/tabula-data.pdf").read_bytes())
    return s3


def test_a_prefix_is_listed_across_pages_and_filtered(bucket: MotoS3Server) -> None:
    client = bucket.client()
    for i in range(1005):  # more than one ListObjectsV2 page (1,000 keys)
        client.put_object(Bucket=BUCKET, Key=f"many/{i:04d}.png", Body=b"x")
    listed = expand_s3(f"s3://{BUCKET}/many/", SUPPORTED_SUFFIXES, endpoint_url=bucket.endpoint_url)
    assert len(listed) == 1005 and listed[0] == f"s3://{BUCKET}/many/0000.png"
    team = expand_sources([f"s3://{BUCKET}/team/"], s3_endpoint_url=bucket.endpoint_url)
    assert team == [f"s3://{BUCKET}/team/figures/img_029.png", f"s3://{BUCKET}/team/reports/tabula-data.pdf"]
    only_pdf = expand_sources([f"s3://{BUCKET}/team/"], include=["*.pdf"], s3_endpoint_url=bucket.endpoint_url)
    assert only_pdf == [f"s3://{BUCKET}/team/reports/tabula-data.pdf"]
    no_figures = expand_sources([f"s3://{BUCKET}/team/"], exclude=["figures/*"], s3_endpoint_url=bucket.endpoint_url)
    assert no_figures == only_pdf


def test_ingest_from_s3_skips_unchanged_objects_without_downloading(bucket: MotoS3Server, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", ocr="off", s3_endpoint_url=bucket.endpoint_url)  # type: ignore[call-arg]
    first = ingest([f"s3://{BUCKET}/team/"], settings)
    assert first.ok and [s.status for s in first.sources] == ["new", "new"]
    assert first.elements.get("table", 0) >= 1
    downloads: list[str] = []
    client = _client(bucket.endpoint_url)
    client.meta.events.register("before-parameter-build.s3.GetObject",
                               lambda params, **kw: downloads.append(params["Key"]))
    again = ingest([f"s3://{BUCKET}/team/"], settings)
    assert [s.status for s in again.sources] == ["unchanged", "unchanged"] and downloads == []
    # A changed object (new ETag) is downloaded and re-ingested; the other is still skipped.
    bucket.client().put_object(Bucket=BUCKET, Key="team/figures/img_029.png",
                               Body=Path(tmp_path / "x").write_bytes(b"") or b"\x89PNG not really")
    changed = ingest([f"s3://{BUCKET}/team/"], settings)
    assert [s.status for s in changed.sources] == ["failed", "unchanged"]
    assert downloads == ["team/figures/img_029.png"]
    hits = json.dumps([s.to_dict() for s in changed.sources])
    assert f"s3://{BUCKET}/team/reports/tabula-data.pdf" in hits


def test_a_missing_object_fails_alone(bucket: MotoS3Server, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", ocr="off", s3_endpoint_url=bucket.endpoint_url)  # type: ignore[call-arg]
    report = ingest([f"s3://{BUCKET}/team/reports/tabula-data.pdf", f"s3://{BUCKET}/team/nope.pdf"], settings)
    by = {s.source.rsplit("/", 1)[1]: s for s in report.sources}
    assert by["tabula-data.pdf"].status == "new"
    assert by["nope.pdf"].status == "failed" and "no such object in S3" in (by["nope.pdf"].error or "")
