"""Real headless Chromium for tests of HTML surfaces (galleries, visual answers, reports).

Use the ``chromium`` fixture (import it into a test module: ``from _browser import chromium  # noqa: F401``)::

    def test_page(chromium: Browser, tmp_path: Path) -> None:
        probe = chromium.probe(page_html, tmp_path)     # every <img>, alerts, text, after the load event
        assert probe.images and all(i["naturalWidth"] > 0 for i in probe.images)
        assert pixel_variance(chromium.screenshot(tmp_path / "page.html")) > 100

Each run gets a fresh ``--user-data-dir`` and the flags that keep Chromium off the network. The page under test
runs no script of its own; :func:`instrument` adds a probe that records, after ``load``, each image's
``naturalWidth``, any ``alert()`` call and the page's text into the DOM, which ``--dump-dom`` then prints. The
fixture skips the test, saying why, only when the Chromium binary is absent (``.ci/run`` installs it).
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

__all__ = ["Browser", "Probe", "chromium", "find_chromium", "instrument", "pixel_variance"]

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-extensions", "--mute-audio")
TIMEOUT_S = 180  # a loaded 2-core CI machine can take a while to start a browser; never a timed assertion

_PROBE = """<script id="mmrag-probe-script">
window.__alerts = [];
window.alert = function (m) { window.__alerts.push(String(m)); };
window.confirm = window.prompt = window.alert;
window.addEventListener('error', function (e) { window.__alerts.push('error: ' + (e.message || e.type)); }, true);
window.addEventListener('load', function () {
  var imgs = Array.prototype.map.call(document.images, function (i) {
    return {src: String(i.getAttribute('src') || '').slice(0, 64), naturalWidth: i.naturalWidth,
            naturalHeight: i.naturalHeight, complete: i.complete};
  });
  var out = document.createElement('pre');
  out.id = 'mmrag-probe';
  out.textContent = JSON.stringify({images: imgs, alerts: window.__alerts,
                                    scripts: document.scripts.length - 1, text: document.body.innerText});
  document.documentElement.appendChild(out);
});
</script>"""
_CSP = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>', re.IGNORECASE)
_RESULT = re.compile(r'<pre id="mmrag-probe">(.*?)</pre>', re.DOTALL)


def find_chromium() -> str | None:
    """The Chromium binary: ``MMRAG_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH, else None."""
    for candidate in (os.environ.get("MMRAG_CHROMIUM"), shutil.which("chromium"), shutil.which("chromium-browser"),
                      "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def instrument(page: str) -> str:
    """``page`` with the probe script first in ``<head>`` and its Content-Security-Policy removed (the CSP would
    block the probe; removing it also proves that escaping alone keeps document strings inert)."""
    page = _CSP.sub("", page)
    if "<head>" in page:
        return page.replace("<head>", "<head>" + _PROBE, 1)
    return _PROBE + page


@dataclass(frozen=True)
class Probe:
    """What the probe saw after the load event."""

    images: list[dict[str, Any]]
    alerts: list[str]
    scripts: int
    text: str
    dom: str = field(repr=False)


class Browser:
    """Runs headless Chromium, one fresh process (and profile) per call."""

    def __init__(self, binary: str, scratch: Path) -> None:
        self.binary = binary
        self.scratch = scratch

    def run(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="profile-") as profile:
            cmd = [self.binary, *FLAGS, f"--user-data-dir={profile}", *args]
            result = subprocess.run(cmd, capture_output=True, timeout=TIMEOUT_S, check=False)
        if result.returncode != 0:
            tail = result.stderr.decode(errors="replace")[-2000:]
            raise AssertionError(f"chromium exited {result.returncode}: {tail}")
        return result

    def dump_dom(self, page: Path) -> str:
        """The DOM after ``load`` (scripts and timers given up to 10 s of virtual time)."""
        return self.run("--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()).stdout.decode()

    def probe(self, page_html: str, folder: Path, name: str = "probe.html") -> Probe:
        """Write ``page_html`` instrumented to ``folder/name``, load it, and return what the probe recorded."""
        path = folder / name
        path.write_text(instrument(page_html), encoding="utf-8")
        dom = self.dump_dom(path)
        match = _RESULT.search(dom)
        if match is None:
            raise AssertionError(f"the probe did not run (no load event?); DOM tail: {dom[-1000:]}")
        import html

        data = json.loads(html.unescape(match.group(1)))
        return Probe(data["images"], data["alerts"], data["scripts"], data["text"], dom)

    def screenshot(self, page: Path, width: int = 1280, height: int = 1400) -> bytes:
        """A PNG screenshot of ``page`` at ``width`` x ``height``."""
        with tempfile.TemporaryDirectory(dir=self.scratch, prefix="shot-") as folder:
            out = Path(folder) / "shot.png"
            self.run("--virtual-time-budget=10000", f"--window-size={width},{height}", f"--screenshot={out}",
                     page.resolve().as_uri())
            return out.read_bytes()


def pixel_variance(png: bytes) -> float:
    """Variance of the grayscale pixel values of a screenshot (0 for a blank, single-colour page)."""
    from PIL import Image, ImageStat

    with Image.open(io.BytesIO(png)) as img:
        return float(ImageStat.Stat(img.convert("L")).var[0])


@pytest.fixture(scope="session")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    """A headless Chromium; the test is skipped, saying why, only if no Chromium binary is installed."""
    binary = find_chromium()
    if binary is None:
        pytest.skip("headless Chromium is not installed (apt-get install chromium, or set MMRAG_CHROMIUM)")
    yield Browser(binary, tmp_path_factory.mktemp("chromium"))
