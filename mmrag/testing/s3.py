"""A local S3 for tests and benchmarks: moto's threaded server on 127.0.0.1 (``pip install 'moto[server]'``).

::

    from mmrag.testing.s3 import MotoS3Server

    with MotoS3Server() as s3:
        client = s3.client()                       # a real boto3 S3 client with dummy credentials
        client.create_bucket(Bucket="objects")
        store = S3ObjectStore("objects", client=client)

moto keeps its state per process, not per server: two servers in one process see the same buckets, so give each
test its own bucket name (or call :meth:`MotoS3Server.reset`).
"""

from __future__ import annotations

import logging
import urllib.request
from types import TracebackType
from typing import Any

from mmrag.errors import MissingDependencyError

__all__ = ["MotoS3Server"]

_REGION = "us-east-1"
_DUMMY = "testing"


class MotoS3Server:
    """moto's ``ThreadedMotoServer`` bound to 127.0.0.1, started on enter and stopped on exit.

    Args:
        port: the port to listen on; 0 (the default) lets the OS pick a free one, see :attr:`endpoint_url`.
        quiet: silence the per-request access log of werkzeug (moto's web server), which otherwise goes to stderr,
            one line per request, unless the ``werkzeug`` logger already has a level set by you.
    """

    def __init__(self, port: int = 0, *, quiet: bool = True) -> None:
        self._port = port
        self._quiet = quiet
        self._server: Any = None
        self._url: str | None = None

    def start(self) -> MotoS3Server:
        """Start the server in a background thread (a no-op if it is running) and return ``self``."""
        if self._server is not None:
            return self
        try:
            from moto.server import ThreadedMotoServer
        except ImportError as e:
            raise MissingDependencyError("moto[server]", "dev", "MotoS3Server") from e
        if self._quiet:
            access_log = logging.getLogger("werkzeug")
            if access_log.level == logging.NOTSET:
                access_log.setLevel(logging.WARNING)  # werkzeug would set INFO and add a stderr handler
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self._url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop the server and wait for its thread; safe to call twice."""
        server, self._server, self._url = self._server, None, None
        if server is not None:
            server.stop()

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint_url(self) -> str:
        """``http://127.0.0.1:<port>``; the server must be running."""
        if self._url is None:
            raise RuntimeError("MotoS3Server is not running: use it as a context manager or call start()")
        return self._url

    def client(self, *, max_pool_connections: int = 16, region_name: str = _REGION) -> Any:
        """A real boto3 S3 client pointed at this server, with dummy credentials and SigV4 signing.

        Args:
            max_pool_connections: urllib3 pool size; at least the concurrency you will use.
            region_name: the client's region (moto does not check signatures).
        """
        import boto3
        from botocore.config import Config

        config = Config(
            signature_version="s3v4",
            max_pool_connections=max_pool_connections,
            retries={"mode": "standard", "max_attempts": 1},  # tests want to see errors, not retries
        )
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=region_name,
            config=config,
            aws_access_key_id=_DUMMY,
            aws_secret_access_key=_DUMMY,
            aws_session_token=_DUMMY,
        )

    def environ(self) -> dict[str, str]:
        """Environment variables that point a default-built boto3 client (and mmrag settings) at this server."""
        return {
            "AWS_ACCESS_KEY_ID": _DUMMY,
            "AWS_SECRET_ACCESS_KEY": _DUMMY,
            "AWS_SESSION_TOKEN": _DUMMY,
            "AWS_DEFAULT_REGION": _REGION,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "MMRAG_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def reset(self) -> None:
        """Forget every bucket and object (of every moto server in this process)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()
