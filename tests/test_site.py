"""The public site: pages, labels from the seed page, time zone, languages, 404s, view counting."""

from __future__ import annotations

import re
import threading
import urllib.request
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Iterator

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.serving import make_server

from config import Config
from feeds.models import Organization, Release
from feeds.organizations import create_organization
from feeds.store import create_release, withdraw_release
from feeds.types import ReleaseDraft
from syndicate.clock import CLOCK_KEY

UTC = timezone.utc
ROOT = Path(__file__).resolve().parent.parent
# The seed page: added 08:27, 05.09.2023 Moscow time = 05:27 UTC.
ADDED = datetime(2023, 9, 5, 5, 27, tzinfo=UTC)
LATER = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
TITLE = "В Приангарье в 2024 году откроется российско-китайское производство электробусов"


def page_text(html: str) -> str:
    """What a reader sees: tags dropped, spaces folded."""
    html = re.sub(r"(?s)<(script|style|head)\b.*?</\1>", " ", html)
    text = re.sub(r"<[^>]+>", "", html)
    return re.sub(r"\s+", " ", text).replace("( ", "(").replace(" )", ")")


class LinkCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            self.links.append(dict(attrs))


def alternates(html: str) -> dict[str, str]:
    """``{media type: href}`` of the page's ``<link rel="alternate">`` tags."""
    parser = LinkCollector()
    parser.feed(html)
    return {str(link["type"]): str(link["href"]) for link in parser.links if link.get("rel") == "alternate"}


def add_release(session: Session, org: Organization, title: str = TITLE, *, at: datetime = ADDED,
                country: str = "RU", now: datetime | None = None, **changes: Any) -> Release:
    values: dict[str, Any] = dict(
        title=title,
        lead="Развитие сотрудничества обсудили во время рабочей встречи.",
        body="<p>«Мы выходим на финальный этап согласования», – отметил Игорь Кобзев.</p><script>x()</script>",
        country_code=country,
        contact="PR-служба",
        published_at=at,
    )
    values.update(changes)
    return create_release(session, org, ReleaseDraft(**values), now=now or at)


@pytest.fixture
def airr(session: Session) -> Organization:
    org = create_organization(session, "АИРР", country_code="RU", now=ADDED)
    session.commit()
    return org


@pytest.fixture
def seeded(session: Session, airr: Organization) -> Release:
    release = add_release(session, airr)
    release.view_count = 203
    session.commit()
    return release


# -- the release page ----------------------------------------------------------------------


def test_release_page_shows_what_the_seed_page_shows(client: Any, seeded: Release) -> None:
    response = client.get(f"/releases/{seeded.id}-{seeded.slug}")
    assert response.status_code == 200
    assert response.content_type == "text/html; charset=utf-8"
    html = response.get_data(as_text=True)
    text = page_text(html)
    assert f"<h1>{TITLE}</h1>" in html
    assert "Развитие сотрудничества обсудили во время рабочей встречи." in text
    assert "«Мы выходим на финальный этап согласования», – отметил Игорь Кобзев." in text
    assert "<script>x()" not in html  # sanitized on the way in
    assert "Контактное лицо: PR-служба" in text
    assert "Компания: АИРР (все новости этой организации)" in text
    assert 'href="/organizations/airr">все новости этой организации</a>' in html
    assert "Добавлен: 08:27, 05.09.2023" in text
    assert "Количество просмотров: 204" in text  # this view counted
    assert "Страна: Россия" in text
    assert '<html lang="ru">' in html


def test_contact_emails_are_links(client: Any, session: Session, airr: Organization) -> None:
    release = add_release(session, airr, contact="Мария Ковалёва & пресс-служба, press@airr.example.com")
    session.commit()
    html = client.get(f"/releases/{release.id}-{release.slug}").get_data(as_text=True)
    assert ('Мария Ковалёва &amp; пресс-служба, <a href="mailto:press@airr.example.com">press@airr.example.com</a>'
            in html)


def test_added_time_is_shown_in_the_configured_zone(session: Session, seeded: Release, config: Config) -> None:
    from syndicate import create_app

    app = create_app(config.replace(timezone="Asia/Irkutsk"))
    try:
        text = page_text(app.test_client().get(f"/releases/{seeded.id}-{seeded.slug}").get_data(as_text=True))
    finally:
        app.extensions["syndicate.session_factory"].kw["bind"].dispose()
    assert "Добавлен: 13:27, 05.09.2023" in text


def test_missing_or_wrong_slug_redirects_permanently(client: Any, seeded: Release) -> None:
    canonical = f"/releases/{seeded.id}-{seeded.slug}"
    assert seeded.slug.startswith("v-priangare-v-2024-godu")
    for path in (f"/releases/{seeded.id}", f"/releases/{seeded.id}-old-title"):
        response = client.get(path)
        assert response.status_code == 301
        assert response.headers["Location"] == canonical
    assert client.get(f"/releases/{seeded.id}?lang=en").headers["Location"] == canonical + "?lang=en"


def test_views_are_counted_once_per_page_view(client: Any, seeded: Release, session: Session) -> None:
    client.get(f"/releases/{seeded.id}")  # a redirect is not a view
    client.head(f"/releases/{seeded.id}-{seeded.slug}")  # nor is HEAD
    for _ in range(3):
        assert client.get(f"/releases/{seeded.id}-{seeded.slug}").status_code == 200
    session.rollback()  # a fresh transaction sees the requests' commits
    session.expire_all()
    assert session.get(Release, seeded.id).view_count == 206  # type: ignore[union-attr]


def test_embargoed_and_withdrawn_releases_are_not_found(
    app: Any, client: Any, session: Session, airr: Organization
) -> None:
    app.extensions[CLOCK_KEY] = lambda: LATER
    embargoed = add_release(session, airr, "Новость под эмбарго", at=LATER + timedelta(hours=1), now=LATER)
    withdrawn = add_release(session, airr, "Отозванная новость", at=LATER - timedelta(days=1))
    withdraw_release(session, withdrawn, now=LATER)
    session.commit()
    for release in (embargoed, withdrawn):
        response = client.get(f"/releases/{release.id}-{release.slug}")
        assert response.status_code == 404
        assert "Страница не найдена" in response.get_data(as_text=True)
    home = page_text(client.get("/").get_data(as_text=True))
    assert "Новость под эмбарго" not in home and "Отозванная новость" not in home
    session.rollback()  # a fresh transaction sees the requests' commits
    session.expire_all()
    assert session.get(Release, embargoed.id).view_count == 0  # type: ignore[union-attr]


def test_embargo_lifts_without_a_restart(app: Any, client: Any, session: Session, airr: Organization) -> None:
    clock = {"now": LATER}
    app.extensions[CLOCK_KEY] = lambda: clock["now"]
    release = add_release(session, airr, "Новость под эмбарго", at=LATER + timedelta(hours=1), now=LATER)
    session.commit()
    path = f"/releases/{release.id}-{release.slug}"
    assert client.get(path).status_code == 404
    assert "Новость под эмбарго" not in client.get("/organizations/airr").get_data(as_text=True)
    clock["now"] = LATER + timedelta(hours=1)
    assert client.get(path).status_code == 200
    assert "Новость под эмбарго" in client.get("/").get_data(as_text=True)
    assert "Новость под эмбарго" in client.get("/organizations/airr").get_data(as_text=True)
    assert "Новость под эмбарго" in client.get("/countries/ru").get_data(as_text=True)


# -- listings --------------------------------------------------------------------------------


def test_home_lists_newest_first_and_pages(client: Any, session: Session, airr: Organization) -> None:
    for i in range(25):
        add_release(session, airr, f"Пресс-релиз номер {i:02d}", at=ADDED + timedelta(hours=i))
    session.commit()
    first = client.get("/").get_data(as_text=True)
    assert first.index("Пресс-релиз номер 24") < first.index("Пресс-релиз номер 05")
    assert "Пресс-релиз номер 04" not in first
    assert 'rel="next" href="/?page=2"' in first
    second = client.get("/?page=2").get_data(as_text=True)
    assert "Пресс-релиз номер 04" in second and "Пресс-релиз номер 00" in second
    assert 'rel="prev" href="/"' in second
    assert "Пресс-релиз номер 24" not in second
    for bad in ("/?page=3", "/?page=0", "/?page=abc"):
        assert client.get(bad).status_code == 404


def test_home_item_shows_organization_time_country_and_views(client: Any, seeded: Release) -> None:
    text = page_text(client.get("/").get_data(as_text=True))
    assert f"{TITLE} АИРР, 08:27, 05.09.2023, Россия 203 просмотра" in text


def test_empty_site_says_so(client: Any) -> None:
    text = page_text(client.get("/").get_data(as_text=True))
    assert "Пресс-релизов пока нет" in text


def test_organizations_index_and_page(client: Any, session: Session, seeded: Release) -> None:
    other = create_organization(session, "Рога и копыта", country_code="KZ")
    add_release(session, other, "Новость другой организации", country="KZ")
    session.commit()
    index = page_text(client.get("/organizations/").get_data(as_text=True))
    assert "АИРР Россия 1 пресс-релиз" in index
    assert "Рога и копыта Казахстан 1 пресс-релиз" in index
    page = client.get("/organizations/airr").get_data(as_text=True)
    assert "<h1>АИРР</h1>" in page and TITLE in page
    assert "Новость другой организации" not in page
    missing = client.get("/organizations/nobody")
    assert missing.status_code == 404 and "Страница не найдена" in missing.get_data(as_text=True)


def test_countries_index_and_page(client: Any, session: Session, seeded: Release, airr: Organization) -> None:
    add_release(session, airr, "Новость из Казахстана", country="KZ")
    add_release(session, airr, "Ещё новость из Казахстана", country="KZ")
    session.commit()
    index = page_text(client.get("/countries/").get_data(as_text=True))
    assert "Казахстан KZ 2 пресс-релиза" in index and "Россия RU 1 пресс-релиз" in index
    page = client.get("/countries/kz").get_data(as_text=True)
    assert "<h1>Казахстан</h1>" in page and "Новость из Казахстана" in page and TITLE not in page
    upper = client.get("/countries/KZ?page=1")
    assert upper.status_code == 301 and upper.headers["Location"] == "/countries/kz?page=1"
    assert client.get("/countries/fr").status_code == 200  # a real country without releases yet
    for unknown in ("/countries/zz", "/countries/xyz", "/countries/r1"):
        response = client.get(unknown)
        assert response.status_code == 404 and "Страница не найдена" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "path, kind",
    [("/", "/feeds/all"), ("/organizations/airr", "/feeds/organizations/airr"), ("/countries/ru", "/feeds/countries/ru")],
)
def test_listing_pages_carry_autodiscovery_tags(client: Any, seeded: Release, path: str, kind: str) -> None:
    links = alternates(client.get(path).get_data(as_text=True))
    assert links == {
        "application/rss+xml": f"{kind}.rss",
        "application/atom+xml": f"{kind}.atom",
        "application/feed+json": f"{kind}.json",
    }
    for href in links.values():  # and the feeds they advertise exist
        assert client.get(href).status_code == 200, href


# -- languages -------------------------------------------------------------------------------


def test_english_by_query_then_by_cookie(client: Any, seeded: Release) -> None:
    path = f"/releases/{seeded.id}-{seeded.slug}"
    response = client.get(path + "?lang=en")
    text = page_text(response.get_data(as_text=True))
    assert "Company: АИРР (all news of this organization)" in text
    assert "Added: 08:27, 5 Sep 2023" in text and "Country: Russia" in text
    assert "lang=en" in response.headers["Set-Cookie"]
    assert "Accept-Language" in response.headers["Vary"]
    again = page_text(client.get(path).get_data(as_text=True))  # remembered in the cookie
    assert "Number of views:" in again
    back = page_text(client.get(path + "?lang=ru").get_data(as_text=True))
    assert "Количество просмотров:" in back


def test_english_by_accept_language(client: Any, seeded: Release) -> None:
    html = client.get("/organizations/", headers={"Accept-Language": "en-GB,en;q=0.9"}).get_data(as_text=True)
    assert '<html lang="en">' in html and "1 release" in page_text(html)
    html = client.get("/organizations/", headers={"Accept-Language": "de-DE,ru;q=0.5"}).get_data(as_text=True)
    assert '<html lang="ru">' in html


def test_language_switch_keeps_the_page(client: Any, seeded: Release) -> None:
    html = client.get("/countries/ru?page=1").get_data(as_text=True)
    assert 'href="/countries/ru?page=1&amp;lang=en"' in html


def test_layout_navigation(client: Any) -> None:
    html = client.get("/").get_data(as_text=True)
    for href in ('href="/"', 'href="/organizations/"', 'href="/countries/"', 'href="/feeds/"', 'href="/subscribe"'):
        assert href in html
    assert '<form class="search-form" action="/search" method="get"' in html
    assert 'name="q"' in html
    text = page_text(html)
    for label in ("Главная", "Организации", "Страны", "Поиск", "Ленты", "Подписка"):
        assert label in text
    assert client.get("/static/style.css").status_code == 200


def test_catalog_is_compiled_and_complete() -> None:
    """The committed .mo says what the .po says, and every interface text has a Russian translation."""
    translations = ROOT / "syndicate" / "translations" / "ru" / "LC_MESSAGES"
    with open(translations / "messages.po", "rb") as fh:
        po = read_po(fh, locale="ru")
    with open(translations / "messages.mo", "rb") as fh:
        mo = read_mo(fh)

    def entries(catalog: Any) -> dict[Any, Any]:
        plain = (lambda v: tuple(v) if isinstance(v, (list, tuple)) else v)  # noqa: E731
        return {plain(m.id): plain(m.string) for m in catalog if m.id}

    assert entries(po) == entries(mo)
    mine = {"base.html", "error.html", "home.html", "release.html", "organizations.html", "organization.html",
            "countries.html", "country.html", "_release_list.html", "_pagination.html", "_feed_buttons.html"}
    method_map = [("**.html", "jinja2")]
    found = {
        (msgid if isinstance(msgid, str) else msgid[0])
        for filename, _line, msgid, _comments, _context in extract_from_dir(str(ROOT / "templates"), method_map)
        if Path(filename).name in mine
    }
    assert len(found) > 30
    untranslated = sorted(m for m in found if m not in po or not po[m].string)
    assert untranslated == []


# -- errors ----------------------------------------------------------------------------------


def test_friendly_error_pages(app: Any, client: Any) -> None:
    def boom() -> str:
        raise RuntimeError("kaboom")

    app.add_url_rule("/boom-for-test", "boom_for_test", boom)
    response = client.get("/boom-for-test")
    assert response.status_code == 500
    html = response.get_data(as_text=True)
    assert "Что-то пошло не так" in html and "kaboom" not in html and "Traceback" not in html
    missing = client.get("/no/such/page?lang=en")
    assert missing.status_code == 404 and "Page not found" in missing.get_data(as_text=True)


# -- concurrency over the wire -----------------------------------------------------------------


@pytest.fixture
def live_server(app: Any) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def test_concurrent_page_views_lose_no_increment(
    live_server: str, seeded: Release, session_factory: sessionmaker[Session]
) -> None:
    url = f"{live_server}/releases/{seeded.id}-{seeded.slug}"
    threads, per_thread = 8, 15
    errors: list[BaseException] = []
    statuses: list[int] = []
    start = threading.Barrier(threads)

    def reader() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with urllib.request.urlopen(url, timeout=30) as response:
                    response.read()
                    statuses.append(response.status)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=reader) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors[:3]
    assert statuses == [200] * threads * per_thread
    with session_factory() as s:
        assert s.scalar(select(Release.view_count).where(Release.id == seeded.id)) == 203 + threads * per_thread
