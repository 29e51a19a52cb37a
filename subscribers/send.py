"""One digest pass: purge, record arrivals, plan due digests, deliver the outbox.

``DigestRunner`` is the job: the scheduler's tick, ``syndicate digests send``
and the sign-up view (for its one confirmation mail) all call it, and it owns
the transactions — one per unit of work:

* each planning chunk commits its outbox rows together with the moved
  subscription cursors (content and bookkeeping agree, or neither happened);
* a claim commits the lease; each sent message commits its mark at once, so
  a crash (SIGKILL) repeats at most the message in flight;
* failures are values on the rows (``attempts``, ``next_attempt_at``,
  ``last_error``), never exceptions across the batch.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any, Callable, Protocol

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from feeds.db import utcnow
from feeds.models import Organization, Release
from subscribers import digests, outbox, subscriptions
from subscribers.emails import MailRenderer, Recipient, ReleaseItem
from subscribers.errors import ConnectionFailure, PermanentFailure, TemporaryFailure
from subscribers.mailer import Mailer
from subscribers.models import ACTIVE, CONFIRMATION, DIGEST, PENDING, SUSPENDED, Delivery, Subscription
from subscribers.ratelimits import RateLimits, purge_attempts
from subscribers.settings import MailSettings

log = logging.getLogger("syndicate.digests")

# Permanent failures in a row after which a subscription is suspended.
HARD_FAILURE_LIMIT = 3


class SendHooks(Protocol):
    """Points a test can stop at (the crash test pauses the process there)."""

    def after_chunk(self, count: int) -> None: ...

    def after_plan(self) -> None: ...

    def after_accept(self, count: int) -> None: ...

    def after_mark(self, count: int) -> None: ...


@dataclass
class PassReport:
    """What one pass did."""

    purged: int = 0
    arrivals: int = 0
    planned: int = 0
    digests: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    suspended: int = 0
    error: str | None = None

    def summary(self) -> str:
        parts = [f"{f.name}={getattr(self, f.name)}" for f in fields(self) if f.name != "error"]
        if self.error:
            parts.append(f"error={self.error}")
        return " ".join(parts)


class Pacer:
    """Spaces sends to at most ``rate`` per second (0: no limit)."""

    def __init__(self, rate: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.clock, self.sleep = clock, sleep
        self.next_at: float | None = None

    def wait(self) -> None:
        if not self.interval:
            return
        now = self.clock()
        if self.next_at is not None and now < self.next_at:
            self.sleep(self.next_at - now)
            now = self.next_at
        self.next_at = now + self.interval


@dataclass
class _Job:
    """A claimed delivery with what rendering it needs."""

    id: int
    kind: str
    recipient: Recipient
    status: str  # the subscription's
    hard_failures: int
    release_ids: list[int]
    message_id: str
    created_at: datetime
    attempts: int
    prefs: Any = None


class DigestRunner:
    """Runs digest passes against one database with one mailer."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        mailer: Mailer,
        settings: MailSettings,
        *,
        node: str,
        limits: RateLimits | None = None,
        hooks: SendHooks | None = None,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        renderer: MailRenderer | None = None,
        plan_chunk: int = 500,
    ) -> None:
        self.factory = factory
        self.mailer = mailer
        self.settings = settings
        self.node = node
        self.limits = limits or RateLimits()
        self.hooks = hooks
        self.clock = clock
        self.pacer = Pacer(settings.mail_rate, monotonic, sleep)
        self.renderer = renderer or MailRenderer(settings)
        self.plan_chunk_size = plan_chunk
        self._items: dict[int, ReleaseItem | None] = {}
        self._org_names: dict[str, str] = {}
        self._accepted = 0

    # -- the pass --------------------------------------------------------------

    def run_pass(self, now: datetime | None = None, *, force: bool = False) -> PassReport:
        """Purge, record arrivals, plan what is due (everything active if ``force``), deliver."""
        clock: Callable[[], datetime] = (lambda: now) if now is not None else self.clock
        report = PassReport()
        start = clock()
        with self.factory() as session:
            report.purged = subscriptions.purge_unconfirmed(session, start)
            purge_attempts(session, start, self.limits)
            session.commit()
        with self.factory() as session:
            report.arrivals = digests.record_arrivals(session, start)
            session.commit()
        self.plan(start, force=force, report=report)
        if self.hooks:
            self.hooks.after_plan()
        self.deliver(clock, report=report)
        return report

    def plan(self, now: datetime, *, force: bool = False, report: PassReport | None = None) -> PassReport:
        """Write the outbox rows of every subscription due at ``now``, a chunk per transaction."""
        report = report or PassReport()
        with self.factory() as session:
            index = digests.start_index(session, now)
            session.rollback()  # end the read: each chunk starts with its write (SQLite)
            while True:
                result = digests.plan_chunk(
                    session, index, self.settings, now, limit=self.plan_chunk_size, force=force
                )
                session.commit()
                if not result.subscriptions:
                    break
                report.planned += result.subscriptions
                report.digests += result.digests
                if self.hooks:
                    self.hooks.after_chunk(report.planned)
        return report

    # -- delivery --------------------------------------------------------------

    def deliver(
        self,
        clock: Callable[[], datetime] | None = None,
        *,
        only_ids: list[int] | None = None,
        report: PassReport | None = None,
    ) -> PassReport:
        """Send every due outbox row (or only ``only_ids``), batch by batch, one connection."""
        clock = clock or self.clock
        report = report or PassReport()
        lease = timedelta(seconds=self.settings.lease_seconds)
        batch = self.settings.batch_size
        if self.settings.mail_rate > 0:  # a batch must finish well within its lease
            batch = max(1, min(batch, int(self.settings.mail_rate * self.settings.lease_seconds / 2)))
        self._items.clear()
        try:
            while True:
                with self.factory() as session:
                    ids = outbox.claim(session, self.node, clock(), lease=lease, limit=batch, only_ids=only_ids)
                    session.commit()
                if not ids or not self._send_batch(ids, clock, report):
                    break
        finally:
            self.mailer.close()
        return report

    def _load(self, session: Session, ids: list[int]) -> list[_Job]:
        rows = session.execute(
            select(Delivery, Subscription)
            .join(Subscription, Subscription.id == Delivery.subscription_id)
            .where(Delivery.id.in_(ids), Delivery.lease_owner == self.node)
            .order_by(Delivery.id)
        ).all()
        jobs = []
        for delivery, sub in rows:
            recipient = Recipient(sub.id, delivery.recipient, sub.language, sub.timezone, sub.token_key)
            jobs.append(
                _Job(
                    id=delivery.id,
                    kind=delivery.kind,
                    recipient=recipient,
                    status=sub.status,
                    hard_failures=sub.hard_failures,
                    release_ids=list(delivery.release_ids or ()),
                    message_id=delivery.message_id,
                    created_at=delivery.created_at,
                    attempts=delivery.attempts,
                    prefs=subscriptions.preferences_of(sub) if delivery.kind == CONFIRMATION else None,
                )
            )
        wanted = {rid for job in jobs for rid in job.release_ids if rid not in self._items}
        if wanted:
            found = session.execute(
                select(Release, Organization.name)
                .join(Organization, Organization.id == Release.organization_id)
                .where(Release.id.in_(wanted))
            ).all()
            for release, org_name in found:
                # Withdrawn since the digest was decided: left out at the last moment.
                self._items[release.id] = None if release.withdrawn_at is not None else ReleaseItem(
                    release.id,
                    release.slug,
                    release.title,
                    release.lead,
                    org_name,
                    release.country_code,
                    release.published_at,
                )
            for rid in wanted - {r.id for r, _ in found}:
                self._items[rid] = None
        slugs = {slug for job in jobs if job.prefs is not None for slug in job.prefs.organizations}
        if slugs:
            self._org_names.update(
                session.execute(select(Organization.slug, Organization.name).where(Organization.slug.in_(slugs))).all()
            )
        return jobs

    def _render(self, job: _Job) -> bytes | str:
        """The message bytes, or the reason it is not to be sent."""
        if job.kind == DIGEST:
            if job.status != ACTIVE:
                return f"subscription is {job.status}"
            items = [item for rid in job.release_ids if (item := self._items.get(rid)) is not None]
            if not items:
                return "every release was withdrawn"
            return self.renderer.digest(job.recipient, items, message_id=job.message_id, created_at=job.created_at)
        if job.status != PENDING:
            return f"subscription is {job.status}"
        names = {slug: self._org_names.get(slug, slug) for slug in job.prefs.organizations}
        return self.renderer.confirmation(
            job.recipient, job.prefs, message_id=job.message_id, created_at=job.created_at, organization_names=names
        )

    def _send_batch(self, ids: list[int], clock: Callable[[], datetime], report: PassReport) -> bool:
        """Send one claimed batch; False when the server is unreachable (stop the pass).

        The next message is rendered while the previous one is on the wire (a
        second thread only talks SMTP; the session stays in this one). A mark
        is written before the next message is handed over, so at most one
        message is ever accepted but unmarked.
        """
        sender = self.settings.envelope_from
        with self.factory() as session:
            jobs = self._load(session, ids)
            engine = session.get_bind()
        assert isinstance(engine, Engine)
        # Marks go through a plain connection: a core UPDATE and COMMIT per
        # message cost a fraction of an ORM session round.
        with engine.connect() as conn, ThreadPoolExecutor(1, thread_name_prefix="smtp") as wire:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                # A killed process must not lose a mark; only a database crash
                # could, and that costs one duplicate, not a lost mail.
                conn.exec_driver_sql("SET synchronous_commit = off")
                conn.commit()
            try:
                in_flight: tuple[int, _Job, Future[None]] | None = None
                for position, job in enumerate(jobs):
                    message = self._prepare(conn, job, clock, report)
                    if in_flight is not None:
                        if not self._finish(conn, *in_flight, jobs, clock, report):
                            return False
                        in_flight = None
                    if message is None:
                        continue
                    self.pacer.wait()
                    in_flight = (position, job, wire.submit(self.mailer.send, sender, job.recipient.email, message))
                if in_flight is not None:
                    return self._finish(conn, *in_flight, jobs, clock, report)
            finally:
                if postgres:
                    conn.rollback()
                    conn.exec_driver_sql("RESET synchronous_commit")
                    conn.commit()
        return True

    def _prepare(self, conn: Connection, job: _Job, clock: Callable[[], datetime], report: PassReport) -> bytes | None:
        """Render a job's message; a job not to be sent is marked here and gives None."""
        try:
            message = self._render(job)
        except Exception as exc:  # a rendering bug fails this row, not the batch
            log.exception("cannot render delivery %s", job.id)
            outbox.mark_temporary(conn, job.id, self.node, job.attempts, clock(), f"render: {exc!r}")
            conn.commit()
            report.retried += 1
            return None
        if isinstance(message, str):
            outbox.mark_cancelled(conn, job.id, self.node, message)
            conn.commit()
            report.cancelled += 1
            return None
        return message

    def _finish(
        self,
        conn: Connection,
        position: int,
        job: _Job,
        sending: Future[None],
        jobs: list[_Job],
        clock: Callable[[], datetime],
        report: PassReport,
    ) -> bool:
        """Record how one hand-over ended; False when the server is unreachable."""
        try:
            sending.result()
        except ConnectionFailure as exc:
            log.warning("mail server unreachable: %s", exc)
            report.error = str(exc)
            outbox.mark_temporary(conn, job.id, self.node, job.attempts, clock(), str(exc))
            self._unlease([j.id for j in jobs[position + 1 :]], conn, clock())
            conn.commit()
            report.retried += 1
            return False
        except TemporaryFailure as exc:
            status = outbox.mark_temporary(conn, job.id, self.node, job.attempts, clock(), str(exc))
            conn.commit()
            report.retried += status == PENDING
            report.failed += status != PENDING
            return True
        except PermanentFailure as exc:
            outbox.mark_permanent(conn, job.id, self.node, job.attempts, str(exc))
            report.suspended += self._hard_failure(conn, job, clock())
            conn.commit()
            report.failed += 1
            return True
        self._accepted += 1
        if self.hooks:
            self.hooks.after_accept(self._accepted)
        if not outbox.mark_sent(conn, job.id, self.node, clock()):
            log.warning("delivery %s: lease lost before the mark; it may be sent twice", job.id)
        if job.hard_failures:
            conn.execute(
                update(Subscription).where(Subscription.id == job.recipient.subscription_id).values(hard_failures=0)
            )
        conn.commit()
        report.sent += 1
        if self.hooks:
            self.hooks.after_mark(self._accepted)
        return True

    def _unlease(self, ids: list[int], conn: Connection, now: datetime) -> None:
        if ids:
            conn.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.lease_owner == self.node)
                .values(lease_owner=None, lease_until=None, next_attempt_at=now + outbox.backoff(1))
                .execution_options(synchronize_session=False)
            )

    def _hard_failure(self, conn: Connection, job: _Job, now: datetime) -> int:
        """Count a permanent failure; suspend the subscription at the limit. Returns 1 if suspended."""
        count = conn.scalar(
            update(Subscription)
            .where(Subscription.id == job.recipient.subscription_id)
            .values(hard_failures=Subscription.hard_failures + 1)
            .returning(Subscription.hard_failures)
        )
        if job.kind == DIGEST and count is not None and count >= HARD_FAILURE_LIMIT:
            conn.execute(
                update(Subscription)
                .where(Subscription.id == job.recipient.subscription_id, Subscription.status == ACTIVE)
                .values(status=SUSPENDED, suspended_at=now, next_due_at=None)
            )
            outbox.cancel_pending(conn, job.recipient.subscription_id)
            return 1
        return 0
