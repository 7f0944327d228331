"""URL safety checks and the Fetcher's per-hop rules, without any network (httpx.MockTransport, fake resolver)."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator

import httpx
import pytest

from mmrag.errors import FetchError, UnsafeURLError
from mmrag.parsers.fetch import Fetcher, IPAddress, address_problem, check_url, fetch_url, parse_ip_literal
from mmrag.parsers.options import ParseOptions

PUBLIC = "93.184.216.34"


def fake_resolver(table: dict[str, list[str]]) -> Callable[[str, int], list[IPAddress]]:
    def resolve(host: str, port: int) -> list[IPAddress]:
        if host not in table:
            raise OSError(f"unknown host {host}")
        return [ipaddress.ip_address(a) for a in table[host]]

    return resolve


def no_dns(host: str, port: int) -> list[IPAddress]:
    raise AssertionError(f"DNS must not be used for {host}")


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("::1", "loopback"),
        ("[::1]", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.10", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "link-local address (the cloud metadata service)"),
        ("fe80::1", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("::ffff:127.0.0.1", "loopback address (127.0.0.1 inside IPv6)"),
        ("::ffff:169.254.169.254", "cloud metadata"),
        ("2130706433", "loopback"),  # decimal 127.0.0.1
        ("0x7f000001", "loopback"),  # hex
        ("0177.0.0.1", "loopback"),  # octal
        ("127.1", "loopback"),  # short form
        ("100.64.0.1", "not a public address"),  # carrier-grade NAT
    ],
)
def test_non_public_addresses_are_named(host: str, kind: str) -> None:
    ip = parse_ip_literal(host)
    assert ip is not None
    problem = address_problem(ip)
    assert problem is not None and kind in problem


@pytest.mark.parametrize("host", [PUBLIC, "8.8.8.8", "2606:4700:4700::1111", "1.1.1.1"])
def test_public_addresses_pass(host: str) -> None:
    ip = parse_ip_literal(host)
    assert ip is not None and address_problem(ip) is None
    assert check_url(f"http://{'[' + host + ']' if ':' in host else host}/x", allow_private=False,
                     resolver=no_dns) == [ip]


@pytest.mark.parametrize("host", ["example.com", "08.1.2.3", "1.2.3.4.5", "256.1.1.1", "a.b", "1e100.net"])
def test_names_are_not_literals(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "http://[::1]/", "http://2130706433/", "http://0x7f.1/admin", "https://10.0.0.1/",
     "http://169.254.169.254/latest/meta-data/", "http://[::ffff:127.0.0.1]/", "http://0.0.0.0:22/"],
)
def test_private_literals_refused_without_dns(url: str) -> None:
    with pytest.raises(UnsafeURLError) as info:
        check_url(url, allow_private=False, resolver=no_dns)
    message = str(info.value)
    assert message.startswith(url + ": refused: ")
    assert "set MMRAG_ALLOW_PRIVATE_URLS=1 (or --allow-private-urls) to allow it" in message


def test_loopback_message_is_exact() -> None:
    with pytest.raises(UnsafeURLError) as info:
        check_url("http://127.0.0.1/x", allow_private=False, resolver=no_dns)
    assert info.value.reason == ("refused: 127.0.0.1 is a loopback address; "
                                 "set MMRAG_ALLOW_PRIVATE_URLS=1 (or --allow-private-urls) to allow it")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a", "gopher://example.com/",
                                 "data:text/html,<p>hi</p>", "javascript:alert(1)"])
def test_non_http_schemes_refused(url: str) -> None:
    with pytest.raises(UnsafeURLError, match="only http and https URLs can be fetched"):
        check_url(url, allow_private=True)


def test_every_resolved_address_is_checked() -> None:
    resolver = fake_resolver({"mixed.example": [PUBLIC, "10.0.0.7"], "ok.example": [PUBLIC]})
    with pytest.raises(UnsafeURLError, match="mixed.example resolves to 10.0.0.7, a private address"):
        check_url("http://mixed.example/", allow_private=False, resolver=resolver)
    assert [str(a) for a in check_url("http://ok.example/", allow_private=False, resolver=resolver)] == [PUBLIC]


def test_unresolvable_host_is_a_fetch_error() -> None:
    with pytest.raises(FetchError, match="cannot resolve host 'nowhere.example'") as info:
        check_url("http://nowhere.example/", allow_private=False, resolver=fake_resolver({}))
    assert not isinstance(info.value, UnsafeURLError)


def test_allow_private_skips_address_checks() -> None:
    assert check_url("http://127.0.0.1:9/", allow_private=True, resolver=no_dns) == []


# --- the Fetcher, over a mock transport -------------------------------------------------------------------

class Recorder:
    """A mock server: ``routes`` maps the Host header + path to a response factory; records every request."""

    def __init__(self, routes: dict[str, Callable[[httpx.Request], httpx.Response]]) -> None:
        self.routes = routes
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        key = request.headers["host"] + request.url.path
        if key not in self.routes:
            return httpx.Response(404)
        return self.routes[key](request)


def make_fetcher(recorder: Recorder, **options: object) -> Fetcher:
    resolver = fake_resolver({"example.com": [PUBLIC], "evil.example": ["127.0.0.1"]})
    return Fetcher(ParseOptions(**options), transport=httpx.MockTransport(recorder),  # type: ignore[arg-type]
                   resolver=resolver)


def redirect(to: str, status: int = 302) -> Callable[[httpx.Request], httpx.Response]:
    return lambda request: httpx.Response(status, headers={"Location": to})


def test_fetch_connects_to_the_checked_address() -> None:
    html = b"<!doctype html><html><body><p>hello</p></body></html>"
    recorder = Recorder({"example.com/page": lambda r: httpx.Response(200, content=html,
                                                                      headers={"Content-Type": "text/html"})})
    with make_fetcher(recorder, user_agent="mmrag-test/1") as fetcher:
        blob = fetcher.fetch("https://example.com/page")
    (request,) = recorder.requests
    assert request.url.host == PUBLIC  # pinned: no second DNS lookup that a rebinding attack could answer
    assert request.headers["host"] == "example.com"
    assert request.extensions["sni_hostname"] == "example.com"  # TLS still verifies the real name
    assert request.headers["user-agent"] == "mmrag-test/1"
    assert (blob.source, blob.base, blob.mime_type, blob.data) == (
        "https://example.com/page", "https://example.com/page", "text/html", html)


def test_redirect_to_loopback_is_refused_before_requesting_it() -> None:
    recorder = Recorder({"example.com/start": redirect("http://127.0.0.1:8080/admin")})
    with make_fetcher(recorder) as fetcher, pytest.raises(UnsafeURLError) as info:
        fetcher.fetch("http://example.com/start")
    assert len(recorder.requests) == 1
    assert info.value.source == "http://example.com/start"
    assert "redirect to http://127.0.0.1:8080/admin refused: 127.0.0.1 is a loopback address" in info.value.reason


def test_redirect_to_a_name_resolving_to_loopback_is_refused() -> None:
    recorder = Recorder({"example.com/start": redirect("http://evil.example/")})
    with make_fetcher(recorder) as fetcher, pytest.raises(UnsafeURLError, match="evil.example resolves to 127.0.0.1"):
        fetcher.fetch("http://example.com/start")
    assert len(recorder.requests) == 1


def test_redirect_to_file_scheme_is_refused() -> None:
    recorder = Recorder({"example.com/start": redirect("file:///etc/passwd", 301)})
    with make_fetcher(recorder) as fetcher, pytest.raises(UnsafeURLError, match="not file:"):
        fetcher.fetch("http://example.com/start")


def test_redirects_followed_within_limit_and_base_is_final_url() -> None:
    recorder = Recorder({
        "example.com/a": redirect("/b"),
        "example.com/b": redirect("c/", 307),
        "example.com/c/": lambda r: httpx.Response(200, content=b"%PDF-1.7 tiny",
                                                   headers={"Content-Type": "application/octet-stream"}),
    })
    with make_fetcher(recorder, fetch_max_redirects=2) as fetcher:
        blob = fetcher.fetch("http://example.com/a")
    assert blob.source == "http://example.com/a"
    assert blob.base == "http://example.com/c/"
    assert blob.mime_type == "application/pdf"


def test_malformed_redirect_location() -> None:
    recorder = Recorder({"example.com/start": redirect("http://[bad")})
    with make_fetcher(recorder) as fetcher, pytest.raises(FetchError, match="redirect to .* not a valid URL"):
        fetcher.fetch("http://example.com/start")


def test_too_many_redirects() -> None:
    recorder = Recorder({f"example.com/{i}": redirect(f"/{i + 1}") for i in range(10)})
    with make_fetcher(recorder, fetch_max_redirects=3) as fetcher, \
            pytest.raises(FetchError, match="too many redirects"):
        fetcher.fetch("http://example.com/0")
    assert len(recorder.requests) == 4  # the first request and three redirects


def test_http_error_status() -> None:
    with make_fetcher(Recorder({})) as fetcher, pytest.raises(FetchError) as info:
        fetcher.fetch("http://example.com/missing")
    assert info.value.reason == "HTTP 404 Not Found"


class ExplodingStream(httpx.SyncByteStream):
    def __init__(self) -> None:
        self.read = False

    def __iter__(self) -> Iterator[bytes]:
        self.read = True
        yield b"x" * 10


def test_declared_content_length_over_the_limit_is_refused_unread() -> None:
    stream = ExplodingStream()
    recorder = Recorder({"example.com/big": lambda r: httpx.Response(200, headers={"Content-Length": "5000000"},
                                                                     stream=stream)})
    with make_fetcher(recorder, fetch_max_bytes=100_000) as fetcher, pytest.raises(FetchError) as info:
        fetcher.fetch("http://example.com/big")
    assert "larger than 100,000 bytes (fetch_max_bytes)" in info.value.reason
    assert not stream.read


def test_streamed_body_over_the_limit_is_aborted() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(100):
            yield b"y" * 1000

    recorder = Recorder({"example.com/big": lambda r: httpx.Response(200, content=chunks())})
    with make_fetcher(recorder, fetch_max_bytes=5000) as fetcher, pytest.raises(FetchError, match="larger than 5,000"):
        fetcher.fetch("http://example.com/big")
    with make_fetcher(recorder) as fetcher, pytest.raises(FetchError, match="larger than 2,000 bytes$"):
        fetcher.fetch("http://example.com/big", max_bytes=2000)


def test_network_errors_and_timeouts_become_fetch_errors() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("read timed out", request=request)

    with make_fetcher(Recorder({"example.com/x": refuse})) as fetcher, pytest.raises(FetchError) as info:
        fetcher.fetch("http://example.com/x")
    assert "network error" in info.value.reason and "connection refused" in info.value.reason
    with make_fetcher(Recorder({"example.com/x": slow}), fetch_timeout=3) as fetcher, \
            pytest.raises(FetchError, match=r"timed out after 3 s \(fetch_timeout\)"):
        fetcher.fetch("http://example.com/x")


def test_html_is_refused_where_an_image_is_expected() -> None:
    recorder = Recorder({"example.com/logo.png": lambda r: httpx.Response(200, content=b"<html><body>Not found")})
    with make_fetcher(recorder) as fetcher, pytest.raises(FetchError, match="sent an HTML page"):
        fetcher.fetch("http://example.com/logo.png", accept_html=False)
    assert recorder.requests[0].headers["accept"].startswith("image/")


def test_fetch_url_refuses_loopback_by_default() -> None:
    with pytest.raises(UnsafeURLError, match="loopback"):
        fetch_url("http://127.0.0.1:1/", ParseOptions())


@pytest.mark.parametrize("url", ["http://exa mple.com/", "http://example.com:99999999/", "http://[::1/"])
def test_invalid_url(url: str) -> None:
    with Fetcher() as fetcher, pytest.raises(FetchError, match="not a valid URL"):
        fetcher.fetch(url)
