"""Digest pass throughput: 10,000 subscribers, 200 new releases, one daily pass into aiosmtpd.

Prints the pass's total seconds and messages per second, and that rate
divided by the rate of plain ``smtplib`` sending the very same, pre-built
messages over one connection to the same server (goal: >= 0.7, i.e.
choosing, rendering and bookkeeping cost less than the wire).

The SMTP server runs in its own process so it does not share the GIL with
the pass. ``BENCH_DATABASE_URL`` picks the database (default: a fresh SQLite
file); ``BENCH_SUBSCRIBERS`` / ``BENCH_RELEASES`` change the sizes.
"""

from __future__ import annotations

import multiprocessing
import os
import random
import secrets
import smtplib
import socket
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

GOAL = 0.7
KEYWORDS = [
    "электробус", "водород", "пшеница", "спутник", "банк", "нефть", "космос", "выставка", "кредит", "порт",
    "металлургия", "экспорт", "школа", "больница", "туризм", "урожай", "газ", "энергетика", "дорога", "мост",
    "инвестиции", "стартап", "робот", "лес", "рыба", "авиация", "железная", "контейнер", "уголь", "золото",
    "медицина", "вакцина", "фестиваль", "музей", "театр", "спорт", "футбол", "хоккей", "образование", "наука",
]
COUNTRIES = ["RU", "KZ", "BY", "UZ", "AM", "CN", "DE", "US"]
ZONES = ["Europe/Moscow", "Asia/Irkutsk", "Europe/Berlin", "America/New_York", "Asia/Almaty", "UTC"]


def _serve(port: int, ready: Any, stop: Any) -> None:
    from aiosmtpd.controller import Controller

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _populate(url: str, subscribers: int, releases: int) -> Any:
    from sqlalchemy import insert, select, update

    from feeds.db import make_session_factory, utcnow
    from feeds.models import Organization, Release
    from feeds.organizations import create_organization
    from feeds.store import create_release
    from feeds.types import ReleaseDraft
    from subscribers.models import ACTIVE, Subscriber, Subscription

    rng = random.Random(5)
    factory = make_session_factory(url)
    now = utcnow()
    with factory() as session:
        orgs = [create_organization(session, f"Организация {n}", slug=f"org-{n}", country_code="RU") for n in range(50)]
        session.commit()
        session.execute(insert(Subscriber), [
            {"email": f"reader{n}@example.com", "created_at": now} for n in range(subscribers)])
        ids = list(session.scalars(select(Subscriber.id).order_by(Subscriber.id)))
        rows = []
        for n, subscriber_id in enumerate(ids):
            # 10 % take everything; the rest follow organizations, countries or keywords
            kind = 0 if n % 10 == 0 else 1 + n % 3
            rows.append({
                "subscriber_id": subscriber_id, "status": ACTIVE, "token_key": secrets.token_hex(16),
                "organizations": [f"org-{rng.randrange(50)}" for _ in range(rng.randint(1, 3))] if kind == 1 else [],
                "countries": rng.sample(COUNTRIES, rng.randint(1, 2)) if kind == 2 else [],
                "keywords": ", ".join(rng.sample(KEYWORDS, rng.randint(1, 3))) if kind == 3 else "",
                "frequency": "daily", "hour": rng.randrange(24), "weekday": None,
                "timezone": rng.choice(ZONES), "language": rng.choice(["ru", "en"]),
                "created_at": now - timedelta(days=2), "confirmed_at": now - timedelta(days=2),
                "last_seq": 0, "hard_failures": 0, "next_due_at": now - timedelta(minutes=1),
            })
        session.execute(insert(Subscription), rows)
        session.commit()
        for n in range(releases):
            words = " ".join(rng.sample(KEYWORDS, 2))
            create_release(session, orgs[n % len(orgs)], ReleaseDraft(
                title=f"Релиз {n}: {words} и новости отрасли",
                lead=("Развитие сотрудничества обсудили во время рабочей встречи. " * 4) + words,
                body=f"<p>{'Текст пресс-релиза. ' * 60}{words}</p>",
                country_code=COUNTRIES[n % len(COUNTRIES)],
            ), now=now - timedelta(seconds=releases - n))
        session.commit()
        session.execute(update(Subscription).values(next_due_at=now - timedelta(seconds=1)))
        session.commit()
        assert session.scalar(select(Release.id).limit(1)) is not None and orgs[0].id and Organization
    return factory


def main() -> None:
    from feeds.schema import drop_postgres_schema, upgrade_database
    from subscribers.emails import MailRenderer, Recipient, ReleaseItem
    from subscribers.mailer import SMTPMailer
    from subscribers.models import Delivery, Subscription
    from subscribers.send import DigestRunner
    from subscribers.settings import MailSettings

    n_subscribers = int(os.environ.get("BENCH_SUBSCRIBERS", "10000"))
    n_releases = int(os.environ.get("BENCH_RELEASES", "200"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-digests-"))
    url = os.environ.get("BENCH_DATABASE_URL") or f"sqlite:///{workdir}/bench.db"
    if url.startswith("postgresql"):
        drop_postgres_schema(url)
    upgrade_database(url)
    started = time.perf_counter()
    factory = _populate(url, n_subscribers, n_releases)
    print(f"database: {url.split('://')[0]}; set-up {time.perf_counter() - started:.1f} s "
          f"({n_subscribers} subscribers, {n_releases} releases)")

    port = _free_port()
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready, stop), daemon=True)
    server.start()
    ready.wait(30)
    try:
        settings = MailSettings(base_url="https://syndicate.example", secret_key="bench-secret",
                                mail_from="Syndicate <digest@syndicate.example>")
        marks: dict[str, float] = {}

        class Timing:
            def after_chunk(self, count: int) -> None:
                pass

            def after_plan(self) -> None:
                marks["planned"] = time.perf_counter()

            def after_accept(self, count: int) -> None:
                pass

            def after_mark(self, count: int) -> None:
                pass

        runner = DigestRunner(factory, SMTPMailer("127.0.0.1", port, timeout=30), settings, node="bench", hooks=Timing())
        started = time.perf_counter()
        report = runner.run_pass()
        ours = time.perf_counter() - started
        planning = marks["planned"] - started
        sent = report.sent
        assert sent > 0 and report.failed == 0, report.summary()

        # The same messages, pre-built, sent with plain smtplib over one connection.
        from sqlalchemy import select

        from feeds.models import Organization, Release

        renderer = MailRenderer(settings)
        with factory() as session:
            items = {
                r.id: ReleaseItem(r.id, r.slug, r.title, r.lead, name, r.country_code, r.published_at)
                for r, name in session.execute(select(Release, Organization.name).join(Organization))
            }
            messages = []
            for d, s in session.execute(select(Delivery, Subscription).join(Subscription, Subscription.id == Delivery.subscription_id)):
                recipient = Recipient(s.id, d.recipient, s.language, s.timezone, s.token_key)
                data = renderer.digest(recipient, [items[i] for i in d.release_ids], message_id=d.message_id,
                                       created_at=d.created_at)
                messages.append((d.recipient, data))
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, local_hostname="bench", timeout=30) as smtp:
            for recipient, data in messages:
                smtp.sendmail("digest@syndicate.example", [recipient], data)
        wire = time.perf_counter() - started
    finally:
        stop.set()
        server.join(10)
    size = sum(len(m) for _, m in messages) / max(len(messages), 1)
    rate, wire_rate = sent / ours, len(messages) / wire
    print(f"pass: {report.summary()}")
    print(f"digest pass: {ours:.2f} s total ({planning:.2f} s choosing and writing the outbox), "
          f"{sent} messages, {rate:.0f} messages/s (average {size / 1024:.1f} KiB)")
    print(f"plain smtplib, same pre-built messages, one connection: {wire:.2f} s, {wire_rate:.0f} messages/s")
    print(f"ratio pass/smtplib: {rate / wire_rate:.2f} (goal >= {GOAL})")


if __name__ == "__main__":
    main()
