"""Importing JSON Lines, the demo data set, and the release/organization commands."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import Result
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from feeds.demo import demo_lines, load_demo
from feeds.importer import import_releases
from feeds.models import ApiToken, Organization, Release
from feeds.organizations import hash_token
from feeds.store import content_version, withdraw_release

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "import_sample.jsonl"


def snapshot(session: Session) -> list[tuple[Any, ...]]:
    """Everything an import may change, to compare before and after."""
    rows = session.execute(
        select(Release.id, Release.guid, Release.title, Release.body, Release.updated_at, Release.view_count,
               Release.content_hash).order_by(Release.id)
    ).all()
    orgs = session.execute(select(Organization.id, Organization.slug).order_by(Organization.id)).all()
    return [tuple(r) for r in rows] + [tuple(o) for o in orgs] + [("version", content_version(session))]


def test_good_lines_are_kept_and_bad_lines_reported_by_number(session: Session) -> None:
    report = import_releases(session, SAMPLE.read_text(encoding="utf-8").splitlines())
    session.commit()
    assert (report.created, report.updated, report.unchanged) == (4, 0, 0)
    reasons = {p.line: p.reason for p in report.problems}
    assert sorted(reasons) == [4, 5, 7, 9, 10]
    assert "not valid JSON" in reasons[4]
    assert "country" in reasons[5] and "Нарния" in reasons[5]
    assert reasons[7].startswith("title")
    assert "JSON object" in reasons[9]
    assert "published_at" in reasons[10] and "offset" in reasons[10]

    airr = session.scalar(select(Organization).where(Organization.name == "АИРР"))
    assert airr is not None and airr.slug == "airr" and airr.country_code == "RU"
    release = session.scalar(select(Release).where(Release.import_key == "airr-2023-09-05"))
    assert release is not None
    assert release.title.startswith("В Приангарье в 2024 году")
    assert release.view_count == 204
    assert "<script>" not in release.body and "«Мы выходим" in release.body
    assert release.published_at.isoformat() == "2023-09-05T05:27:00+00:00"
    bit = session.scalar(select(Release).where(Release.import_key == "bit-1"))
    assert bit is not None and bit.organization.slug == "npo-bit"
    assert bit.body.startswith("<p>Совместные инициативы")  # plain text became paragraphs
    english = session.scalar(select(Release).where(Release.import_key == "en-1"))
    assert english is not None and english.language == "en"
    merlion = session.scalar(select(Release).where(Release.title.startswith("Merlion")))
    assert merlion is not None and merlion.attachments[0]["url"] == "https://www.example.com/almi/logo.png"
    assert merlion.import_key and merlion.import_key.startswith("auto:")


def test_importing_the_same_file_again_changes_nothing(session: Session) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    import_releases(session, lines)
    session.commit()
    before = snapshot(session)
    again = import_releases(session, lines)
    session.commit()
    assert (again.created, again.updated, again.unchanged) == (0, 0, 4)
    assert len(again.problems) == 5
    assert snapshot(session) == before


def test_a_changed_line_corrects_its_release_in_place(session: Session) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    import_releases(session, lines)
    session.commit()
    original = session.scalar(select(Release).where(Release.import_key == "bit-1"))
    assert original is not None
    ident = (original.id, original.guid, original.view_count)
    data = json.loads(lines[2])
    data["title"] = "НПО «БИТ» – официальный информационный партнёр"
    data["view_count"] = 1  # views belong to this site once imported; a re-import does not reset them
    report = import_releases(session, [json.dumps(data, ensure_ascii=False)])
    session.commit()
    assert (report.created, report.updated) == (0, 1)
    session.expire_all()
    corrected = session.get(Release, ident[0])
    assert corrected is not None
    assert (corrected.id, corrected.guid, corrected.view_count) == ident
    assert corrected.title == "НПО «БИТ» – официальный информационный партнёр"


def test_an_old_file_does_not_bring_back_a_withdrawn_release(session: Session) -> None:
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    import_releases(session, lines)
    release = session.scalar(select(Release).where(Release.import_key == "bit-1"))
    assert release is not None
    withdraw_release(session, release)
    session.commit()
    report = import_releases(session, lines)
    session.commit()
    assert report.created == 0
    assert session.get(Release, release.id).withdrawn_at is not None  # type: ignore[union-attr]


def test_organizations_are_found_by_slug_or_name(session: Session) -> None:
    line = {"organization": "АИРР", "country": "RU", "title": "Первая", "body": "Текст"}
    import_releases(session, [json.dumps(line, ensure_ascii=False)])
    for value in ("airr", "АИРР", {"slug": "airr", "name": "АИРР"}):
        line = {"organization": value, "country": "RU", "title": f"По {value!s}", "body": "Текст"}
        report = import_releases(session, [json.dumps(line, ensure_ascii=False)])
        assert report.created == 1, report.problems
    session.commit()
    assert session.scalar(select(func.count()).select_from(Organization)) == 1
    assert session.scalar(select(func.count()).select_from(Release)) == 4
    report = import_releases(session, [json.dumps({"country": "RU", "title": "Ничья", "body": "Текст"})])
    assert report.problems[0].reason.startswith("organization")


# -- the demo data set ---------------------------------------------------------------------


def test_demo_data_is_a_real_looking_wire(session: Session) -> None:
    report = load_demo(session)
    session.commit()
    assert report is not None and report.problems == []
    releases = session.scalars(select(Release)).all()
    assert len(releases) >= 40
    assert len({r.organization_id for r in releases}) >= 10
    assert len({r.country_code for r in releases}) >= 6
    languages = Counter(r.language for r in releases)
    assert languages["ru"] > len(releases) / 2 and languages["en"] >= 3
    assert all("lorem" not in (r.body + r.title).lower() for r in releases)
    assert sum("«" in r.title + r.lead + r.body for r in releases) >= 30
    assert all(r.contact for r in releases)
    assert any(r.attachments for r in releases)
    months = {(r.published_at.year, r.published_at.month) for r in releases}
    assert len(months) >= 4
    assert all(r.view_count > 0 for r in releases)
    # The shipped file is in the import format and loads with no bad lines.
    assert len(demo_lines()) == len(releases)


def test_demo_loads_once(session: Session) -> None:
    load_demo(session)
    session.commit()
    before = snapshot(session)
    assert load_demo(session, if_empty=True) is None
    again = load_demo(session)
    session.commit()
    assert again is not None and again.created == 0 and again.unchanged == len(demo_lines())
    assert snapshot(session) == before


# -- the commands --------------------------------------------------------------------------


Runner = Callable[..., Result]


def test_import_command_reports_bad_lines_and_exits_non_zero(
    runner: Runner, session_factory: sessionmaker[Session]
) -> None:
    result = runner("releases", "import", str(SAMPLE))
    assert result.exit_code == 1
    assert "line 4: not valid JSON" in result.stderr
    assert "line 5: " in result.stderr and "line 10: " in result.stderr
    assert f"{SAMPLE}: 4 created, 0 updated, 0 unchanged, 5 bad lines" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "Error: 5 bad lines skipped (reported above)"
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == 4
    again = runner("releases", "import", str(SAMPLE))
    assert "0 created, 0 updated, 4 unchanged, 5 bad lines" in again.stdout


def test_import_command_with_a_clean_file(runner: Runner, tmp_path: Path) -> None:
    good = tmp_path / "good.jsonl"
    good.write_text("\n".join(line for line in demo_lines()[:3]) + "\n", encoding="utf-8")
    result = runner("releases", "import", str(good))
    assert result.exit_code == 0, result.output
    assert "3 created, 0 updated, 0 unchanged, 0 bad lines" in result.stdout
    missing = runner("releases", "import", str(tmp_path / "missing.jsonl"))
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes('{"title": "Новость"}'.encode("cp1251"))
    assert runner("releases", "import", str(latin1)).exit_code == 1


def test_demo_command_loads_only_into_an_empty_database(
    runner: Runner, session_factory: sessionmaker[Session]
) -> None:
    first = runner("demo", "--if-empty")
    assert first.exit_code == 0, first.output
    assert f"demo data: {len(demo_lines())} created" in first.stdout
    second = runner("demo", "--if-empty")
    assert second.exit_code == 0 and "already has releases" in second.stdout
    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(Release)) == len(demo_lines())


def test_organization_commands(runner: Runner, session_factory: sessionmaker[Session]) -> None:
    added = runner("organizations", "add", "Рога и копыта", "--country", "Россия")
    assert added.exit_code == 0 and added.stdout.strip() == "roga-i-kopyta"
    assert runner("organizations", "add", "Рога и копыта").stdout.strip() == "roga-i-kopyta-2"
    custom = runner("organizations", "add", "Другое имя", "--slug", "horns")
    assert custom.stdout.strip() == "horns"
    listing = runner("organizations", "list").stdout
    assert "roga-i-kopyta" in listing and "RU" in listing and "Рога и копыта" in listing

    token = runner("organizations", "token", "roga-i-kopyta").stdout.strip()
    assert token.startswith("syn_") and len(token) > 30
    with session_factory() as session:
        row = session.scalar(select(ApiToken))
        assert row is not None and row.token_hash == hash_token(token) and token not in row.token_hash


@pytest.mark.parametrize(
    "args, message",
    [
        (("organizations", "token", "nobody"), "organization 'nobody' not found"),
        (("organizations", "add", "Имя", "--country", "Нарния"), "unknown country"),
        (("organizations", "add", "Имя", "--slug", "Not A Slug"), "lower-case latin"),
        (("organizations", "add", "   "), "must not be empty"),
    ],
)
def test_organization_commands_fail_in_one_line(runner: Runner, args: tuple[str, ...], message: str) -> None:
    result = runner(*args)
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_commands_on_an_unmigrated_database_say_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    from syndicate.cli import main

    monkeypatch.setenv("SYNDICATE_DATABASE_URL", f"sqlite:///{tmp_path}/empty.db")
    monkeypatch.setenv("SYNDICATE_INSTANCE_PATH", str(tmp_path / "instance"))
    with pytest.raises(SystemExit) as exit_info:
        main(["demo"])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "syndicate db upgrade" in err[0]
