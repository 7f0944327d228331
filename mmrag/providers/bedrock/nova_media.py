"""Video and audio segments embedded with Amazon Nova Multimodal Embeddings on Bedrock, in the image space.

Nova puts text, images, video and audio in one space, so a video segment embedded here is found by a text query
or a picture (:class:`~mmrag.providers.bedrock.nova.NovaMultimodalEmbedder`) like any image. Two APIs, both from
the Amazon Nova user guide, "Complete embeddings request and response schema",
https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html:

* **Synchronous** InvokeModel for media up to 30 s ("The maximum context length is ... 30s of video and 30s of
  audio") sent inline (at most 25 MB after base64): one vector for the whole clip::

      {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
       "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": 1024,
                                 "video": {"format": "mp4", "embeddingMode": "AUDIO_VIDEO_COMBINED",
                                           "source": {"bytes": "<base64>"}}}}

* **Asynchronous** StartAsyncInvoke for longer media, which "can only accept S3 inputs": the file is staged under
  ``staging_uri``, ``taskType: "SEGMENTED_EMBEDDING"`` cuts it into ``segmentationConfig.durationSeconds`` pieces
  (1-30 s, at most 1434 segments, 2 hours), and the job writes ``<s3Uri>/<job id>/segmented-embedding-result.json``
  whose ``embeddingResults[].outputFileUri`` name JSON Lines files of ``{embedding, segmentMetadata:
  {segmentIndex, segmentStartSeconds, segmentEndSeconds}, status}``. GetAsyncInvoke is polled until ``Completed``.

Audio formats: mp3, wav, ogg. Video: mp4, mov, mkv, webm, flv, mpeg, mpg, wmv, 3gp.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from mmrag.config import Settings
from mmrag.errors import ProviderError
from mmrag.providers._concurrency import AdaptiveLimiter, RetryPolicy, call_with_retry
from mmrag.providers.bedrock._image_space import InvokeModelEmbedder
from mmrag.providers.bedrock.nova import NOVA_MME_MODEL

__all__ = ["AUDIO_FORMATS", "VIDEO_FORMATS", "MediaSegment", "NovaMediaEmbedder", "media_format"]

Media = Literal["video", "audio"]
Mode = Literal["AUDIO_VIDEO_COMBINED", "AUDIO_VIDEO_SEPARATE"]
AUDIO_FORMATS = ("mp3", "wav", "ogg")
VIDEO_FORMATS = ("mp4", "mov", "mkv", "webm", "flv", "mpeg", "mpg", "wmv", "3gp")
SYNC_MAX_SECONDS = 30.0
INLINE_MAX_BYTES = 25 * 1024 * 1024  # after base64
_EXTENSIONS = {"m4v": "mp4", "mpeg": "mpeg", "mpg": "mpg", "oga": "ogg", "opus": "ogg"}


@dataclass(frozen=True)
class MediaSegment:
    """One embedded stretch of a video or audio file.

    Attributes:
        start: seconds from the start of the file.
        end: seconds, inclusive as the service reports them.
        vector: the embedding.
        embedding_type: ``AUDIO_VIDEO_COMBINED``, ``VIDEO`` or ``AUDIO``.
    """

    start: float
    end: float
    vector: list[float]
    embedding_type: str


def media_format(name: str) -> tuple[Media, str] | None:
    """``("video", "mp4")`` for ``talk.mp4``: what Nova calls a file by its extension; None if Nova does not take it
    (``.m4a``, ``.flac``: transcode them first)."""
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    ext = _EXTENSIONS.get(ext, ext)
    if ext in VIDEO_FORMATS:
        return "video", ext
    if ext in AUDIO_FORMATS:
        return "audio", ext
    return None


class NovaMediaEmbedder(InvokeModelEmbedder):
    """Index vectors (``GENERIC_INDEX``) for video and audio segments with Nova Multimodal Embeddings.

    Args:
        settings: where unset arguments come from (``image_embedding_dims``, concurrency, retries).
        client: a ``bedrock-runtime`` client in a Region that offers the model.
        s3_client: an S3 client, needed for media over 30 s (the asynchronous API reads and writes S3 only).
        staging_uri: ``s3://bucket/prefix`` where long media are uploaded and the jobs write their output.
        model_id: default ``amazon.nova-2-multimodal-embeddings-v1:0``.
        dimensions: 3072, 1024, 384 or 256: the image space's, so segments and images are comparable.
        segment_seconds: segment length of the asynchronous API (1-30).
        embedding_mode: ``AUDIO_VIDEO_COMBINED`` (one vector a segment) or ``AUDIO_VIDEO_SEPARATE`` (two).
        poll_seconds: wait between two GetAsyncInvoke calls.
        job_timeout: seconds an asynchronous job may take before it is given up.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        client: Any,
        s3_client: Any = None,
        staging_uri: str | None = None,
        model_id: str | None = None,
        dimensions: int | None = None,
        segment_seconds: int = 10,
        embedding_mode: Mode = "AUDIO_VIDEO_COMBINED",
        poll_seconds: float = 5.0,
        job_timeout: float = 3600.0,
        limiter: AdaptiveLimiter | None = None,
        policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(settings, client=client, model_id=model_id or NOVA_MME_MODEL, dimensions=dimensions,
                         limiter=limiter, policy=policy)
        if not 1 <= segment_seconds <= 30:
            raise ValueError(f"segment_seconds must be 1-30 (the service's range), got {segment_seconds}")
        self.s3_client = s3_client
        self.staging_uri = staging_uri.rstrip("/") if staging_uri else None
        self.segment_seconds = segment_seconds
        self.embedding_mode: Mode = embedding_mode
        self.poll_seconds = poll_seconds
        self.job_timeout = job_timeout

    def _item(self, media: Media, fmt: str, source: dict[str, Any], segmented: bool) -> dict[str, Any]:
        allowed = VIDEO_FORMATS if media == "video" else AUDIO_FORMATS
        if fmt not in allowed:
            raise ValueError(f"Nova does not accept {media} in {fmt!r}; it takes {', '.join(allowed)}")
        item: dict[str, Any] = {"format": fmt, "source": source}
        if media == "video":
            item["embeddingMode"] = self.embedding_mode
        if segmented:
            item["segmentationConfig"] = {"durationSeconds": self.segment_seconds}
        return item

    def media_body(self, data: bytes, media: Media, fmt: str) -> dict[str, Any]:
        """The synchronous InvokeModel body for a clip of at most 30 s, sent inline."""
        source = {"bytes": base64.b64encode(data).decode("ascii")}
        return {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
                "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": self.dimensions,
                                          media: self._item(media, fmt, source, False)}}

    def segmented_input(self, uri: str, media: Media, fmt: str) -> dict[str, Any]:
        """The StartAsyncInvoke ``modelInput`` for a file in S3, cut into ``segment_seconds`` segments."""
        source = {"s3Location": {"uri": uri}}
        return {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SEGMENTED_EMBEDDING",
                "segmentedEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX",
                                             "embeddingDimension": self.dimensions,
                                             media: self._item(media, fmt, source, True)}}

    def embed_media(self, data: bytes, *, media: Media, fmt: str, duration: float) -> list[MediaSegment]:
        """Segments of a video or audio file with their vectors: one InvokeModel call for a clip of at most 30 s
        that fits inline, else an asynchronous job through S3 (``s3_client`` and ``staging_uri`` needed).

        Raises:
            ValueError: a format Nova does not take, or long media without S3 staging.
            ProviderError: a request or the job failed.
        """
        inline = 4 * ((len(data) + 2) // 3) <= INLINE_MAX_BYTES
        if duration <= SYNC_MAX_SECONDS and inline:
            body = self.media_body(data, media, fmt)
            return self._invoke(body, lambda payload: [
                MediaSegment(0.0, round(duration, 3), [float(v) for v in e["embedding"]], str(e["embeddingType"]))
                for e in payload["embeddings"]])
        if self.s3_client is None or self.staging_uri is None:
            raise ValueError(f"{media} of {duration:.0f} s: Nova embeds media over 30 s through S3 only; set an S3 "
                             "bucket (MMRAG_S3_BUCKET) for the staging area")
        key_uri = f"{self.staging_uri}/inputs/{uuid.uuid4().hex}.{fmt}"
        bucket, key = _split(key_uri)
        self.s3_client.put_object(Bucket=bucket, Key=key, Body=data)
        try:
            return self._segmented(key_uri, media, fmt)
        finally:
            self.s3_client.delete_object(Bucket=bucket, Key=key)

    def _call(self, fn: Callable[[], Any]) -> Any:
        return call_with_retry(fn, limiter=self.limiter, policy=self.policy, model_id=self.model_id, stats=self.stats)

    def _segmented(self, uri: str, media: Media, fmt: str) -> list[MediaSegment]:
        output = f"{self.staging_uri}/outputs/"
        started = self._call(lambda: self.client.start_async_invoke(
            modelId=self.model_id, modelInput=self.segmented_input(uri, media, fmt),
            outputDataConfig={"s3OutputDataConfig": {"s3Uri": output}}))
        arn = str(started["invocationArn"])
        deadline = time.monotonic() + self.job_timeout
        while True:
            job = self._call(lambda: self.client.get_async_invoke(invocationArn=arn))
            if job["status"] == "Completed":
                break
            if job["status"] == "Failed":
                raise ProviderError(f"Nova job {arn} failed: {job.get('failureMessage', 'no reason given')}")
            if time.monotonic() > deadline:
                raise ProviderError(f"Nova job {arn} still {job['status']} after {self.job_timeout:.0f} s")
            time.sleep(self.poll_seconds)
        bucket, prefix = _split(output)
        job_id = arn.rsplit("/", 1)[-1]
        result = json.loads(self._read(bucket, f"{prefix}{job_id}/segmented-embedding-result.json"))
        segments: list[MediaSegment] = []
        for entry in result["embeddingResults"]:
            if entry.get("status") != "SUCCESS":
                raise ProviderError(f"Nova job {arn}: {entry.get('embeddingType')} {entry.get('status')}: "
                                    f"{entry.get('message') or entry.get('failureReason')}")
            for line in self._read(*_split(entry["outputFileUri"])).decode().splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                if row.get("status", "SUCCESS") != "SUCCESS":
                    raise ProviderError(f"Nova job {arn}: segment failed: {row.get('message') or row}")
                meta = row["segmentMetadata"]
                segments.append(MediaSegment(float(meta["segmentStartSeconds"]), float(meta["segmentEndSeconds"]),
                                             [float(v) for v in row["embedding"]], str(entry["embeddingType"])))
        return sorted(segments, key=lambda s: (s.start, s.embedding_type))

    def _read(self, bucket: str, key: str) -> bytes:
        body: bytes = self.s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        return body


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key
