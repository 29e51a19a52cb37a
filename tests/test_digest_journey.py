"""The whole journey over the wire: sign up → confirm → publish via the API → digest → one-click unsubscribe."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import select, update

from feeds.db import utcnow
from feeds.organizations import issue_token
from subscribers.models import UNSUBSCRIBED, Subscription
from syndicate import create_app
from syndicate.cli import Context, cli
from tests.mailtools import SmtpServer, bodies, organization

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(client, path: str) -> str:
    return CSRF.search(client.get(path).get_data(as_text=True)).group(1)


def test_subscribe_confirm_publish_digest_unsubscribe(config, session) -> None:
    org = organization(session, "АИРР", slug="airr")
    token = issue_token(session, org)
    session.commit()
    with SmtpServer() as server:
        smtp_config = config.replace(mail_url=server.url)
        app = create_app(smtp_config)
        browser = app.test_client()

        def digests_send() -> str:
            result = CliRunner().invoke(cli, ["digests", "send"], obj=Context(smtp_config), catch_exceptions=False)
            assert result.exit_code == 0, result.output
            return result.output

        # 1. sign up with the HTML form
        signed = browser.post("/subscribe", data={
            "email": "Reporter@Example.com", "keywords": "электробус", "frequency": "immediate",
            "timezone": "Asia/Irkutsk", "language": "ru", "csrf_token": _csrf(browser, "/subscribe"),
        })
        assert signed.status_code == 200
        (confirmation,) = server.handler.received
        assert confirmation.recipients == ["reporter@example.com"]
        text, _ = bodies(confirmation.message)
        confirm_path = urlsplit(re.search(r"http://\S+/subscriptions/confirm/\S+", text).group(0)).path

        # 2. a link scanner fetches the link: nothing happens; the reader presses the button
        assert browser.get(confirm_path).status_code == 200
        digests_send()
        assert len(server.handler.received) == 1
        assert browser.post(confirm_path, data={"csrf_token": _csrf(browser, confirm_path)}).status_code == 200

        # 3. the organization publishes through the API
        headers = {"Authorization": f"Bearer {token}"}
        for title in ("В Приангарье откроется производство электробусов", "Урожай пшеницы"):
            created = browser.post("/api/releases", headers=headers, json={
                "title": title, "lead": "Губернатор Иркутской области встретился с делегацией.",
                "body": "<p>Текст.</p>", "country": "RU"})
            assert created.status_code == 201, created.get_data(as_text=True)

        # 4. the digest arrives, in Russian, with the matching release only
        digests_send()
        assert len(server.handler.received) == 2
        digest = server.handler.received[1].message
        assert digest["Subject"].startswith("Syndicate: 1 новый релиз — ")
        text, html = bodies(digest)
        assert "производство электробусов" in text and "Урожай" not in text
        assert "производство электробусов" in html and "Asia/Irkutsk" in text
        unsubscribe = digest["List-Unsubscribe"].strip("<>")
        assert digest["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert unsubscribe in text and unsubscribe in html

        # 5. the mail provider's one-click unsubscribe: no cookies, 200, no redirect
        provider = app.test_client(use_cookies=False)
        response = provider.post(urlsplit(unsubscribe).path, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200 and "Location" not in response.headers

        # 6. more news: no more mail (the five-minute batching gap is wound back so
        #    that only the unsubscription can keep this mail from going out)
        session.execute(update(Subscription).values(next_due_at=utcnow() - timedelta(minutes=1)))
        session.commit()
        assert session.scalar(select(Subscription.status)) == UNSUBSCRIBED
        created = browser.post("/api/releases", headers=headers, json={
            "title": "Новые электробусы вышли на линию", "lead": "Электробусы.", "body": "<p>Текст.</p>",
            "country": "RU"})
        assert created.status_code == 201
        digests_send()
        assert len(server.handler.received) == 2
        app.extensions["syndicate.session_factory"].kw["bind"].dispose()
