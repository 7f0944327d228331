"""Video and audio files: keyframes as timed images, speech as a timed transcript (``pip install 'mmrag[video]'``).

A video is read like a deck of timed slides plus what was said:

* **Decoding** streams packets through PyAV (FFmpeg inside its wheel): frames are looked at one by one at
  ``_SAMPLE_FPS`` per second and dropped, so memory does not grow with the length of the video (only the
  compressed file, already read under ``max_source_bytes``, is held).
* **Shots**: PySceneDetect's ``ContentDetector`` on small copies of the sampled frames finds the cuts (slide
  changes); a shot longer than ``_MAX_SHOT_SECONDS`` is split so a long static scene still gets frames. Without
  PySceneDetect the video is sampled uniformly, one frame every ``_MAX_SHOT_SECONDS``.
* **Keyframes**: one frame per shot (half a second after the cut, past fades), an ``image`` element with
  ``start``/``end`` seconds in its metadata; a frame that looks like one already kept (cosine of the local image
  descriptor ``>= _DUPLICATE_COSINE``: the same slide shown again) is dropped and its time added to the kept
  frame's ``also_at``. At most ``max_video_frames`` per video. Ingest then reads the frames with OCR (local
  profile) or captions them with Claude (Bedrock), like any image.
* **Speech**: the audio track is resampled to 16 kHz mono and streamed into the transcriber
  (:mod:`mmrag.parsers.transcribe`); the words are chunked by time into ``text`` elements with ``start``/``end``.

A video with no audio, or audio with no speech, is fine. Media longer than ``max_media_seconds`` is refused
before decoding; a file FFmpeg cannot open fails with FFmpeg's reason; damage found mid-stream keeps what was
decoded before it and says so in a warning.
"""

from __future__ import annotations

import io
import logging
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mmrag.elements import Blob, Element
from mmrag.errors import MissingDependencyError, ParseError
from mmrag.parsers._report import warn
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.transcribe import SAMPLE_RATE, Transcriber, Word, chunk_words, transcriber_for

__all__ = ["VideoParser", "cut_clip", "timespan"]

logger = logging.getLogger(__name__)

_SAMPLE_FPS = 2.0  # frames looked at per second of video
_DETECT_PX = 160  # width of the copies the shot detector compares
_KEYFRAME_PX = 1280  # longest side of a stored keyframe
_MAX_SHOT_SECONDS = 30.0  # a longer shot is split (and the uniform sampling step without PySceneDetect)
_DUPLICATE_COSINE = 0.95  # local image descriptors this close are the same picture (a slide shown again)
_CUT_THRESHOLD = 15.0  # ContentDetector's default (27) is for film cuts: two white slides differ less
_SHORT_BY = 2.0  # seconds the decoded streams may end before the header's duration
_BUFFER = 12  # sampled frames kept while the detector may still report a cut among them


def timespan(start: float, end: float | None = None) -> str:
    """``12:31–12:47``: a time range as people read it (:func:`mmrag.answers.clock_span`)."""
    from mmrag.answers import clock_span

    return clock_span(start, end)


@dataclass
class _Shot:
    start: float
    first: int  # index of its first sampled frame
    frame: Any = None  # the keyframe (an RGB numpy array), once chosen


@dataclass
class _Frames:
    """Shot detection and keyframe choice over sampled frames, fed one at a time."""

    duration_cap: float
    detector: Any = None
    samples: deque[tuple[int, float, Any]] = field(default_factory=lambda: deque(maxlen=_BUFFER))
    keep: _Distinct = field(default_factory=lambda: _Distinct(0))
    shot: _Shot | None = None
    index: int = 0

    def add(self, time: float, small: Any, big: Any) -> None:
        from scenedetect.common import FrameTimecode

        i = self.index
        self.index += 1
        self.samples.append((i, time, big))
        if self.shot is None:
            self.shot = _Shot(time, i)
        cuts = [] if self.detector is None else self.detector.process_frame(FrameTimecode(i, fps=_SAMPLE_FPS), small)
        for cut in cuts:
            self._cut(int(cut.frame_num), time)
        if time - self.shot.start >= _MAX_SHOT_SECONDS:
            self._close(time)
            self.shot = _Shot(time, i, big)
        elif self.shot.frame is None and i >= self.shot.first + 1:
            self.shot.frame = big  # half a second in: past the fade or the cut's blur

    def _cut(self, k: int, now: float) -> None:
        """A cut before sampled frame ``k``: close the current shot there, start the next."""
        if self.shot is None or k <= self.shot.first:
            return
        at = next((t for j, t, _ in self.samples if j == k), now)
        self._close(at)
        self.shot = _Shot(at, k, next((f for j, _, f in self.samples if j == k + 1), None))

    def _close(self, end: float) -> None:
        shot = self.shot
        if shot is None:
            return
        frame = shot.frame if shot.frame is not None else next((f for j, _, f in self.samples if j == shot.first),
                                                                None)
        if frame is not None:
            self.keep.add(shot.start, end, frame)  # encoded and compared now: no raw frame outlives its shot

    def finish(self, end: float) -> _Distinct:
        if self.detector is not None and self.shot is not None and self.index:
            from scenedetect.common import FrameTimecode

            for cut in self.detector.post_process(FrameTimecode(self.index - 1, fps=_SAMPLE_FPS)) or ():
                self._cut(int(cut.frame_num), end)
        self._close(end)
        self.shot = None
        return self.keep


class VideoParser:
    """Parses video (mp4, mov, webm, mkv) and audio (wav, mp3, m4a, ogg) files into timed frames and transcript."""

    def __init__(self, options: ParseOptions | None = None, transcriber: Transcriber | None | str = "settings") -> None:
        """Args:
            options: limits (``max_media_seconds``, ``max_video_frames``) and the ``transcriber`` setting.
            transcriber: a :class:`~mmrag.parsers.transcribe.Transcriber`, None for no speech, or ``"settings"``
                (the default): the one ``options.transcriber`` names.
        """
        self.options = options or ParseOptions()
        if isinstance(transcriber, str):
            if transcriber != "settings":
                raise TypeError("transcriber must be a Transcriber, None or 'settings'")
            transcriber = transcriber_for(self.options.transcriber)
        self.transcriber: Transcriber | None = transcriber

    def parse(self, blob: Blob) -> Iterator[Element]:
        try:
            import av
        except ImportError as e:
            raise MissingDependencyError("av", "video", "video and audio files") from e
        if not blob.data:
            raise ParseError(blob.source, "the file is empty (0 bytes)")
        try:
            container = av.open(io.BytesIO(blob.data), mode="r")
        except (av.FFmpegError, ValueError, OSError) as e:
            raise ParseError(blob.source, f"not a readable video or audio file ({_reason(e)})") from e
        with container:
            yield from self._parse(blob, container)

    def _parse(self, blob: Blob, container: Any) -> Iterator[Element]:
        import av

        opts = self.options
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        if video is None and audio is None:
            raise ParseError(blob.source, "the file has neither a video nor an audio stream")
        duration = container.duration / 1_000_000 if container.duration else None
        if duration is not None and duration > opts.max_media_seconds:
            raise ParseError(blob.source, f"{timespan(duration)} long, over the {timespan(opts.max_media_seconds)} "
                                          "cap (max_media_seconds): cut it, or raise MMRAG_MAX_MEDIA_SECONDS")
        if video is not None:
            video.thread_type = "AUTO"
        frames = None if video is None else _Frames(opts.max_media_seconds, detector=_detector(blob.source),
                                                    keep=_Distinct(opts.max_video_frames))
        speech = _Speech(self.transcriber) if audio is not None and self.transcriber is not None else None
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE) if speech is not None else None
        streams = [s for s in (video, audio if speech is not None else None) if s is not None]
        next_sample, last = 0.0, 0.0
        try:
            for packet in container.demux(*streams):
                for frame in packet.decode():
                    t = float(frame.time) if frame.time is not None else last
                    if t > opts.max_media_seconds:
                        raise _TooLong(t)
                    last = max(last, t)
                    if isinstance(frame, av.VideoFrame) and frames is not None:
                        if t + 1e-6 >= next_sample:  # on a fixed grid, so a cut on a whole second is found on it
                            next_sample = (int(t * _SAMPLE_FPS + 1e-6) + 1) / _SAMPLE_FPS
                            frames.add(t, *_pictures(frame))
                    elif isinstance(frame, av.AudioFrame) and resampler is not None and speech is not None:
                        for f in resampler.resample(frame):
                            speech.put(bytes(f.to_ndarray().tobytes()))
        except _TooLong as e:
            warn(blob.source, f"stopped at {timespan(e.at)}: the max_media_seconds cap")
        except (av.FFmpegError, ValueError, OSError) as e:
            if last <= 0:
                if speech is not None:
                    speech.close()
                raise ParseError(blob.source, f"cannot decode the file ({_reason(e)})") from e
            warn(blob.source, f"decoding stopped at {timespan(last)} ({_reason(e)}): kept what came before")
        end = max(duration or 0.0, last)
        if duration is not None and last < duration - _SHORT_BY:
            warn(blob.source, f"the streams end at {timespan(last)} but the header says {timespan(duration)}: the "
                              "file looks truncated; kept what came before")
            end = last + 1 / _SAMPLE_FPS
        words = speech.close() if speech is not None else []
        media = "video" if video is not None else "audio"
        if frames is not None:
            yield from self._keyframes(blob.source, frames.finish(end), end)
        for text, start, stop in chunk_words(words, max_chars=opts.chunk_size):
            yield Element(kind="text", source=blob.source, text=text, mime_type="text/plain",
                          metadata={"start": start, "end": stop, "media": media, "speech": self.transcriber.name
                                    if self.transcriber is not None else None})

    def _keyframes(self, source: str, distinct: _Distinct, end: float) -> Iterator[Element]:
        from mmrag.parsers.images import image_element

        if distinct.capped:
            warn(source, f"kept the first {self.options.max_video_frames} distinct frames, skipped {distinct.capped} "
                         "more (max_video_frames)")
        for _, meta, data in distinct.kept:
            element = image_element(data, source, self.options, metadata={**meta, "media": "video",
                                                                          "duration": round(end, 2)},
                                    label=f"frame at {timespan(meta['start'])}")
            if element is not None:
                yield element


class _Distinct:
    """Keyframes as JPEG, one per distinct picture: a shot showing a picture already kept adds its time to it."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.kept: list[tuple[Any, dict[str, Any], bytes]] = []
        self.capped = 0

    def add(self, start: float, stop: float, rgb: Any) -> None:
        from mmrag.providers.local.local_image import describe

        data = _jpeg(rgb)
        vector = describe(data)
        twin = next((k for k in self.kept if float(k[0] @ vector) >= _DUPLICATE_COSINE), None)
        if twin is not None:
            twin[1]["also_at"].append([round(start, 2), round(stop, 2)])
        elif len(self.kept) >= self.cap:
            self.capped += 1
        else:
            self.kept.append((vector, {"start": round(start, 2), "end": round(stop, 2), "also_at": []}, data))


class _Speech:
    """The transcriber in a thread of its own, fed PCM chunks through a bounded queue while decoding goes on."""

    def __init__(self, transcriber: Transcriber) -> None:
        import queue
        import threading

        self.transcriber = transcriber
        self.queue: queue.Queue[bytes | None] = queue.Queue(maxsize=512)
        self.words: list[Word] = []
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="mmrag-transcribe", daemon=True)
        self.thread.start()

    def _chunks(self) -> Iterator[bytes]:
        while (chunk := self.queue.get()) is not None:
            yield chunk

    def _run(self) -> None:
        chunks = self._chunks()
        try:
            self.words.extend(self.transcriber.transcribe(chunks))
        except BaseException as e:  # re-raised in the decoding thread by close()
            self.error = e
        for _ in chunks:  # keep draining, so a failed transcriber never blocks the decoder
            pass

    def put(self, chunk: bytes) -> None:
        self.queue.put(chunk)

    def close(self) -> list[Word]:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.words


class _TooLong(Exception):
    def __init__(self, at: float) -> None:
        self.at = at


def _reason(e: BaseException) -> str:
    """FFmpeg's own words ("Invalid data found when processing input"), without errno and the in-memory file name."""
    strerror = getattr(e, "strerror", None)
    return strerror.strip() if isinstance(strerror, str) and strerror.strip() else str(e).strip() or type(e).__name__


def _detector(source: str) -> Any:
    try:
        from scenedetect import ContentDetector
    except ImportError:
        logger.info("%s: PySceneDetect is not installed: one frame every %.0f s", source, _MAX_SHOT_SECONDS)
        return None
    # Edges count as much as colour: two slides on white differ in their layout more than in their colours.
    return ContentDetector(threshold=_CUT_THRESHOLD, min_scene_len=1, weights=ContentDetector.Components(1, 1, 1, 1))


def _pictures(frame: Any) -> tuple[Any, Any]:
    """The detector's small BGR copy and the keyframe-sized RGB copy of a decoded frame."""
    w, h = frame.width, frame.height
    scale = min(1.0, _KEYFRAME_PX / max(w, h))
    width, height = max(2, int(w * scale)) // 2 * 2, max(2, int(h * scale)) // 2 * 2
    big = frame.to_ndarray(format="rgb24", width=width, height=height)
    small = frame.to_ndarray(format="bgr24", width=_DETECT_PX, height=max(2, _DETECT_PX * h // max(w, 1)) // 2 * 2)
    return small, big


def _jpeg(rgb: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def cut_clip(data: bytes, start: float, end: float, *, max_side: int = 480, fps: int = 2) -> bytes:
    """The stretch ``start``-``end`` (seconds) of a video as a small MP4 (H.264 at ``fps`` frames a second, long side at
    most ``max_side`` px, AAC sound when it has sound): what a video embedding model is sent for one shot.

    Raises:
        ValueError: the bytes are not a readable video, or nothing was decoded in the stretch.
    """
    import av
    import numpy as np

    out = io.BytesIO()
    try:
        source = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as e:
        raise ValueError(f"not a readable video ({_reason(e)})") from e
    with source, av.open(out, mode="w", format="mp4") as sink:
        video = source.streams.video[0] if source.streams.video else None
        if video is None:
            raise ValueError("the file has no video stream")
        audio = source.streams.audio[0] if source.streams.audio else None
        scale = min(1.0, max_side / max(video.width, video.height, 1))
        size = (max(2, int(video.width * scale)) // 2 * 2, max(2, int(video.height * scale)) // 2 * 2)
        v_out: Any = sink.add_stream("libx264", rate=fps)
        v_out.width, v_out.height = size
        v_out.pix_fmt = "yuv420p"
        a_out: Any = sink.add_stream("aac", rate=16000) if audio is not None else None
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=16000) if audio is not None else None
        shown, next_at = 0, start
        for frame in source.decode(*[s for s in (video, audio) if s is not None]):
            if not isinstance(frame, av.VideoFrame | av.AudioFrame):
                continue
            t = float(frame.time) if frame.time is not None else 0.0
            if t >= end:
                continue  # keep draining the other stream up to the end of the stretch
            if isinstance(frame, av.VideoFrame) and t + 1e-6 >= next_at:
                rgb = np.ascontiguousarray(frame.to_ndarray(format="rgb24", width=size[0], height=size[1]),
                                           dtype=np.uint8)
                picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
                picture.pts, shown, next_at = shown, shown + 1, start + (shown + 1) / fps
                sink.mux(v_out.encode(picture))
            elif isinstance(frame, av.AudioFrame) and t >= start and a_out is not None and resampler is not None:
                for piece in resampler.resample(frame):
                    piece.pts = None
                    sink.mux(a_out.encode(piece))
        if not shown:
            raise ValueError(f"no frame between {timespan(start)} and {timespan(end)}")
        sink.mux(v_out.encode(None))
        if a_out is not None:
            sink.mux(a_out.encode(None))
    return out.getvalue()
