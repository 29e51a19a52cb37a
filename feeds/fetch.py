"""HTTP for partner feeds: conditional GET with hard limits and an SSRF guard. No database.

Built on the standard library's ``http.client`` rather than urllib3 or httpx,
because the guard and the limits need control those libraries do not give:

* **the connection goes to the address we checked.** The host is resolved
  here (by an injectable resolver), every address is classified, and the
  socket connects to that IP; TLS still verifies the certificate against the
  host name (SNI). A DNS answer that changes between the check and the
  connect (rebinding) cannot swap the address. httpx and urllib3 resolve on
  their own inside the connection pool.
* **a wall-clock deadline for the whole exchange.** Their read timeout is per
  ``recv``, so a server dripping one byte a second never trips it. Here every
  ``recv`` is given only the time left before the deadline.
* **a size cap counted after decompression**, with ``zlib``'s ``max_length``,
  so a gzip bomb stops at the cap instead of being inflated first.
* **redirects followed by hand**, so each hop is checked again and permanent
  redirects can be reported for relinking.

Keep-alive and connection pooling, the main things the libraries add, do not
matter for one request per source every half hour. Proxies from the
environment are ignored on purpose: a proxy would bypass the guard.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import socket
import ssl
import time
import zlib
from dataclasses import dataclass
from datetime import datetime
from typing import Callable, Sequence
from urllib.parse import urljoin, urlsplit, urlunsplit

from feeds.addresses import IPAddress, as_address, blocked_reason, parse_ip_literal
from feeds.db import utcnow
from feeds.errors import BlockedAddress, FetchError
from feeds.types import FetchResult

MiB = 1024 * 1024
MAX_BYTES = 10 * MiB
CONNECT_TIMEOUT = 5.0
DEADLINE = 30.0
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
PERMANENT_REDIRECTS = frozenset({301, 308})
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json;q=0.9, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)

Resolver = Callable[[str, int], Sequence[str]]
Classifier = Callable[[IPAddress], "str | None"]


def user_agent(service_url: str) -> str:
    """The User-Agent partners see: the service's name, version and where to learn about it."""
    return f"Syndicate/0.1 (press-release syndication; +{service_url})"


def system_resolver(host: str, port: int) -> list[str]:
    """The addresses ``host`` resolves to, in the system's preferred order."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[str] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in seen:
            seen.append(address)
    return seen


# -- URLs ----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect and what to ask for."""

    url: str
    scheme: str
    host: str  # IDNA-encoded name, or the address for a literal
    port: int
    path: str  # path and query
    literal: IPAddress | None


def _normalize_host(raw: str, url: str) -> tuple[str, IPAddress | None]:
    try:
        literal = parse_ip_literal(raw)
    except ValueError as exc:
        raise FetchError(f"invalid host in {url!r}: {exc}") from exc
    if literal is not None:
        return str(literal), literal
    try:
        host = raw.rstrip(".").encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise FetchError(f"invalid host name {raw!r}") from exc
    if not host or any(not (c.isalnum() or c in "-._") for c in host):
        raise FetchError(f"invalid host name {raw!r}")
    return host, None


def check_url(
    url: str, *, allow_private: bool = False, resource_id: object = None, classify: Classifier = blocked_reason
) -> Target:
    """Validate a feed URL without touching the network.

    http and https only, a host, no credentials; a literal address (in any
    spelling) or a ``localhost`` name is refused unless ``allow_private``.
    Raises ``FetchError`` (``BlockedAddress`` for the guard).
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise FetchError(f"invalid URL {url!r}: {exc}", resource_id=resource_id, permanent=True) from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"only http and https URLs can be fetched, not {url!r}", resource_id=resource_id,
                         permanent=True)
    if parts.username is not None or parts.password is not None:
        raise FetchError("credentials in feed URLs are not supported", resource_id=resource_id, permanent=True)
    raw_host = parts.hostname
    if not raw_host:
        raise FetchError(f"URL {url!r} has no host", resource_id=resource_id, permanent=True)
    host, literal = _normalize_host(raw_host, url)
    if not allow_private:
        if literal is not None:
            reason = classify(literal)
            if reason:
                raise BlockedAddress(f"refusing to fetch from {literal} ({reason})", resource_id=resource_id)
        elif host == "localhost" or host.endswith(".localhost"):
            raise BlockedAddress(f"refusing to fetch from {host} (loopback)", resource_id=resource_id)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(
        url=urlunsplit((scheme, parts.netloc, parts.path or "/", parts.query, "")),
        scheme=scheme,
        host=host,
        port=port or (443 if scheme == "https" else 80),
        path=path,
        literal=literal,
    )


# -- header values -------------------------------------------------------------


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delay-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, (when - now).total_seconds())


def parse_max_age(value: str | None) -> float | None:
    """``max-age`` (or ``s-maxage``) seconds from a ``Cache-Control`` value; ``no-cache``/``no-store`` give None."""
    if not value:
        return None
    age: float | None = None
    for directive in value.lower().split(","):
        name, _, arg = directive.strip().partition("=")
        if name in ("no-cache", "no-store"):
            return None
        if name in ("max-age", "s-maxage"):
            try:
                age = max(age or 0.0, float(arg.strip().strip('"')))
            except ValueError:
                continue
    return age


# -- sockets with a deadline ---------------------------------------------------


class _DeadlineExceeded(TimeoutError):
    pass


class _DeadlineSocket:
    """What ``http.client`` sees as its socket: every send and receive gets
    only the time left before the deadline, so slow drips are cut off."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline
        # Like socket.makefile: the connection may "close" while the response
        # still reads, so the socket closes when the last user lets go.
        self._readers = 0
        self._closing = False

    def _arm(self) -> None:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            raise _DeadlineExceeded("deadline passed")
        self._sock.settimeout(remaining)

    def sendall(self, data: bytes) -> None:
        self._arm()
        self._sock.sendall(data)

    def recv_into(self, buffer: memoryview, nbytes: int = 0) -> int:
        self._arm()
        return self._sock.recv_into(buffer, nbytes)

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self), 65536)

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closing and self._readers <= 0:
            self._sock.close()

    def close(self) -> None:
        self._closing = True
        if self._readers <= 0:
            self._sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, sock: _DeadlineSocket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed:
            self._sock.reader_closed()
        super().close()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        return self._sock.recv_into(buffer)


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection to a checked address, named by its host for Host and TLS."""

    def __init__(self, target: Target, address: IPAddress, *, connect_timeout: float, deadline: float,
                 tls: ssl.SSLContext | None) -> None:
        super().__init__(target.host, target.port, timeout=connect_timeout)
        self._address = address
        self._connect_timeout = connect_timeout
        self._deadline = deadline
        self._tls = tls

    def connect(self) -> None:
        timeout = min(self._connect_timeout, self._deadline - time.monotonic())
        if timeout <= 0:
            raise _DeadlineExceeded("deadline passed before connecting")
        sock = socket.create_connection((str(self._address), self.port), timeout=timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._tls is not None:
                sock.settimeout(min(self._connect_timeout, max(0.001, self._deadline - time.monotonic())))
                # Verified against the host name (and sent as SNI), though we dialled an address.
                sock = self._tls.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self.sock = _DeadlineSocket(sock, self._deadline)


# -- bodies --------------------------------------------------------------------


class _Decoder:
    """Content-Encoding undone incrementally, never producing more than asked for."""

    def __init__(self, encoding: str) -> None:
        self.encoding = encoding
        self._d: "zlib._Decompress | None" = None
        self._first = True

    def _new(self, head: bytes) -> "zlib._Decompress":
        if self.encoding == "gzip":
            return zlib.decompressobj(16 + zlib.MAX_WBITS)
        # "deflate" is meant to be zlib-wrapped, but some servers send it raw.
        wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.decompressobj(zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS)

    def feed(self, data: bytes, room: int) -> bytes:
        if self.encoding == "identity":
            return data
        out = bytearray()
        while data and len(out) < room:
            if self._d is None:
                self._d = self._new(data)
            out += self._d.decompress(data, room - len(out))
            if self._d.unconsumed_tail:
                break  # the cap was reached; the caller stops here
            if self._d.eof:
                data = self._d.unused_data  # a further gzip member
                self._d = None
                if self.encoding != "gzip":
                    break
            else:
                data = b""
        return bytes(out)

    def finish(self) -> None:
        if self._d is not None and not self._d.eof:
            raise zlib.error("compressed body ended early")


def _content_encoding(value: str | None) -> str:
    codings = [c.strip().lower() for c in (value or "").split(",") if c.strip()]
    codings = [c for c in codings if c != "identity"]
    if not codings:
        return "identity"
    if len(codings) == 1 and codings[0] in ("gzip", "x-gzip"):
        return "gzip"
    if len(codings) == 1 and codings[0] == "deflate":
        return "deflate"
    raise FetchError(f"unsupported Content-Encoding {value!r}")


# -- the client ----------------------------------------------------------------


class Fetcher:
    """Fetches partner feeds politely and safely; one instance is shared by threads."""

    def __init__(
        self,
        *,
        user_agent: str = user_agent("http://127.0.0.1:8000"),
        allow_private: bool = False,
        connect_timeout: float = CONNECT_TIMEOUT,
        deadline: float = DEADLINE,
        max_bytes: int = MAX_BYTES,
        max_redirects: int = MAX_REDIRECTS,
        resolver: Resolver = system_resolver,
        tls_context: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = utcnow,
        classify: Classifier = blocked_reason,
    ) -> None:
        self.user_agent = user_agent
        self.allow_private = allow_private
        self.connect_timeout = connect_timeout
        self.deadline = deadline
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.resolver = resolver
        self.tls_context = tls_context or ssl.create_default_context()
        self.clock = clock
        # Which addresses are off limits; tests narrow "public" to one loopback address.
        self.classify = classify

    def fetch(
        self, url: str, *, etag: str | None = None, last_modified: str | None = None, resource_id: object = None
    ) -> FetchResult:
        """GET ``url`` (conditionally), following up to ``max_redirects`` redirects.

        Returns a 200 with its body, or a 304 with none. Everything else is a
        ``FetchError`` carrying the status, ``retry_after`` and ``permanent``.
        """
        deadline = time.monotonic() + self.deadline
        headers = {
            "User-Agent": self.user_agent,
            "Accept": ACCEPT,
            "Accept-Encoding": "gzip, deflate",
            "Connection": "close",
        }
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen: list[str] = []
        permanent_url: str | None = None
        only_permanent = True
        current = url
        for hop in range(self.max_redirects + 1):
            target = check_url(current, allow_private=self.allow_private, resource_id=resource_id,
                               classify=self.classify)
            if target.url in seen:
                raise FetchError(f"redirect loop at {target.url}", resource_id=resource_id)
            seen.append(target.url)
            status, response_headers, body = self._exchange(target, headers, deadline, resource_id)
            location = response_headers.get("location")
            if status in REDIRECT_STATUSES and location:
                if hop == self.max_redirects:
                    raise FetchError(f"more than {self.max_redirects} redirects", resource_id=resource_id,
                                     status=status)
                current = urljoin(target.url, location.strip()).split("#", 1)[0]
                only_permanent = only_permanent and status in PERMANENT_REDIRECTS
                if only_permanent:
                    permanent_url = current
                continue
            return self._result(target, status, response_headers, body, permanent_url, resource_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _result(self, target: Target, status: int, headers: dict[str, str], body: bytes,
                permanent_url: str | None, resource_id: object) -> FetchResult:
        if status in (200, 203) or status == 304:
            return FetchResult(
                url=target.url,
                status=304 if status == 304 else 200,
                headers=headers,
                content=body,
                etag=headers.get("etag"),
                last_modified=headers.get("last-modified"),
                permanent_url=permanent_url,
                max_age=parse_max_age(headers.get("cache-control")),
            )
        retry_after = None
        if status in (429, 503):
            retry_after = parse_retry_after(headers.get("retry-after"), self.clock())
        reason = http.client.responses.get(status, "")
        message = f"HTTP {status} {reason}".rstrip()
        if status in REDIRECT_STATUSES:
            message += " without a Location"
        if status == 410:
            message += ": the feed is gone"
        raise FetchError(message, resource_id=resource_id, status=status, retry_after=retry_after,
                         permanent=status == 410)

    def _addresses(self, target: Target, resource_id: object) -> list[IPAddress]:
        if target.literal is not None:
            candidates = [target.literal]
        else:
            try:
                answers = list(self.resolver(target.host, target.port))
            except (OSError, UnicodeError) as exc:
                raise FetchError(f"DNS lookup for {target.host} failed: {exc}", resource_id=resource_id) from exc
            try:
                candidates = [as_address(a) for a in answers]
            except ValueError as exc:
                raise FetchError(f"DNS lookup for {target.host} gave a bad address", resource_id=resource_id) from exc
            if not candidates:
                raise FetchError(f"DNS lookup for {target.host} found no address", resource_id=resource_id)
        if not self.allow_private:
            for address in candidates:
                reason = self.classify(address)
                if reason:
                    # One bad answer spoils the lot: a name that points inside is not a partner site.
                    raise BlockedAddress(
                        f"refusing to fetch from {target.host}: it resolves to {address} ({reason})",
                        resource_id=resource_id,
                    )
        return candidates

    def _connect(self, target: Target, deadline: float, resource_id: object) -> _PinnedConnection:
        addresses = self._addresses(target, resource_id)
        tls = self.tls_context if target.scheme == "https" else None
        last: Exception | None = None
        for address in addresses:
            conn = _PinnedConnection(target, address, connect_timeout=self.connect_timeout, deadline=deadline,
                                     tls=tls)
            try:
                conn.connect()
                return conn
            except ssl.SSLError:
                conn.close()
                raise  # a certificate problem is the same on every address
            except OSError as exc:
                conn.close()
                last = exc
        assert last is not None
        raise last

    def _exchange(self, target: Target, headers: dict[str, str], deadline: float,
                  resource_id: object) -> tuple[int, dict[str, str], bytes]:
        try:
            conn = self._connect(target, deadline, resource_id)
            response: http.client.HTTPResponse | None = None
            try:
                conn.request("GET", target.path, headers=headers)
                response = conn.getresponse()
                response_headers: dict[str, str] = {}
                for name, value in response.getheaders():
                    key = name.lower()
                    response_headers[key] = f"{response_headers[key]}, {value}" if key in response_headers else value
                body = b""
                if response.status in (200, 203):
                    body = self._read_body(response, response_headers, resource_id)
                return response.status, response_headers, body
            finally:
                if response is not None:
                    response.close()
                conn.close()
        except FetchError:
            raise
        except TimeoutError as exc:
            raise FetchError(f"{target.host} did not answer within {self.deadline:g} s", resource_id=resource_id) \
                from exc
        except ssl.SSLCertVerificationError as exc:
            raise FetchError(f"TLS certificate of {target.host} is not valid: {exc.verify_message}",
                             resource_id=resource_id) from exc
        except ssl.SSLError as exc:
            raise FetchError(f"TLS error with {target.host}: {exc.reason or exc}", resource_id=resource_id) from exc
        except ConnectionRefusedError as exc:
            raise FetchError(f"{target.host} refused the connection", resource_id=resource_id) from exc
        except (http.client.HTTPException, ValueError) as exc:
            raise FetchError(f"{target.host} sent an invalid HTTP response: {exc.__class__.__name__}",
                             resource_id=resource_id) from exc
        except zlib.error as exc:
            raise FetchError(f"{target.host} sent a broken compressed body: {exc}", resource_id=resource_id) from exc
        except OSError as exc:
            raise FetchError(f"network error with {target.host}: {exc.strerror or exc}", resource_id=resource_id) \
                from exc

    def _read_body(self, response: http.client.HTTPResponse, headers: dict[str, str],
                   resource_id: object) -> bytes:
        decoder = _Decoder(_content_encoding(headers.get("content-encoding")))
        too_big = FetchError(f"response is larger than {self.max_bytes // MiB} MiB", resource_id=resource_id)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise too_big
        out = bytearray()
        received = 0
        while True:
            chunk = response.read(65536)
            if not chunk:
                break
            received += len(chunk)
            if received > self.max_bytes:
                raise too_big
            out += decoder.feed(chunk, self.max_bytes + 1 - len(out))
            if len(out) > self.max_bytes:
                raise too_big  # counted after decompression: a bomb stops here
        decoder.finish()
        return bytes(out)
