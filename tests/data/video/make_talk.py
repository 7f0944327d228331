"""Make ``talk.mp4``, the sample video of tests/data, from real material already in tests/data.

    python tests/data/video/make_talk.py        # needs mmrag[video] and Debian's espeak-ng

Three slides of 6 s each at 960x540, 2 frames a second (H.264), with speech (espeak-ng, AAC) from second 7:

* 0-6 s: the pathlib class diagram (``tests/data/images/img_031.png``, PSF-2.0);
* 6-12 s: the "happy fish" photo (``tests/data/images/img_023.jpg``, OpenCV samples);
* 12-21 s: the title of the strucchange vignette's first page, rendered by PyMuPDF from
  ``tests/data/pdf/strucchange-intro.pdf`` (GPL, see tests/data/pdf/SOURCES.md): a deck slide.

It also writes ``tests/data/.video_queries/talk_crop_9s.jpg``, the frame at 9 s cropped to its middle 80 % and
scaled to 480 px wide (a screenshot of the moment, not the indexed keyframe itself), as the query of the golden
set's image→image question about the video (a dot folder: folder ingest skips it). The output is deterministic for one
FFmpeg/espeak-ng build; the committed files were made with PyAV 18.1 and espeak-ng 1.51 (Debian bookworm).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1]
SPEECH = ("Welcome. Here is a photo of a happy fish. The quarterly revenue grew by twelve percent "
          "in the northern region. Next, the strucchange package tests for structural change.")


def _deck_slide(out: Path) -> Path:
    import pymupdf

    with pymupdf.open(DATA / "pdf" / "strucchange-intro.pdf") as doc:
        page = doc[0]
        top = pymupdf.Rect(page.rect.x0, page.rect.y0, page.rect.x1, page.rect.y0 + page.rect.height * 0.3)
        page.get_pixmap(dpi=110, clip=top).save(str(out))
    return out


def main() -> None:
    import av

    from mmrag.testing.media import slideshow, speak

    with tempfile.TemporaryDirectory() as tmp:
        deck = _deck_slide(Path(tmp) / "deck.png")
        wav = speak(SPEECH, Path(tmp) / "speech.wav", words_per_minute=130, pause_before=7.0)
        if wav is None:
            raise SystemExit("espeak-ng is not installed: apt-get install espeak-ng")
        plan = [(DATA / "images" / "img_031.png", 6.0), (DATA / "images" / "img_023.jpg", 6.0), (deck, 9.0)]
        video = slideshow(DATA / "video" / "talk.mp4", plan, audio=wav, size=(960, 540), fps=2)
    queries = DATA / ".video_queries"
    queries.mkdir(exist_ok=True)
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= 9.0:
                picture = frame.to_image()
                w, h = picture.size
                crop = picture.crop((w // 10, h // 10, w - w // 10, h - h // 10))
                crop.resize((480, 480 * crop.height // crop.width)).save(queries / "talk_crop_9s.jpg", quality=85)
                break
    print(video, video.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
