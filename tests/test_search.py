"""Full-text search: Russian word forms, the same results on SQLite and PostgreSQL, hostile queries."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from feeds.demo import load_demo
from feeds.models import Release
from feeds.organizations import create_organization
from feeds.search import fts5_query, matches, query_stems, search_document, search_releases, stems
from feeds.store import create_release, list_releases, update_release
from feeds.types import Page, ReleaseDraft, ReleaseFilter

UTC = timezone.utc
T0 = datetime(2025, 3, 26, 9, 0, tzinfo=UTC)
HOSTILE = ['"', '""', '"электробус', "электро*", "*", "AND", "a AND b", "OR", "NOT x", "NEAR(a b, 3)",
           "-электробус", "title:x", "search_text:x", "(((", ")", "^x", "a + b", "'; DROP TABLE releases; --",
           "\\", "%", "_", "a%b_c", "ё", "\x00", "‹›«»"]


def test_russian_word_forms_share_a_stem() -> None:
    assert stems("электробус") == stems("электробусов") == stems("Электробусы") == stems("электробусами")
    assert stems("Ёлка ёлки") == stems("елка елки")
    assert stems("companies") == stems("company")
    assert query_stems('"электробусов" AND электробус NEAR(x)') == [stems("электробус")[0], "and", "near", "x"]


def test_search_document_format_is_space_padded_stems() -> None:
    doc = search_document("Производство электробусов", "в Приангарье")
    assert doc.startswith(" ") and doc.endswith(" ")
    assert doc.split() == stems("Производство электробусов в Приангарье")
    assert matches(doc, "электробус") and matches(doc, "ПРОИЗВОДСТВА электробусы")
    assert not matches(doc, "автобус") and not matches(doc, "***")


def test_fts5_query_quotes_every_word() -> None:
    assert fts5_query(["and", "near", "электробус"]) == '"and" "near" "электробус"'


def _org(session: Session, slug: str = "airr") -> Any:
    return create_organization(session, slug.upper(), slug=slug, country_code="RU", now=T0 - timedelta(days=1))


def _release(session: Session, org: Any, title: str, body: str = "<p>Текст</p>", lead: str = "Лид",
             hours: int = 0) -> Release:
    at = T0 - timedelta(hours=hours)
    return create_release(session, org, ReleaseDraft(title=title, lead=lead, body=body, country_code="RU",
                                                     published_at=at), now=at)


def _titles(session: Session, q: str, **flt: Any) -> list[str]:
    result = search_releases(session, ReleaseFilter(q=q, **flt), Page(1, 50), now=T0)
    return [r.title for r in result.items]


def test_search_finds_word_forms_in_title_lead_and_body(session: Session) -> None:
    org = _org(session)
    _release(session, org, "В Приангарье откроется производство электробусов", hours=3)
    _release(session, org, "Новости", lead="Про электробус в лиде", hours=2)
    _release(session, org, "Ещё новости", body="<p>В тексте: <b>электробусами</b> займутся</p>", hours=1)
    _release(session, org, "Автобусы", body="<p>Ничего про это</p>")
    session.commit()
    found = _titles(session, "электробус")
    assert sorted(found) == sorted(["В Приангарье откроется производство электробусов", "Новости", "Ещё новости"])
    assert sorted(_titles(session, "Электробусов")) == sorted(found)
    assert _titles(session, "электробус Приангарье") == ["В Приангарье откроется производство электробусов"]
    assert _titles(session, "троллейбус") == []
    # The listing filter (feeds, API) agrees with the ranked search.
    listed = list_releases(session, ReleaseFilter(q="электробусы"), Page(1, 50), now=T0)
    assert sorted(r.title for r in listed.items) == sorted(found)


def test_results_are_ranked_and_ties_go_newest_first(session: Session) -> None:
    org = _org(session)
    _release(session, org, "Однажды", body="<p>электробус и много других слов " + "слово " * 60 + "</p>", hours=5)
    _release(session, org, "Электробус электробус", body="<p>электробус электробусы электробусов</p>", hours=4)
    _release(session, org, "Близнец старый", body="<p>электробус</p>", hours=3)
    _release(session, org, "Близнец новый", body="<p>электробус</p>", hours=2)
    session.commit()
    ranked = _titles(session, "электробус")
    assert ranked[0] == "Электробус электробус"
    assert ranked.index("Близнец новый") + 1 == ranked.index("Близнец старый")
    assert ranked[-1] == "Однажды"


def test_paging_and_filters_of_search(session: Session) -> None:
    org = _org(session)
    other = _org(session, "bit")
    for n in range(5):
        _release(session, org, f"Электробус {n}", hours=n)
    _release(session, other, "Электробус чужой", hours=10)
    session.commit()
    first = search_releases(session, ReleaseFilter(q="электробус", organizations=("airr",)), Page(1, 3), now=T0)
    second = search_releases(session, ReleaseFilter(q="электробус", organizations=("airr",)), Page(2, 3), now=T0)
    assert first.has_next and not second.has_next
    assert len(first.items) == 3 and len(second.items) == 2
    assert not {r.id for r in first.items} & {r.id for r in second.items}
    assert _titles(session, "электробус", organizations=("bit",)) == ["Электробус чужой"]


def test_invisible_releases_are_not_found(session: Session) -> None:
    org = _org(session)
    create_release(session, org, ReleaseDraft(title="Электробус под эмбарго", lead="", body="", country_code="RU",
                                              published_at=T0 + timedelta(hours=1)), now=T0)
    session.commit()
    assert _titles(session, "электробус") == []
    later = search_releases(session, ReleaseFilter(q="электробус"), Page(1, 5), now=T0 + timedelta(hours=1))
    assert [r.title for r in later.items] == ["Электробус под эмбарго"]


def test_the_index_follows_corrections_and_deletions(session: Session, backend: str) -> None:
    org = _org(session)
    release = _release(session, org, "Электробусы", body="<p>первая версия</p>")
    session.commit()
    assert _titles(session, "первая") == ["Электробусы"]
    update_release(session, release, ReleaseDraft(title="Трамваи", lead="Лид", body="<p>вторая версия</p>",
                                                  country_code="RU", published_at=release.published_at), now=T0)
    session.commit()
    assert _titles(session, "первая") == [] and _titles(session, "электробус") == []
    assert _titles(session, "вторая") == ["Трамваи"] and _titles(session, "трамвай") == ["Трамваи"]
    session.delete(release)
    session.commit()
    assert _titles(session, "вторая") == []
    if backend == "sqlite":  # the FTS5 table holds nothing stale either
        assert session.scalar(text("SELECT count(*) FROM releases_fts WHERE releases_fts MATCH '\"вторая\"'")) == 0


@pytest.mark.parametrize("q", HOSTILE)
def test_hostile_queries_are_words_never_errors(session: Session, q: str) -> None:
    org = _org(session)
    _release(session, org, "Электробус AND NEAR title", body="<p>a b x</p>")
    session.commit()
    found = _titles(session, q)
    listed = list_releases(session, ReleaseFilter(q=q), Page(1, 10), now=T0)
    expected = ["Электробус AND NEAR title"] if matches(search_document("Электробус AND NEAR title", "Лид", "a b x"), q) else []
    assert found == expected
    if query_stems(q):
        assert [r.title for r in listed.items] == expected


def test_demo_data_search_equals_the_python_matcher(session: Session) -> None:
    """On each database the SQL result set equals the pure-Python rule, so both databases agree."""
    load_demo(session, now=datetime.now(UTC))
    session.commit()
    now = datetime.now(UTC)
    rows = session.execute(select(Release.id, Release.search_text).where(
        Release.withdrawn_at.is_(None), Release.published_at <= now)).all()
    assert len(rows) >= 10
    # Words that occur in the demo data, in several forms, plus some that do not.
    queries = ["электробус", "электробусов", "сотрудничество", "сотрудничества договор", "россия", "компания",
               "производства", "the", "company", "2024", "АИРР", "несуществующееслово", '"россия" AND (компания)']
    for q in queries:
        expected = sorted(rid for rid, doc in rows if matches(doc, q))
        result = search_releases(session, ReleaseFilter(q=q), Page(1, 10_000), now=now)
        assert sorted(r.id for r in result.items) == expected, q
    assert any(matches(doc, "сотрудничество") for _, doc in rows), "the demo data should exercise the matcher"


def test_search_page(client: Any, session_factory: Any) -> None:
    with session_factory() as s:
        org = _org(s)
        for n in range(25):
            _release(s, org, f"Электробусы выпуск {n}", hours=n)
        _release(s, org, "Про другое")
        s.commit()
    page = client.get("/search", query_string={"q": "электробусов"})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert html.count('class="release-item"') == 20
    assert 'rel="alternate" type="application/rss+xml"' in html
    assert "/feeds/releases.rss?q=%D1%8D%D0%BB%D0%B5%D0%BA%D1%82%D1%80%D0%BE%D0%B1%D1%83%D1%81%D0%BE%D0%B2" in html
    assert "Про другое" not in html
    second = client.get("/search", query_string={"q": "электробусов", "page": 2}).get_data(as_text=True)
    assert second.count('class="release-item"') == 5
    for q in HOSTILE:
        assert client.get("/search", query_string={"q": q}).status_code == 200
    assert client.get("/search").status_code == 200
    assert client.get("/search", query_string={"q": "x", "page": "abc"}).status_code == 400
