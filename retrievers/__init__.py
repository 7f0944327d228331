"""Retrievers (imported as ``mmrag.retrievers``): multimodal retrieval and rank fusion. Arrives with the query chain."""

__all__: list[str] = []
