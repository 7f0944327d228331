"""The sample collection (`mmrag ingest tests/data`) holds documents only, never the image→image queries.

A query picture inside the sample would be indexed by the README's main job and then find itself at rank 1,
which is what made the published image-to-image MRR meaningless (issue 25, item 6).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from mmrag.eval.golden import load_golden
from mmrag.parsers.sources import expand_sources


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_query_pictures_are_not_part_of_the_sample_collection(data_dir: Path, i2i_queries: Path) -> None:
    queries = sorted(p for p in i2i_queries.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    assert len(queries) == 3
    ingested = [Path(s) for s in expand_sources([data_dir])]
    assert ingested and all(p.is_file() for p in ingested)
    assert not any("queries" in p.relative_to(data_dir).parts for p in ingested)
    sample_digests = {_digest(p) for p in ingested}
    assert not sample_digests & {_digest(q) for q in queries}


def test_golden_image_queries_exist_and_live_outside_the_sample(data_dir: Path) -> None:
    """They sit in a hidden folder next to the golden file: inside its folder (the golden-file rule of
    mmrag.eval.golden), outside what folder expansion ingests."""
    golden = load_golden(data_dir / "golden.jsonl")
    images = [q.query_image for q in golden.questions if q.query_image is not None]
    assert len(images) == 4  # three pictures, one video frame (v03)
    ingested = {Path(s).resolve() for s in expand_sources([data_dir])}
    for image in images:
        assert image.is_file(), image
        assert image.resolve().is_relative_to(data_dir.resolve()) and image.resolve() not in ingested, image
