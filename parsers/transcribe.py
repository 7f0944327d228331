"""Speech to timed words, offline: a tiny :class:`Transcriber` protocol and two implementations.

* :class:`PocketSphinxTranscriber` (the default of ``mmrag[video]``): CMU PocketSphinx with the US English model
  that ships inside its wheel, streaming, about 13 CPU seconds per minute of audio. It is an older HMM
  recogniser: on clear synthetic speech (espeak-ng, 140 words a minute) bench/video.py measured a word error rate
  of 65 %, enough to find a passage by its rarer words, not to quote it.
* :class:`WhisperTranscriber`: a faster-whisper (CTranslate2) model folder the user already has
  (``MMRAG_TRANSCRIBER=/path/to/faster-whisper-small``); nothing is downloaded. Far more accurate, slower.

Both take 16 kHz mono signed 16-bit PCM in chunks (what :mod:`mmrag.parsers.video` decodes) and yield
:class:`Word` s with start/end seconds. :func:`chunk_words` groups words into transcript chunks by time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from mmrag.errors import ConfigError, MissingDependencyError

__all__ = ["SAMPLE_RATE", "PocketSphinxTranscriber", "Transcriber", "WhisperTranscriber", "Word", "chunk_words",
           "transcriber_for"]

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
"""Samples per second of the PCM every transcriber takes (mono, signed 16-bit little-endian)."""

_FILLERS = frozenset({"<s>", "</s>", "<sil>", "[noise]", "[laugh]", "[cough]", "[breath]", "[um]", "[uh]"})


@dataclass(frozen=True, slots=True)
class Word:
    """One recognised word and when it was said (seconds from the start of the media)."""

    text: str
    start: float
    end: float


class Transcriber(Protocol):
    """Turns a stream of 16 kHz mono s16le PCM chunks into timed words."""

    name: str

    def transcribe(self, pcm: Iterable[bytes]) -> Iterator[Word]: ...


class PocketSphinxTranscriber:
    """CMU PocketSphinx (US English model inside the ``pocketsphinx`` wheel), streaming with its voice endpointer.

    Speech is cut into utterances at pauses (so memory stays small on long media); each utterance is decoded
    and its words are timed to the 10 ms frame.
    """

    name = "pocketsphinx"

    def __init__(self) -> None:
        self._decoder: Any = None

    def _warm_up(self) -> Any:
        if self._decoder is None:
            try:
                from pocketsphinx import Decoder
            except ImportError as e:
                raise MissingDependencyError("pocketsphinx", "video", "speech recognition") from e
            # maxhmmpf: a narrower search, about 40% less time, same words on our speech tests.
            self._decoder = Decoder(samprate=SAMPLE_RATE, logfn="/dev/null", maxhmmpf=3000)
        return self._decoder

    def _words(self, audio: bytes, offset: float) -> Iterator[Word]:
        decoder = self._warm_up()
        decoder.start_utt()
        decoder.process_raw(audio, full_utt=True)
        decoder.end_utt()
        for seg in decoder.seg():
            word = seg.word.split("(", 1)[0]  # "read(2)": the second pronunciation of "read"
            if word.lower() in _FILLERS or not word.strip():
                continue
            yield Word(word, round(offset + seg.start_frame / 100, 2), round(offset + (seg.end_frame + 1) / 100, 2))

    def transcribe(self, pcm: Iterable[bytes]) -> Iterator[Word]:
        from pocketsphinx import Endpointer

        self._warm_up()
        endpointer = Endpointer(sample_rate=SAMPLE_RATE)
        size = endpointer.frame_bytes
        pending = b""
        utterance: list[bytes] = []
        start = 0.0
        for chunk in pcm:
            pending += chunk
            while len(pending) >= size:
                frame, pending = pending[:size], pending[size:]
                was_speaking = endpointer.in_speech
                speech = endpointer.process(frame)
                if speech is None:
                    continue
                if not was_speaking:
                    utterance, start = [], float(endpointer.speech_start)
                utterance.append(speech)
                if not endpointer.in_speech:
                    yield from self._words(b"".join(utterance), start)
                    utterance = []
        tail = endpointer.end_stream(pending + b"\0" * (-len(pending) % 2)) if pending or endpointer.in_speech else None
        if tail is not None:
            if not utterance:
                start = float(endpointer.speech_start)
            utterance.append(tail)
        if utterance:
            yield from self._words(b"".join(utterance), start)


class WhisperTranscriber:
    """A faster-whisper model folder the user has (CTranslate2 format); never downloads anything.

    Args:
        model_dir: the folder (with ``model.bin`` and ``config.json``).
        compute_type: CTranslate2 compute type; ``int8`` is the fast choice on CPUs.
    """

    name = "faster-whisper"

    def __init__(self, model_dir: str | Path, *, compute_type: str = "int8") -> None:
        self.model_dir = Path(model_dir).expanduser()
        self.compute_type = compute_type
        self._model: Any = None

    def _warm_up(self) -> Any:
        if self._model is None:
            if not (self.model_dir / "model.bin").is_file():
                raise ConfigError(f"{self.model_dir} is not a faster-whisper model folder (no model.bin): point "
                                  "MMRAG_TRANSCRIBER at one you have, or use MMRAG_TRANSCRIBER=pocketsphinx")
            try:
                from faster_whisper import WhisperModel
            except ImportError as e:
                raise MissingDependencyError("faster_whisper", "video", "a Whisper model folder") from e
            self._model = WhisperModel(str(self.model_dir), device="cpu", compute_type=self.compute_type,
                                       local_files_only=True)
        return self._model

    def transcribe(self, pcm: Iterable[bytes]) -> Iterator[Word]:
        import numpy as np

        model = self._warm_up()
        # Whisper looks at 30 s windows with context across them: it takes the whole signal (16 kHz float32,
        # 3.8 MB a minute; the media duration cap bounds it).
        audio = np.frombuffer(b"".join(pcm), dtype="<i2").astype(np.float32) / 32768.0
        segments, _ = model.transcribe(audio, word_timestamps=True, vad_filter=False)
        for segment in segments:
            for w in segment.words or ():
                text = w.word.strip()
                if text:
                    yield Word(text, round(float(w.start), 2), round(float(w.end), 2))


def transcriber_for(spec: str) -> Transcriber | None:
    """The transcriber a setting names: ``off``, ``pocketsphinx`` or a faster-whisper model folder.

    Raises:
        ConfigError: ``spec`` is none of these.
    """
    value = spec.strip()
    if value.lower() == "off":
        return None
    if value.lower() == "pocketsphinx":
        return PocketSphinxTranscriber()
    if Path(value).expanduser().is_dir():
        return WhisperTranscriber(value)
    raise ConfigError(f"MMRAG_TRANSCRIBER={spec!r}: use off, pocketsphinx, or the path of a faster-whisper model "
                      "folder you have")


def chunk_words(words: Iterable[Word], *, max_chars: int = 1000, max_seconds: float = 30.0,
                pause: float = 2.0) -> Iterator[tuple[str, float, float]]:
    """Group words into ``(text, start, end)`` transcript chunks.

    A chunk ends at a pause longer than ``pause`` seconds, or before it would pass ``max_chars`` characters or
    span more than ``max_seconds``: so a citation points at a short stretch of the media.
    """
    current: list[Word] = []
    size = 0
    for word in words:
        if current and (word.start - current[-1].end > pause or size + 1 + len(word.text) > max_chars
                        or word.end - current[0].start > max_seconds):
            yield " ".join(w.text for w in current), current[0].start, current[-1].end
            current, size = [], 0
        current.append(word)
        size += len(word.text) + (1 if size else 0)
    if current:
        yield " ".join(w.text for w in current), current[0].start, current[-1].end
