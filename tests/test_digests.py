"""Digests: who gets what, when (injected clock, time zones, DST), and what the mail says."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from feeds.store import withdraw_release
from subscribers import digests, outbox
from subscribers import subscriptions as subs_mod
from subscribers.mailer import MemoryMailer
from subscribers.models import CANCELLED, DIGEST, SENT, Delivery, Subscription
from subscribers.schedule import Schedule, first_due, latest_occurrence, next_occurrence
from subscribers.send import DigestRunner
from subscribers import tokens
from tests.mailtools import SETTINGS, Clock, bodies, future, organization, parse, publish, subscribe

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def runner(factory, mailer, clock, **kwargs):
    return DigestRunner(factory, mailer, SETTINGS, node=kwargs.pop("node", "test-node"), clock=clock, **kwargs)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- the schedule itself (pure) ------------------------------------------------


def test_daily_hour_across_spring_forward_and_fall_back() -> None:
    at2 = Schedule("daily", 2, None, "Europe/Berlin")
    # 30 March 2024: CET (+1); 31 March 02:00 does not exist (clocks jump to 03:00).
    first = next_occurrence(at2, utc(2024, 3, 29, 12))
    assert (first.at, first.period) == (utc(2024, 3, 30, 1), "2024-03-30")
    jump = next_occurrence(at2, first.at)
    assert jump.period == "2024-03-31"
    assert jump.at.astimezone(BERLIN).hour == 3  # the first moment after the gap
    after = next_occurrence(at2, jump.at)
    assert (after.at, after.period) == (utc(2024, 4, 1, 0), "2024-04-01")  # 02:00 CEST
    # 27 October 2024: 02:00 happens twice; the first one is used, once.
    before = next_occurrence(at2, utc(2024, 10, 26, 12))
    assert (before.at, before.period) == (utc(2024, 10, 27, 0), "2024-10-27")
    assert next_occurrence(at2, before.at).period == "2024-10-28"
    # An ordinary hour keeps its local time on both sides of the change.
    at8 = Schedule("daily", 8, None, "Europe/Berlin")
    assert next_occurrence(at8, utc(2024, 3, 30, 12)).at == utc(2024, 3, 31, 6)
    assert next_occurrence(at8, utc(2024, 3, 29, 12)).at == utc(2024, 3, 30, 7)


def test_weekly_weekday_and_period() -> None:
    wednesday_9 = Schedule("weekly", 9, 2, "America/New_York")
    monday = utc(2024, 3, 11, 15)  # New York is on EDT since 10 March
    occurrence = next_occurrence(wednesday_9, monday)
    assert occurrence.at == utc(2024, 3, 13, 13)
    assert occurrence.period == "2024-W11"
    assert next_occurrence(wednesday_9, occurrence.at).at == utc(2024, 3, 20, 13)
    assert latest_occurrence(wednesday_9, utc(2024, 3, 19, 0)).period == "2024-W11"
    # Before the DST change the same local hour is an hour later in UTC.
    assert next_occurrence(wednesday_9, utc(2024, 3, 4)).at == utc(2024, 3, 6, 14)


def test_first_due_of_an_immediate_subscription_is_now() -> None:
    now = utc(2024, 5, 1, 10)
    assert first_due(Schedule("immediate", 0, None, "UTC"), now) == now


# -- planning and sending ------------------------------------------------------


def test_daily_digest_at_local_hour_across_dst(session_factory, session) -> None:
    """Hourly ticks over a DST change: one mail a day at 08:00 Berlin time, only when something arrived."""
    start = datetime(2030, 3, 29, 12, tzinfo=UTC)  # the last Sunday of March 2030 is the 31st
    org = organization(session)
    sub = subscribe(session, "anna@example.com", start, hour=8, timezone_name="Europe/Berlin", language="en")
    mailer = MemoryMailer()
    clock = Clock(start)
    run = runner(session_factory, mailer, clock)
    published_days = {3, 4}  # nothing is published on the 31st: that day has no mail
    for hour in range(1, 4 * 24):
        now = clock.advance(hours=1)
        if now.hour == 20 and now.day in (29, 30, 1) and (now.day in (29, 30) or now.month == 4):
            publish(session, org, f"Release of {now:%d %B}", at=now)
        run.run_pass()
    received = [parse(m.message) for m in mailer.sent]
    local_times = [datetime.strptime(m["Date"], "%a, %d %b %Y %H:%M:%S %z").astimezone(BERLIN) for m in received]
    assert [t.strftime("%d %H:%M") for t in local_times] == ["30 08:00", "31 08:00", "02 08:00"]
    assert [m["Subject"] for m in received] == [
        "Syndicate: 1 new release — March 30, 2030",
        "Syndicate: 1 new release — March 31, 2030",
        "Syndicate: 1 new release — April 2, 2030",
    ]
    assert published_days  # (the days above are spelled out in the loop)
    periods = session.scalars(select(Delivery.period).where(Delivery.subscription_id == sub.id).order_by(Delivery.id))
    assert list(periods) == ["2030-03-30", "2030-03-31", "2030-04-02"]


def test_weekly_digest_on_the_chosen_weekday(session_factory, session) -> None:
    start = future()
    org = organization(session)
    weekday = (start.weekday() + 3) % 7
    subscribe(session, "weekly@example.com", start, frequency="weekly", weekday=weekday, hour=9, timezone_name="Asia/Irkutsk")
    mailer = MemoryMailer()
    clock = Clock(start)
    run = runner(session_factory, mailer, clock)
    for day in range(15):
        publish(session, org, f"День {day}", at=clock.now + timedelta(minutes=1))
        for _ in range(24):
            clock.advance(hours=1)
            run.run_pass()
    sent = [parse(m.message) for m in mailer.sent]
    assert len(sent) == 2
    for message in sent:
        local = datetime.strptime(message["Date"], "%a, %d %b %Y %H:%M:%S %z").astimezone(ZoneInfo("Asia/Irkutsk"))
        assert (local.weekday(), local.hour) == (weekday, 9)
    # Every release went out exactly once over the two weeks (the rest wait for the third).
    html = "".join(bodies(m)[1] for m in sent)
    mailed = [d for d in range(15) if f">День {d}</a>" in html]
    assert len(mailed) == sum(int(m["Subject"].split(": ")[1].split()[0]) for m in sent)
    assert all(html.count(f">День {d}</a>") == 1 for d in mailed)
    assert mailed == list(range(mailed[-1] + 1))  # in order, none skipped


def test_filters_keywords_understand_russian_word_forms(session_factory, session) -> None:
    now = future()
    airr = organization(session, "АИРР", slug="airr")
    other = organization(session, "Merlion", slug="merlion")
    subscribe(session, "buses@example.com", now, keywords="электробус", hour=now.hour)
    subscribe(session, "either@example.com", now, keywords="водородного, электробус завод", hour=now.hour)
    subscribe(session, "merlion@example.com", now, organizations=("merlion",), hour=now.hour)
    subscribe(session, "kz@example.com", now, countries=("KZ",), hour=now.hour)
    subscribe(session, "all@example.com", now, hour=now.hour)
    publish(session, airr, "В Приангарье откроется производство электробусов", at=now + timedelta(minutes=5))
    publish(session, other, "Merlion – официальный дистрибьютор «АЛМИ Партнер»", at=now + timedelta(minutes=6))
    publish(session, other, "Водородный завод в Казахстане", at=now + timedelta(minutes=7), country="KZ")
    mailer = MemoryMailer()
    report = runner(session_factory, mailer, Clock(now + timedelta(days=1, minutes=1))).run_pass()
    assert report.sent == 5

    def titles(address: str) -> list[str]:
        (message,) = mailer.to(address)
        text, _ = bodies(parse(message))
        return sorted(t for t in ("электробусов", "дистрибьютор", "Водородный") if t in text)

    assert titles("buses@example.com") == ["электробусов"]
    assert titles("either@example.com") == ["Водородный"]  # "электробус завод" needs both words
    assert titles("merlion@example.com") == ["Водородный", "дистрибьютор"]
    assert titles("kz@example.com") == ["Водородный"]
    assert titles("all@example.com") == ["Водородный", "дистрибьютор", "электробусов"]


def test_nothing_matched_means_no_mail_and_each_release_goes_once(session_factory, session) -> None:
    now = future()
    org = organization(session)
    sub = subscribe(session, "quiet@example.com", now, keywords="спутник", hour=9, timezone_name="UTC")
    publish(session, org, "Новый спутник на орбите", at=now + timedelta(minutes=1))
    mailer = MemoryMailer()
    clock = Clock(now + timedelta(minutes=2))
    run = runner(session_factory, mailer, clock)
    run.run_pass()
    assert mailer.sent == []  # 09:00 UTC has not come yet
    clock.now = now.replace(hour=9) + timedelta(days=1)
    assert run.run_pass().sent == 1
    publish(session, org, "Урожай пшеницы", at=clock.advance(hours=1))
    clock.now = now.replace(hour=9) + timedelta(days=2)
    assert run.run_pass().sent == 0  # nothing matched: no mail, no row
    assert session.scalar(select(func.count()).select_from(Delivery).where(Delivery.subscription_id == sub.id)) == 1
    # A forced pass ("digests send --now") finds nothing new either.
    assert runner(session_factory, mailer, clock).run_pass(force=True).sent == 0
    assert len(mailer.sent) == 1


def test_embargo_and_withdrawal_are_respected(session_factory, session) -> None:
    now = future()
    org = organization(session)
    subscribe(session, "ed@example.com", now, frequency="immediate")
    embargoed = publish(session, org, "Под эмбарго", at=now, published_at=now + timedelta(hours=2))
    withdrawn = publish(session, org, "Отозванный", at=now + timedelta(minutes=1))
    publish(session, org, "Обычный", at=now + timedelta(minutes=1))
    withdraw_release(session, withdrawn, now=now + timedelta(minutes=2))
    session.commit()
    mailer = MemoryMailer()
    clock = Clock(now + timedelta(minutes=3))
    run = runner(session_factory, mailer, clock)
    run.run_pass()
    (first,) = mailer.sent
    text, html = bodies(parse(first.message))
    assert "Обычный" in text and "Под эмбарго" not in text and "Отозванный" not in html
    clock.now = embargoed.published_at + timedelta(minutes=1)
    run.run_pass()
    assert len(mailer.sent) == 2
    assert "Под эмбарго" in bodies(parse(mailer.sent[1].message))[0]


def test_withdrawn_after_planning_is_left_out_at_sending(session_factory, session) -> None:
    now = future()
    org = organization(session)
    subscribe(session, "late@example.com", now, frequency="immediate")
    release = publish(session, org, "Скоро отзовут", at=now)

    class WithdrawBetweenPlanAndSend:
        def after_chunk(self, count: int) -> None:
            pass

        def after_plan(self) -> None:
            withdraw_release(session, session.merge(release), now=now + timedelta(minutes=1))
            session.commit()

        def after_accept(self, count: int) -> None:
            pass

        def after_mark(self, count: int) -> None:
            pass

    mailer = MemoryMailer()
    run = runner(session_factory, mailer, Clock(now + timedelta(minutes=1)), hooks=WithdrawBetweenPlanAndSend())
    report = run.run_pass()
    assert (report.digests, report.sent, report.cancelled, mailer.sent) == (1, 0, 1, [])


def test_immediate_subscribers_get_batches_not_one_mail_per_release(session_factory, session) -> None:
    now = future()
    org = organization(session)
    subscribe(session, "fast@example.com", now, frequency="immediate")
    mailer = MemoryMailer()
    clock = Clock(now)
    run = runner(session_factory, mailer, clock)
    for minute in range(12):  # a release a minute, a tick every 30 seconds
        publish(session, org, f"Срочно {minute}", at=clock.now)
        clock.advance(seconds=30)
        run.run_pass()
        clock.advance(seconds=30)
        run.run_pass()
    for _ in range(12):
        clock.advance(minutes=1)
        run.run_pass()
    counts = [int(parse(m.message)["Subject"].split(": ")[1].split()[0]) for m in mailer.sent]
    assert sum(counts) == 12  # every release, once
    assert len(counts) <= 4  # batched: at most one mail per five minutes
    assert counts[0] == 1  # the first one went out within the first minute


def test_unsubscribed_before_sending_gets_nothing(session_factory, session) -> None:
    now = future()
    org = organization(session)
    sub = subscribe(session, "gone@example.com", now, frequency="immediate")
    publish(session, org, "Новость", at=now)
    mailer = MemoryMailer()
    run = runner(session_factory, mailer, Clock(now + timedelta(minutes=1)))
    with session_factory() as s:
        digests.record_arrivals(s, now + timedelta(minutes=1))
        s.commit()
    assert run.plan(now + timedelta(minutes=1)).digests == 1
    subs_mod.unsubscribe(session, session.get(Subscription, sub.id), now + timedelta(minutes=1))
    session.commit()
    run.deliver()
    assert mailer.sent == []
    assert session.scalar(select(Delivery.status).where(Delivery.subscription_id == sub.id)) == CANCELLED


def test_digest_headers_bodies_and_cyrillic(session_factory, session) -> None:
    now = datetime(2031, 9, 5, 5, 0, tzinfo=UTC)
    org = organization(session, "АИРР")
    sub = subscribe(session, "journalist@example.com", now - timedelta(days=1), hour=8, timezone_name="Europe/Moscow")
    publish(
        session,
        org,
        "В Приангарье в 2024 году откроется российско-китайское производство электробусов",
        at=now - timedelta(hours=2, minutes=33),
        lead="Развитие сотрудничества обсудили во время рабочей встречи Губернатор Иркутской области.",
    )
    mailer = MemoryMailer()
    run = runner(session_factory, mailer, Clock(now))
    run.run_pass()
    (sent,) = mailer.sent
    assert sent.sender == "digest@example.org"
    raw = sent.message
    assert raw.isascii() and b"\r\n" in raw and all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = parse(raw)
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Syndicate: 1 новый релиз — 5 сентября 2031 г."
    assert "=?utf-8?" in raw.split(b"\r\n\r\n")[0].decode().lower()  # RFC 2047 on the wire
    assert message["From"].addresses[0].display_name == "Синдикат"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = message["List-Unsubscribe"].strip("<>")
    assert unsubscribe_url.startswith("http://127.0.0.1:8000/unsubscribe/")
    token = unsubscribe_url.rsplit("/", 1)[1]
    assert tokens.read_token(SETTINGS.secret_key, tokens.UNSUBSCRIBE, token, now) == sub.token_key
    assert sub.token_key not in token.split(".")[1:]  # the key is signed, the address is nowhere
    assert "journalist" not in unsubscribe_url
    assert message["List-Id"] == "Syndicate digests <digests.127.0.0.1>"
    assert message["Date"] == "Fri, 05 Sep 2031 05:00:00 +0000"
    text, html = bodies(message)
    for body in (text, html):
        assert "производство электробусов" in body
        assert "АИРР" in body and "Россия" in body
        assert "05:27, 05.09.2031" in body  # 02:27 UTC in Moscow
        assert unsubscribe_url in body and "/subscriptions/" in body
        assert "http://127.0.0.1:8000/releases/" in body
    assert "<style" not in html and 'style="' in html  # inlined
    # The Message-ID is fixed by the outbox row: the same for a second rendering.
    row = session.scalar(select(Delivery).where(Delivery.subscription_id == sub.id, Delivery.kind == DIGEST))
    assert message["Message-ID"] == row.message_id
    assert row.status == SENT and row.period == "2031-09-05"
    assert row.message_id == outbox.message_id(SETTINGS, DIGEST, sub.id, "2031-09-05")
    assert row.message_id != outbox.message_id(SETTINGS, DIGEST, sub.id, "2031-09-06")
    assert row.message_id != outbox.message_id(SETTINGS, DIGEST, sub.id + 1, "2031-09-05")
    assert row.message_id.endswith("@127.0.0.1>")


def test_mail_rate_paces_sending() -> None:
    from subscribers.send import Pacer

    ticks = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        ticks[0] += seconds

    pacer = Pacer(4.0, lambda: ticks[0], sleep)
    for _ in range(5):
        pacer.wait()
    assert slept == [0.25, 0.25, 0.25, 0.25]
    assert Pacer(0, lambda: 0.0, sleep).interval == 0.0


def test_concurrent_runners_never_send_a_digest_twice(session_factory, session) -> None:
    now = future()
    org = organization(session)
    for n in range(40):
        subscribe(session, f"reader{n}@example.com", now, frequency="daily", hour=now.hour, timezone_name="UTC")
    publish(session, org, "Общая новость", at=now + timedelta(minutes=1))
    later = now + timedelta(days=1, minutes=2)
    mailers = [MemoryMailer() for _ in range(4)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            runner(session_factory, mailers[i], Clock(later), node=f"node-{i}", plan_chunk=5).run_pass()
        except BaseException as exc:  # pragma: no cover - reported below
            import traceback

            traceback.print_exc()
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    recipients = [m.recipient for mailer in mailers for m in mailer.sent]
    assert sorted(recipients) == sorted(f"reader{n}@example.com" for n in range(40))


@pytest.mark.parametrize("language,subject", [("ru", "Syndicate: 2 новых релиза"), ("en", "Syndicate: 2 new releases")])
def test_subject_speaks_the_subscribers_language(session_factory, session, language, subject) -> None:
    now = future()
    org = organization(session)
    subscribe(session, "lang@example.com", now, frequency="immediate", language=language)
    publish(session, org, "Первый", at=now)
    publish(session, org, "Второй", at=now)
    mailer = MemoryMailer()
    runner(session_factory, mailer, Clock(now + timedelta(minutes=1))).run_pass()
    assert parse(mailer.sent[0].message)["Subject"].startswith(subject)


def test_cli_digests_send_now_and_status(runner, config, session) -> None:
    from pathlib import Path

    from feeds.db import utcnow
    from tests.mailtools import maildir_messages

    now = utcnow()
    org = organization(session)
    subscribe(session, "cli@example.com", now - timedelta(hours=1), hour=(now.hour + 12) % 24, timezone_name="UTC")
    publish(session, org, "Новость для командной строки", at=now)
    box = Path(config.mail_url.removeprefix("maildir://"))
    assert "0 mails sent" in runner("digests", "send").output  # not due for hours
    assert maildir_messages(box) == []
    assert "1 mails sent" in runner("digests", "send", "--now").output
    assert "0 mails sent" in runner("digests", "send", "--now").output  # the same period: not twice
    (message,) = maildir_messages(box)
    assert "Новость для командной строки" in bodies(message)[0]
    status = runner("digests", "status").output
    assert "subscriptions: active 1" in status and "1 sent" in status
