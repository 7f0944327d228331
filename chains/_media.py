"""Video keyframes embedded as the shots they stand for, where the image-space model embeds video (Nova Multimodal
Embeddings on Bedrock: ``embed_clips``).

Each keyframe element of a video (``metadata["media"] == "video"``, with ``start``/``end``) gets the vector of its
shot's clip, picture and sound together (the shot cut from the source file: at most 30 s, the synchronous limit),
instead of the vector of its still frame, so a spoken passage or a moving scene is part of what is searched. Its
caption, OCR text and stored picture stay the keyframe's. Sources ingest can read again (local files) qualify; a
keyframe whose clip cannot be made keeps its still-image vector.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mmrag.elements import Element

__all__ = ["clip_vectors"]

logger = logging.getLogger(__name__)

_MAX_CLIP_SECONDS = 30.0


def clip_vectors(elements: Sequence[Element], embedder: Any) -> dict[str, list[float]]:
    """Vectors of the video keyframes among ``elements`` from their shots' clips, by element id; empty when the
    image embedder (or the model a cache wraps) has no ``embed_clips``."""
    model = getattr(embedder, "inner", embedder)
    embed = getattr(model, "embed_clips", None)
    if not callable(embed):
        return {}
    frames = [e for e in elements if e.kind == "image" and e.metadata.get("media") == "video"
              and isinstance(e.metadata.get("start"), int | float) and isinstance(e.metadata.get("end"), int | float)]
    out: dict[str, list[float]] = {}
    for source in dict.fromkeys(e.source for e in frames):
        path = Path(source)
        if not path.is_file():
            logger.info("%s: not a local file: its keyframes keep still-image vectors", source)
            continue
        from mmrag.parsers.video import cut_clip

        data = path.read_bytes()
        chosen: list[Element] = []
        clips: list[bytes] = []
        durations: list[float] = []
        for element in (e for e in frames if e.source == source):
            start = float(element.metadata["start"])
            end = min(float(element.metadata["end"]), start + _MAX_CLIP_SECONDS)
            try:
                clips.append(cut_clip(data, start, end))
            except ValueError as e:
                logger.warning("%s: no clip for the shot at %.1f s (%s): its still frame is embedded", source, start, e)
                continue
            chosen.append(element)
            durations.append(round(end - start, 3))
        for element, vector in zip(chosen, embed(clips, durations), strict=True):
            out[element.id] = list(vector)
    return out
