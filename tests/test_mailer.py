"""Mail on the wire: a real SMTP server (aiosmtpd) on loopback, failures, TLS, auth, Maildir."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import trustme
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from subscribers.errors import ConnectionFailure, PermanentFailure, TemporaryFailure
from subscribers.mailer import MaildirMailer, SMTPMailer, mailer_from_url
from subscribers.models import FAILED, PENDING, SENT, SUSPENDED, Delivery, Subscription
from subscribers.send import HARD_FAILURE_LIMIT, DigestRunner
from tests.mailtools import (
    SETTINGS, Clock, Handler, SmtpServer, bodies, free_port, future, organization, parse, publish, subscribe,
)


def runner(factory, mailer, clock):
    return DigestRunner(factory, mailer, SETTINGS, node="smtp-test", clock=clock)


def immediate_readers(session, now, *addresses: str) -> None:
    for address in addresses:
        subscribe(session, address, now, frequency="immediate", language="ru")


def test_batch_goes_over_one_connection_and_cyrillic_survives(session_factory, session) -> None:
    now = future()
    org = organization(session, "Иркутская область")
    readers = [f"r{n}@example.com" for n in range(5)]
    immediate_readers(session, now, *readers)
    publish(session, org, "Производство электробусов в Усолье-Сибирском", at=now)
    with SmtpServer() as server:
        mailer = mailer_from_url(server.url)
        report = runner(session_factory, mailer, Clock(now + timedelta(minutes=1))).run_pass()
    assert report.sent == 5 and server.handler.connections == 1
    assert sorted(r for m in server.handler.received for r in m.recipients) == readers
    message = server.handler.received[0].message
    assert server.handler.received[0].sender == "digest@example.org"
    assert message["Subject"].startswith("Syndicate: 1 новый релиз")
    text, html = bodies(message)
    assert "Производство электробусов в Усолье-Сибирском" in text and "Иркутская область" in html


def test_451_for_some_recipients_is_retried_later_and_delivered_once(session_factory, session) -> None:
    now = future()
    org = organization(session)
    immediate_readers(session, now, "ok@example.com", "greylisted@example.com")
    publish(session, org, "Новость", at=now)
    handler = Handler(rcpt_replies={"greylisted@example.com": ["451 4.7.1 Greylisted, try again later"]})
    clock = Clock(now + timedelta(minutes=1))
    with SmtpServer(handler) as server:
        run = runner(session_factory, mailer_from_url(server.url), clock)
        first = run.run_pass()
        assert (first.sent, first.retried) == (1, 1)
        row = session.scalar(select(Delivery).where(Delivery.recipient == "greylisted@example.com"))
        assert (row.status, row.attempts) == (PENDING, 1) and row.last_error.startswith("451")
        assert row.next_attempt_at > clock.now
        assert run.run_pass().sent == 0  # not before its time
        clock.now = row.next_attempt_at
        assert run.run_pass().sent == 1
        clock.advance(hours=1)
        assert run.run_pass().sent == 0
    assert [len(handler.to(a)) for a in ("ok@example.com", "greylisted@example.com")] == [1, 1]


def test_connection_dropped_after_data_is_retried_and_the_rest_of_the_batch_goes_on(session_factory, session) -> None:
    now = future()
    org = organization(session)
    immediate_readers(session, now, "a@example.com", "dropped@example.com", "c@example.com")
    publish(session, org, "Новость", at=now)
    handler = Handler(drop_after_data={"dropped@example.com"})
    clock = Clock(now + timedelta(minutes=1))
    with SmtpServer(handler) as server:
        run = runner(session_factory, mailer_from_url(server.url), clock)
        first = run.run_pass()
        assert (first.sent, first.retried) == (2, 1)
        assert handler.connections == 2  # reconnected for the message after the drop
        clock.advance(minutes=5)
        assert run.run_pass().sent == 1
    assert sorted(r for m in handler.received for r in m.recipients) == [
        "a@example.com", "c@example.com", "dropped@example.com"]
    session.rollback()
    assert set(session.scalars(select(Delivery.status))) == {SENT}


def test_server_down_then_up(session_factory, session) -> None:
    now = future()
    org = organization(session)
    immediate_readers(session, now, "a@example.com", "b@example.com")
    publish(session, org, "Новость", at=now)
    port = free_port()
    clock = Clock(now + timedelta(minutes=1))
    down = runner(session_factory, mailer_from_url(f"smtp://127.0.0.1:{port}?timeout=5"), clock).run_pass()
    assert down.sent == 0 and down.error and "cannot reach" in down.error
    rows = list(session.scalars(select(Delivery)))
    assert all(r.status == PENDING and r.next_attempt_at > clock.now and r.lease_owner is None for r in rows)
    clock.advance(minutes=2)
    with SmtpServer() as server:
        up = runner(session_factory, mailer_from_url(server.url), clock).run_pass()
    assert up.sent == 2 and len(server.handler.received) == 2


def test_permanent_failures_are_recorded_and_repeated_ones_suspend(session_factory, session) -> None:
    now = future()
    org = organization(session)
    immediate_readers(session, now, "gone@example.com", "fine@example.com")
    handler = Handler(rcpt_replies={"gone@example.com": ["550 5.1.1 No such user"] * 10})
    clock = Clock(now)
    with SmtpServer(handler) as server:
        run = runner(session_factory, mailer_from_url(server.url), clock)
        for n in range(HARD_FAILURE_LIMIT + 1):
            publish(session, org, f"Новость {n}", at=clock.advance(minutes=10))
            run.run_pass()
    session.rollback()
    failed = list(session.scalars(select(Delivery).where(Delivery.recipient == "gone@example.com")))
    assert len(failed) == HARD_FAILURE_LIMIT  # after the third, no more digests were even planned
    assert all(r.status == FAILED and r.last_error.startswith("550 5.1.1") for r in failed)
    gone = session.scalar(select(Subscription).join(Subscription.subscriber).where(Subscription.hard_failures > 0))
    assert gone.status == SUSPENDED and gone.hard_failures == HARD_FAILURE_LIMIT
    assert len(handler.to("fine@example.com")) == HARD_FAILURE_LIMIT + 1


def test_smtp_mailer_raises_by_kind() -> None:
    handler = Handler(rcpt_replies={"t@example.com": ["452 4.2.2 Mailbox full"], "p@example.com": ["554 5.7.1 Rejected"]})
    with SmtpServer(handler) as server:
        mailer = SMTPMailer("127.0.0.1", server.port, timeout=5)
        with pytest.raises(TemporaryFailure) as temporary:
            mailer.send("s@example.org", "t@example.com", b"Subject: x\r\n\r\nbody\r\n")
        assert temporary.value.code == 452
        with pytest.raises(PermanentFailure) as permanent:
            mailer.send("s@example.org", "p@example.com", b"Subject: x\r\n\r\nbody\r\n")
        assert permanent.value.code == 554
        mailer.send("s@example.org", "ok@example.com", b"Subject: x\r\n\r\nbody\r\n")
        mailer.close()
    assert handler.connections == 1 and len(handler.received) == 1
    with pytest.raises(ConnectionFailure):
        SMTPMailer("127.0.0.1", free_port(), timeout=5).send("s@example.org", "a@example.com", b"x\r\n")


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _server_context(ca: trustme.CA):
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def _authenticator(server, session, envelope, mechanism, auth_data):
    return AuthResult(success=auth_data.login == b"digest" and auth_data.password == b"p@ss:w/rd")


def test_starttls_and_auth_from_the_url(ca) -> None:
    from tests.mailtools import trust_context

    handler = Handler()
    with SmtpServer(
        handler, tls_context=_server_context(ca), require_starttls=True,
        authenticator=_authenticator, auth_require_tls=True,
    ) as server:
        mailer = mailer_from_url(f"smtp://digest:p%40ss%3Aw%2Frd@127.0.0.1:{server.port}?starttls=1&timeout=5")
        assert isinstance(mailer, SMTPMailer) and mailer.tls == "starttls" and mailer.password == "p@ss:w/rd"
        mailer.ssl_context = trust_context(ca)
        mailer.send("s@example.org", "a@example.com", b"Subject: tls\r\n\r\nbody\r\n")
        mailer.close()
        wrong = mailer_from_url(f"smtp://digest:nope@127.0.0.1:{server.port}?starttls=1&timeout=5")
        assert isinstance(wrong, SMTPMailer)
        wrong.ssl_context = trust_context(ca)
        with pytest.raises(ConnectionFailure):
            wrong.send("s@example.org", "a@example.com", b"Subject: tls\r\n\r\nbody\r\n")
    assert len(handler.received) == 1


def test_smtps_implicit_tls(ca) -> None:
    from tests.mailtools import trust_context

    handler = Handler()
    with SmtpServer(handler, ssl_context=_server_context(ca)) as server:
        mailer = mailer_from_url(f"smtps://127.0.0.1:{server.port}?timeout=5")
        assert isinstance(mailer, SMTPMailer) and mailer.tls == "ssl"
        mailer.ssl_context = trust_context(ca)
        mailer.send("s@example.org", "a@example.com", b"Subject: smtps\r\n\r\nbody\r\n")
        mailer.close()
    assert len(handler.received) == 1


def test_mail_url_forms(tmp_path: Path) -> None:
    plain = mailer_from_url("smtp://mail.example.org")
    assert isinstance(plain, SMTPMailer) and (plain.port, plain.tls, plain.username) == (25, None, None)
    assert isinstance(mailer_from_url("smtps://u:p@mail.example.org"), SMTPMailer)
    assert mailer_from_url("smtps://u:p@mail.example.org").port == 465  # type: ignore[union-attr]
    assert mailer_from_url("smtp://mail.example.org?starttls=1").port == 587  # type: ignore[union-attr]
    box = mailer_from_url(f"maildir://{tmp_path}/box")
    assert isinstance(box, MaildirMailer) and box.path == tmp_path / "box"
    with pytest.raises(ValueError):
        mailer_from_url("http://example.org")


def test_maildir_writes_each_message_into_new(tmp_path: Path) -> None:
    (tmp_path / "box").mkdir()  # an existing, empty directory is completed into a Maildir
    mailer = MaildirMailer(tmp_path / "box")
    for n in range(3):
        mailer.send("s@example.org", f"r{n}@example.com", f"Subject: {n}\r\n\r\nТело\r\n".encode())
    files = sorted((tmp_path / "box" / "new").iterdir())
    assert len({f.name for f in files}) == 3
    assert list((tmp_path / "box" / "tmp").iterdir()) == []
    data = files[0].read_bytes()
    assert b"\r\n" not in data and data.startswith(b"Return-Path: <s@example.org>\n")
    assert parse(data)["Delivered-To"].startswith("r")
