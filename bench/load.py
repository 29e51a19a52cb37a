"""Benchmark plumbing: tools, generated databases, the production server, wrk and nginx.

Everything runs on loopback and is bounded in time: every wrk run has a fixed
duration, every wait has a timeout, every process started here is stopped
here. Generated databases live in ``bench/.out/`` (ignored by git) and are
reused while their size matches.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / ".out"
UTC = timezone.utc
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
PG_BENCH_DB = os.environ.get("BENCH_PG_DATABASE", "syn_bench")
COUNTRIES = ["RU", "KZ", "BY", "AM", "UZ", "KG", "AZ", "GE", "MD", "TJ", "CN", "IN", "TR", "AE", "DE", "FR", "US",
             "GB", "RS", "MN"]
BODY = ("<p>Развитие сотрудничества обсудили во время рабочей встречи губернатора и представителей делегации, "
        "которые посетили регион с деловым визитом. Открытие производства электробусов планируется на 2024 год "
        "&amp; предприятие будет выпускать от 600 единиц в год.</p>")


# -- tools ------------------------------------------------------------------------------


def ensure_tools(*names: str) -> None:
    """Make sure wrk/nginx exist: install them with apt-get when possible, else explain."""
    missing = [n for n in names if not _which(n)]
    if missing and shutil.which("apt-get") and os.geteuid() == 0:
        print(f"installing {' '.join(missing)} with apt-get …", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=False,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
        missing = [n for n in names if not _which(n)]
    if missing:
        raise SystemExit(
            f"benchmark needs {', '.join(missing)}: install with `apt-get install -y {' '.join(missing)}` "
            "(Debian/Ubuntu) or your system's package manager"
        )


def _which(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/local/sbin") / name) if p.exists()), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- generated databases -----------------------------------------------------------------


def sqlite_url(name: str) -> str:
    OUT.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{OUT / name}"


def _release_count(url: str) -> int | None:
    from feeds.db import make_unpooled_engine
    from feeds.schema import is_up_to_date

    try:
        if not is_up_to_date(url):
            return None
        engine = make_unpooled_engine(url)
        try:
            with engine.connect() as conn:
                return int(conn.execute(text("SELECT count(*) FROM releases")).scalar_one())
        finally:
            engine.dispose()
    except Exception:
        return None


def reset_database(url: str) -> None:
    """An empty, migrated database at ``url`` (the file removed, or the schema dropped)."""
    from feeds.schema import drop_postgres_schema, upgrade_database

    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    else:
        drop_postgres_schema(url)
    upgrade_database(url)


def ensure_pg_database(name: str = PG_BENCH_DB) -> str:
    """Create the dedicated PostgreSQL benchmark database if needed; returns its URL."""
    from feeds.db import make_unpooled_engine

    engine = make_unpooled_engine(PG_ADMIN_URL).execution_options(isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).scalar():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name


def generate(url: str, releases: int, *, organizations: int = 200, body: str = BODY, force: bool = False) -> str:
    """A database with ``releases`` visible releases spread over organizations and countries.

    Reused when it already holds that many. Rows go in with executemany
    batches (SQLite) or one ``generate_series`` insert (PostgreSQL).
    """
    if not force and _release_count(url) == releases:
        return url
    started = time.perf_counter()
    reset_database(url)
    from feeds.db import make_unpooled_engine
    from feeds.search import search_document

    engine = make_unpooled_engine(url)
    search_text = search_document("Производство электробусов", "сотрудничество регион")
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO organizations (id, slug, name, country_code, created_at) VALUES (:id, :slug, :name, :cc, :at)"),
            [{"id": i, "slug": f"org-{i}", "name": f"Организация {i}", "cc": COUNTRIES[i % len(COUNTRIES)],
              "at": EPOCH.strftime("%Y-%m-%d %H:%M:%S.%f") if url.startswith("sqlite") else EPOCH}
             for i in range(1, organizations + 1)],
        )
        if url.startswith("postgresql"):
            conn.execute(text("""
                INSERT INTO releases (guid, organization_id, country_code, language, title, slug, lead, body,
                    attachments, published_at, created_at, updated_at, view_count, search_text)
                SELECT 'urn:uuid:' || md5(n::text)::uuid, 1 + (n % :orgs),
                    (CAST(:countries AS text[]))[1 + (n % :ncountries)], 'ru',
                    'Пресс-релиз №' || n || ' о производстве электробусов', 'press-reliz-' || n,
                    'Развитие сотрудничества обсудили во время рабочей встречи.', :body, '[]',
                    :epoch + n * interval '1 minute', :epoch + n * interval '1 minute',
                    :epoch + n * interval '1 minute', 0, :search_text
                FROM generate_series(1, :n) AS n
            """), {
                "countries": COUNTRIES,
                "orgs": organizations, "ncountries": len(COUNTRIES), "body": body, "epoch": EPOCH,
                "n": releases, "search_text": search_text,
            })
            conn.execute(text("ANALYZE releases"))
        else:
            batch: list[dict[str, Any]] = []
            insert = text("""
                INSERT INTO releases (guid, organization_id, country_code, language, title, slug, lead, body,
                    attachments, published_at, created_at, updated_at, view_count, search_text)
                VALUES (:guid, :org, :cc, 'ru', :title, :slug, :lead, :body, '[]', :at, :at, :at, 0, :st)
            """)
            for n in range(1, releases + 1):
                # The text form SQLAlchemy's DateTime writes on SQLite (compares as text).
                at = (EPOCH + timedelta(minutes=n)).strftime("%Y-%m-%d %H:%M:%S.%f")
                batch.append({
                    "guid": f"urn:uuid:{uuid.UUID(int=n)}", "org": 1 + n % organizations,
                    "cc": COUNTRIES[n % len(COUNTRIES)], "title": f"Пресс-релиз №{n} о производстве электробусов",
                    "slug": f"press-reliz-{n}", "lead": "Развитие сотрудничества обсудили во время рабочей встречи.",
                    "body": body, "at": at, "st": search_text,
                })
                if len(batch) == 20_000:
                    conn.execute(insert, batch)
                    batch = []
            if batch:
                conn.execute(insert, batch)
            conn.execute(text("ANALYZE"))
    engine.dispose()
    print(f"  generated {releases:,} releases in {url.split('/')[-1]} ({time.perf_counter() - started:.0f} s)",
          flush=True)
    return url


# -- the production server -----------------------------------------------------------------


@contextmanager
def server(database_url: str, *, workers: int = 1, extra_env: dict[str, str] | None = None) -> Iterator[str]:
    """``syndicate serve --no-scheduler`` (Granian) on a free loopback port; yields its base URL."""
    port = free_port()
    instance = OUT / "instance"
    instance.mkdir(parents=True, exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SYNDICATE_DATABASE_URL": database_url,
        "SYNDICATE_INSTANCE_PATH": str(instance),
        "SYNDICATE_SECRET_KEY": "benchmark-secret-key",
        "SYNDICATE_BASE_URL": base,
        "SYNDICATE_WEB_WORKERS": str(workers),
        **(extra_env or {}),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "syndicate", "serve", "--no-scheduler", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )
    try:
        wait_for(f"{base}/ping", proc)
        yield base
    finally:
        _stop(proc)


@contextmanager
def nginx(root: Path, *, workers: int = 1) -> Iterator[str]:
    """nginx serving ``root`` as static files on a free loopback port; yields its base URL."""
    ensure_tools("nginx")
    port = free_port()
    prefix = OUT / "nginx"
    prefix.mkdir(parents=True, exist_ok=True)
    conf = prefix / "nginx.conf"
    conf.write_text(f"""
daemon off;
worker_processes {workers};
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path {prefix}/tmp;
    proxy_temp_path {prefix}/tmp;
    fastcgi_temp_path {prefix}/tmp;
    uwsgi_temp_path {prefix}/tmp;
    scgi_temp_path {prefix}/tmp;
    types {{ application/rss+xml rss; application/atom+xml atom; application/feed+json json; }}
    charset utf-8;
    charset_types application/rss+xml application/atom+xml application/feed+json;
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
""", encoding="utf-8")
    (prefix / "tmp").mkdir(exist_ok=True)
    proc = subprocess.Popen([_which("nginx") or "nginx", "-c", str(conf), "-p", str(prefix)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(base + "/", proc, ok_statuses=(200, 403, 404))
        yield base
    finally:
        _stop(proc)


def wait_for(url: str, proc: subprocess.Popen[bytes], *, timeout: float = 30.0,
             ok_statuses: tuple[int, ...] = (200,)) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(f"server exited with {proc.returncode}: {err[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status in ok_statuses:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code in ok_statuses:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the process group this module started
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def final_url(url: str) -> str:
    """Where ``url`` ends up after redirects (so a load hits the page, not the redirect)."""
    with urllib.request.urlopen(url, timeout=30) as response:
        return str(response.url)


# -- wrk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Load:
    """What one wrk run measured."""

    url: str
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    non_2xx: int

    def line(self, label: str) -> str:
        return (f"  {label:<34} {self.requests_per_second:>10,.0f} req/s   p50 {self.p50_ms:7.2f} ms   "
                f"p99 {self.p99_ms:7.2f} ms" + (f"   non-2xx/3xx {self.non_2xx}" if self.non_2xx else ""))


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {value!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(url: str, *, seconds: int = 5, connections: int = 32, threads: int = 1,
        headers: dict[str, str] | None = None) -> Load:
    """``wrk -d{seconds}s`` against a loopback URL; bounded by the duration (plus a margin)."""
    ensure_tools("wrk")
    if not url.startswith(("http://127.0.0.1", "http://[::1]", "http://localhost")):
        raise ValueError("benchmarks only load loopback addresses")
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    for name, value in (headers or {}).items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(args + [url], capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Load(url, rps, p50, p99, int(bad.group(1)) if bad else 0)


# -- in-process timing -----------------------------------------------------------------------


def timed(fn: Callable[[], Any], *, repeat: int, warmup: int = 3) -> list[float]:
    """Seconds per call of ``fn``, ``repeat`` times, after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - started)
    return samples


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def verdict(value: float, goal: float, *, at_least: bool) -> str:
    ok = value >= goal if at_least else value <= goal
    return f"{'meets' if ok else 'MISSES'} goal {'>=' if at_least else '<='} {goal:g}"
