"""Safe URL fetching with httpx: http(s) only, no private addresses, bounded redirects, size and time.

Every hop of a redirect chain is checked the same way as the first URL, before any request is sent:

* the scheme must be ``http`` or ``https``;
* the host must not be, or resolve to, a loopback, private, link-local (cloud metadata at 169.254.169.254),
  multicast, reserved, unspecified or otherwise non-public address, including IPv4-mapped IPv6 forms and
  the shorthand IPv4 spellings browsers accept (``2130706433``, ``0x7f.1``, ``0177.0.0.1``). *Every* address
  a name resolves to is checked. ``ParseOptions.allow_private_urls`` turns this check off (local servers).

DNS rebinding (time-of-check/time-of-use): a name could resolve to a public address when we check it and
to 127.0.0.1 when the HTTP library resolves it again to connect. We close that gap by connecting to the
address we checked: the request goes to the IP, with the original ``Host`` header and, for https, the
original name as TLS SNI and certificate hostname (httpcore's ``sni_hostname`` extension). Environment
proxies are ignored (``trust_env=False``) because a proxy would resolve names itself, out of our sight.
When ``allow_private_urls`` is on, nothing is checked and httpx resolves and connects as usual.

Time: ``fetch_timeout`` is a deadline for the whole fetch (connect, headers, body, every redirect hop), not a
per-read timeout: a server trickling one byte a second would otherwise hold a read open for hours. Each read
waits at most for the time left, and a watchdog shuts the socket down when the deadline passes, which ends a
read that keeps receiving bytes. Connections are not kept alive between fetches, so every fetch has a socket
of its own for the watchdog to close.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING

from mmrag.elements import Blob
from mmrag.errors import FetchError, UnsafeURLError
from mmrag.parsers.mime import sniff_mime
from mmrag.parsers.options import ParseOptions

if TYPE_CHECKING:
    import httpx

__all__ = ["Fetcher", "IPAddress", "address_problem", "check_url", "fetch_url", "parse_ip_literal", "resolve_host"]

logger = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[IPAddress]]

ALLOWED_SCHEMES = frozenset({"http", "https"})
_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_ALLOW_HINT = "set MMRAG_ALLOW_PRIVATE_URLS=1 (or --allow-private-urls) to allow it"
_METADATA_IPS = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")})
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOSTNAME = re.compile(r"^[A-Za-z0-9_]([A-Za-z0-9_.-]*[A-Za-z0-9_.])?$")
_IPV4_PART = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_ACCEPT_ANY = "text/html,application/xhtml+xml,application/pdf;q=0.9,image/*;q=0.8,*/*;q=0.5"
_ACCEPT_IMAGE = "image/webp,image/png,image/jpeg,image/gif,image/*;q=0.8,*/*;q=0.5"


def _parse_ipv4_loose(host: str) -> ipaddress.IPv4Address | None:
    """IPv4 in the forms URL parsers accept: 1-4 parts, each decimal, 0x-hex or 0-octal; the last fills the rest."""
    parts = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.match(p) for p in parts):
        return None
    numbers: list[int] = []
    for part in parts:
        try:
            if part[:2].lower() == "0x":
                numbers.append(int(part[2:] or "0", 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part[1:], 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:  # "08" is neither octal nor (by this grammar) decimal: a name, not an address
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (4 - len(head)):
        return None
    value = last
    for i, n in enumerate(head):
        value += n << (8 * (3 - i))
    return ipaddress.IPv4Address(value)


def parse_ip_literal(host: str) -> IPAddress | None:
    """The address a URL host names literally (``[::1]``, ``127.0.0.1``, ``2130706433``...), or None for a name."""
    bare = host.strip()
    if bare.startswith("[") and bare.endswith("]"):
        bare = bare[1:-1]
    bare = bare.split("%", 1)[0]  # IPv6 zone id
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        return _parse_ipv4_loose(bare)


def address_problem(ip: IPAddress) -> str | None:
    """Why ``ip`` must not be fetched from by default ("a loopback address"...), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            inner = address_problem(embedded)
            if inner:
                return f"{inner} ({embedded} inside IPv6)"
    if ip.is_unspecified:
        return "an unspecified address (it reaches this machine)"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address" + (" (the cloud metadata service)" if ip in _METADATA_IPS else "")
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_private:
        return "a private address"
    if ip.is_reserved:
        return "a reserved address"
    if not ip.is_global:
        return "not a public address"
    return None


def resolve_host(host: str, port: int) -> list[IPAddress]:
    """All addresses ``host`` resolves to, in resolver order, without duplicates."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if ip not in out:
            out.append(ip)
    return out


def _parse_url(url: str, source: str) -> httpx.URL:
    import httpx

    try:
        return httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as e:
        raise FetchError(source, f"not a valid URL: {e}") from e


def check_url(
    url: str | httpx.URL, *, allow_private: bool, source: str | None = None, resolver: Resolver | None = None
) -> list[IPAddress]:
    """Refuse a URL that must not be fetched; return the checked addresses to connect to.

    Args:
        url: the URL of this hop.
        allow_private: skip the address checks (then the list is empty and httpx resolves by itself).
        source: the URL the user asked for, named in errors (defaults to ``url``).
        resolver: name → addresses; defaults to :func:`resolve_host` (tests pass a fake).

    Raises:
        UnsafeURLError: a scheme other than http/https, or an address that is not public.
        FetchError: the URL is malformed or its host does not resolve.
    """
    from mmrag.parsers.sources import display_source

    text = str(url)
    source = source or display_source(text)
    shown_hop = display_source(text)
    hop = "" if shown_hop == display_source(source) else f"redirect to {shown_hop} "
    parsed = _parse_url(text, source) if isinstance(url, str) else url
    scheme = parsed.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        shown = f"{scheme}:" if scheme else "a URL without a scheme"
        raise UnsafeURLError(source, f"{hop}refused: only http and https URLs can be fetched, not {shown}")
    host = parsed.raw_host.decode("ascii", "replace")  # IDNA-encoded: what DNS sees
    if not host:
        raise UnsafeURLError(source, f"{hop}refused: the URL has no host")
    literal = parse_ip_literal(host)
    if literal is None and not _HOSTNAME.match(host):
        raise FetchError(source, f"{hop}not a valid URL: bad host name {host!r}")
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise FetchError(source, f"{hop}not a valid URL: port {parsed.port} is out of range")
    if allow_private:
        return []
    if literal is not None:
        problem = address_problem(literal)
        if problem:
            raise UnsafeURLError(source, f"{hop}refused: {literal} is {problem}; {_ALLOW_HINT}")
        return [literal]
    port = parsed.port or (443 if scheme == "https" else 80)
    try:
        addresses = (resolver or resolve_host)(host, port)
    except (OSError, UnicodeError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise FetchError(source, f"{hop}cannot resolve host {host!r} ({reason})") from e
    if not addresses:
        raise FetchError(source, f"{hop}cannot resolve host {host!r} (no addresses)")
    for ip in addresses:  # every address: the connection may use any of them
        problem = address_problem(ip)
        if problem:
            raise UnsafeURLError(source, f"{hop}refused: {host} resolves to {ip}, {problem}; {_ALLOW_HINT}")
    return addresses


class Fetcher:
    """Fetches URLs safely with one reusable ``httpx.Client``; use it as a context manager or call :meth:`close`.

    Args:
        options: timeouts, size and redirect limits, user agent and ``allow_private_urls``.
        transport: an httpx transport to send through (tests pass ``httpx.MockTransport``).
        resolver: name → addresses for the safety check; defaults to the system resolver.
    """

    def __init__(
        self,
        options: ParseOptions | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        resolver: Resolver | None = None,
    ) -> None:
        self.options = options or ParseOptions()
        self._transport = transport
        self._resolver = resolver
        self._client: httpx.Client | None = None

    def _get_client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            self._client = httpx.Client(
                timeout=httpx.Timeout(self.options.fetch_timeout),
                # one connection per fetch: the deadline watchdog shuts down the socket of this fetch only
                limits=httpx.Limits(max_keepalive_connections=0),
                follow_redirects=False,  # we follow them ourselves, checking every hop
                trust_env=False,  # no proxies: they would resolve names behind our back (see module docstring)
                headers={"User-Agent": self.options.user_agent},
                transport=self._transport,
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def fetch(self, url: str, *, max_bytes: int | None = None, accept_html: bool = True,
              deadline: float | None = None) -> Blob:
        """GET ``url`` and return its body as a :class:`Blob`.

        Args:
            url: an http or https URL.
            max_bytes: largest body accepted; defaults to ``options.fetch_max_bytes``.
            accept_html: False for sub-resources such as images: asks for images and refuses an HTML page
                sent in their place (a "soft 404").
            deadline: a ``time.monotonic()`` instant by which the fetch must be over, when it is earlier than
                ``fetch_timeout`` from now (a page's budget for its images).

        Returns:
            A blob whose ``source`` is ``url`` as given, ``base`` the final URL after redirects and
            ``mime_type`` sniffed from the bytes, then the Content-Type, then the URL path.

        Raises:
            UnsafeURLError: the URL, or a redirect target, is refused before any request to it.
            FetchError: HTTP error status, network error, timeout, too many redirects, body too large.
        """
        import httpx

        from mmrag.parsers.sources import display_source

        given, url = url, display_source(url)  # errors and the blob name the URL without its credentials
        limit = max_bytes if max_bytes is not None else self.options.fetch_max_bytes
        first = current = _parse_url(given, url)
        own_deadline = time.monotonic() + self.options.fetch_timeout
        watchdog = _Watchdog(own_deadline if deadline is None else min(deadline, own_deadline))
        try:
            for _hop in range(self.options.fetch_max_redirects + 1):
                addresses = check_url(current, allow_private=self.options.allow_private_urls, source=url,
                                      resolver=self._resolver)
                watchdog.check()
                response = self._open(current, addresses, accept_html, watchdog)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECT_CODES and location:
                        try:
                            current = current.join(location)
                        except httpx.InvalidURL as e:
                            raise FetchError(url, f"bad redirect from {display_source(str(current))} to "
                                                  f"{display_source(location)!r}: {e}") from e
                        continue
                    if response.status_code >= 400:
                        reason = response.reason_phrase or ""
                        at = "" if current == first else f" at {display_source(str(current))}"
                        raise FetchError(url, f"HTTP {response.status_code} {reason}".rstrip() + at)
                    data = self._read(response, url, limit, named=max_bytes is None, watchdog=watchdog)
                    declared = response.headers.get("content-type")
                finally:
                    response.close()
                mime = sniff_mime(data, name=current.path, declared=declared)
                if not accept_html and mime in ("text/html", "application/xhtml+xml"):
                    raise FetchError(url, "expected an image but the server sent an HTML page")
                return Blob(data=data, source=url, mime_type=mime, base=str(current))
        except (httpx.HTTPError, _DeadlinePassed) as e:
            if isinstance(e, httpx.TimeoutException | _DeadlinePassed) or watchdog.fired or watchdog.expired():
                raise FetchError(url, self._timeout_reason(deadline, own_deadline, current)) from e
            shown = display_source(str(current))
            detail = str(e).replace(str(current), shown).replace(given, url)
            raise FetchError(url, f"network error fetching {shown}: {type(e).__name__}: {detail}") from e
        finally:
            watchdog.stop()
        raise FetchError(url, f"too many redirects (more than {self.options.fetch_max_redirects}; "
                              "raise MMRAG_FETCH_MAX_REDIRECTS to follow more)")

    def _timeout_reason(self, deadline: float | None, own_deadline: float, current: httpx.URL) -> str:
        if deadline is not None and deadline < own_deadline:
            return "not fetched within the page's time budget for its images (page_images_timeout)"
        from mmrag.parsers.sources import display_source

        shown = display_source(str(current))
        return f"timed out after {self.options.fetch_timeout:g} s (fetch_timeout) fetching {shown}"

    def _open(self, url: httpx.URL, addresses: Sequence[IPAddress], accept_html: bool,
              watchdog: _Watchdog) -> httpx.Response:
        """Send a streamed GET, connecting to the checked addresses when there are any (pinning)."""
        import httpx

        client = self._get_client()
        headers = {"Accept": _ACCEPT_ANY if accept_html else _ACCEPT_IMAGE}
        host = url.raw_host.decode("ascii", "replace")
        literal = parse_ip_literal(host)
        base = {"trace": watchdog.trace}
        if not addresses or (literal is not None and str(literal) == host):
            request = client.build_request("GET", url, headers=headers, extensions=base,
                                           timeout=watchdog.timeout())
            return client.send(request, stream=True)
        error: httpx.ConnectError | None = None
        for ip in addresses:  # like a browser, try the next address when one does not answer
            extensions = {"sni_hostname": host} if url.scheme == "https" and literal is None else {}
            request = client.build_request("GET", url.copy_with(host=str(ip)),
                                           headers={**headers, "Host": url.netloc.decode("ascii")},
                                           extensions={**base, **extensions}, timeout=watchdog.timeout())
            try:
                return client.send(request, stream=True)
            except httpx.ConnectError as e:
                error = e
        assert error is not None
        raise error

    @staticmethod
    def _read(response: httpx.Response, source: str, limit: int, *, named: bool, watchdog: _Watchdog) -> bytes:
        which = " (fetch_max_bytes)" if named else ""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(source, f"the response is larger than {limit:,} bytes{which}: "
                                     f"Content-Length is {int(declared):,}")
        body = bytearray()
        for chunk in response.iter_bytes():  # decoded bytes: a small gzip body cannot expand past the limit
            body += chunk
            if len(body) > limit:
                raise FetchError(source, f"the response is larger than {limit:,} bytes{which}")
            watchdog.check()
        return bytes(body)


class _DeadlinePassed(Exception):
    pass


class _Watchdog:
    """Ends a fetch at its deadline: shuts down the socket of every connection the fetch opened.

    httpcore reports each new connection through the ``trace`` request extension; a timer thread (started
    lazily with the first connection) shuts those sockets down when the deadline passes, so a blocked read
    returns at once, whatever the server does.
    """

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.fired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.remaining() <= 0

    def check(self) -> None:
        if self.expired():
            raise _DeadlinePassed()

    def timeout(self) -> httpx.Timeout:
        import httpx

        return httpx.Timeout(max(0.001, self.remaining()))

    def trace(self, event: str, info: dict[str, object]) -> None:
        if event not in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            return
        stream = info.get("return_value")
        get_extra = getattr(stream, "get_extra_info", None)
        sock = get_extra("socket") if get_extra is not None else None
        if not isinstance(sock, socket.socket):
            return
        with self._lock:
            self._sockets.append(sock)
            if self._timer is None:
                self._timer = threading.Timer(max(0.0, self.remaining()), self._fire)
                self._timer.daemon = True
                self._timer.start()
        if self.fired:
            self._fire()

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            timer, self._timer = self._timer, None
            self._sockets.clear()
        if timer is not None:
            timer.cancel()


def fetch_url(url: str, options: ParseOptions) -> Blob:
    """Fetch one URL with a short-lived :class:`Fetcher` (see :meth:`Fetcher.fetch`)."""
    with Fetcher(options) as fetcher:
        return fetcher.fetch(url)
