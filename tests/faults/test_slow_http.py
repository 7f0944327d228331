"""Slow and lying HTTP servers: every fetch ends by its deadline, and a page's images stay within budget."""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from collections.abc import Callable

import pytest
from _fault_servers import png, send, serve, trickle

from mmrag.errors import FetchError
from mmrag.parsers.fetch import fetch_url
from mmrag.parsers.options import ParseOptions
from mmrag.parsers.sources import parse_source

pytestmark = [pytest.mark.integration, pytest.mark.faults]


def _slow_headers(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\n")
    trickle(conn, stop, b"X-Pad: " + b"a" * 100_000)


def _slow_body(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000000\r\n\r\n<html><body><p>")
    trickle(conn, stop, b"x" * 1_000_000)


def _lying_length(conn: socket.socket, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n<html>short")
    stop.wait(60)  # says 5000 bytes, sends 11, keeps the connection open


@pytest.mark.parametrize(("case", "route"), [("slow headers (1 byte / 0.2 s)", _slow_headers),
                                             ("slow body (1 byte / 0.2 s)", _slow_body),
                                             ("Content-Length larger than the body", _lying_length)])
def test_a_fetch_ends_at_its_deadline(case: str, route: Callable[[socket.socket, threading.Event], None],
                                      record: Callable[..., None]) -> None:
    with serve({"/page": route}) as (url, _), pytest.raises(FetchError, match=r"timed out after 1 s \(fetch_timeout\)"):
        fetch_url(f"{url}/page", ParseOptions(allow_private_urls=True, fetch_timeout=1))
    record(f"fetch deadline: {case}", held=1, lost=0)


def _page(n: int) -> Callable[[socket.socket, threading.Event], None]:
    imgs = "".join(f'<img src="/img/{i}.png" alt="image {i}">' for i in range(n))
    body = f"<html><body><h1>Gallery</h1><p>The text of the page.</p>{imgs}</body></html>".encode()
    return lambda conn, stop: send(conn, "200 OK", body, "text/html")


def test_page_images_are_capped_and_fetched_concurrently(record: Callable[..., None]) -> None:
    both = threading.Barrier(2, timeout=30)  # the first two images answer only once both are being fetched

    seeds = iter(range(1000))

    def image(conn: socket.socket, stop: threading.Event) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            both.wait()
        send(conn, "200 OK", png(next(seeds)), "image/png")

    with serve({"/page": _page(40), "/img/*": image}) as (url, stats):
        options = ParseOptions(allow_private_urls=True, max_page_images=10, fetch_timeout=60)
        result = parse_source(f"{url}/page", options)
    image_requests = [p for p in stats.requests if p.startswith("/img/")]
    assert result.ok, result.error
    assert len(image_requests) == 10
    assert stats.max_in_flight >= 2, "images of a page are fetched one after another"
    assert "skipped 30 more images: the page has more than 10 (max_page_images)" in result.warnings
    assert sum(e.kind == "image" for e in result.elements) >= 1
    record("page with 40 images, max_page_images=10", held=len(image_requests), lost=0)


def test_slow_image_host_costs_the_page_its_images_not_its_text(record: Callable[..., None]) -> None:
    def slow_image(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: 100000\r\n\r\n")
        trickle(conn, stop, png(1) * 100)

    with serve({"/page": _page(12), "/img/*": slow_image}) as (url, _):
        options = ParseOptions(allow_private_urls=True, fetch_timeout=60, page_images_timeout=1)
        result = parse_source(f"{url}/page", options)
    assert result.ok, result.error
    assert [e.kind for e in result.elements] == ["text"]
    assert "The text of the page." in result.elements[0].text
    budget = [w for w in result.warnings if "page_images_timeout" in w]
    # Warnings alike are summarised past a few ("... and N more like: ...", mmrag.parsers._report): count them all.
    summarised = [re.match(r"\.\.\. and ([\d,]+) more like: ", w) for w in budget]
    assert sum(int(m.group(1).replace(",", "")) if m else 1 for m in summarised) == 12, result.warnings
    record("12 images trickling, page_images_timeout=1", held=1, lost=0)
