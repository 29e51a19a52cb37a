"""Web pages and the API on the production server, beside a trivial endpoint.

Prints req/s and p50/p99 of the home page, one release page and
``GET /api/releases`` next to ``GET /ping`` on the same server (Granian,
``syndicate serve --no-scheduler``, loopback, 10,000 generated releases),
and each one's ratio to ``/ping``: the price of the page over the server's
own floor. Each load is a bounded ``wrk -d5s`` run.
"""

from __future__ import annotations

from bench.bench_feeds import WEB_BODY
from bench.load import ensure_tools, fetch, final_url, generate, server, sqlite_url, wrk


def main() -> None:
    ensure_tools("wrk")
    url = generate(sqlite_url("web_10k.db"), 10_000, body=WEB_BODY)
    with server(url, workers=1) as base:
        targets = [
            ("GET /ping", "/ping"),
            ("home page /", "/"),
            ("release page /releases/5000", "/releases/5000"),
            ("GET /api/releases", "/api/releases"),
        ]
        print("  1 Granian worker, wrk -t1 -c32 -d5s, 10,000 releases (SQLite)", flush=True)
        results = {}
        for label, path in targets:
            status, _, _ = fetch(base + path)
            if status != 200:
                print(f"  {label:<34} answers {status}; skipped", flush=True)
                continue
            results[path] = wrk(final_url(base + path))
            print(results[path].line(label), flush=True)
    ping = results.get("/ping")
    if ping is None:
        return
    for label, path in targets[1:]:
        if path in results:
            ratio = results[path].requests_per_second / ping.requests_per_second
            print(f"  {label:<34} / ping = {ratio:5.2f}")


if __name__ == "__main__":
    main()
