"""The SSRF guard: a pure classifier over many spellings, and real refusals on loopback.

The test server listens on 127.0.0.1, so with ``allow_private`` off every
refusal here is a real one: the server counts that nothing reached it.
Nothing in this file connects anywhere but loopback.
"""

from __future__ import annotations

from ipaddress import IPv4Address, ip_address

import pytest

from feeds.addresses import IPAddress, blocked_reason, parse_ip_literal
from feeds.errors import BlockedAddress, FetchError
from feeds.fetch import Fetcher, check_url
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

FEED = b'<rss version="2.0"><channel><title>t</title><item><title>a</title><guid>a</guid></item></channel></rss>'

LOOPBACK_SPELLINGS = [
    "127.0.0.1",
    "127.0.0.1.",
    "2130706433",
    "0x7f000001",
    "0X7F000001",
    "0x7f.1",
    "0x7f.0.0.1",
    "0177.0.0.1",
    "0177.0.0.01",
    "017700000001",
    "127.1",
    "127.0.1",
    "127.000.000.001",
    "127.255.255.254",
    "::1",
    "[::1]",
    "0:0:0:0:0:0:0:1",
    "0000:0000:0000:0000:0000:0000:0000:0001",
    "::ffff:127.0.0.1",
    "[::ffff:127.0.0.1]",
    "::FFFF:7f00:1",
    "0:0:0:0:0:ffff:7f00:0001",
    "::127.0.0.1",
    "64:ff9b::7f00:1",
    "64:ff9b::127.0.0.1",
    "2002:7f00:1::",
    "2002:7f00:0001:0:0:0:0:1",
]

BLOCKED = {
    "0.0.0.0": "unspecified",
    "0": "unspecified",
    "::": "unspecified",
    "10.0.0.1": "private",
    "012.0.0.1": "private",
    "167772161": "private",
    "172.16.5.4": "private",
    "172.31.255.255": "private",
    "192.168.1.1": "private",
    "0xc0.0xa8.1.1": "private",
    "3232235777": "private",
    "100.64.0.1": "CGNAT",
    "100.127.255.255": "CGNAT",
    "169.254.169.254": "link-local",
    "2852039166": "link-local",
    "0xa9fea9fe": "link-local",
    "0251.0376.0251.0376": "link-local",
    "169.254.43518": "link-local",
    "224.0.0.1": "multicast",
    "239.255.255.250": "multicast",
    "240.0.0.1": "reserved",
    "255.255.255.255": "reserved",
    "198.18.0.1": "benchmarking",
    "192.0.2.10": "documentation",
    "192.0.0.8": "reserved",
    "fe80::1": "link-local",
    "fe80::1%eth0": "link-local",
    "[fe80::1%25eth0]": "link-local",
    "fc00::1": "unique local",
    "fd12:3456:789a::1": "unique local",
    "fec0::1": "site-local",
    "ff02::1": "multicast",
    "ff0e::1": "multicast",
    "2001:db8::1": "documentation",
    "100::1": "discard",
    "::ffff:10.0.0.1": "IPv4-mapped private",
    "::ffff:169.254.169.254": "IPv4-mapped link-local",
    "::ffff:100.64.0.1": "IPv4-mapped shared",
    "::ffff:0.0.0.0": "IPv4-mapped unspecified",
    "64:ff9b::a00:1": "NAT64 private",
    "64:ff9b::a9fe:a9fe": "NAT64 link-local",
    "64:ff9b:1::a00:1": "local NAT64",
    "2002:c0a8:101::1": "6to4 private",
    "2002:a9fe:a9fe::": "6to4 link-local",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2": "Teredo",
    "::10.0.0.1": "IPv4-compatible private",
    "4000::1": "reserved",
}

PUBLIC = [
    "8.8.8.8",
    "134744072",
    "0x8.0x8.0x8.0x8",
    "93.184.216.34",
    "1.1.1.1",
    "100.128.0.1",
    "172.32.0.1",
    "2a00:1450:4001:81c::200e",
    "2606:4700:4700::1111",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


def _parsed(spelling: str) -> IPAddress:
    address = parse_ip_literal(spelling)
    assert address is not None, spelling
    return address


@pytest.mark.parametrize("spelling", LOOPBACK_SPELLINGS)
def test_every_spelling_of_loopback_is_blocked(spelling: str) -> None:
    reason = blocked_reason(_parsed(spelling))
    assert reason is not None and "loopback" in reason


@pytest.mark.parametrize("spelling, why", sorted(BLOCKED.items()))
def test_private_and_special_addresses_are_blocked(spelling: str, why: str) -> None:
    reason = blocked_reason(_parsed(spelling))
    assert reason is not None and why.lower() in reason.lower(), reason


@pytest.mark.parametrize("spelling", PUBLIC)
def test_public_addresses_pass(spelling: str) -> None:
    assert blocked_reason(_parsed(spelling)) is None


@pytest.mark.parametrize(
    "spelling, value",
    [("2130706433", "127.0.0.1"), ("0x7f.1", "127.0.0.1"), ("017700000001", "127.0.0.1"),
     ("127.1", "127.0.0.1"), ("10.1.258", "10.1.1.2"), ("0xa.0.0.012", "10.0.0.10"), ("1.2.3.4.", "1.2.3.4")],
)
def test_ipv4_literals_are_read_like_inet_aton(spelling: str, value: str) -> None:
    assert parse_ip_literal(spelling) == IPv4Address(value)


@pytest.mark.parametrize("host", ["example.com", "1e100.net", "partner.example.", "xn--80a1acny.xn--p1ai",
                                  "1.2.3.4.5", "localhost", "0x7f.example"])
def test_names_are_not_literals(host: str) -> None:
    assert parse_ip_literal(host) is None


@pytest.mark.parametrize("host", ["127.0.0.256", "08.0.0.1", "0x1g.1", "4294967296", "1.16777216"])
def test_numbers_that_are_not_addresses_are_refused_not_resolved(host: str) -> None:
    with pytest.raises(ValueError):
        parse_ip_literal(host)
    with pytest.raises(FetchError):
        check_url(f"http://{host}/feed")


@pytest.mark.parametrize(
    "url",
    ["ftp://partner.example/feed.xml", "file:///etc/passwd", "gopher://partner.example/", "javascript:alert(1)",
     "data:text/xml,<rss/>", "http:///feed", "http://user:secret@partner.example/feed", "//partner.example/feed",
     "http://partner.example:99999/feed"],
)
def test_only_plain_http_and_https_urls_are_accepted(url: str) -> None:
    with pytest.raises(FetchError):
        check_url(url)


def test_check_url_refuses_localhost_names() -> None:
    for url in ("http://localhost/feed", "http://LOCALHOST./feed", "http://api.localhost/feed"):
        with pytest.raises(BlockedAddress):
            check_url(url)
    assert check_url("http://localhost/feed", allow_private=True).host == "localhost"


# -- real refusals: the server on loopback must see nothing ------------------------------------


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "2130706433", "0x7f.1", "017700000001", "127.1", "0x7f000001", "[::ffff:127.0.0.1]",
     "[::ffff:7f00:1]", "[::1]", "localhost", "127.0.0.1."],
)
def test_loopback_in_any_spelling_is_refused_before_connecting(feed_server: FeedServer, host: str) -> None:
    feed_server.route("/feed", Reply(body=FEED))
    fetcher = Fetcher(allow_private=False)
    with pytest.raises(BlockedAddress) as info:
        fetcher.fetch(f"http://{host}:{feed_server.port}/feed", resource_id=3)
    assert info.value.resource_id == 3
    assert sum(feed_server.hits.values()) == 0


def test_a_name_resolving_to_a_private_address_is_refused_after_resolution(feed_server: FeedServer) -> None:
    feed_server.route("/feed", Reply(body=FEED))
    fetcher = Fetcher(resolver=lambda host, port: ["127.0.0.1"])
    with pytest.raises(BlockedAddress) as info:
        fetcher.fetch(f"http://partner.example:{feed_server.port}/feed")
    assert "resolves to 127.0.0.1" in str(info.value)
    # one bad answer among good ones is enough to refuse
    fetcher = Fetcher(resolver=lambda host, port: ["93.184.216.34", "10.0.0.7"])
    with pytest.raises(BlockedAddress):
        fetcher.fetch(f"http://partner.example:{feed_server.port}/feed")
    assert sum(feed_server.hits.values()) == 0


def test_allow_private_lets_loopback_through(feed_server: FeedServer) -> None:
    url = feed_server.route("/feed", Reply(body=FEED))
    assert Fetcher(allow_private=True).fetch(url).content == FEED
    resolved = Fetcher(allow_private=True, resolver=lambda h, p: ["127.0.0.1"])
    assert resolved.fetch(f"http://partner.example:{feed_server.port}/feed").status == 200


def _only_127_0_0_1_is_public(address: IPAddress) -> str | None:
    """For redirect tests: the test server counts as a partner site; every other address is judged as usual."""
    if address == ip_address("127.0.0.1"):
        return None
    return blocked_reason(address) or "not the test partner"


@pytest.mark.parametrize(
    "location",
    ["http://127.0.0.2:{port}/feed", "http://2130706434:{port}/feed", "http://[::1]:{port}/feed",
     "http://[::ffff:127.0.0.2]:{port}/feed", "http://inside.test:{port}/feed", "http://localhost:{port}/feed"],
)
def test_every_redirect_hop_is_checked_again(feed_server: FeedServer, location: str) -> None:
    feed_server.route("/start", Reply(302, headers={"Location": location.format(port=feed_server.port)}))
    feed_server.route("/feed", Reply(body=FEED))

    def resolver(host: str, port: int) -> list[str]:
        return {"partner.test": ["127.0.0.1"], "inside.test": ["127.0.0.3"]}[host]

    fetcher = Fetcher(resolver=resolver, classify=_only_127_0_0_1_is_public)
    with pytest.raises(BlockedAddress):
        fetcher.fetch(f"http://partner.test:{feed_server.port}/start")
    assert feed_server.hits["/start"] == 1
    assert feed_server.hits["/feed"] == 0


def test_the_connection_goes_to_the_checked_address_so_rebinding_cannot_swap_it(feed_server: FeedServer) -> None:
    feed_server.route("/feed", Reply(body=FEED))
    answers = [["127.0.0.1"], ["127.0.0.2"]]
    calls: list[str] = []

    def rebinding_resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls) - 1, 1)]

    fetcher = Fetcher(resolver=rebinding_resolver, classify=_only_127_0_0_1_is_public)
    result = fetcher.fetch(f"http://rebind.test:{feed_server.port}/feed")
    assert result.content == FEED
    assert calls == ["rebind.test"]  # resolved once, checked, and that address was dialled
    assert feed_server.requests["/feed"][0]["host"] == f"rebind.test:{feed_server.port}"
