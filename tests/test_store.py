"""The release store and organizations: visibility, views, tokens, slugs, payload validation."""

from __future__ import annotations

import hashlib
import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from feeds.errors import InvalidInput, Unauthorized
from feeds.models import ApiToken, Organization, Release
from feeds.organizations import (
    authenticate,
    create_organization,
    hash_token,
    issue_token,
    list_organizations,
)
from feeds.store import (
    content_version,
    count_releases_by_country,
    count_view,
    create_release,
    get_visible_release,
    list_releases,
    update_release,
    withdraw_release,
)
from feeds.types import Page, ReleaseDraft, ReleaseFilter
from feeds.validate import release_draft

UTC = timezone.utc
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def draft(title: str = "Новость", **changes: object) -> ReleaseDraft:
    values: dict[str, object] = dict(title=title, lead="Вводный абзац.", body="<p>Текст.</p>", country_code="RU")
    values.update(changes)
    return ReleaseDraft(**values)  # type: ignore[arg-type]


def test_embargo_lifts_by_the_clock_alone(session: Session) -> None:
    org = create_organization(session, "АИРР", now=T0)
    now_release = create_release(session, org, draft("Сейчас"), now=T0)
    later = create_release(session, org, draft("Позже", published_at=T0 + timedelta(hours=2)), now=T0)
    session.commit()

    before = list_releases(session, ReleaseFilter(), Page(1, 10), now=T0 + timedelta(hours=1))
    assert [r.id for r in before.items] == [now_release.id]
    with pytest.raises(Exception):
        get_visible_release(session, later.id, now=T0 + timedelta(hours=1))

    after = list_releases(session, ReleaseFilter(), Page(1, 10), now=T0 + timedelta(hours=2))
    assert [r.id for r in after.items] == [later.id, now_release.id]
    assert get_visible_release(session, later.id, now=T0 + timedelta(hours=2)).title == "Позже"
    # An embargoed release is "updated" when it appears, not when it was written.
    assert later.updated_at == T0 + timedelta(hours=2)


def test_withdrawn_release_is_hidden_but_kept(session: Session) -> None:
    org = create_organization(session, "АИРР", now=T0)
    release = create_release(session, org, draft(), now=T0)
    session.commit()
    version = content_version(session)
    withdraw_release(session, release, now=T0 + timedelta(minutes=5))
    session.commit()
    assert list_releases(session, ReleaseFilter(), Page(), now=T0 + timedelta(hours=1)).items == []
    kept = session.get(Release, release.id)
    assert kept is not None and kept.withdrawn_at == T0 + timedelta(minutes=5)
    assert content_version(session) == version + 1
    withdraw_release(session, release, now=T0 + timedelta(minutes=9))  # twice: nothing changes
    assert kept.withdrawn_at == T0 + timedelta(minutes=5)


def test_correction_keeps_identity_and_unchanged_draft_writes_nothing(session: Session) -> None:
    org = create_organization(session, "АИРР", now=T0)
    release = create_release(session, org, draft("Первая версия"), now=T0)
    session.commit()
    guid = release.guid
    assert update_release(session, release, draft("Первая версия"), now=T0 + timedelta(hours=1)) is False
    assert release.updated_at == T0
    assert update_release(session, release, draft("Исправленная версия"), now=T0 + timedelta(hours=1)) is True
    session.commit()
    assert (release.guid, release.title, release.slug) == (guid, "Исправленная версия", "ispravlennaia-versiia")
    assert release.updated_at == T0 + timedelta(hours=1)


def test_count_view_returns_the_new_count(session: Session) -> None:
    org = create_organization(session, "АИРР", now=T0)
    release = create_release(session, org, draft(), now=T0)
    session.commit()
    assert count_view(session, release.id) == 1
    assert count_view(session, release.id) == 2
    assert count_view(session, 999_999) is None
    session.commit()


def test_concurrent_views_from_many_sessions_lose_no_increment(
    session_factory: sessionmaker[Session], backend: str
) -> None:
    with session_factory() as session:
        org = create_organization(session, "АИРР", now=T0)
        release_id = create_release(session, org, draft(), now=T0).id
        session.commit()
    threads, per_thread = 8, 25
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def reader() -> None:
        try:
            start.wait()
            for _ in range(per_thread):
                with session_factory() as s:  # one session (and transaction) per view, as a request
                    get_visible_release(s, release_id, now=T0 + timedelta(days=1))
                    s.commit()
                    count_view(s, release_id)
                    s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=reader) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=120)
    assert not errors, errors[:3]
    with session_factory() as s:
        assert s.scalar(select(Release.view_count).where(Release.id == release_id)) == threads * per_thread


# -- organizations and tokens ------------------------------------------------------------


def test_slugs_are_transliterated_and_unique(session: Session) -> None:
    first = create_organization(session, "Рога и копыта", now=T0)
    second = create_organization(session, "Рога и  копыта", now=T0)
    third = create_organization(session, "НПО «БИТ»", country_code="Россия", now=T0)
    assert first.slug == "roga-i-kopyta"
    assert second.slug == "roga-i-kopyta-2"
    assert third.slug == "npo-bit" and third.country_code == "RU"
    with pytest.raises(InvalidInput) as taken:
        create_organization(session, "Другая", slug="roga-i-kopyta", now=T0)
    assert taken.value.field == "slug"
    with pytest.raises(InvalidInput):
        create_organization(session, "Другая", slug="Not A Slug", now=T0)


def test_organization_counts_leave_out_embargoed_and_withdrawn(session: Session) -> None:
    org = create_organization(session, "Ёлка", now=T0)
    create_organization(session, "Арбуз", now=T0)
    create_release(session, org, draft("Видна"), now=T0)
    create_release(session, org, draft("Под эмбарго", published_at=T0 + timedelta(days=1)), now=T0)
    gone = create_release(session, org, draft("Снята", country_code="KZ"), now=T0)
    withdraw_release(session, gone, now=T0)
    session.commit()
    rows = [(o.name, n) for o, n in list_organizations(session, now=T0 + timedelta(hours=1))]
    assert rows == [("Арбуз", 0), ("Ёлка", 1)]  # sorted by name, Cyrillic included
    assert count_releases_by_country(session, now=T0 + timedelta(hours=1)) == [("RU", 1)]
    assert count_releases_by_country(session, now=T0 + timedelta(days=2)) == [("RU", 2)]


def test_tokens_are_stored_only_as_hashes(session: Session) -> None:
    org = create_organization(session, "АИРР", now=T0)
    token = issue_token(session, org, now=T0)
    session.commit()
    row = session.scalar(select(ApiToken))
    assert row is not None
    assert row.token_hash == hashlib.sha256(token.encode()).hexdigest() == hash_token(token)
    # The plaintext is nowhere in the table, in any column.
    dump = " ".join(str(v) for v in session.execute(text("SELECT * FROM api_tokens")).one())
    assert token not in dump and token[4:] not in dump
    assert authenticate(session, token).organization_id == org.id
    with pytest.raises(Unauthorized):
        authenticate(session, token + "x")
    with pytest.raises(Unauthorized):
        authenticate(session, None)
    row.revoked_at = T0
    session.flush()
    with pytest.raises(Unauthorized):
        authenticate(session, token)


def test_each_token_is_new(session: Session) -> None:
    org = create_organization(session, "АИРР", now=T0)
    tokens = {issue_token(session, org, now=T0) for _ in range(5)}
    assert len(tokens) == 5
    assert session.scalar(select(ApiToken.id).where(ApiToken.organization_id == org.id).limit(1)) is not None
    assert len(session.scalars(select(Organization)).all()) == 1


# -- payload validation (pure) -------------------------------------------------------------


def payload(**changes: object) -> dict[str, object]:
    data: dict[str, object] = {
        "title": "В Приангарье откроется производство электробусов",
        "lead": "Развитие сотрудничества обсудили на рабочей встрече.",
        "body": "<p>«Мы выходим на финальный этап», – отметил губернатор.</p>",
        "country": "ru",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_a_valid_payload_becomes_a_draft() -> None:
    result = release_draft(payload(published_at="2023-09-05T08:27:00+03:00", contact="PR-служба"))
    assert result.country_code == "RU"
    assert result.language == "ru"  # guessed from the Cyrillic title
    assert result.published_at == datetime(2023, 9, 5, 5, 27, tzinfo=UTC)
    assert result.contact == "PR-служба"
    assert release_draft(payload(title="Electric buses", country="Россия")).language == "en"
    assert release_draft(payload(country="Kazakhstan")).country_code == "KZ"
    assert release_draft(payload(language="en-GB")).language == "en"


def test_a_plain_text_body_becomes_paragraphs() -> None:
    result = release_draft(payload(body="Первый абзац.\n\nВторой <абзац> & точка."))
    assert result.body == "<p>Первый абзац.</p><p>Второй &lt;абзац&gt; &amp; точка.</p>"


@pytest.mark.parametrize(
    "changes, field",
    [
        ({"title": None}, "title"),
        ({"title": "   "}, "title"),
        ({"title": "<b></b>"}, "title"),
        ({"title": "Я" * 501}, "title"),
        ({"title": 42}, "title"),
        ({"body": None}, "body"),
        ({"body": "x" * 200_001}, "body"),
        ({"country": None}, "country"),
        ({"country": "Нарния"}, "country"),
        ({"country": "ZZ"}, "country"),
        ({"lead": "л" * 5001}, "lead"),
        ({"contact": "к" * 501}, "contact"),
        ({"published_at": "2023-09-05 08:27"}, "published_at"),
        ({"published_at": "вчера"}, "published_at"),
        ({"published_at": 1693891620}, "published_at"),
        ({"language": "русский"}, "language"),
        ({"language": "de"}, "language"),
        ({"attachments": "file.pdf"}, "attachments"),
        ({"attachments": [{"url": "ftp://example.com/a.pdf", "type": "application/pdf"}]}, "attachments[0].url"),
        ({"attachments": [{"url": "https://example.com/a.pdf", "type": "pdf"}]}, "attachments[0].type"),
        ({"attachments": [{"url": "https://example.com/a", "type": "image/png", "length": -1}]}, "attachments[0].length"),
        ({"canonical_url": "javascript:alert(1)"}, "canonical_url"),
        ({"titel": "опечатка"}, "titel"),
    ],
)
def test_bad_payloads_name_the_field(changes: dict[str, object], field: str) -> None:
    data = payload()
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    with pytest.raises(InvalidInput) as info:
        release_draft(data)
    assert info.value.field == field


def test_read_only_fields_of_the_representation_are_ignored() -> None:
    result = release_draft(payload(id=5, guid="urn:uuid:x", status="published", view_count=10))
    assert result.title.startswith("В Приангарье")
    with pytest.raises(InvalidInput):
        release_draft(["not", "an", "object"])
