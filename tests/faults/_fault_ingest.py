"""Ingest with fast real local models (hashing embeddings, OCR-less captions), in this process or a child.

``python _fault_ingest.py HOME [--kill-after-texts N] SOURCE...`` runs one ingest; the fault suite starts it as a
child process with ``MMRAG_CRASH_AT`` set, or with ``--kill-after-texts`` (the process SIGKILLs itself once the
text model has embedded N texts, in the middle of a large source).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from mmrag.chains.ingestion import IngestReport, ingest
from mmrag.config import Settings
from mmrag.providers.cache import CachedCaptioner, CachedEmbeddings, CachedImageEmbedder, ModelCache
from mmrag.providers.factory import Providers
from mmrag.providers.local.local_caption import LocalCaptioner
from mmrag.providers.local.local_image import LocalImageEmbedder
from mmrag.providers.local.local_text import HashingEmbeddings
from mmrag.stores.collection import Collection, SpaceInfo, open_collection


def providers(home: Path) -> Providers:
    cache = ModelCache(home / "cache" / "models.sqlite")
    return Providers(CachedEmbeddings(HashingEmbeddings(), cache), CachedImageEmbedder(LocalImageEmbedder(), cache),
                     CachedCaptioner(LocalCaptioner(None), cache, "local-captioner-v1|ocr=none"), None, None, ())


def open_(settings: Settings, models: Providers) -> Collection:
    image = models.image_embedder
    return open_collection(settings, text=SpaceInfo("hashing-384", 384),
                           image=SpaceInfo(image.model_id, image.dimensions))


def run(home: Path, sources: list[str], **kwargs: Any) -> tuple[IngestReport, Collection]:
    settings = Settings(home=home)
    models = providers(home)
    collection = open_(settings, models)
    return ingest(sources, settings, providers=models, collection=collection, **kwargs), collection


class _KillAfter(HashingEmbeddings):
    """Hashing embeddings that SIGKILL the process once ``limit`` texts have been embedded."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit, self.done, self.lock = limit, 0, threading.Lock()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = super().embed_documents(texts)
        with self.lock:
            self.done += len(texts)
            if self.done >= self.limit:
                os.kill(os.getpid(), signal.SIGKILL)
        return vectors


if __name__ == "__main__":
    home, args = Path(sys.argv[1]), sys.argv[2:]
    models = providers(home)
    if args[0] == "--kill-after-texts":
        limit, args = int(args[1]), args[2:]
        cache = models.text_embeddings.cache  # type: ignore[attr-defined]
        models = Providers(CachedEmbeddings(_KillAfter(limit), cache), models.image_embedder,
                           models.captioner, None, None, ())
    settings = Settings(home=home)
    ingest(args, settings, providers=models, collection=open_(settings, models))
