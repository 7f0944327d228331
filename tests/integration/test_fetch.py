"""Fetching pages, images and PDFs from a real HTTP server on 127.0.0.1 (tests/data/html plus test routes)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from mmrag.errors import FetchError, UnsafeURLError
from mmrag.parsers.fetch import Fetcher, fetch_url
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.sources import parse_source

pytestmark = pytest.mark.integration

HTML = Path(__file__).parents[1] / "data" / "html"
OPEN = ParseOptions(allow_private_urls=True, fetch_timeout=5)


def tiny_pdf() -> bytes:
    import pymupdf

    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A PDF served by URL.")
    data: bytes = doc.tobytes()
    doc.close()
    return data


@dataclass
class Server:
    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


class Handler(http.server.SimpleHTTPRequestHandler):
    server_state: Server
    pdf: bytes

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server_state.requests.append((self.path, dict(self.headers.items())))
        path = self.path
        if path.startswith("/hops/"):  # /hops/N redirects N more times, then lands on the SSL page
            left = int(path.rsplit("/", 1)[1])
            target = f"/hops/{left - 1}" if left > 1 else "/apache2/en/ssl/ssl_intro.html"
            self._send(302, headers={"Location": target})
        elif path == "/moved":  # a relative page: its images resolve only against the final URL
            self._send(301, headers={"Location": "/apache2/en/rewrite/intro.html"})
        elif path == "/to-ftp":
            self._send(302, headers={"Location": "ftp://127.0.0.1/file"})
        elif path == "/broken.html":
            body = (b"<html><body><h1>Broken</h1><p>Page text survives.</p><img src='missing.png' alt='gone'>"
                    b"<img src='octave/plot.png' alt='plot'></body></html>")
            self._send(200, body, {"Content-Type": "text/html; charset=utf-8"})
        elif path == "/big":  # no Content-Length: the limit must hold while streaming
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Connection", "close")
            self.end_headers()
            try:
                for _ in range(50):
                    self.wfile.write(b"<p>" + b"x" * 996 + b"</p>")
            except (BrokenPipeError, ConnectionResetError):
                pass
        elif path == "/big-declared":
            self._send(200, b"tiny", {"Content-Length": "10000000", "Connection": "close"})
        elif path == "/report":
            self._send(200, self.pdf, {"Content-Type": "application/octet-stream"})
        else:
            super().do_GET()


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    state = Server(url="")
    handler = type("BoundHandler", (Handler,), {"server_state": state, "pdf": tiny_pdf()})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(HTML)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture()
def fresh(server: Server) -> Server:
    server.requests.clear()
    return server


def test_page_by_url_with_relative_images(fresh: Server) -> None:
    result = parse_source(f"{fresh.url}/apache2/en/ssl/ssl_intro.html", OPEN)
    assert result.ok, result.error
    images = [e for e in result.elements if e.kind == "image"]
    assert [e.metadata["src"] for e in images] == [
        f"{fresh.url}/apache2/images/ssl_intro_fig{i}.gif" for i in (1, 2, 3)]
    assert len([e for e in result.elements if e.kind == "table"]) == 3
    assert all(e.source == f"{fresh.url}/apache2/en/ssl/ssl_intro.html" for e in result.elements)
    assert all(headers.get("User-Agent") == OPEN.user_agent for _, headers in fresh.requests)
    assert "/apache2/images/feather.png" not in fresh.paths  # the header logo is never even fetched


def test_relative_images_resolve_against_the_final_url(fresh: Server) -> None:
    with Fetcher(OPEN) as fetcher:
        blob = fetcher.fetch(f"{fresh.url}/moved")
    assert blob.source == f"{fresh.url}/moved"
    assert blob.base == f"{fresh.url}/apache2/en/rewrite/intro.html"
    result = parse_source(f"{fresh.url}/moved", OPEN)
    assert result.ok and result.warnings == ()
    assert [e.metadata["src"].rsplit("/", 1)[1] for e in result.elements if e.kind == "image"] == [
        "rewrite_simplified_overview.png", "rewrite_backreferences.png", "syntax_rewriterule.png",
        "syntax_rewritecond.png"]


def test_redirect_chain_within_and_past_the_limit(fresh: Server) -> None:
    options = ParseOptions(allow_private_urls=True, fetch_max_redirects=3)
    blob = fetch_url(f"{fresh.url}/hops/3", options)
    assert blob.base == f"{fresh.url}/apache2/en/ssl/ssl_intro.html" and blob.mime_type == "text/html"
    fresh.requests.clear()
    with pytest.raises(FetchError, match="too many redirects") as info:
        fetch_url(f"{fresh.url}/hops/4", options)
    assert info.value.source == f"{fresh.url}/hops/4"
    assert fresh.paths == ["/hops/4", "/hops/3", "/hops/2", "/hops/1"]


def test_redirect_to_another_scheme_is_refused(fresh: Server) -> None:
    with pytest.raises(UnsafeURLError, match="redirect to ftp://127.0.0.1/file refused"):
        fetch_url(f"{fresh.url}/to-ftp", OPEN)


def test_missing_image_warns_and_page_still_parses(fresh: Server) -> None:
    result = parse_source(f"{fresh.url}/broken.html", OPEN)
    assert result.ok
    assert [e.kind for e in result.elements] == ["text", "image"]
    assert "Page text survives." in result.elements[0].text
    assert result.warnings == (f"skipped image {fresh.url}/missing.png: HTTP 404 File not found",)


def test_missing_page_is_an_http_error(fresh: Server) -> None:
    result = parse_source(f"{fresh.url}/nope.html", OPEN)
    assert result.error == "HTTP 404 File not found"


def test_oversized_bodies(fresh: Server) -> None:
    options = ParseOptions(allow_private_urls=True, fetch_max_bytes=20_000)
    with pytest.raises(FetchError, match=r"larger than 20,000 bytes \(fetch_max_bytes\)$"):
        fetch_url(f"{fresh.url}/big", options)
    with pytest.raises(FetchError, match="Content-Length is 10,000,000"):
        fetch_url(f"{fresh.url}/big-declared", options)


def test_pdf_by_url_is_sniffed(fresh: Server) -> None:
    blob = fetch_url(f"{fresh.url}/report", OPEN)
    assert blob.mime_type == "application/pdf"
    assert blob.data.startswith(b"%PDF-")


def test_loopback_refused_by_default_before_any_request(fresh: Server) -> None:
    url = f"{fresh.url}/apache2/en/ssl/ssl_intro.html"
    with pytest.raises(UnsafeURLError) as info:
        fetch_url(url, ParseOptions())
    assert info.value.reason.startswith("refused: 127.0.0.1 is a loopback address; set MMRAG_ALLOW_PRIVATE_URLS=1")
    result = parse_source(url)
    assert not result.ok and "loopback" in (result.error or "")
    assert fresh.requests == []
