"""The providers and the collection that Settings describe, opened together (models decide vector sizes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mmrag.config import Settings
    from mmrag.providers.factory import Providers
    from mmrag.stores.collection import Collection

__all__ = ["open_components"]


def open_components(settings: Settings, *, create: bool = True) -> tuple[Providers, Collection]:
    """The providers and the collection ``settings`` describe.

    Args:
        settings: which models and which collection.
        create: create the collection if it does not exist (only ingesting should). With ``create=False`` a
            missing collection raises :class:`~mmrag.errors.NotFoundError` naming the known ones, before any
            model is loaded.

    Raises:
        NotFoundError: ``create`` is false and the collection does not exist.
        ConfigError: the collection was built with other models, or a backend is misconfigured.
    """
    from mmrag.providers.factory import build_providers
    from mmrag.stores.collection import SpaceInfo, open_collection, require_collection

    if not create:
        require_collection(settings)
    providers = build_providers(settings)
    text_dims = getattr(providers.text_embeddings, "dimensions", None) or len(
        providers.text_embeddings.embed_query("dimension probe"))
    text = SpaceInfo(str(getattr(providers.text_embeddings, "model_id", type(providers.text_embeddings).__name__)),
                     int(text_dims))
    image = SpaceInfo(providers.image_embedder.model_id, providers.image_embedder.dimensions)
    return providers, open_collection(settings, text=text, image=image, create=create)
