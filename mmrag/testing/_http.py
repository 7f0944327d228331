"""HTTP plumbing of the emulator: the threaded stdlib server, request reading and response writing."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["Handler", "Server", "read_body", "send_json", "send_stream"]

logger = logging.getLogger("mmrag.testing")


class Server(ThreadingHTTPServer):
    """One thread per connection; threads are daemons so a stuck (sleeping) handler never blocks shutdown."""

    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handle: Callable[[Handler], None]) -> None:
        super().__init__(address, Handler)
        self.handle_request_callback = handle

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class Handler(BaseHTTPRequestHandler):
    """Keep-alive HTTP/1.1 handler that hands every request to the emulator."""

    protocol_version = "HTTP/1.1"
    # Headers and body leave in separate writes: with Nagle on, each response would wait ~40 ms for the
    # client's delayed ACK. TCP_NODELAY on every accepted connection removes that stall.
    disable_nagle_algorithm = True
    server: Server

    def do_POST(self) -> None:
        self.server.handle_request_callback(self)

    def do_GET(self) -> None:
        self.server.handle_request_callback(self)

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)


def read_body(handler: Handler) -> bytes:
    """The request body, with or without chunked transfer encoding."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while size := int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16):
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        handler.rfile.readline()
        return b"".join(chunks)
    return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))


def send_json(
    handler: Handler,
    status: int,
    payload: Any,
    headers: dict[str, str] | None = None,
    *,
    before_body: Callable[[], None] = lambda: None,
) -> None:
    """Write a JSON response with Content-Length and a request id; ``before_body`` runs before the body goes out."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    before_body()
    handler.wfile.write(data)


def send_stream(handler: Handler, messages: Iterable[bytes], *, before_end: Callable[[], None] = lambda: None) -> None:
    """Write an ``application/vnd.amazon.eventstream`` response, one HTTP chunk per framed message.

    ``before_end`` runs before the terminating chunk, which is what ends the client's iteration.
    """
    handler.send_response(200)
    handler.send_header("Content-Type", "application/vnd.amazon.eventstream")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.send_header("x-amzn-RequestId", str(uuid.uuid4()))
    handler.end_headers()
    for message in messages:
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(message), message))
        handler.wfile.flush()
    before_end()
    handler.wfile.write(b"0\r\n\r\n")
