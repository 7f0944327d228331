"""Issue 23 item 5: one redaction rule for every URL that is logged, stored, cited or rendered."""

from __future__ import annotations

import logging

import pytest

from mmrag.parsers.sources import display_source
from mmrag.redaction import RedactingFormatter, is_secret_param, redact_text, redact_url


@pytest.mark.parametrize(("given", "shown"), [
    ("https://alice:pw@example.com/a?x=1", "https://example.com/a?x=1"),
    ("https://h/p?access_key=K1&auth_token=T1&page=2", "https://h/p?page=2"),
    ("https://h/p#access_token=F1&state=s", "https://h/p#state=s"),
    ("https://h/p?X-Amz-Credential=C&X-Amz-Signature=S&v=1", "https://h/p?v=1"),
    ("https://h/p?sig=S&sv=2020", "https://h/p?sv=2020"),
    ("https://h/p?client_secret=S&refresh-token=R&apiKey=A&private_key=P", "https://h/p"),
    ("https://h/manual.html#section-2", "https://h/manual.html#section-2"),
    ("https://h/p?q=token&sort=key", "https://h/p?q=token&sort=key"),  # values are not names
    ("/local/docs/report.pdf", "/local/docs/report.pdf"),
])
def test_the_rule(given: str, shown: str) -> None:
    assert display_source(given) == shown
    assert redact_url(given) == shown or not given.startswith("http")


@pytest.mark.parametrize("name", ["token", "TOKEN", "access_key", "Auth-Token", "accessToken", "password",
                                  "X-Amz-Security-Token", "x-goog-signature", "session_id", "code"])
def test_secret_names(name: str) -> None:
    assert is_secret_param(name)


@pytest.mark.parametrize("name", ["page", "q", "lang", "sort", "monkey", "keyword", "tokens_per_page"])
def test_plain_names(name: str) -> None:
    assert not is_secret_param(name)


def test_free_text_and_log_records() -> None:
    line = ('HTTP Request: GET http://bob:hunter2@h/x?token=T9 "HTTP/1.1 200 OK"; GET /y?auth_token=T8&n=1 HTTP/1.1; '
            "headers={'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIA/x, Signature=ab', "
            "'X-Amz-Security-Token': b'FwoG'}")
    out = redact_text(line)
    assert not any(s in out for s in ("hunter2", "T9", "T8", "AKIA", "FwoG"))
    assert "GET http://h/x" in out and "n=1" in out
    record = logging.LogRecord("httpx", logging.INFO, __file__, 1, "HTTP Request: %s %s", ("GET", "https://u:pw@h/?key=K7"),
                               None)
    assert RedactingFormatter("%(message)s").format(record) == "HTTP Request: GET https://h/"
