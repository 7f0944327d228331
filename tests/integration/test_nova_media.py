"""Nova Multimodal Embeddings for video and audio segments: the synchronous InvokeModel body for short clips, the
asynchronous StartAsyncInvoke job through (moto) S3 for long media, and the emulator rejecting request shapes the
service rejects (https://docs.aws.amazon.com/nova/latest/userguide/embeddings-schema.html). Real boto3 throughout.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mmrag.providers.bedrock.nova import NovaMultimodalEmbedder
from mmrag.providers.bedrock.nova_media import MediaSegment, NovaMediaEmbedder, media_format
from mmrag.testing import BedrockEmulator
from mmrag.testing.s3 import MotoS3Server

pytest.importorskip("av", reason="video tests need PyAV: pip install 'mmrag[video]'")
from mmrag.testing.media import slideshow  # noqa: E402  (needs av, checked above)

pytestmark = pytest.mark.integration

NOVA = "amazon.nova-2-multimodal-embeddings-v1:0"
DATA = Path(__file__).parents[1] / "data"
SLIDES = [DATA / "images" / "img_031.png", DATA / "images" / "img_029.png", DATA / "ocr" / "img_034_1000px.png"]


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("nova-media")
    return {"short": slideshow(folder / "short.mp4", [(SLIDES[0], 3.0), (SLIDES[1], 3.0)]),
            "long": slideshow(folder / "long.mp4", [(SLIDES[0], 12.0), (SLIDES[1], 12.0), (SLIDES[2], 12.0)], fps=2)}


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (math.hypot(*a) * math.hypot(*b))


def _best(segments: list[MediaSegment], query: list[float]) -> MediaSegment:
    return max(segments, key=lambda s: _cos(s.vector, query))


def test_short_clip_is_one_synchronous_invoke_model_call(emu: BedrockEmulator, videos: dict[str, Path]) -> None:
    embedder = NovaMediaEmbedder(client=emu.client(), dimensions=384)
    segments = embedder.embed_media(videos["short"].read_bytes(), media="video", fmt="mp4", duration=6.0)
    assert [(s.start, s.end, s.embedding_type, len(s.vector)) for s in segments] == [
        (0.0, 6.0, "AUDIO_VIDEO_COMBINED", 384)]
    (request,) = [r for r in emu.requests if r.model_id == NOVA]
    assert request.operation == "InvokeModel" and request.status == 200
    params = request.body["singleEmbeddingParams"]
    assert params["video"]["format"] == "mp4" and params["video"]["embeddingMode"] == "AUDIO_VIDEO_COMBINED"
    assert base64.b64decode(params["video"]["source"]["bytes"]) == videos["short"].read_bytes()


def test_long_video_is_segmented_by_an_async_job_whose_output_lands_in_s3(
        emu: BedrockEmulator, videos: dict[str, Path]) -> None:
    with MotoS3Server() as s3:
        client = s3.client()
        client.create_bucket(Bucket="nova-staging")
        emu.use_s3(client, async_delay=0.3)  # InProgress for a moment: the embedder polls
        embedder = NovaMediaEmbedder(client=emu.client(), s3_client=client, staging_uri="s3://nova-staging/mmrag",
                                     dimensions=384, segment_seconds=12, poll_seconds=0.1)
        segments = embedder.embed_media(videos["long"].read_bytes(), media="video", fmt="mp4", duration=36.0)
        ops = [r.operation for r in emu.requests]
        assert ops[0] == "StartAsyncInvoke" and ops.count("GetAsyncInvoke") >= 2
        start = emu.requests[0].body
        assert start["modelInput"]["taskType"] == "SEGMENTED_EMBEDDING"
        video = start["modelInput"]["segmentedEmbeddingParams"]["video"]
        assert video["segmentationConfig"] == {"durationSeconds": 12}
        assert video["source"]["s3Location"]["uri"].startswith("s3://nova-staging/mmrag/inputs/")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket="nova-staging").get("Contents", [])]
        assert not any("/inputs/" in k for k in keys)  # the staged upload is removed afterwards
        assert any(k.endswith("/segmented-embedding-result.json") for k in keys)
        assert any(k.endswith("/embedding-audio-video.jsonl") for k in keys)
    assert [(s.start, s.end) for s in segments] == [(0.0, 12.0), (12.0, 24.0), (24.0, 36.0)]
    # Searchable: a picture of the second slide, as a Nova image query, finds the segment it is shown in.
    query = NovaMultimodalEmbedder(client=emu.client(), dimensions=384).embed_image_queries(
        [SLIDES[1].read_bytes()])[0]
    assert (_best(segments, query).start, _best(segments, query).end) == (12.0, 24.0)
    query = NovaMultimodalEmbedder(client=emu.client(), dimensions=384).embed_image_queries(
        [SLIDES[2].read_bytes()])[0]
    assert _best(segments, query).start == 24.0


def test_long_media_without_s3_staging_says_what_to_set(emu: BedrockEmulator, videos: dict[str, Path]) -> None:
    embedder = NovaMediaEmbedder(client=emu.client(), dimensions=384)
    with pytest.raises(ValueError, match="S3"):
        embedder.embed_media(videos["long"].read_bytes(), media="video", fmt="mp4", duration=36.0)
    assert emu.requests == []


def _invoke(emu: BedrockEmulator, params: dict[str, Any]) -> Any:
    body = {"schemaVersion": "nova-multimodal-embed-v1", "taskType": "SINGLE_EMBEDDING",
            "singleEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "embeddingDimension": 256, **params}}
    return emu.client().invoke_model(modelId=NOVA, body=json.dumps(body))


@pytest.mark.parametrize(("video", "wording"), [
    ({"format": "mp4"}, "required key [embeddingMode] not found"),  # embeddingMode is required for video
    ({"format": "avi", "embeddingMode": "AUDIO_VIDEO_COMBINED"}, "'avi' is not a valid enum value"),
    ({"format": "mp4", "embeddingMode": "AUDIO_VIDEO_COMBINED", "segmentationConfig": {"durationSeconds": 5}},
     "extraneous key [segmentationConfig]"),  # segmentation is for the asynchronous API only
    ({"format": "mkv", "embeddingMode": "AUDIO_VIDEO_COMBINED"}, "does not match"),  # mp4 bytes declared mkv
])
def test_bad_synchronous_video_shapes_are_rejected_like_the_service(
        emu: BedrockEmulator, videos: dict[str, Path], video: dict[str, Any], wording: str) -> None:
    source = {"bytes": base64.b64encode(videos["short"].read_bytes()).decode()}
    with pytest.raises(ClientError) as info:
        _invoke(emu, {"video": {**video, "source": source}})
    assert info.value.response["Error"]["Code"] == "ValidationException"
    assert wording in info.value.response["Error"]["Message"]


def test_over_30_seconds_is_refused_synchronously(emu: BedrockEmulator, videos: dict[str, Path]) -> None:
    source = {"bytes": base64.b64encode(videos["long"].read_bytes()).decode()}
    with pytest.raises(ClientError, match="at most 30 s"):
        _invoke(emu, {"video": {"format": "mp4", "embeddingMode": "AUDIO_VIDEO_COMBINED", "source": source}})


def test_async_jobs_take_s3_inputs_only_and_a_valid_segment_length(emu: BedrockEmulator) -> None:
    client = emu.client()
    video = {"format": "mp4", "embeddingMode": "AUDIO_VIDEO_COMBINED", "source": {"bytes": "AAAA"},
             "segmentationConfig": {"durationSeconds": 5}}

    def start(item: dict[str, Any]) -> Any:
        return client.start_async_invoke(
            modelId=NOVA, outputDataConfig={"s3OutputDataConfig": {"s3Uri": "s3://out/"}},
            modelInput={"taskType": "SEGMENTED_EMBEDDING",
                        "segmentedEmbeddingParams": {"embeddingPurpose": "GENERIC_INDEX", "video": item}})

    with pytest.raises(ClientError, match="only accept S3 inputs"):
        start(video)
    with pytest.raises(ClientError, match="durationSeconds"):
        start({**video, "source": {"s3Location": {"uri": "s3://in/a.mp4"}}, "segmentationConfig": {
            "durationSeconds": 31}})
    with pytest.raises(ClientError, match="segmentationConfig"):
        start({k: v for k, v in video.items() if k != "segmentationConfig"} | {
            "source": {"s3Location": {"uri": "s3://in/a.mp4"}}})
    with pytest.raises(ClientError) as info:
        client.get_async_invoke(invocationArn="arn:aws:bedrock:us-east-1:123456789012:async-invoke/nope")
    assert info.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_media_format_names_what_nova_accepts() -> None:
    assert media_format("talk.MP4") == ("video", "mp4")
    assert media_format("a.m4v") == ("video", "mp4")
    assert media_format("voice.wav") == ("audio", "wav")
    assert media_format("voice.m4a") is None  # Nova takes mp3, wav, ogg: transcode first


def test_a_video_ingested_on_bedrock_embeds_its_shots_with_nova_and_they_are_searchable(
        emu: BedrockEmulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sample talk (tests/data/video/talk.mp4, three 6-9 s shots) on the bedrock profile with Nova as the image
    space: each keyframe gets the vector of its shot's clip (one synchronous ``video`` request per shot), and a
    screenshot of the second shot finds it at 0:06-0:12."""
    pytest.importorskip("scenedetect", reason="shots need PySceneDetect: pip install 'mmrag[video]'")
    from click.testing import CliRunner

    from mmrag.chains.ingestion import ingest
    from mmrag.cli import cli
    from mmrag.config import Settings

    env = {**emu.environ(), "MMRAG_PROFILE": "bedrock", "MMRAG_BEDROCK_ENDPOINT_URL": emu.url,
           "MMRAG_AWS_REGION": "us-east-1", "MMRAG_HOME": str(tmp_path / ".mmrag"), "MMRAG_TRANSCRIBER": "off",
           "MMRAG_IMAGE_EMBEDDING_MODEL": NOVA, "MMRAG_IMAGE_EMBEDDING_DIMS": "384"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    talk = tmp_path / "talk.mp4"
    talk.write_bytes((DATA / "video" / "talk.mp4").read_bytes())
    report = ingest([talk], Settings())
    assert report.ok and report.caption_failures == 0, report.to_dict()
    videos = [r for r in emu.requests if r.model_id == NOVA and "video" in r.body.get("singleEmbeddingParams", {})]
    assert len(videos) == 3 and all(r.status == 200 for r in videos)
    assert {r.body["singleEmbeddingParams"]["video"]["embeddingMode"] for r in videos} == {"AUDIO_VIDEO_COMBINED"}
    stills = [r for r in emu.requests if r.model_id == NOVA and "image" in r.body.get("singleEmbeddingParams", {})]
    assert stills == []  # the keyframes were embedded as their shots, not as still pictures

    emu.reset()
    query = DATA / ".video_queries" / "talk_crop_9s.jpg"
    result = CliRunner().invoke(cli, ["search", "--image", str(query), "--json", "-k", "1"], env=env)
    assert result.exit_code == 0, result.output
    (hit,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert (hit["start"], hit["end"]) == (6.0, 12.0) and hit["source"].endswith("talk.mp4")


def test_speech_as_audio_is_one_synchronous_audio_request(emu: BedrockEmulator, tmp_path: Path) -> None:
    from mmrag.testing.media import speak

    wav = speak("The quarterly revenue grew by twelve percent", tmp_path / "speech.wav")
    if wav is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    embedder = NovaMediaEmbedder(client=emu.client(), dimensions=256)
    (segment,) = embedder.embed_media(wav.read_bytes(), media="audio", fmt="wav", duration=3.0)
    assert segment.embedding_type == "AUDIO" and len(segment.vector) == 256
    (request,) = emu.requests
    assert set(request.body["singleEmbeddingParams"]["audio"]) == {"format", "source"}  # no embeddingMode for audio
    with pytest.raises(ClientError, match="does not match"):  # WAV bytes declared as MP3
        _invoke(emu, {"audio": {"format": "mp3", "source": request.body["singleEmbeddingParams"]["audio"]["source"]}})
