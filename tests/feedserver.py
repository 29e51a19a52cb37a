"""A real HTTP server on loopback that plays partner sites: good, broken and hostile.

Routes map a path to a ``Reply`` or to a function of the request that
returns one. Every request is counted per path and its headers kept, so
tests can check what a client sent and how often.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping, Union

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # Seconds between single bytes of the body (a drip), or None to send at once.
    drip: float | None = None
    # ETag/Last-Modified: a matching conditional request gets 304.
    etag: str | None = None
    last_modified: str | None = None
    send_length: bool = True


Route = Union[Reply, Callable[[Mapping[str, str]], Reply]]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: "_Server"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass

    def do_GET(self) -> None:
        owner = self.server.owner
        path = self.path
        headers = {k.lower(): v for k, v in self.headers.items()}
        with owner.lock:
            owner.hits[path] += 1
            owner.requests[path].append(headers)
        route = owner.routes.get(path)
        if route is None:
            reply = Reply(404, b"not here")
        else:
            reply = route(headers) if callable(route) else route
        if reply.status == 200 and (
            (reply.etag and headers.get("if-none-match") == reply.etag)
            or (reply.last_modified and headers.get("if-modified-since") == reply.last_modified)
        ):
            reply = Reply(304, headers={"ETag": reply.etag} if reply.etag else {})
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.status == 200 and reply.etag:
            self.send_header("ETag", reply.etag)
        if reply.status == 200 and reply.last_modified:
            self.send_header("Last-Modified", reply.last_modified)
        if reply.send_length:
            self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("Connection", "close")
        self.end_headers()
        try:
            if reply.drip is None:
                self.wfile.write(reply.body)
            else:
                for i in range(len(reply.body)):
                    if owner.stopping.is_set():
                        break
                    self.wfile.write(reply.body[i : i + 1])
                    self.wfile.flush()
                    time.sleep(reply.drip)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default backlog of 5 drops connections when workers fetch at once
    owner: "FeedServer"


class FeedServer:
    """``with FeedServer() as srv: srv.route("/feed", Reply(body=...)); srv.url("/feed")``."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: dict[str, list[dict[str, str]]] = defaultdict(list)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        if ":" in host:
            _Server.address_family = socket.AF_INET6
        self._server = _Server((host, 0), _Handler)
        _Server.address_family = socket.AF_INET
        self._server.owner = self
        self.host = host
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    def route(self, path: str, reply: Route) -> str:
        self.routes[path] = reply
        return self.url(path)

    def url(self, path: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def __enter__(self) -> "FeedServer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server
