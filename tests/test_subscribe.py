"""Sign-up, confirmation, preferences and unsubscribe through the web app (Flask test client)."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from feeds.db import utcnow
from subscribers import tokens
from subscribers.models import ACTIVE, PENDING, UNSUBSCRIBED, Delivery, SignupAttempt, Subscriber, Subscription
from subscribers.ratelimits import RateLimits
from tests.mailtools import bodies, maildir_messages, organization

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FORM = {
    "email": "reporter@example.com",
    "keywords": "электробус",
    "frequency": "daily",
    "hour": "8",
    "timezone": "Europe/Moscow",
    "language": "ru",
}


def csrf(client, path: str = "/subscribe") -> str:
    page = client.get(path)
    assert page.status_code == 200
    match = CSRF.search(page.get_data(as_text=True))
    assert match
    return match.group(1)


def mails(config) -> list:
    return maildir_messages(Path(config.mail_url.removeprefix("maildir://")))


def counts(session) -> tuple[int, int, int]:
    session.rollback()
    return (
        session.scalar(select(func.count()).select_from(Subscriber)),
        session.scalar(select(func.count()).select_from(Subscription)),
        session.scalar(select(func.count()).select_from(Delivery)),
    )


def link(message, kind: str) -> str:
    text, _ = bodies(message)
    match = re.search(rf"http://127\.0\.0\.1:8000(/{kind}/\S+)", text)
    assert match, text
    return match.group(1)


def sign_up_json(client, **fields):
    return client.post("/subscribe", json={**FORM, **fields})


def test_form_sign_up_sends_one_confirmation(client, config, session) -> None:
    organization(session, "АИРР", slug="airr")
    page = client.get("/subscribe")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "АИРР" in html and 'name="timezone"' in html
    response = client.post("/subscribe", data={**FORM, "organizations": ["airr"], "csrf_token": csrf(client)})
    assert response.status_code == 200
    (message,) = mails(config)
    assert message["To"] == "reporter@example.com"
    assert message["Subject"] == "Подтвердите подписку на Syndicate"
    text, html = bodies(message)
    assert "АИРР" in text and "электробус" in text and "/subscriptions/confirm/" in html
    assert counts(session) == (1, 1, 1)


def test_form_without_csrf_token_is_refused(client, config, session) -> None:
    client.get("/subscribe")
    assert client.post("/subscribe", data=FORM).status_code == 403
    assert client.post("/subscribe", data={**FORM, "csrf_token": "forged"}).status_code == 403
    assert counts(session) == (0, 0, 0) and mails(config) == []


def test_json_sign_up_and_no_second_mail_until_confirmed(client, config, session) -> None:
    first = sign_up_json(client)
    assert first.status_code == 202 and first.json["status"] == "pending"
    again = sign_up_json(client, keywords="водород", email="Reporter@EXAMPLE.com")
    assert (again.status_code, again.json) == (202, first.json)
    assert len(mails(config)) == 1
    sub = session.scalar(select(Subscription))
    assert sub.keywords == "водород" and sub.status == PENDING  # the latest form wins


def test_the_answer_never_reveals_an_existing_address(client, app, config, session) -> None:
    new = client.post("/subscribe", data={**FORM, "email": "new@example.com", "csrf_token": csrf(client)})
    new_json = sign_up_json(client, email="new2@example.com")
    # make reporter@ an old, confirmed subscriber
    sign_up_json(client)
    confirm_path = link(mails(config)[-1], "subscriptions/confirm")
    client.post(confirm_path, data={"csrf_token": csrf(client, confirm_path)})
    assert session.scalar(select(Subscription.status).join(Subscriber).where(Subscriber.email == "reporter@example.com")) == ACTIVE
    old = client.post("/subscribe", data={**FORM, "csrf_token": csrf(client)})
    old_json = sign_up_json(client, keywords="другое")
    assert (old.status_code, old.get_data()) == (new.status_code, new.get_data())
    assert (old_json.status_code, old_json.get_data()) == (new_json.status_code, new_json.get_data())


@pytest.mark.parametrize(
    "field,value",
    [
        ("email", "not-an-address"),
        ("email", "a" * 250 + "@example.com"),
        ("email", "reporter@example.com\r\nBcc: victim@example.org"),
        ("email", "reporter@example.com\nBcc: victim@example.org"),
        ("keywords", "электробус\r\nBcc: victim@example.org"),
        ("timezone", "Europe/Moscow\r\nBcc: victim@example.org"),
        ("timezone", "../../etc/passwd"),
        ("frequency", "hourly"),
        ("hour", "24"),
        ("language", "de"),
        ("countries", ["XX"]),
        ("organizations", ["no-such-org"]),
        ("keywords", "x" * 301),
    ],
)
def test_bad_input_is_refused_and_nothing_is_written(client, config, session, field, value) -> None:
    response = sign_up_json(client, **{field: value})
    assert response.status_code == 422
    assert response.json["detail"]["field"] == field
    form = client.post("/subscribe", data={**FORM, field: value, "csrf_token": csrf(client)})
    assert form.status_code == 422 and "sub-error" in form.get_data(as_text=True)
    assert counts(session) == (0, 0, 0) and mails(config) == []
    assert session.scalar(select(func.count()).select_from(SignupAttempt)) == 0


def test_sign_ups_are_rate_limited_per_client_and_per_address(app, client, config, session) -> None:
    app.extensions["syndicate.signup_limits"] = RateLimits(per_client=4, per_address=2)
    assert sign_up_json(client, email="one@example.com").status_code == 202
    assert sign_up_json(client, email="one@example.com").status_code == 202
    refused = sign_up_json(client, email="one@example.com")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert sign_up_json(client, email="two@example.com").status_code == 202
    assert sign_up_json(client, email="three@example.com").status_code == 202
    assert sign_up_json(client, email="four@example.com").status_code == 429  # fifth from this client
    other_client = app.test_client()
    assert other_client.post("/subscribe", json={**FORM, "email": "five@example.com"},
                             environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 202
    emails = set(session.scalars(select(Subscriber.email)))
    assert emails == {"one@example.com", "two@example.com", "three@example.com", "five@example.com"}
    assert sorted(m["To"] for m in mails(config)) == sorted(emails)


def test_confirmation_page_confirms_only_on_post(client, config, session) -> None:
    sign_up_json(client)
    path = link(mails(config)[0], "subscriptions/confirm")
    page = client.get(path)  # what a link scanner does
    assert page.status_code == 200 and "reporter@example.com" in page.get_data(as_text=True)
    assert session.scalar(select(Subscription.status)) == PENDING
    assert client.post(path, data={}).status_code == 403
    session.rollback()
    assert session.scalar(select(Subscription.status)) == PENDING
    done = client.post(path, data={"csrf_token": csrf(client, path)})
    assert done.status_code == 200
    session.rollback()
    assert session.scalar(select(Subscription.status)) == ACTIVE
    preferences = re.search(r'href="(/subscriptions/[^"]+)"', done.get_data(as_text=True)).group(1)
    assert client.get(preferences).status_code == 200


def test_forged_and_expired_tokens_are_refused(client, config, session) -> None:
    sign_up_json(client)
    path = link(mails(config)[0], "subscriptions/confirm")
    token = path.rsplit("/", 1)[1]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    for bad in (forged, "nonsense", "x" * 500, token.split(".")[0]):
        assert client.get(f"/subscriptions/confirm/{bad}").status_code == 400
        assert client.get(f"/subscriptions/{bad}").status_code == 400
        assert client.post(f"/unsubscribe/{bad}", data={"List-Unsubscribe": "One-Click"}).status_code == 400
    key = session.scalar(select(Subscription.token_key))
    old = tokens.issue_token(config.secret_key, tokens.CONFIRM, key, utcnow() - timedelta(days=4))
    expired = client.get(f"/subscriptions/confirm/{old}")
    assert expired.status_code == 400 and "Срок действия ссылки истёк" in expired.get_data(as_text=True)
    # A token for another purpose does not open this door.
    unsub = tokens.issue_token(config.secret_key, tokens.UNSUBSCRIBE, key, utcnow())
    assert client.get(f"/subscriptions/{unsub}").status_code == 400
    assert session.scalar(select(Subscription.status)) == PENDING
    assert len(mails(config)) == 1


def _active(client, config) -> str:
    """Sign up and confirm; returns the subscription's token_key via the preferences link."""
    sign_up_json(client)
    path = link(mails(config)[-1], "subscriptions/confirm")
    client.post(path, data={"csrf_token": csrf(client, path)})
    return path


def test_preferences_page_changes_filters_and_schedule(client, config, session) -> None:
    organization(session, "Merlion", slug="merlion")
    _active(client, config)
    key = session.scalar(select(Subscription.token_key))
    path = "/subscriptions/" + tokens.issue_token(config.secret_key, tokens.MANAGE, key, utcnow())
    token = csrf(client, path)
    form = {**FORM, "organizations": ["merlion"], "frequency": "weekly", "weekday": "4", "hour": "19",
            "timezone": "Asia/Irkutsk", "language": "en", "csrf_token": token}
    assert client.post(path, data={k: v for k, v in form.items() if k != "csrf_token"}).status_code == 403
    saved = client.post(path, data=form)
    assert saved.status_code == 200 and "Preferences saved." in saved.get_data(as_text=True)
    session.rollback()
    sub = session.scalar(select(Subscription))
    assert (sub.organizations, sub.frequency, sub.weekday, sub.hour, sub.timezone, sub.language) == (
        ["merlion"], "weekly", 4, 19, "Asia/Irkutsk", "en")
    due = sub.next_due_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Irkutsk"))
    assert (due.weekday(), due.hour) == (4, 19)
    bad = client.post(path, data={**form, "timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    session.rollback()
    assert session.scalar(select(Subscription.timezone)) == "Asia/Irkutsk"
    gone = client.post(path, data={"action": "unsubscribe", "csrf_token": token})
    assert gone.status_code == 200
    session.rollback()
    assert session.scalar(select(Subscription.status)) == UNSUBSCRIBED
    back = client.post(path, data={"action": "resubscribe", "csrf_token": token})
    assert back.status_code == 200
    session.rollback()
    assert session.scalar(select(Subscription.status)) == ACTIVE


def test_unsubscribe_get_shows_a_button_and_one_click_post_works_without_cookies(app, client, config, session) -> None:
    _active(client, config)
    key = session.scalar(select(Subscription.token_key))
    path = "/unsubscribe/" + tokens.issue_token(config.secret_key, tokens.UNSUBSCRIBE, key, utcnow())
    page = client.get(path)
    assert page.status_code == 200 and "<form" in page.get_data(as_text=True)
    assert session.scalar(select(Subscription.status)) == ACTIVE
    assert client.post(path, data={}).status_code == 403  # the page's own form needs its CSRF token
    mail_provider = app.test_client(use_cookies=False)
    for _ in range(2):  # idempotent
        response = mail_provider.post(
            path, data={"List-Unsubscribe": "One-Click"}, content_type="application/x-www-form-urlencoded"
        )
        assert response.status_code == 200 and "Location" not in response.headers
        assert "Set-Cookie" not in response.headers
        session.rollback()
        assert session.scalar(select(Subscription.status)) == UNSUBSCRIBED
    multipart = mail_provider.post(path, data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data")
    assert multipart.status_code == 200


def test_unconfirmed_subscriptions_are_purged_and_a_late_sign_up_gets_a_new_link(app, client, config, session) -> None:
    from subscribers.mailer import MemoryMailer
    from subscribers.send import DigestRunner
    from syndicate.commands.digests import mail_settings

    sign_up_json(client)
    first_link = link(mails(config)[0], "subscriptions/confirm")
    factory = app.extensions["syndicate.session_factory"]
    settings = mail_settings(config)
    DigestRunner(factory, MemoryMailer(), settings, node="t").run_pass(now=utcnow() + timedelta(days=2))
    assert counts(session)[1] == 1  # the link still works: kept
    DigestRunner(factory, MemoryMailer(), settings, node="t").run_pass(now=utcnow() + timedelta(days=5))
    assert counts(session) == (0, 0, 0)
    assert client.get(first_link).status_code == 400
    sign_up_json(client)
    assert len(mails(config)) == 2 and link(mails(config)[1], "subscriptions/confirm") != first_link
