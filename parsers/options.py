"""Parser options: a frozen, dependency-free view of the parsing part of :class:`mmrag.config.Settings`."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from mmrag.config import Settings

__all__ = ["ParseOptions"]


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """How sources are fetched and split. Build from settings with :meth:`from_settings`."""

    chunk_size: int = 1000
    chunk_overlap: int = 200
    find_tables: Literal["auto", "always", "never"] = "auto"
    pages_as_images: bool = False
    render_dpi: int = 110
    min_image_px: int = 64
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 89_478_485
    fetch_timeout: float = 20.0
    fetch_max_redirects: int = 5
    fetch_max_bytes: int = 50 * 1024 * 1024
    max_source_bytes: int = 512 * 1024 * 1024
    max_page_images: int = 200
    max_archive_entries: int = 10_000
    max_unpacked_bytes: int = 1024 * 1024 * 1024
    page_images_timeout: float = 60.0
    allow_private_urls: bool = False
    user_agent: str = "mmrag/0.1"
    s3_endpoint_url: str | None = None
    """Where ``s3://`` sources are read from (MinIO, a VPC endpoint; default: boto3's configuration)."""
    max_media_seconds: float = 4 * 3600.0
    max_video_frames: int = 200
    transcriber: str = "pocketsphinx"

    def __post_init__(self) -> None:
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ValueError(f"need 0 <= chunk_overlap < chunk_size, got {self.chunk_overlap} and {self.chunk_size}")

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseOptions:
        names = {f.name for f in fields(cls)}
        return cls(**{name: getattr(settings, name) for name in names})
