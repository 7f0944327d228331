"""Settings, read from arguments, ``MMRAG_*`` environment variables and a ``.env`` file.

Two profiles: ``local`` (the default: offline, embedded FAISS, local models) and ``bedrock`` (AWS).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


def _as_int(value: Any) -> Any:
    """``"256"`` from the environment is the integer 256 (Literal[int] fields do not coerce strings)."""
    return int(value) if isinstance(value, str) and value.strip().isdigit() else value


class Settings(BaseSettings):
    """Everything configurable in mmrag. Every field can be set as ``MMRAG_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="MMRAG_", env_file=".env", extra="ignore", frozen=True)

    profile: Literal["local", "bedrock"] = Field("local", description="local (offline) or bedrock (AWS)")
    home: Path = Field(Path(".mmrag"), description="root folder of all state (indexes, objects, caches)")

    # Chunking (characters). The defaults follow common RAG practice: ~1000 chars with 200 overlap.
    chunk_size: int = Field(1000, ge=100, description="target size of a text chunk in characters")
    chunk_overlap: int = Field(200, ge=0, description="characters shared by consecutive chunks")

    # PDF
    find_tables: Literal["auto", "always", "never"] = Field(
        "auto", description="auto runs table detection only on pages with ruling lines or aligned columns"
    )
    pages_as_images: bool = Field(False, description="also render every PDF page as an image (slide decks)")
    render_dpi: int = Field(110, ge=36, le=400, description="DPI for page renders and vector figures")

    # Images
    min_image_px: int = Field(64, ge=1, description="skip images whose width or height is below this")
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="skip images larger than this")
    max_image_pixels: int = Field(
        89_478_485, ge=1, description="refuse images with more pixels than this (decompression bombs)"
    )

    # URL fetching
    fetch_timeout: float = Field(
        20.0, gt=0, description="seconds one fetch may take in all (connect, headers, body, redirects)"
    )
    fetch_max_redirects: int = Field(5, ge=0)
    fetch_max_bytes: int = Field(
        50 * 1024 * 1024, ge=1024, description="largest body accepted from a URL (and all images of one page)"
    )
    max_source_bytes: int = Field(
        512 * 1024 * 1024, ge=1024, description="largest local file parsed or ingested (one source)"
    )
    max_archive_entries: int = Field(
        10_000, ge=1, description="most entries in a DOCX/PPTX/XLSX zip, checked before extraction (zip bombs)"
    )
    max_unpacked_bytes: int = Field(
        1024 * 1024 * 1024, ge=1024,
        description="largest declared uncompressed size of a DOCX/PPTX/XLSX, checked before extraction (zip bombs)",
    )
    max_page_images: int = Field(200, ge=0, description="remote images fetched per HTML page at most")
    page_images_timeout: float = Field(60.0, gt=0, description="seconds for fetching all remote images of a page")
    allow_private_urls: bool = Field(
        False, description="allow loopback/private/link-local addresses (off by default: SSRF protection)"
    )
    user_agent: str = Field("mmrag/0.1 (+https://github.com/mmrag/mmrag)")

    # Video and audio (mmrag[video])
    max_media_seconds: float = Field(4 * 3600.0, gt=0, description="refuse video/audio files longer than this")
    max_video_frames: int = Field(200, ge=0, description="distinct keyframes kept per video at most")
    transcriber: str = Field("pocketsphinx", description="speech in video/audio: off, pocketsphinx, or the path "
                             "of a faster-whisper model folder you have (nothing is downloaded)")

    # Bedrock (profile "bedrock"). Model ids are current, non-retired defaults given as BASE ids: mmrag calls the
    # inference profile of your Region (us./eu./jp./au./apac., else global.), because these Claude models cannot be
    # invoked on demand by base id. Profile ids (us.anthropic...) and ARNs are used as given (a geo profile must
    # match the Region). Facts per model: mmrag/providers/bedrock/catalog.py; `mmrag models` shows what is called.
    aws_region: str | None = Field(None, description="AWS region; default: AWS_REGION / your AWS config")
    aws_profile: str | None = Field(
        None, description="named AWS profile for every AWS client (Bedrock, S3, OpenSearch SigV4); default chain"
    )
    bedrock_endpoint_url: str | None = Field(None, description="bedrock-runtime endpoint (VPC endpoint, emulator); "
                                             "one per Region as region=url,region=url")
    bedrock_inference_scope: Literal["geo", "global"] = Field(
        "geo", description="geo: the inference profile of your Region's geography (an error where none covers it); "
        "global: the global. profile (any commercial Region, more throughput)"
    )
    fast_model: str = Field("anthropic.claude-haiku-4-5-20251001-v1:0",
                            description="captions, table summaries, decomposition")
    strong_model: str = Field("anthropic.claude-sonnet-4-5-20250929-v1:0", description="answer synthesis")
    fast_max_tokens: int = Field(1024, ge=1, description="maxTokens of every fast-model call (scaled for models "
                                 "that think adaptively)")
    strong_max_tokens: int = Field(2048, ge=1, description="maxTokens of every strong-model call (scaled likewise)")
    text_embedding_model: str = Field("amazon.titan-embed-text-v2:0")
    text_embedding_dims: Annotated[Literal[256, 512, 1024], BeforeValidator(_as_int)] = 1024
    image_embedding_model: str = Field(
        "amazon.titan-embed-image-v1",
        description="image space: amazon.titan-embed-image-v1, amazon.nova-2-multimodal-embeddings-v1:0 or "
        "cohere.embed-v4:0 "
        "(MMRAG_IMAGE_EMBEDDING_MODEL, or MMRAG_IMAGE_MODEL for short)",
        validation_alias=AliasChoices("image_embedding_model", "MMRAG_IMAGE_EMBEDDING_MODEL", "MMRAG_IMAGE_MODEL"),
    )
    image_embedding_dims: Annotated[Literal[256, 384, 512, 1024, 1536, 3072], BeforeValidator(_as_int)] = 1024
    image_caption_max_tokens: int = Field(
        128, ge=8, le=256, description="captions are cut to this many tokens before joint image+text embedding"
    )
    max_concurrency: int = Field(16, ge=1, le=256, description="model requests in flight at once")
    executor: Literal["local", "ray"] = Field(
        "local", description="where ingest runs: local (threads in this process) or ray (a Ray cluster: RAY_ADDRESS, "
        "else a local one; max_concurrency is then the limit for the whole cluster)")
    max_retries: int = Field(8, ge=0, description="retries of throttled / 5xx / timed-out model calls")
    request_timeout: float = Field(120.0, gt=0, description="seconds to wait for one model response")
    cache: bool = Field(True, description="cache captions and embeddings under MMRAG_HOME (sqlite)")
    cache_store: Literal["auto", "local", "postgres"] = Field(
        "auto", description="where the model cache lives: auto (the shared PostgreSQL database when MMRAG_PG_DSN "
        "is set with pgvector or OpenSearch, else MMRAG_HOME), local (sqlite under MMRAG_HOME) or postgres")
    answer_cache: bool = Field(False, description="reuse answers to similar questions on unchanged data (opt-in)")
    answer_cache_threshold: float | None = Field(
        None, gt=0, le=1, description="cosine similarity from which a cached question counts as the same")

    # Local profile
    local_text_model: Path | None = Field(
        None, description="a sentence-transformers model folder; default: the packaged all-MiniLM-L6-v2"
    )
    ocr: Literal["auto", "rapidocr", "tesseract", "off"] = Field("auto", description="OCR engine for images")
    clip_model: Path | None = Field(None, description="a CLIP model folder for the image space, if you have one")

    # Stores
    collection: str = Field("default", pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
                            description="collection name (lowercase letters, digits, - and _)")
    vector_store: Literal["faiss", "opensearch", "pgvector"] = Field(
        "faiss", description="faiss (embedded, under MMRAG_HOME), opensearch or pgvector"
    )
    hnsw_threshold: int = Field(50_000, ge=1, description="FAISS switches from exact to HNSW search past this size")
    s3_bucket: str | None = Field(None, description="keep raw objects in this S3 bucket (else MMRAG_HOME/objects)")
    s3_prefix: str = Field("mmrag/", description="key prefix inside the S3 bucket")
    s3_endpoint_url: str | None = Field(None, description="S3 endpoint (MinIO, moto, VPC endpoint)")
    presign_expiry: int = Field(3600, ge=1, le=604_800, description="seconds a presigned object link stays valid")
    opensearch_url: str | None = Field(None, description="OpenSearch endpoint, e.g. https://search-x.es.amazonaws.com")
    opensearch_auth: Literal["basic", "sigv4", "none"] = Field("basic", description="basic auth or AWS SigV4")
    opensearch_service: Literal["es", "aoss"] = Field("es", description="SigV4: es or aoss (Serverless)")
    opensearch_user: str | None = Field(None)
    opensearch_password: SecretStr | None = Field(None)
    opensearch_verify_certs: bool = Field(True)
    pg_dsn: SecretStr | None = Field(None, description="PostgreSQL conninfo, e.g. postgresql://user:pw@host/db")
    manifest: Literal["auto", "sqlite", "postgres"] = Field(
        "auto", description="where a collection's manifest lives: auto (PostgreSQL with pgvector, or with OpenSearch "
        "when MMRAG_PG_DSN is set: shared by every machine; else sqlite under MMRAG_HOME), sqlite (this machine "
        "only) or postgres")
    lease_seconds: float = Field(
        60.0, ge=1.0, le=3600.0, description="how long an ingest's lease on a source lasts unless renewed (renewed "
        "every third of it): the sources of an ingest killed with kill -9 are taken over after this")

    @model_validator(mode="after")
    def _check_image_dims(self) -> Settings:
        if self.image_embedding_dims == 3072 and "nova" not in self.image_embedding_model:
            raise ValueError("image_embedding_dims 3072 needs amazon.nova-2-multimodal-embeddings-v1:0 (Titan "
                             "Multimodal Embeddings G1 offers 256, 384 or 1024)")
        if self.image_embedding_dims in (512, 1536) and "cohere.embed-v4" not in self.image_embedding_model:
            raise ValueError(f"image_embedding_dims {self.image_embedding_dims} needs cohere.embed-v4:0 (Titan "
                             "Multimodal Embeddings G1 offers 256, 384 or 1024; Nova 256, 384, 1024 or 3072)")
        return self

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self
