"""Misbehaving HTTP servers on 127.0.0.1 for the fault suite: slow headers, slow bodies, pages of images.

Each server is a plain socket loop in a daemon thread; it stops (and every connection ends) when the
fixture's ``with`` block exits.
"""

from __future__ import annotations

import io
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

Route = Callable[[socket.socket, threading.Event], None]


@dataclass
class Stats:
    requests: list[str] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def png(seed: int, size: int = 80) -> bytes:
    from PIL import Image

    img = Image.new("RGB", (size, size), ((seed * 37) % 256, (seed * 91) % 256, (seed * 53) % 256))
    img.putpixel((seed % size, 0), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def send(conn: socket.socket, status: str, body: bytes, content_type: str) -> None:
    head = (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n")
    conn.sendall(head.encode() + body)


def trickle(conn: socket.socket, stop: threading.Event, data: bytes, every: float = 0.2) -> None:
    """Send ``data`` one byte at a time until it is sent, the client hangs up or the server stops."""
    for i in range(len(data)):
        if stop.wait(every):
            return
        try:
            conn.sendall(data[i : i + 1])
        except OSError:
            return


@contextmanager
def serve(routes: dict[str, Route]) -> Iterator[tuple[str, Stats]]:
    """Serve ``routes`` (path → handler) on 127.0.0.1; yields the base URL and request statistics."""
    stop = threading.Event()
    stats = Stats()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    threads: list[threading.Thread] = []

    def handle(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                request = b""
                while b"\r\n\r\n" not in request:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    request += chunk
            except OSError:
                return
            path = request.split(b" ", 2)[1].decode()
            with stats.lock:
                stats.requests.append(path)
                stats.in_flight += 1
                stats.max_in_flight = max(stats.max_in_flight, stats.in_flight)
            try:
                route = routes.get(path) or routes.get(path.rsplit("/", 1)[0] + "/*")
                if route is None:
                    send(conn, "404 Not Found", b"missing", "text/plain")
                else:
                    route(conn, stop)
            except OSError:
                pass
            finally:
                with stats.lock:
                    stats.in_flight -= 1

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            t = threading.Thread(target=handle, args=(conn,), daemon=True)
            threads.append(t)
            t.start()

    server = threading.Thread(target=loop, daemon=True)
    server.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}", stats
    finally:
        stop.set()
        server.join(timeout=5)
        listener.close()
        for t in threads:
            t.join(timeout=5)
