"""The partner-feed HTTP client against a real server on loopback (``allow_private`` on)."""

from __future__ import annotations

import gzip
import http.server
import socket
import ssl
import threading
import zlib
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Iterator

import pytest

from feeds.errors import FetchError
from feeds.fetch import Fetcher, parse_max_age, parse_retry_after
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

FEED = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Партнёр</title>'
        '<item><title>Новость</title><guid>n1</guid></item></channel></rss>').encode()
TLS = Path(__file__).parent / "data" / "tls"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(allow_private=True, user_agent="Syndicate/0.1 (+http://wire.example/)", clock=lambda: NOW)


def test_a_plain_feed_comes_back_with_its_validators(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.route("/feed", Reply(body=FEED, etag='"abc"', last_modified="Sat, 01 Mar 2025 10:00:00 GMT",
                                           headers={"Cache-Control": "public, max-age=3600"}))
    result = fetcher.fetch(url)
    assert (result.status, result.content, result.url) == (200, FEED, url)
    assert result.etag == '"abc"' and result.last_modified == "Sat, 01 Mar 2025 10:00:00 GMT"
    assert result.max_age == 3600
    sent = feed_server.requests["/feed"][0]
    assert sent["user-agent"] == "Syndicate/0.1 (+http://wire.example/)"
    assert "gzip" in sent["accept-encoding"]


def test_default_user_agent_names_the_service_and_its_url() -> None:
    from feeds.fetch import user_agent

    agent = user_agent("https://wire.example")
    assert agent.startswith("Syndicate/") and "+https://wire.example" in agent


def test_conditional_get_sends_validators_and_304_has_no_body(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.route("/feed", Reply(body=FEED, etag='"v7"', last_modified="Sat, 01 Mar 2025 10:00:00 GMT"))
    result = fetcher.fetch(url, etag='"v7"', last_modified="Sat, 01 Mar 2025 10:00:00 GMT")
    assert result.not_modified and result.content == b""
    sent = feed_server.requests["/feed"][0]
    assert sent["if-none-match"] == '"v7"'
    assert sent["if-modified-since"] == "Sat, 01 Mar 2025 10:00:00 GMT"
    assert fetcher.fetch(url, etag='"old"').status == 200


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", "deflate-zlib", "deflate-raw"])
def test_compressed_bodies_are_decoded(feed_server: FeedServer, fetcher: Fetcher, encoding: str) -> None:
    if encoding in ("gzip", "x-gzip"):
        body, header = gzip.compress(FEED), encoding
    elif encoding == "deflate-zlib":
        body, header = zlib.compress(FEED), "deflate"
    else:
        compressor = zlib.compressobj(wbits=-15)
        body, header = compressor.compress(FEED) + compressor.flush(), "deflate"
    url = feed_server.route("/feed", Reply(body=body, headers={"Content-Encoding": header}))
    assert fetcher.fetch(url).content == FEED


def test_a_gzip_bomb_stops_at_the_cap(feed_server: FeedServer, fetcher: Fetcher) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    assert len(bomb) < 100_000
    url = feed_server.route("/bomb", Reply(body=bomb, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError) as info:
        fetcher.fetch(url, resource_id=9)
    assert "larger than 10 MiB" in str(info.value) and info.value.resource_id == 9


def test_a_multi_member_gzip_bomb_stops_too(feed_server: FeedServer) -> None:
    member = gzip.compress(b"<" * (1024 * 1024))
    url = feed_server.route("/bomb", Reply(body=member * 20, headers={"Content-Encoding": "gzip"}))
    with pytest.raises(FetchError, match="larger than"):
        Fetcher(allow_private=True).fetch(url)


def test_a_huge_plain_body_is_refused(feed_server: FeedServer) -> None:
    big = b"x" * (3 * 1024 * 1024)
    declared = feed_server.route("/declared", Reply(body=big))
    undeclared = feed_server.route("/undeclared", Reply(body=big, send_length=False))
    small = Fetcher(allow_private=True, max_bytes=1024 * 1024)
    for url in (declared, undeclared):
        with pytest.raises(FetchError, match="larger than"):
            small.fetch(url)


def test_a_dripping_server_is_cut_off_by_the_deadline(feed_server: FeedServer) -> None:
    url = feed_server.route("/drip", Reply(body=FEED * 4, drip=0.05))
    slow = Fetcher(allow_private=True, deadline=0.5)
    with pytest.raises(FetchError) as info:
        slow.fetch(url)
    assert "did not answer within 0.5 s" in str(info.value)
    assert isinstance(info.value.__cause__, TimeoutError)


@pytest.mark.parametrize("value, seconds", [("120", 120.0), (format_datetime(NOW + timedelta(minutes=5), usegmt=True), 300.0)])
def test_429_and_503_carry_retry_after(feed_server: FeedServer, fetcher: Fetcher, value: str, seconds: float) -> None:
    for status in (429, 503):
        url = feed_server.route(f"/{status}", Reply(status, b"slow down", headers={"Retry-After": value}))
        with pytest.raises(FetchError) as info:
            fetcher.fetch(url)
        assert info.value.status == status
        assert info.value.retry_after == seconds
        assert not info.value.permanent


def test_410_is_permanent_and_404_is_not(feed_server: FeedServer, fetcher: Fetcher) -> None:
    gone = feed_server.route("/gone", Reply(410, b"gone"))
    with pytest.raises(FetchError) as info:
        fetcher.fetch(gone)
    assert info.value.status == 410 and info.value.permanent
    with pytest.raises(FetchError) as info:
        fetcher.fetch(feed_server.url("/missing"))
    assert info.value.status == 404 and not info.value.permanent


def test_permanent_redirects_are_reported_temporary_ones_are_not(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.route("/old", Reply(301, headers={"Location": "/newer"}))
    feed_server.route("/newer", Reply(308, headers={"Location": feed_server.url("/new")}))
    feed_server.route("/new", Reply(body=FEED))
    result = fetcher.fetch(feed_server.url("/old"))
    assert result.url == feed_server.url("/new") and result.permanent_url == feed_server.url("/new")
    feed_server.route("/moving", Reply(301, headers={"Location": "/temp"}))
    feed_server.route("/temp", Reply(302, headers={"Location": "/new"}))
    result = fetcher.fetch(feed_server.url("/moving"))
    # Only the unbroken permanent part of the chain counts.
    assert result.url == feed_server.url("/new") and result.permanent_url == feed_server.url("/temp")
    feed_server.route("/found", Reply(302, headers={"Location": "/new"}))
    assert fetcher.fetch(feed_server.url("/found")).permanent_url is None


def test_redirect_loops_and_long_chains_stop(feed_server: FeedServer, fetcher: Fetcher) -> None:
    feed_server.route("/a", Reply(302, headers={"Location": "/b"}))
    feed_server.route("/b", Reply(302, headers={"Location": "/a"}))
    with pytest.raises(FetchError, match="redirect loop"):
        fetcher.fetch(feed_server.url("/a"))
    for i in range(7):
        feed_server.route(f"/hop{i}", Reply(302, headers={"Location": f"/hop{i + 1}"}))
    feed_server.route("/hop7", Reply(body=FEED))
    with pytest.raises(FetchError, match="more than 5 redirects"):
        fetcher.fetch(feed_server.url("/hop0"))
    assert feed_server.hits["/hop5"] == 1 and feed_server.hits["/hop6"] == 0
    assert fetcher.fetch(feed_server.url("/hop2")).content == FEED  # five hops are fine


def test_redirect_to_another_scheme_is_refused(feed_server: FeedServer, fetcher: Fetcher) -> None:
    url = feed_server.route("/ftp", Reply(301, headers={"Location": "ftp://partner.example/feed.xml"}))
    with pytest.raises(FetchError, match="only http and https"):
        fetcher.fetch(url)


def test_dns_failure_is_a_clear_error() -> None:
    def broken_resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(FetchError) as info:
        Fetcher(resolver=broken_resolver).fetch("http://partner.example/feed", resource_id=4)
    assert "DNS lookup for partner.example failed" in str(info.value)
    assert isinstance(info.value.__cause__, socket.gaierror)


def test_a_refused_connection_is_a_clear_error(fetcher: Fetcher) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(FetchError, match="refused the connection"):
        fetcher.fetch(f"http://127.0.0.1:{port}/feed")


@pytest.fixture
def garbage_server() -> Iterator[int]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(4096)
                conn.sendall(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def test_a_non_http_answer_is_a_clear_error(fetcher: Fetcher, garbage_server: int) -> None:
    with pytest.raises(FetchError, match="invalid HTTP response"):
        fetcher.fetch(f"http://127.0.0.1:{garbage_server}/feed")


# -- TLS -----------------------------------------------------------------------------------------


class _TLSHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(FEED)))
        self.end_headers()
        self.wfile.write(FEED)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tls_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TLSHandler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(TLS / "partner.crt", TLS / "partner.key")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _to_loopback(host: str, port: int) -> list[str]:
    return ["127.0.0.1"]


def test_tls_is_verified_and_a_bad_certificate_is_a_clear_error(tls_port: int) -> None:
    fetcher = Fetcher(allow_private=True, resolver=_to_loopback)
    with pytest.raises(FetchError) as info:
        fetcher.fetch(f"https://partner.test:{tls_port}/feed")
    assert "TLS certificate of partner.test is not valid" in str(info.value)
    assert isinstance(info.value.__cause__, ssl.SSLError)


def test_tls_checks_the_host_name_though_it_dials_an_address(tls_port: int) -> None:
    trusting = ssl.create_default_context(cafile=str(TLS / "partner.crt"))
    fetcher = Fetcher(allow_private=True, resolver=_to_loopback, tls_context=trusting)
    assert fetcher.fetch(f"https://partner.test:{tls_port}/feed").content == FEED
    with pytest.raises(FetchError, match="TLS certificate of other.test"):
        fetcher.fetch(f"https://other.test:{tls_port}/feed")


# -- header values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [("30", 30.0), ("0", 0.0), ("Sat, 01 Mar 2025 12:10:00 GMT", 600.0), ("Sat, 01 Mar 2025 11:00:00 GMT", 0.0),
     ("soon", None), ("", None), (None, None), ("-5", None)],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


@pytest.mark.parametrize(
    "value, expected",
    [("max-age=600", 600.0), ("public, max-age=60, s-maxage=900", 900.0), ('max-age="120"', 120.0),
     ("no-cache, max-age=600", None), ("no-store", None), ("private", None), ("max-age=abc", None), (None, None)],
)
def test_parse_max_age(value: str | None, expected: float | None) -> None:
    assert parse_max_age(value) == expected


