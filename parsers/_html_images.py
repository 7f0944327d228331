"""Images in HTML: which URL an ``<img>``/``<picture>`` means, where it resolves, and loading its bytes.

Loading follows the page: a local page reads images relative to its folder (and may use ``file:`` URLs); a
fetched page loads them through the safe :class:`~mmrag.parsers.fetch.Fetcher` (same address rules, size
capped at ``max_image_bytes``) and never reads local files. Every problem is a warning naming the image.

A page's remote images are fetched concurrently (:meth:`ImageLoader.submit`, a few at a time) within one
budget per page: at most ``max_page_images`` images, ``fetch_max_bytes`` bytes in all, and
``page_images_timeout`` seconds from the first one, so a page with 10,000 ``<img>`` or a slow image host
cannot hold an ingest for hours.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, unquote_to_bytes, urljoin, urlsplit
from urllib.request import url2pathname

from mmrag.errors import FetchError
from mmrag.parsers._report import warn
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.sources import is_url

if TYPE_CHECKING:
    from bs4 import Tag

    from mmrag.parsers.fetch import Fetcher

__all__ = ["ImageLoader", "best_src", "decode_data_uri", "parse_srcset"]

logger = logging.getLogger(__name__)

_LAZY_ATTRS = ("data-src", "data-original", "data-lazy-src")
_UNSUPPORTED_TYPES = ("image/svg+xml", "image/avif", "image/jxl", "image/heic")
_SVG = re.compile(r"\.svgz?$", re.IGNORECASE)
IMAGE_FETCHERS = 8  # remote images of one page fetched at once


def parse_srcset(value: str) -> list[tuple[str, float, str]]:
    """Candidates of a ``srcset`` as ``(url, number, "w" | "x")``; a bare URL counts as ``1x``.

    URLs may contain commas (``data:`` URIs); like the HTML spec, a URL runs to the next whitespace and only a
    trailing comma ends it.
    """
    out: list[tuple[str, float, str]] = []
    i, n = 0, len(value)
    while i < n:
        while i < n and (value[i].isspace() or value[i] == ","):
            i += 1
        start = i
        while i < n and not value[i].isspace():
            i += 1
        url = value[start:i]
        descriptor = ""
        if url.endswith(","):
            url = url.rstrip(",")
        else:
            end = value.find(",", i)
            end = n if end < 0 else end
            descriptor = value[i:end].strip()
            i = end + 1
        if not url:
            continue
        number, kind = 1.0, "x"
        for token in descriptor.split():
            match = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)([wx])", token.lower())
            if match:
                number, kind = float(match.group(1)), match.group(2)
        out.append((url, number, kind))
    return out


def _largest(srcset: str) -> str | None:
    candidates = parse_srcset(srcset)
    widths = [c for c in candidates if c[2] == "w"]
    pool = widths or candidates
    return max(pool, key=lambda c: c[1])[0] if pool else None


def _img_src(img: Tag) -> str | None:
    src = str(img.get("src") or "").strip()
    srcset = str(img.get("srcset") or "").strip()
    best = _largest(srcset) if srcset else None
    if best:
        return best
    lazy = next((str(img[a]).strip() for a in _LAZY_ATTRS if img.get(a)), "")
    if lazy and (not src or src.startswith("data:")):  # a lazy-loading placeholder stands in for the real image
        return lazy
    return src or None


def best_src(tag: Tag) -> str | None:
    """The URL to load for an ``<img>`` or ``<picture>``: the largest ``srcset`` candidate, else ``src``."""
    if tag.name == "picture":
        for source in tag.find_all("source"):
            kind = str(source.get("type") or "").lower()
            if kind in _UNSUPPORTED_TYPES:
                continue
            best = _largest(str(source.get("srcset") or source.get("src") or ""))
            if best:
                return best
        img = tag.find("img")
        return _img_src(img) if img is not None else None
    return _img_src(tag)


def decode_data_uri(uri: str) -> tuple[str, bytes]:
    """``(media type, bytes)`` of a ``data:`` URI, base64 or percent-encoded; raises ValueError if malformed."""
    head, sep, payload = uri[5:].partition(",")
    if not sep:
        raise ValueError("a data: URI needs a comma before its payload")
    params = [p.strip() for p in head.split(";")]
    media = params[0].lower() or "text/plain"
    if any(p.lower() == "base64" for p in params[1:]):
        raw = re.sub(r"\s+", "", unquote(payload))
        try:
            return media, base64.b64decode(raw + "=" * (-len(raw) % 4))
        except (binascii.Error, ValueError) as e:
            raise ValueError(f"bad base64 in data: URI ({e})") from e
    return media, unquote_to_bytes(payload)


class ImageLoader:
    """Resolves image URLs of one page and loads their bytes, warning (never raising) on every failure.

    Args:
        source: the page, named in warnings.
        base: the final URL of a fetched page, or the folder of a local file, or None.
        base_href: the page's ``<base href>``, if any.
        options: ``max_image_bytes`` and fetch settings.
        fetcher: a shared fetcher; when None one is made on first use and closed by :meth:`close`.
    """

    def __init__(self, source: str, base: str | None, base_href: str | None, options: ParseOptions,
                 fetcher: Fetcher | None = None) -> None:
        self.source = source
        self.options = options
        self._fetcher = fetcher
        self._own_fetcher: Fetcher | None = None
        self.local = base is not None and not is_url(base)
        root: str | None
        if base is None:
            root = None
        elif self.local:
            root = Path(base).expanduser().resolve().as_uri() + "/"
        else:
            root = base
        if base_href:
            href = base_href.strip()
            if root is not None or urlsplit(href).scheme in ("http", "https", "file"):
                root = urljoin(root or "", href)
        self.base = root
        self._pool: ThreadPoolExecutor | None = None
        self._deadline = 0.0
        self._submitted = 0
        self._over_count = 0
        self._bytes_left = options.fetch_max_bytes
        self._budget_lock = threading.Lock()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._own_fetcher is not None:
            self._own_fetcher.close()
            self._own_fetcher = None

    @staticmethod
    def is_remote(resolved: str) -> bool:
        return urlsplit(resolved).scheme.lower() in ("http", "https")

    def submit(self, resolved: str) -> Future[tuple[bytes | None, str | None]] | None:
        """Start fetching a remote image in the background; None when the page's image cap is reached."""
        if self._submitted >= self.options.max_page_images:
            self._over_count += 1
            return None
        if self._pool is None:
            self._deadline = time.monotonic() + self.options.page_images_timeout
            self._pool = ThreadPoolExecutor(max_workers=IMAGE_FETCHERS, thread_name_prefix="mmrag-images")
        self._submitted += 1
        return self._pool.submit(self._fetch, resolved)

    def finish(self, resolved: str, future: Future[tuple[bytes | None, str | None]]) -> bytes | None:
        """The bytes of a submitted image, or None after a warning (in the caller's thread, where warnings
        are collected)."""
        data, reason = future.result()
        if reason is not None:
            warn(self.source, f"skipped image {self.label(resolved)}: {reason}")
        return data

    def warn_over_cap(self) -> None:
        if self._over_count:
            warn(self.source, f"skipped {self._over_count:,} more images: the page has more than "
                              f"{self.options.max_page_images:,} (max_page_images)")

    def _fetch(self, resolved: str) -> tuple[bytes | None, str | None]:
        """Fetch one image within the page's budget: (bytes, None) or (None, why not)."""
        with self._budget_lock:
            left = self._bytes_left
        if left <= 0:
            return None, f"the page's images passed {self.options.fetch_max_bytes:,} bytes in all (fetch_max_bytes)"
        if time.monotonic() >= self._deadline:
            return None, (f"not fetched within the page's {self.options.page_images_timeout:g} s budget for its "
                          "images (page_images_timeout)")
        cap = min(self.options.max_image_bytes, left)
        try:
            data = self._get_fetcher().fetch(resolved, max_bytes=cap, accept_html=False, deadline=self._deadline).data
        except FetchError as e:
            which = " (max_image_bytes)" if cap == self.options.max_image_bytes else (
                " (the rest of the page's fetch_max_bytes)")
            return None, e.reason + (which if "larger than" in e.reason else "")
        with self._budget_lock:
            self._bytes_left -= len(data)
        return data, None

    def resolve(self, src: str) -> str | None:
        """Absolute URL (``http(s)``, ``file`` or ``data``) of ``src``; None (with a warning) when it cannot be."""
        src = src.strip()
        if src.lower().startswith("data:"):
            return src
        scheme = urlsplit(src).scheme.lower()
        if scheme and len(scheme) > 1:  # "c:" would be a Windows drive, not a scheme
            resolved = src
        elif self.base is None:
            warn(self.source, f"skipped image {src}: a relative link, and the page has no base URL or folder")
            return None
        else:
            resolved = urljoin(self.base, src)
        kind = urlsplit(resolved).scheme.lower()
        if kind in ("http", "https"):
            return resolved
        if kind == "file":
            if not self.local:
                warn(self.source, f"skipped image {src}: a fetched page may not read local files")
                return None
            return resolved
        warn(self.source, f"skipped image {src}: unsupported URL scheme {kind or 'none'!r}")
        return None

    @staticmethod
    def label(resolved: str) -> str:
        """How an image is named in metadata and warnings (``data:`` URIs are shortened)."""
        if resolved.lower().startswith("data:"):
            return resolved.split(",", 1)[0] + f",… ({len(resolved):,} chars)"
        if resolved.startswith("file:"):
            return url2pathname(urlsplit(resolved).path)
        from mmrag.parsers.sources import display_source

        return display_source(resolved)  # never a password or token in metadata or warnings

    @staticmethod
    def key(resolved: str) -> str:
        """Dedup key: the URL without fragment (a digest for ``data:`` URIs)."""
        if resolved.lower().startswith("data:"):
            return "data:" + hashlib.sha256(resolved.encode("utf-8", "surrogatepass")).hexdigest()
        return resolved.split("#", 1)[0]

    def is_svg(self, resolved: str) -> bool:
        if resolved.lower().startswith("data:"):
            return resolved[5:].split(",", 1)[0].lower().startswith("image/svg")
        return bool(_SVG.search(urlsplit(resolved).path))

    def load(self, resolved: str) -> bytes | None:
        """The image bytes, or None after a warning (missing, too big, refused, HTTP error...)."""
        label = self.label(resolved)
        cap = self.options.max_image_bytes
        too_big = f"over the {cap:,}-byte cap (max_image_bytes)"
        kind = urlsplit(resolved).scheme.lower()
        if kind == "data":
            payload = resolved.split(",", 1)[1] if "," in resolved else ""
            if len(payload) * 3 // 4 > cap + 3:
                warn(self.source, f"skipped image {label}: {too_big}")
                return None
            try:
                return decode_data_uri(resolved)[1]
            except ValueError as e:
                warn(self.source, f"skipped image {label}: {e}")
                return None
        if kind == "file":
            path = Path(url2pathname(unquote(urlsplit(resolved).path)))
            try:
                if not path.is_file():
                    warn(self.source, f"skipped image {label}: {'not a file' if path.exists() else 'no such file'}")
                    return None
                size = path.stat().st_size
                if size > cap:
                    warn(self.source, f"skipped image {label}: {size:,} bytes is {too_big}")
                    return None
                return path.read_bytes()
            except OSError as e:
                warn(self.source, f"skipped image {label}: cannot read it ({e.strerror or e})")
                return None
        try:
            data: bytes = self._get_fetcher().fetch(resolved, max_bytes=cap, accept_html=False).data
            return data
        except FetchError as e:
            reason = e.reason + (" (max_image_bytes)" if "larger than" in e.reason else "")
            warn(self.source, f"skipped image {label}: {reason}")
            return None

    def _get_fetcher(self) -> Fetcher:
        if self._fetcher is not None:
            return self._fetcher
        if self._own_fetcher is None:
            from mmrag.parsers.fetch import Fetcher

            self._own_fetcher = Fetcher(self.options)
        return self._own_fetcher
