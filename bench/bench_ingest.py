"""Partner feed ingestion: 500 sources of 50 entries each, served from loopback.

Figures (printed with their goals):

1. first pass (fetch, parse, sanitize, decide, store 25,000 releases): seconds and entries/s;
2. second pass, every source answering 304: seconds;
3. the goal: wall time of the whole first pass ÷ wall time of bare ``feedparser.parse``
   over the same bytes, one feed after another in one process (goal ≤ 1.2).

Beside the goal's ratio the CPU ratio is printed: the first pass's CPU time,
its parse worker processes included, ÷ bare feedparser's CPU time. The pass
parses in worker processes (``feeds.parsing.ParsePool``, one per CPU,
started and stopped inside the measured time), so its wall time can be
below its CPU time; the bare figure is one process (wall ≈ CPU). The same pass with parsing in threads (no processes) is
measured too, so the reader sees what the processes and what the rest give.
Every side runs ``BENCH_INGEST_ROUNDS`` times (default 3), the sides in
turn within a round and in another order each round, and the medians are
compared (the machine may be shared).

Each partner gets its own host name (``p123.bench.test``, resolved to
127.0.0.1 by an injected resolver), as 500 real partners would, so the
one-request-per-host rule does not serialise the pass; they are served by
a separate process, whose CPU time is not counted. Each first pass gets a
fresh SQLite file in a temporary directory; ``BENCH_INGEST_DATABASE_URL``
points it elsewhere (an empty, migrated database: it is emptied before
each pass; a database server's own CPU time is then not in the figures).
``BENCH_INGEST_SOURCES`` and ``BENCH_INGEST_ENTRIES`` change the size.
"""

from __future__ import annotations

import hashlib
import http.server
import multiprocessing
import multiprocessing.queues
import os
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone
from pathlib import Path

SOURCES = int(os.environ.get("BENCH_INGEST_SOURCES") or 500)
ENTRIES = int(os.environ.get("BENCH_INGEST_ENTRIES") or 50)
ROUNDS = max(1, int(os.environ.get("BENCH_INGEST_ROUNDS") or 3))
GOAL_RATIO = 1.2
UTC = timezone.utc

PARAGRAPH = (
    "<p>Развитие сотрудничества обсудили во время рабочей встречи губернатор области и представители "
    "делегации района, которые посетили регион с деловым визитом. «Мы выходим на финальный этап "
    "согласования процедурных моментов», – отметил губернатор. Подробности — "
    '<a href="/news/{n}/details">на сайте партнёра</a>.</p>'
)


def partner_feed(source: int) -> bytes:
    """An RSS 2.0 feed like a real partner's: Cyrillic, HTML bodies, relative links, dates, enclosures."""
    start = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    items = []
    for i in range(ENTRIES):
        n = source * 1000 + i
        body = "".join(PARAGRAPH.format(n=n) for _ in range(4))
        items.append(
            f"<item><title>Партнёр {source}: новость {i} о сотрудничестве регионов</title>"
            f"<link>/news/{n}.html</link><guid isPermaLink=\"false\">p{source}-{i}</guid>"
            f"<pubDate>{format_datetime(start - timedelta(hours=i), usegmt=True)}</pubDate>"
            f"<description>Краткое описание новости {i}: соглашение о сотрудничестве подписано.</description>"
            f"<content:encoded><![CDATA[{body}]]></content:encoded>"
            f'<enclosure url="/files/{n}.jpg" type="image/jpeg" length="{10000 + i}"/></item>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/"><channel>'
        f"<title>Партнёр {source}</title><link>/</link><language>ru</language><ttl>30</ttl>"
        + "".join(items)
        + "</channel></rss>"
    ).encode("utf-8")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    feeds: dict[str, tuple[bytes, str]] = {}

    def do_GET(self) -> None:
        body, etag = self.feeds[self.path]
        if self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.send_header("ETag", etag)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def _serve(port_out: "multiprocessing.queues.Queue[int]") -> None:
    """The partner sites, in a process of their own so their CPU time is not counted as ours."""
    _Handler.feeds = {}
    for s in range(SOURCES):
        body = partner_feed(s)
        _Handler.feeds[f"/p{s}.rss"] = (body, '"' + hashlib.sha1(body).hexdigest()[:16] + '"')
    http.server.ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 drops SYNs under load
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    port_out.put(server.server_address[1])
    server.serve_forever(0.1)


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float  # this process and the children it waited for (the parse worker processes)
    created: int = 0
    failed: int = 0
    processes: int = 0


def _cpu() -> float:
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def _bare(feeds: list[bytes]) -> Run:
    """Plain ``feedparser.parse`` over every feed, one after another, in this process."""
    import feedparser

    wall, cpu = time.perf_counter(), _cpu()
    for body in feeds:
        feedparser.parse(body)
    return Run(time.perf_counter() - wall, _cpu() - cpu)


def _empty_database(tmp: str, n: int) -> str:
    from sqlalchemy import text

    from feeds.db import make_unpooled_engine
    from feeds.schema import upgrade_database

    url = os.environ.get("BENCH_INGEST_DATABASE_URL")
    if url is None:
        url = f"sqlite:///{Path(tmp) / f'ingest-{n}.db'}"
        upgrade_database(url)
        return url
    engine = make_unpooled_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("TRUNCATE releases, sources, organizations RESTART IDENTITY CASCADE"))
        else:
            for table in ("releases", "sources", "organizations"):
                conn.execute(text(f"DELETE FROM {table}"))
    engine.dispose()
    return url


def _passes(url: str, port: int, processes: bool) -> tuple[Run, Run]:
    """A first pass over every source (parsing in worker processes or in threads), then a 304 pass."""
    from feeds.db import make_session_factory
    from feeds.fetch import Fetcher
    from feeds.ingest import refresh_due_sources
    from feeds.organizations import create_organization
    from feeds.parsing import ParsePool
    from feeds.sources import add_source

    factory = make_session_factory(url)
    with factory() as session:
        org = create_organization(session, "Партнёры", country_code="RU")
        for s in range(SOURCES):
            add_source(session, f"http://p{s}.bench.test:{port}/p{s}.rss", org, allow_private=True)
        session.commit()
    fetcher = Fetcher(allow_private=True, resolver=lambda host, p: ["127.0.0.1"])

    # The pool is started and stopped inside the measured time, so that its start-up counts and
    # its processes, waited for when it closes, count in the CPU time.
    wall, cpu = time.perf_counter(), _cpu()
    with ParsePool() if processes else _NoPool() as pool:
        first = refresh_due_sources(factory, fetcher, worker="bench", max_workers=8, parsers=pool)
    first_run = Run(time.perf_counter() - wall, _cpu() - cpu, sum(r.created for r in first),
                    sum(1 for r in first if r.status != "ok"), pool.started if pool else 0)
    if first_run.failed:
        print("  failures:", "; ".join(f"#{r.source_id}: {r.error}" for r in first if r.status != "ok")[:500])

    wall, cpu = time.perf_counter(), _cpu()
    second = refresh_due_sources(factory, fetcher, worker="bench", max_workers=8, due_only=False)
    second_run = Run(time.perf_counter() - wall, _cpu() - cpu, failed=sum(1 for r in second
                                                                            if r.status != "not modified"))
    factory.kw["bind"].dispose()
    return first_run, second_run


class _NoPool:
    """Stands for "no ParsePool" in a ``with`` statement: parsing in the fetch threads."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _median(runs: list[Run], field: str) -> float:
    return float(statistics.median(getattr(r, field) for r in runs))


def main() -> None:
    import feedparser

    context = multiprocessing.get_context("spawn")  # never a fork: an earlier benchmark may have left threads
    port_out: "multiprocessing.queues.Queue[int]" = context.Queue()
    server = context.Process(target=_serve, args=(port_out,), daemon=True)
    server.start()
    feeds = [partner_feed(s) for s in range(SOURCES)]
    entries = SOURCES * ENTRIES
    bare: list[Run] = []
    pooled: list[tuple[Run, Run]] = []
    threaded: list[tuple[Run, Run]] = []
    try:
        port = port_out.get(timeout=120)
        print(f"{SOURCES} sources × {ENTRIES} entries, {sum(map(len, feeds)) / 1e6:.1f} MB of feeds "
              f"on 127.0.0.1:{port} (served by another process); {ROUNDS} rounds, {os.cpu_count()} CPUs", flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            sides = ["bare", "processes", "threads"]
            for n in range(ROUNDS):
                order = sides[n % 3:] + sides[:n % 3]  # each side goes first in some round
                for side in order:
                    if side == "bare":
                        bare.append(_bare(feeds))
                        got = f"{bare[-1].wall:.1f} s wall, {bare[-1].cpu:.1f} s CPU"
                    else:
                        runs = pooled if side == "processes" else threaded
                        runs.append(_passes(_empty_database(tmp, len(pooled) + len(threaded)), port,
                                            side == "processes"))
                        first, second = runs[-1]
                        got = (f"{first.wall:.1f} s wall, {first.cpu:.1f} s CPU, {first.created} created, "
                               f"{first.processes} parse processes; 304 pass {second.wall:.2f} s")
                    print(f"  round {n + 1}, {side}: {got}", flush=True)
    finally:
        server.terminate()
        server.join(10)

    started = time.process_time()
    for body in feeds:  # as feeds.parse calls it
        feedparser.parse(body, sanitize_html=False, resolve_relative_uris=False,
                         response_headers={"content-type": "application/xml; charset=utf-8"})
    flags_cpu = time.process_time() - started

    bare_wall, bare_cpu = _median(bare, "wall"), _median(bare, "cpu")
    print(f"bare feedparser.parse, one process (median of {len(bare)}): {bare_wall:.2f} s wall, {bare_cpu:.2f} s CPU "
          f"({bare_cpu / entries * 1000:.2f} ms CPU an entry)")
    print(f"feedparser as feeds.parse calls it (its sanitizer and link rewriting off; nh3 and feeds.parse do "
          f"both): {flags_cpu:.2f} s CPU")
    for label, runs in (("first pass, parsing in processes", pooled), ("first pass, parsing in threads", threaded)):
        firsts = [f for f, _ in runs]
        wall, cpu = _median(firsts, "wall"), _median(firsts, "cpu")
        print(f"{label} (median of {len(firsts)}): {wall:.2f} s wall, {cpu:.2f} s CPU, "
              f"{entries / wall:,.0f} entries/s; {max(f.processes for f in firsts)} parse processes; "
              f"{min(f.created for f in firsts)} releases created, {max(f.failed for f in firsts)} sources failed")
        print(f"    wall ÷ bare wall: {wall / bare_wall:.2f}   CPU ÷ bare CPU: {cpu / bare_cpu:.2f}   "
              "(round by round, wall ÷ the same round's bare wall: "
              + ", ".join(f"{f.wall / b.wall:.2f}" for f, b in zip(firsts, bare)) + ")")
    seconds = [s for _, s in pooled + threaded]
    print(f"second pass (median of {len(seconds)}): {_median(seconds, 'wall'):.2f} s wall, "
          f"{_median(seconds, 'cpu'):.2f} s CPU; sources not answering 304: {max(s.failed for s in seconds)}")
    ratio = _median([f for f, _ in pooled], "wall") / bare_wall
    print(f"GOAL: first pass wall ÷ bare serial feedparser wall = {ratio:.2f} (goal ≤ {GOAL_RATIO}) "
          f"{'OK' if ratio <= GOAL_RATIO else 'MISSED'}")


if __name__ == "__main__":
    main()
