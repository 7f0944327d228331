"""Model providers: the only place where Settings become concrete model clients.

Import the concrete modules lazily (they pull boto3, onnxruntime, numpy...). Being written.
"""

from mmrag.providers.base import CAPTION_KEY, SUMMARY_KEY, Captioner, ImageEmbedder, RoleInfo, embedding_text

__all__ = ["CAPTION_KEY", "SUMMARY_KEY", "Captioner", "ImageEmbedder", "RoleInfo", "embedding_text"]
