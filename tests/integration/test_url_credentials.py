"""Credentials in a URL are used to fetch and then forgotten: never stored, indexed, cited or printed."""

from __future__ import annotations

import base64
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from mmrag.chains.ingestion import ingest
from mmrag.cli import cli
from mmrag.config import Settings

pytestmark = pytest.mark.integration

SECRETS = ("S3cretPw", "abc123", "zzsig")
PNG = (Path(__file__).parents[1] / "data" / "html" / "octave" / "plot.png").read_bytes()


class _Auth(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        expected = "Basic " + base64.b64encode(b"alice:S3cretPw").decode()
        if self.headers.get("Authorization") != expected and not self.path.startswith("/img/"):
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if self.path.startswith("/img/"):
            body, kind = PNG, "image/png"
        else:
            body = (b"<html><head><title>Private report</title></head><body><h1>Quarterly numbers</h1>"
                    b"<p>Revenue grew in every region this quarter.</p>"
                    b"<img src='/img/plot.png?token=abc123' alt='a plot'></body></html>")
            kind = "text/html"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def url() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Auth)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://alice:S3cretPw@127.0.0.1:{httpd.server_address[1]}/report.html?token=abc123&X-Amz-Signature=zzsig"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def test_ingest_keeps_no_credentials_anywhere(url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings(home=home, allow_private_urls=True, ocr="off")
    report = ingest([url], settings)
    assert report.ok, report.to_dict()
    clean = url.split("@", 1)[1].split("?", 1)[0]
    assert report.sources[0].source == f"http://{clean}"
    assert report.sources[0].elements.get("image") == 1
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in SECRETS), f"a credential is stored in {path}"
    again = ingest([url], settings)
    assert again.sources[0].status == "unchanged"  # the same source under its clean name


def test_parse_output_shows_no_credentials(url: str) -> None:
    result = CliRunner().invoke(cli, ["parse", "--json", "--allow-private-urls", url])
    assert result.exit_code == 0, result.output
    assert not any(s in result.output for s in SECRETS)
    bad = CliRunner().invoke(cli, ["parse", "--allow-private-urls", url.replace("S3cretPw", "wrongpw")])
    assert bad.exit_code == 1 and "HTTP 401" in bad.output
    assert not any(s in bad.output for s in ("wrongpw", "abc123", "zzsig"))


# -- issue 23 item 5: the names the old rule missed, fragments, and the -v log ---------------------------------------
MORE = ("akey777", "atok888", "frag999")


def test_access_key_auth_token_and_fragment_tokens_are_never_stored(url: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    given = f"{url}&access_key=akey777&auth_token=atok888&lang=en#access_token=frag999&state=ok"
    report = ingest([given], Settings(home=home, allow_private_urls=True, ocr="off"))
    assert report.ok, report.to_dict()
    assert report.sources[0].source.endswith("/report.html?lang=en#state=ok")
    for path in home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(s.encode() in data for s in (*SECRETS, *MORE)), f"a credential is stored in {path}"


def test_the_verbose_log_shows_no_credentials(url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    given = f"{url}&access_key=akey777&auth_token=atok888#access_token=frag999"
    env = {**os.environ, "MMRAG_HOME": str(tmp_path / "home"), "MMRAG_OCR": "off"}
    done = subprocess.run([sys.executable, "-m", "mmrag", "-vv", "parse", "--allow-private-urls", given],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert "HTTP Request: GET" in done.stderr  # the request lines are logged, without their secrets
    leaked = [s for s in (*SECRETS, *MORE) if s in done.stderr + done.stdout]
    assert not leaked, f"{leaked} in the -vv output"
