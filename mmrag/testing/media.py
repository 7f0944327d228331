"""Make small test videos offline: a slideshow of images with PyAV, speech with Debian's ``espeak-ng``.

For tests and benchmarks of video/audio ingest (``mmrag[video]``): nothing is downloaded, the material is the
images you pass and text you have spoken by a synthesiser. ::

    speech = speak("The quarterly revenue grew by twelve percent", tmp / "s.wav")   # None without espeak-ng
    slideshow(tmp / "talk.mp4", [(slide1, 4.0), (slide2, 4.0)], audio=speech)
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

__all__ = ["slideshow", "speak"]


def speak(text: str, path: str | Path, *, voice: str = "en-us", words_per_minute: int = 120,
          pause_before: float = 0.0) -> Path | None:
    """Speak ``text`` into a WAV file with espeak-ng; None when espeak-ng is not installed.

    Args:
        text: what to say.
        path: the WAV file to write.
        voice: an espeak-ng voice.
        words_per_minute: speed (espeak's default of 175 is hard on older recognisers).
        pause_before: seconds of silence before the speech.
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        return None
    out = Path(path)
    subprocess.run([exe, "-v", voice, "-s", str(words_per_minute), "-w", str(out), text], check=True,
                   capture_output=True, timeout=120)
    if pause_before > 0:
        import av
        import numpy as np

        with av.open(str(out)) as src:
            stream = src.streams.audio[0]
            rate = stream.rate
            samples = np.concatenate([f.to_ndarray().reshape(-1) for f in src.decode(stream)])
        silence = np.zeros(int(rate * pause_before), dtype=samples.dtype)
        _write_wav(out, np.concatenate([silence, samples]), rate)
    return out


def _write_wav(path: Path, samples: object, rate: int) -> None:
    import wave

    import numpy as np

    data = np.asarray(samples, dtype="<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def slideshow(path: str | Path, slides: Sequence[tuple[str | Path, float]], *, audio: str | Path | None = None,
              size: tuple[int, int] = (640, 360), fps: int = 5, codec: str = "libx264") -> Path:
    """Write a video showing each image for its number of seconds (scaled to fit, on white), with optional audio.

    Args:
        path: the file to write; its extension picks the container (``.mp4``, ``.mkv``, ``.webm``...).
        slides: ``(image file, seconds)`` pairs, shown in order.
        audio: a sound file (any format FFmpeg reads) muxed as the audio track (AAC; Opus for WebM).
        size: frame width and height (even numbers).
        fps: frames per second; slides need few.
        codec: the video encoder (``libx264``, ``mpeg4``, ``libvpx-vp9``...).
    """
    import av
    import numpy as np
    from PIL import Image, ImageOps

    out = Path(path)
    webm = out.suffix.lower() == ".webm"
    with av.open(str(out), mode="w") as container:
        stream = container.add_stream("libvpx-vp9" if webm else codec, rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        a_out = container.add_stream("libopus" if webm else "aac", rate=48000) if audio is not None else None
        n = 0
        for image, seconds in slides:
            with Image.open(image) as img:
                # Scaled to fill the frame as a slide does; transparent parts show the white canvas.
                picture = ImageOps.contain(img.convert("RGBA"), size)
                canvas = Image.new("RGB", size, "white")
                canvas.paste(picture, ((size[0] - picture.width) // 2, (size[1] - picture.height) // 2),
                             mask=picture.getchannel("A"))
            frame = av.VideoFrame.from_ndarray(np.asarray(canvas), format="rgb24")
            for _ in range(round(seconds * fps)):
                frame.pts = n
                frame.time_base = Fraction(1, fps)
                n += 1
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
        if audio is not None and a_out is not None:
            resampler = av.AudioResampler(format=a_out.format.name, layout="mono", rate=48000)
            with av.open(str(audio)) as src:
                for f in src.decode(src.streams.audio[0]):
                    for r in resampler.resample(f):
                        container.mux(a_out.encode(r))
            for r in resampler.resample(None):
                container.mux(a_out.encode(r))
            container.mux(a_out.encode(None))
    return out
