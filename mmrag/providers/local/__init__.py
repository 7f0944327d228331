"""Offline providers: MiniLM text embeddings, OCR, OCR-based captions, local image features, CLIP.

Import the concrete modules (``mmrag.providers.local.local_text`` ...) directly; they load numpy,
onnxruntime, PIL or torch on first use, so this package imports nothing heavy.
"""
