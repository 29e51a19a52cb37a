"""The scheduler: one dumb ticker that asks the database what is due.

APScheduler 3.x runs a single interval job (``coalesce=True``,
``max_instances=1``). Each tick claims due partner sources and due digests
with leases in the database, so several scheduler processes on one
PostgreSQL never do the same work twice. Timing lives in the data
(``next_check_at``, digest periods), not in the job list.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import uuid
from datetime import datetime
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.db import make_session_factory, utcnow
from feeds.models import Heartbeat
from syndicate.websub import install_websub

log = logging.getLogger("syndicate.scheduler")


def node_id() -> str:
    """A name for this process that is unique across nodes (lease owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def record_heartbeat(factory: sessionmaker[Session], name: str, node: str, detail: str | None, now: datetime) -> None:
    for _ in range(2):
        with factory() as session:
            beat = session.get(Heartbeat, name)
            if beat is None:
                session.add(Heartbeat(name=name, node=node, at=now, detail=detail))
            else:
                beat.node, beat.at, beat.detail = node, now, detail
            try:
                session.commit()
                return
            except IntegrityError:  # another node inserted it first; update instead
                session.rollback()


class Tick:
    """One pass of every periodic job; what the interval job calls."""

    def __init__(self, config: Config, factory: sessionmaker[Session], node: str) -> None:
        self.config = config
        self.factory = factory
        self.node = node
        self.jobs: list[tuple[str, Callable[[], str]]] = [
            ("ingest", self.ingest),
            ("digests", self.digests),
        ]

    def ingest(self) -> str:
        """Poll the partner sources that are due (see ``feeds.ingest``).

        Feeds are parsed in worker processes that this scheduler keeps from
        tick to tick (started on the first pass with more than one feed, and
        stopped with this process).
        """
        from feeds.ingest import refresh_due_sources
        from feeds.parsing import ParsePool
        from syndicate.commands.partners import make_fetcher, result_line

        parsers = getattr(self, "parsers", None)
        if parsers is None:
            parsers = self.parsers = ParsePool()
        results = refresh_due_sources(self.factory, make_fetcher(self.config), worker=self.node, parsers=parsers)
        for result in results:
            log.info("source %s", result_line(result))
        failed = sum(1 for r in results if r.failed)
        created = sum(r.created for r in results)
        return f"{len(results)} sources polled, {failed} failing, {created} new releases"

    def digests(self) -> str:
        """Build and send the digests that are due (see ``subscribers.send``)."""
        from syndicate.commands.digests import run_digests

        return str(run_digests(self.config, self.factory, self.node).summary())

    def __call__(self) -> None:
        for name, job in self.jobs:
            try:
                detail = job()
            except Exception as exc:  # one failing job never stops the others
                log.exception("scheduler job %s failed", name)
                detail = f"error: {exc.__class__.__name__}: {exc}"
            record_heartbeat(self.factory, name, self.node, detail, utcnow())
        record_heartbeat(self.factory, "scheduler", self.node, None, utcnow())


def main(config: Config, *, tick_seconds: float | None = None) -> None:
    """Run the scheduler in this process until SIGINT or SIGTERM."""
    from apscheduler.schedulers.blocking import BlockingScheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    factory = make_session_factory(config.database_url, writer=True)
    install_websub(factory, config.websub_hub, config.base_url)  # ingested releases ping the hub too
    node = node_id()
    tick = Tick(config, factory, node)
    scheduler = BlockingScheduler(timezone="UTC")
    scheduler.add_job(
        tick,
        "interval",
        seconds=tick_seconds or config.scheduler_tick_seconds,
        id="tick",
        coalesce=True,
        max_instances=1,
        next_run_time=utcnow(),
        misfire_grace_time=None,
    )

    def _stop(signum: int, frame: Any) -> None:
        log.info("scheduler %s stopping (signal %d)", node, signum)
        scheduler.shutdown(wait=False)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log.info("scheduler %s started, tick every %ss", node, tick_seconds or config.scheduler_tick_seconds)
    scheduler.start()
