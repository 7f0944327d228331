# mypy: disable-error-code="no-untyped-call"
"""Video ingest, offline: seconds of processing per minute of video by stage, peak memory, speech word error rate.

    python bench/video.py [--seconds 60] [--fps 15]

Makes a slide-style talk (1280x720, H.264, the sample images as slides changing every 6 s, espeak-ng reading a
text over it), then measures in this run, each stage on its own, CPU seconds (all threads of the process) and
wall seconds per minute of video:

* decode (the baseline): PyAV decoding every video frame and resampling the audio to 16 kHz, nothing else: no
  parser can do less;
* frames: ``VideoParser`` with speech off (decode, sampling, shot detection, keyframes, near-duplicate drop);
* OCR: the local OCR engine (RapidOCR) over the kept keyframes;
* speech: PocketSphinx over the audio, and its word error rate against the text espeak-ng spoke;
* whole: the parser with speech plus OCR of its frames, as ``mmrag ingest`` runs them (minus embedding).

Peak memory: the parser on the video and on one three times longer, each in a fresh process (peak RSS), so the
ratio shows whether memory grows with the length. The last line is one JSON object; value: processing seconds per
second of video for the whole, in CPU seconds (goal < 1: faster than real time on this 2-core machine; the wall
figures are printed too, with the load average, since on a shared machine they measure the neighbours).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SLIDES = [ROOT / "tests/data/images/img_031.png", ROOT / "tests/data/images/img_029.png",
          ROOT / "tests/data/ocr/img_034_1000px.png", ROOT / "tests/data/ocr/img_009.png",
          ROOT / "tests/data/images/img_023.jpg"]
TEXT = (
    "Good morning and welcome to the quarterly review. Revenue grew by twelve percent in the northern region. "
    "The southern region stayed flat because of the weather. We opened three new stores in the spring. "
    "Customer satisfaction rose to eighty seven percent. The mobile application now has two million users. "
    "Next year we plan to hire forty engineers and open an office in the capital. "
    "Shipping costs went down after we changed the warehouse software. "
    "Please send your questions to the finance team before the end of the month. Thank you for listening."
)


def measure(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, CPU seconds of the whole process, wall seconds)."""
    cpu, wall = time.process_time(), time.perf_counter()
    out = fn()
    return out, time.process_time() - cpu, time.perf_counter() - wall


def make_talk(folder: Path, seconds: float, fps: int) -> tuple[Path, str]:
    from mmrag.testing.media import slideshow, speak

    spoken = ""
    wav = None
    text = TEXT
    while len(text.split()) < seconds * 130 / 60 * 0.9:  # about 130 words a minute at 140 wpm with pauses
        text += " " + TEXT
    wav = speak(text, folder / "speech.wav", words_per_minute=140)
    if wav is not None:
        spoken = text
    per = 6.0
    plan = [(SLIDES[i % len(SLIDES)], per) for i in range(int(seconds // per))]
    return slideshow(folder / "talk.mp4", plan, audio=wav, size=(1280, 720), fps=fps), spoken


def decode_only(path: Path) -> int:
    import av

    n = 0
    with av.open(str(path)) as c:
        streams = [*c.streams.video[:1], *c.streams.audio[:1]]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        for packet in c.demux(*streams):
            for frame in packet.decode():
                if isinstance(frame, av.AudioFrame):
                    resampler.resample(frame)
                n += 1
    return n


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference length (punctuation and case ignored)."""
    import re

    ref = re.findall(r"[a-z']+", reference.lower())
    hyp = re.findall(r"[a-z']+", hypothesis.lower())
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1] / max(1, len(ref))


def child(path: str, transcriber: str) -> None:
    """In a fresh process: parse one file, print its peak RSS in MB."""
    from mmrag.elements import Blob
    from mmrag.parsers.options import ParseOptions
    from mmrag.parsers.video import VideoParser

    data = Path(path).read_bytes()
    elements = list(VideoParser(ParseOptions(transcriber=transcriber)).parse(Blob(data, path, "video/mp4")))
    # VmHWM: this process's own peak. ru_maxrss would not do: Linux carries it across exec from the forking parent.
    status = Path("/proc/self/status")
    hwm = [line.split()[1] for line in status.read_text().splitlines() if line.startswith("VmHWM:")] \
        if status.exists() else []
    peak = int(hwm[0]) / 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"elements": len(elements), "peak_rss_mb": round(peak, 1), "file_mb": len(data) / 2**20}))


def peak_rss(path: Path, transcriber: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(path), transcriber], capture_output=True,
                         text=True, check=True, timeout=3600)
    return dict(json.loads(out.stdout.splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="length of the generated talk")
    ap.add_argument("--fps", type=int, default=15)
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return

    from mmrag.elements import Blob
    from mmrag.parsers.options import ParseOptions
    from mmrag.parsers.transcribe import PocketSphinxTranscriber
    from mmrag.parsers.video import VideoParser
    from mmrag.providers.local.ocr import make_ocr_engine

    folder = Path(tempfile.mkdtemp(prefix="mmrag-bench-video-"))
    (talk, spoken), _, made = measure(lambda: make_talk(folder, args.seconds, args.fps))
    import av

    with av.open(str(talk)) as c:
        length = float(c.duration or 0) / 1e6
    per_min = 60.0 / length
    print(f"talk: {length:.1f} s, {talk.stat().st_size / 2**20:.1f} MB, made in {made:.1f} s "
          f"({'with' if spoken else 'without (no espeak-ng)'} speech)")
    blob = Blob(talk.read_bytes(), str(talk), "video/mp4")
    rows: dict[str, dict[str, float]] = {}

    def row(name: str, cpu: float, wall: float) -> None:
        rows[name] = {"cpu_s_per_min": round(cpu * per_min, 2), "wall_s_per_min": round(wall * per_min, 2)}
        print(f"{name:<8} cpu {cpu * per_min:7.2f} s/min   wall {wall * per_min:7.2f} s/min")

    _, cpu, wall = measure(lambda: decode_only(talk))
    row("decode", cpu, wall)
    frames, cpu, wall = measure(lambda: list(VideoParser(ParseOptions(transcriber="off")).parse(blob)))
    row("frames", cpu, wall)
    shown = min(len(SLIDES), int(args.seconds // 6))
    print(f"         {len(frames)} distinct keyframes ({shown} distinct slides shown)")
    engine = make_ocr_engine("auto")
    if engine is not None:
        engine.read(frames[0].data or b"")  # load the models outside the measurement (ingest does it once)
        _, cpu, wall = measure(lambda: [engine.read(f.data or b"") for f in frames])
        row("ocr", cpu, wall)
    error = None
    if spoken:
        import av as _av

        def pcm() -> list[bytes]:
            with _av.open(str(talk)) as c:
                r = _av.AudioResampler(format="s16", layout="mono", rate=16000)
                return [bytes(f.to_ndarray().tobytes()) for fr in c.decode(c.streams.audio[0]) for f in r.resample(fr)]

        audio = pcm()
        words, cpu, wall = measure(lambda: list(PocketSphinxTranscriber().transcribe(audio)))
        row("speech", cpu, wall)
        error = wer(spoken, " ".join(w.text for w in words))
        print(f"         word error rate {error:.1%} on espeak-ng speech ({len(spoken.split())} words spoken, "
              f"{len(words)} recognised)")

    def whole() -> list[Any]:
        elements = list(VideoParser(ParseOptions()).parse(blob))
        if engine is not None:
            for e in elements:
                if e.kind == "image":
                    engine.read(e.data or b"")
        return elements

    _, cpu, wall = measure(whole)
    row("whole", cpu, wall)
    longer = folder / "talk3.mp4"
    from mmrag.testing.media import slideshow

    slideshow(longer, [(SLIDES[i % len(SLIDES)], 6.0) for i in range(int(3 * length // 6))], size=(1280, 720),
              fps=args.fps, audio=folder / "speech.wav" if spoken else None)
    mem1, mem3 = peak_rss(talk, "pocketsphinx"), peak_rss(longer, "pocketsphinx")
    print(f"peak RSS: {mem1['peak_rss_mb']} MB for {length:.0f} s, {mem3['peak_rss_mb']} MB for a video 3x as long")
    # CPU time, not wall: it is what the work costs whatever else runs on the machine (on a shared box the wall clock
    # measures the neighbours); the pipeline is CPU-bound, so on an idle machine its wall time is no more than this.
    value = rows["whole"]["cpu_s_per_min"] / 60.0
    import os

    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall figures include waiting for them)")
    print(json.dumps({
        "bench": "video", "metric": "CPU seconds of processing per second of video (whole)", "value": round(value, 3),
        "goal": 1.0, "load_average": round(os.getloadavg()[0], 1),
        "baseline": {"decode_wall_s_per_min": rows["decode"]["wall_s_per_min"],
                     "whole_over_decode": round(rows["whole"]["wall_s_per_min"]
                                                / max(1e-9, rows["decode"]["wall_s_per_min"]), 2)},
        "stages": rows, "video_seconds": round(length, 1), "keyframes": len(frames),
        "speech_wer": None if error is None else round(error, 3),
        "peak_rss_mb": {"1x": mem1["peak_rss_mb"], "3x": mem3["peak_rss_mb"]},
    }))


if __name__ == "__main__":
    main()
