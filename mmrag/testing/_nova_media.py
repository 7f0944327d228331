"""Nova Multimodal Embeddings for video and audio in the emulator: the synchronous ``video``/``audio`` inputs of
InvokeModel, and StartAsyncInvoke / GetAsyncInvoke with ``SEGMENTED_EMBEDDING`` written to S3.

Request and output shapes follow the Amazon Nova user guide, "Complete embeddings request and response schema",
https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html:

* synchronous ``singleEmbeddingParams.audio: {format: mp3|wav|ogg, source}`` and ``.video: {format:
  mp4|mov|mkv|webm|flv|mpeg|mpg|wmv|3gp, source, embeddingMode: AUDIO_VIDEO_COMBINED|AUDIO_VIDEO_SEPARATE}``;
  "The maximum context length is ... 30s of video and 30s of audio"; inline requests at most 25 MB after base64.
* asynchronous ``modelInput: {schemaVersion?, taskType: "SEGMENTED_EMBEDDING", segmentedEmbeddingParams:
  {embeddingPurpose, embeddingDimension?, audio|video: {..., segmentationConfig: {durationSeconds?: 1-30 = 5}}}}``;
  "Asynchronous operations can only accept S3 inputs"; at most 1434 audio/video segments; video 2 GB and 2 hours,
  audio 1 GB and 2 hours. Output: ``<s3Uri>/<job id>/segmented-embedding-result.json`` (``sourceFileUri``,
  ``embeddingDimension``, ``embeddingResults: [{embeddingType, status, outputFileUri}]``) and one JSON Lines file
  per modality, each line ``{embedding, segmentMetadata: {segmentIndex, segmentStartSeconds, segmentEndSeconds},
  status}``. The guide lists a ``manifest.json`` too without its fields: the emulator does not write it.

The vectors are fake model outputs, deterministic and meaningful enough to search: a video segment's ``VIDEO``
vector is the emulator's image vector (:func:`mmrag.testing._images.image_vector`) of the frame in the middle of the
segment, so a Nova image query with that picture finds it; an ``AUDIO`` vector hashes the loudness envelope; an
``AUDIO_VIDEO_COMBINED`` vector is the video vector with a quarter of the audio vector mixed in. Decoding uses
PyAV (``mmrag[video]``).
"""

from __future__ import annotations

import io
import json
import math
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from mmrag.testing._base import ApiError
from mmrag.testing._images import decode_base64, image_vector

__all__ = ["AsyncJobs", "check_media_input", "sync_media_embeddings"]

DOC = "https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html"
AUDIO_FORMATS = ("mp3", "wav", "ogg")
VIDEO_FORMATS = ("mp4", "mov", "mkv", "webm", "flv", "mpeg", "mpg", "wmv", "3gp")
MODES = ("AUDIO_VIDEO_COMBINED", "AUDIO_VIDEO_SEPARATE")
SYNC_MAX_SECONDS = 30.0
INLINE_MAX_BYTES = 25 * 1024 * 1024  # "(Inline) All file types 25 MB", after base64
ASYNC_MAX_SECONDS = 2 * 3600.0
MAX_SEGMENTS = 1434
# What FFmpeg calls the containers a declared format may be read as.
_DEMUXERS = {"mp4": "mp4", "mov": "mov", "3gp": "3gp", "mkv": "matroska", "webm": "webm", "flv": "flv",
             "mpeg": "mpeg", "mpg": "mpeg", "wmv": "asf", "mp3": "mp3", "wav": "wav", "ogg": "ogg"}


def _fail(where: str, detail: str) -> ApiError:
    return ApiError.malformed(f"{where}: {detail}")


def check_media_input(item: Any, kind: str, where: str, *, segmented: bool) -> tuple[dict[str, Any], str, str]:
    """Validate an ``audio`` or ``video`` object: its keys, ``format``, ``embeddingMode`` (video) and
    ``segmentationConfig`` (asynchronous only, required there).

    Returns:
        The ``source`` object, the format and the embedding mode (``""`` for audio).
    """
    allowed = {"format", "source"} | ({"embeddingMode"} if kind == "video" else set())
    allowed |= {"segmentationConfig"} if segmented else set()
    if not isinstance(item, dict):
        raise _fail(where, f"expected type: JSONObject, found: {type(item).__name__}")
    extra = sorted(set(item) - allowed)
    if extra:
        raise _fail(where, f"extraneous key [{extra[0]}] is not permitted")
    formats = VIDEO_FORMATS if kind == "video" else AUDIO_FORMATS
    if "format" not in item:
        raise _fail(where, "required key [format] not found")
    if item["format"] not in formats:
        raise _fail(f"{where}/format", f"{item['format']!r} is not a valid enum value (allowed: {', '.join(formats)})")
    mode = ""
    if kind == "video":
        if "embeddingMode" not in item:
            raise _fail(where, "required key [embeddingMode] not found")
        mode = str(item["embeddingMode"])
        if mode not in MODES:
            raise _fail(f"{where}/embeddingMode", f"{mode!r} is not a valid enum value (allowed: {', '.join(MODES)})")
    if segmented:
        config = item.get("segmentationConfig")
        if not isinstance(config, dict):
            raise _fail(where, "required key [segmentationConfig] not found")
        if set(config) - {"durationSeconds"}:
            raise _fail(f"{where}/segmentationConfig", f"extraneous key [{sorted(set(config))[0]}] is not permitted")
        seconds = config.get("durationSeconds", 5)
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 1 <= seconds <= 30:
            raise _fail(f"{where}/segmentationConfig/durationSeconds", f"{seconds!r} is not an integer in 1-30")
    source = item.get("source")
    if not isinstance(source, dict) or len(source) != 1 or not set(source) <= {"bytes", "s3Location"}:
        raise _fail(f"{where}/source", 'expected exactly one of {"bytes": <base64>} or {"s3Location": {"uri"}}')
    if segmented and "bytes" in source:
        raise ApiError.validation("Asynchronous operations can only accept S3 inputs: use source.s3Location.")
    if "s3Location" in source:
        location = source["s3Location"]
        if not isinstance(location, dict) or set(location) - {"uri", "bucketOwner"} or \
                not str(location.get("uri", "")).startswith("s3://"):
            raise _fail(f"{where}/source/s3Location", 'expected {"uri": "s3://bucket/key", "bucketOwner"?}')
    return source, str(item["format"]), mode


@dataclass
class _Media:
    duration: float
    frames: list[tuple[float, bytes]] = field(default_factory=list)  # (time, PNG) twice a second
    loudness: list[float] = field(default_factory=list)  # RMS per 0.1 s
    has_audio: bool = False


def _decode(data: bytes, fmt: str, kind: str, where: str) -> _Media:
    try:
        import av
    except ImportError as e:
        raise ApiError.validation("mmrag emulator: audio and video inputs need PyAV: pip install 'mmrag[video]'") from e
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as e:
        raise ApiError.validation(f"{where}: Could not process the {kind}: the bytes are not a readable {fmt}.") from e
    with container:
        names = set(container.format.name.split(","))
        if _DEMUXERS[fmt] not in names and not (fmt in ("mp4", "mov", "3gp") and "mov" in names):
            raise ApiError.validation(f"The {kind} format {fmt} does not match the {kind} bytes.")
        video = container.streams.video[0] if kind == "video" and container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if kind == "video" and video is None:
            raise ApiError.validation(f"{where}: the input has no video stream.")
        if kind == "audio" and audio is None:
            raise ApiError.validation(f"{where}: the input has no audio stream.")
        media = _Media(duration=(container.duration or 0) / 1_000_000, has_audio=audio is not None)
        next_frame, window, last = 0.0, 0.0, 0.0
        power: list[float] = []
        streams = [s for s in (video, audio) if s is not None]
        for packet in container.demux(*streams):
            for frame in packet.decode():
                if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                    continue
                t = float(frame.time or 0.0)
                last = max(last, t)
                if isinstance(frame, av.VideoFrame) and t + 1e-6 >= next_frame:
                    from PIL import Image

                    buf = io.BytesIO()
                    Image.fromarray(frame.to_ndarray(format="rgb24", width=64, height=64)).save(buf, format="PNG")
                    media.frames.append((t, buf.getvalue()))
                    next_frame = t + 0.5
                elif isinstance(frame, av.AudioFrame):
                    samples = frame.to_ndarray().astype("float64")
                    rms = float((samples**2).mean() ** 0.5) if samples.size else 0.0
                    while t >= window + 0.1:
                        media.loudness.append(sum(power) / len(power) if power else 0.0)
                        power, window = [], window + 0.1
                    power.append(rms)
        media.duration = max(media.duration, last)
        return media


def _audio_vector(loudness: list[float], dims: int) -> list[float]:
    vector = [0.0] * dims
    peak = max(loudness, default=0.0) or 1.0
    for i, value in enumerate(loudness):
        vector[(i * 7919) % dims] += value / peak
    vector[0] += 1e-3  # silence still gets a stable, non-zero vector
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def _segment(media: _Media, kind: str, mode: str, start: float, end: float, dims: int) -> list[tuple[str, list[float]]]:
    """``(embeddingType, vector)`` pairs of one segment, as the mode asks."""
    loud = media.loudness[int(start * 10): max(int(start * 10) + 1, int(end * 10))]
    audio = _audio_vector(loud, dims)
    if kind == "audio":
        return [("AUDIO", audio)]
    middle = (start + end) / 2
    inside = [f for f in media.frames if start - 1e-6 <= f[0] <= end + 1e-6] or media.frames
    _, png = min(inside, key=lambda f: abs(f[0] - middle))
    picture = image_vector(png, dims, "video frame")
    if mode == "AUDIO_VIDEO_SEPARATE":
        return [("VIDEO", picture)] + ([("AUDIO", audio)] if media.has_audio else [])
    mixed = [p + 0.25 * a for p, a in zip(picture, audio, strict=True)] if media.has_audio else picture
    norm = math.sqrt(sum(v * v for v in mixed)) or 1.0
    return [("AUDIO_VIDEO_COMBINED", [v / norm for v in mixed])]


def _read_s3(s3: Any, uri: str) -> bytes:
    if s3 is None:
        raise ApiError.validation("mmrag emulator: s3Location sources need an S3 client: call emulator.use_s3(client).")
    bucket, _, key = uri[len("s3://"):].partition("/")
    try:
        body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except Exception as e:  # botocore's ClientError: the service answers with its own words
        raise ApiError.validation(f"Unable to access the S3 object {uri}: {e}") from e
    return body


def sync_media_embeddings(params: dict[str, Any], kind: str, dims: int, s3: Any) -> list[dict[str, Any]]:
    """The ``embeddings`` of a synchronous ``audio``/``video`` request (one, or two for ``AUDIO_VIDEO_SEPARATE``)."""
    where = f"#/singleEmbeddingParams/{kind}"
    source, fmt, mode = check_media_input(params[kind], kind, where, segmented=False)
    if "bytes" in source:
        if len(str(source["bytes"])) > INLINE_MAX_BYTES:
            raise ApiError.validation(f"Inline input of {len(source['bytes'])} bytes (base64) is over the 25 MB limit.")
        data = decode_base64(source["bytes"], f"{where}/source/bytes")
    else:
        data = _read_s3(s3, source["s3Location"]["uri"])
    media = _decode(data, fmt, kind, where)
    if media.duration > SYNC_MAX_SECONDS + 1e-3:
        raise ApiError.validation(f"The {kind} is {media.duration:.1f} s long: synchronous requests accept at most "
                                  f"{SYNC_MAX_SECONDS:.0f} s; use StartAsyncInvoke with SEGMENTED_EMBEDDING.")
    return [{"embeddingType": t, "embedding": v} for t, v in _segment(media, kind, mode, 0.0, media.duration, dims)]


@dataclass
class _Job:
    arn: str
    model_arn: str
    output: dict[str, Any]
    token: str | None
    submitted: float
    status: str = "InProgress"
    failure: str | None = None
    ended: float | None = None


class AsyncJobs:
    """StartAsyncInvoke and GetAsyncInvoke for Nova ``SEGMENTED_EMBEDDING``; jobs run on a thread and write to S3."""

    def __init__(self) -> None:
        self.s3: Any = None
        self.delay = 0.0  # seconds a job stays InProgress, to exercise polling
        self._jobs: dict[str, _Job] = {}
        self._lock = threading.Lock()

    def start(self, body: Any, base_model: str, region: str) -> dict[str, Any]:
        """Validate a StartAsyncInvoke body and start the job; the response ``{invocationArn}``."""
        if not isinstance(body, dict):
            raise ApiError.validation("1 validation error detected: the request body is not a JSON object")
        output = body.get("outputDataConfig")
        s3_out = output.get("s3OutputDataConfig") if isinstance(output, dict) else None
        if not isinstance(s3_out, dict) or not str(s3_out.get("s3Uri", "")).startswith("s3://"):
            raise ApiError.validation("Value at 'outputDataConfig.s3OutputDataConfig.s3Uri' failed to satisfy "
                                      "constraint: Member must match the pattern s3://...")
        model_input = body.get("modelInput")
        if not isinstance(model_input, dict):
            raise ApiError.validation("modelInput is required.")
        if set(model_input) - {"schemaVersion", "taskType", "segmentedEmbeddingParams"}:
            raise ApiError.malformed("#: extraneous key [" + sorted(set(model_input) - {
                "schemaVersion", "taskType", "segmentedEmbeddingParams"})[0] + "] is not permitted")
        if model_input.get("schemaVersion", "nova-multimodal-embed-v1") != "nova-multimodal-embed-v1":
            raise ApiError.malformed(f"#/schemaVersion: {model_input['schemaVersion']!r} is not a valid enum value")
        if model_input.get("taskType") != "SEGMENTED_EMBEDDING":
            raise ApiError.validation('taskType must be "SEGMENTED_EMBEDDING" for asynchronous calls.')
        params = model_input.get("segmentedEmbeddingParams")
        if not isinstance(params, dict):
            raise ApiError.malformed("#: required key [segmentedEmbeddingParams] not found")
        from mmrag.testing._models import check_nova_common

        dims = check_nova_common(params, "#/segmentedEmbeddingParams")
        inputs = [k for k in ("text", "image", "audio", "video") if k in params]
        if inputs[0] not in ("audio", "video"):
            raise ApiError.validation(f"mmrag emulator: asynchronous {inputs[0]} inputs are not emulated.")
        kind = inputs[0]
        where = f"#/segmentedEmbeddingParams/{kind}"
        source, fmt, mode = check_media_input(params[kind], kind, where, segmented=True)
        seconds = int(params[kind]["segmentationConfig"].get("durationSeconds", 5))
        job_id = uuid.uuid4().hex[:12]
        arn = f"arn:aws:bedrock:{region}:123456789012:async-invoke/{job_id}"
        job = _Job(arn, f"arn:aws:bedrock:{region}::foundation-model/{base_model}", {"s3OutputDataConfig": s3_out},
                   body.get("clientRequestToken"), time.time())
        with self._lock:
            self._jobs[arn] = job
        args = (job, job_id, source["s3Location"]["uri"], fmt, kind, mode, seconds, dims, s3_out["s3Uri"])
        threading.Thread(target=self._run, args=args, name=f"nova-async-{job_id}", daemon=True).start()
        return {"invocationArn": arn}

    def get(self, arn: str) -> dict[str, Any]:
        """The GetAsyncInvoke response of a job."""
        with self._lock:
            job = self._jobs.get(arn)
        if job is None:
            raise ApiError(404, "ResourceNotFoundException", f"Async invocation {arn} was not found.")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.submitted))
        reply: dict[str, Any] = {"invocationArn": job.arn, "modelArn": job.model_arn, "status": job.status,
                                 "submitTime": stamp, "lastModifiedTime": stamp, "outputDataConfig": job.output}
        if job.token:
            reply["clientRequestToken"] = job.token
        if job.ended is not None:
            reply["endTime"] = reply["lastModifiedTime"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(job.ended))
        if job.failure:
            reply["failureMessage"] = job.failure
        return reply

    def _run(self, job: _Job, job_id: str, uri: str, fmt: str, kind: str, mode: str, seconds: int, dims: int,
             out_uri: str) -> None:
        try:
            time.sleep(self.delay)
            media = _decode(_read_s3(self.s3, uri), fmt, kind, f"#/segmentedEmbeddingParams/{kind}")
            if media.duration > ASYNC_MAX_SECONDS:
                raise ApiError.validation(f"The {kind} is longer than 2 hours.")
            count = max(1, math.ceil(media.duration / seconds - 1e-6))
            if count > MAX_SEGMENTS:
                raise ApiError.validation(f"{count} segments: at most {MAX_SEGMENTS} audio/video segments per job.")
            lines: dict[str, list[str]] = {}
            for i in range(count):
                start, end = i * seconds, min(media.duration, (i + 1) * seconds)
                for etype, vector in _segment(media, kind, mode, start, end, dims):
                    meta = {"segmentIndex": i, "segmentStartSeconds": round(start, 3),
                            "segmentEndSeconds": round(end, 3)}
                    lines.setdefault(etype, []).append(json.dumps({"embedding": vector, "segmentMetadata": meta,
                                                                   "status": "SUCCESS"}))
            bucket, _, prefix = out_uri[len("s3://"):].partition("/")
            base = f"{prefix.rstrip('/')}/{job_id}".lstrip("/")
            results = []
            for etype, rows in lines.items():
                name = "audio-video" if etype == "AUDIO_VIDEO_COMBINED" else etype.lower()
                key = f"{base}/embedding-{name}.jsonl"
                self.s3.put_object(Bucket=bucket, Key=key, Body=("\n".join(rows) + "\n").encode())
                results.append({"embeddingType": etype, "status": "SUCCESS", "outputFileUri": f"s3://{bucket}/{key}"})
            summary = {"sourceFileUri": uri, "embeddingDimension": dims, "embeddingResults": results}
            self.s3.put_object(Bucket=bucket, Key=f"{base}/segmented-embedding-result.json",
                               Body=json.dumps(summary).encode())
            job.status = "Completed"
        except ApiError as e:
            job.status, job.failure = "Failed", e.message
        except Exception as e:  # the S3 write failed: the job fails, as the service's would
            job.status, job.failure = "Failed", f"{type(e).__name__}: {e}"
        job.ended = time.time()
