"""``syndicate partners``, ``syndicate poll`` and ``syndicate admin token`` on the real CLI."""

from __future__ import annotations

from typing import Callable

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from config import Config
from feeds.models import ApiToken, Release, Source
from feeds.organizations import authenticate, create_organization
from feedserver import FeedServer, Reply, feed_server  # noqa: F401

FEED = ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Пресс-центр АИРР</title>'
        '<item><title>Открыто производство электробусов</title><guid>e1</guid></item>'
        '<item><title>Подписано соглашение</title><guid>e2</guid></item></channel></rss>').encode()

Runner = Callable[..., Result]


@pytest.fixture
def orgs(session_factory: sessionmaker[Session]) -> None:
    with session_factory() as session:
        create_organization(session, "АИРР", country_code="RU", slug="airr")
        create_organization(session, "Nomad Press", slug="nomad")  # no country
        session.commit()


@pytest.fixture
def private_runner(config: Config) -> Runner:
    """The CLI with SYNDICATE_ALLOW_PRIVATE_FETCH=1, so feeds on the loopback test server are allowed."""
    from syndicate.cli import Context, cli

    allowed = config.replace(allow_private_fetch=True)

    def invoke(*args: str) -> Result:
        return CliRunner().invoke(cli, list(args), obj=Context(allowed), catch_exceptions=False)

    return invoke


def one_line_error(result: Result) -> str:
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


def sources(factory: sessionmaker[Session]) -> list[Source]:
    with factory() as session:
        return list(session.scalars(select(Source).order_by(Source.id)))


def test_add_list_remove(private_runner: Runner, orgs: None, feed_server: FeedServer,
                         session_factory: sessionmaker[Session]) -> None:
    url = feed_server.route("/rss", Reply(body=FEED))
    result = private_runner("partners", "add", url, "--organization", "airr", "--interval", "45")
    assert result.exit_code == 0, result.output
    assert "added source 1" in result.output
    [source] = sources(session_factory)
    assert (source.url, source.country_code, source.interval_minutes) == (url, "RU", 45)

    listing = private_runner("partners", "list")
    assert listing.exit_code == 0
    header, line = listing.output.splitlines()
    assert header.split()[:4] == ["ID", "URL", "ORGANIZATION", "STATE"]
    assert line.split()[:4] == ["1", url, "airr", "ok"] and "never" in line

    assert private_runner("partners", "remove", "1").exit_code == 0
    assert sources(session_factory) == []
    assert "no partner feeds" in private_runner("partners", "list").output


def test_country_defaults_to_the_organizations_and_can_be_given(
    private_runner: Runner, orgs: None, session_factory: sessionmaker[Session]
) -> None:
    assert private_runner("partners", "add", "https://nomad.example/rss", "--organization", "nomad",
                          "--country", "kz").exit_code == 0
    assert [s.country_code for s in sources(session_factory)] == ["KZ"]
    error = one_line_error(private_runner("partners", "add", "https://nomad.example/other", "--organization", "nomad"))
    assert "has no country" in error


@pytest.mark.parametrize(
    "args, message",
    [
        (["https://p.example/rss", "--organization", "nobody"], "no organization with slug 'nobody'"),
        (["ftp://p.example/rss", "--organization", "airr"], "only http and https"),
        (["not a url", "--organization", "airr"], "only http and https"),
        (["http://user:pw@p.example/rss", "--organization", "airr"], "credentials"),
        (["https://p.example/rss", "--organization", "airr", "--country", "XX"], "XX"),
        (["https://p.example/rss", "--organization", "airr", "--interval", "0"], "interval"),
        (["https://p.example/rss", "--organization", "airr", "--interval", "soon"], "whole number"),
        (["https://p.example/rss", "--organization", "airr", "--interval", "2"], "between 5 and"),
    ],
)
def test_add_refuses_bad_input_with_one_line(runner: Runner, orgs: None, args: list[str], message: str) -> None:
    assert message in one_line_error(runner("partners", "add", *args))


@pytest.mark.parametrize("host", ["127.0.0.1", "2130706433", "[::1]", "0x7f.1", "10.1.2.3", "169.254.169.254",
                                  "localhost"])
def test_add_refuses_private_addresses_unless_allowed(runner: Runner, private_runner: Runner, orgs: None,
                                                      host: str) -> None:
    error = one_line_error(runner("partners", "add", f"http://{host}/rss", "--organization", "airr"))
    assert "refusing to fetch" in error
    assert private_runner("partners", "add", f"http://{host}/rss", "--organization", "airr").exit_code == 0


def test_the_same_url_twice_is_refused(runner: Runner, orgs: None) -> None:
    assert runner("partners", "add", "https://p.example/rss", "--organization", "airr").exit_code == 0
    assert "already source 1" in one_line_error(runner("partners", "add", "https://p.example/rss",
                                                       "--organization", "airr"))


def test_remove_and_poll_of_unknown_ids_fail_with_one_line(runner: Runner, orgs: None) -> None:
    assert "source 42 not found" in one_line_error(runner("partners", "remove", "42"))
    assert "no source with ID 42" in one_line_error(runner("poll", "42"))
    assert "either --all or source IDs" in one_line_error(runner("poll", "--all", "1"))
    assert "whole number" in one_line_error(runner("partners", "remove", "first"))


def test_poll_prints_one_line_per_source_and_list_shows_the_outcome(
    private_runner: Runner, orgs: None, feed_server: FeedServer, session_factory: sessionmaker[Session]
) -> None:
    good = feed_server.route("/rss", Reply(body=FEED))
    bad = feed_server.route("/broken", Reply(503, headers={"Retry-After": "600"}))
    private_runner("partners", "add", good, "--organization", "airr")
    private_runner("partners", "add", bad, "--organization", "airr")

    result = private_runner("poll")
    assert result.exit_code == 0
    lines = sorted(result.output.splitlines())
    assert len(lines) == 2
    assert lines[0].startswith(f"#1 ok {good}: 2 new, 0 updated, 0 unchanged; next check ")
    assert lines[1].startswith(f"#2 error {bad}: HTTP 503 Service Unavailable; next check ")
    with session_factory() as session:
        titles = sorted(session.scalars(select(Release.title)))
    assert titles == ["Открыто производство электробусов", "Подписано соглашение"]

    assert private_runner("poll").output.strip() == "no source is due"
    again = private_runner("poll", "1")
    assert again.output.startswith(f"#1 ok {good}: 0 new, 0 updated, 2 unchanged")
    assert len(private_runner("poll", "--all").output.splitlines()) == 2

    listing = private_runner("partners", "list").output.splitlines()
    assert listing[1].split()[3] == "ok" and listing[1].split()[-1] == "2"
    assert "failing" in listing[2] and "HTTP 503 Service Unavailable" in listing[2]
    assert listing[2].split()[-1] == "0"


def test_admin_token_prints_an_administrator_token(runner: Runner, session_factory: sessionmaker[Session]) -> None:
    result = runner("admin", "token")
    assert result.exit_code == 0
    token = result.output.strip()
    assert token.startswith("syn_") and "\n" not in token
    with session_factory() as session:
        row = authenticate(session, token)
        assert isinstance(row, ApiToken) and row.organization_id is None
