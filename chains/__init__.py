"""Chains (imported as ``mmrag.chains``): captioning, ingest and query. Arrive with the model providers and stores."""

__all__: list[str] = []
