"""``syndicate demo``, ``syndicate releases import`` and ``syndicate organizations …``.

The commands parse arguments, call one function of ``feeds`` and commit; the
work itself (importing, the demo set, tokens) lives in the Flask-free core.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from sqlalchemy.orm import Session

from feeds.errors import FeedsError
from feeds.types import ImportReport
from syndicate.cli import Context, pass_ctx

MAX_REPORTED_PROBLEMS = 50


@contextmanager
def _session(ctx: Context) -> Iterator[Session]:
    """A session on an up-to-date schema (or a one-line hint to migrate first)."""
    from feeds.schema import is_up_to_date

    if not is_up_to_date(ctx.config.database_url):
        raise click.ClickException("the database schema is not up to date; run `syndicate db upgrade` first")
    with ctx.session_factory()() as session:
        try:
            yield session
        except FeedsError as exc:  # bad input: one line, no traceback, nothing committed
            raise click.ClickException(str(exc)) from exc


def _summary(label: str, report: ImportReport) -> str:
    bad = len(report.problems)
    return (
        f"{label}: {report.created} created, {report.updated} updated, {report.unchanged} unchanged, "
        f"{bad} bad line{'s' if bad != 1 else ''}"
    )


def _report_problems(report: ImportReport) -> None:
    for problem in report.problems[:MAX_REPORTED_PROBLEMS]:
        click.echo(f"line {problem.line}: {problem.reason}", err=True)
    if len(report.problems) > MAX_REPORTED_PROBLEMS:
        click.echo(f"… and {len(report.problems) - MAX_REPORTED_PROBLEMS} more bad lines", err=True)


def _import_with_progress(label: str, lines: list[str], run: Any) -> ImportReport:
    """Run an import of ``lines`` with a progress bar on stderr (shown on terminals only)."""
    with click.progressbar(length=len(lines), label=label, file=sys.stderr) as bar:
        done = 0

        def progress(number: int) -> None:
            nonlocal done
            bar.update(number - done)
            done = number

        return run(progress)  # type: ignore[no-any-return]


# -- demo ------------------------------------------------------------------------------


@click.command()
@click.option("--if-empty", is_flag=True, help="only load into a database that has no releases yet")
@pass_ctx
def demo(ctx: Context, if_empty: bool) -> None:
    """Load the demo data set (releases of a dozen organizations from ten countries)."""
    from feeds.demo import demo_lines, load_demo

    with _session(ctx) as session:
        if if_empty:
            from feeds.demo import has_releases

            if has_releases(session):
                click.echo("the database already has releases; demo data not loaded")
                return
        report = _import_with_progress(
            "loading demo data", demo_lines(), lambda progress: load_demo(session, progress=progress)
        )
        session.commit()
    _report_problems(report)
    click.echo(_summary("demo data", report))
    if report.problems:
        raise click.ClickException("the demo data set has bad lines")


# -- releases --------------------------------------------------------------------------


@click.group()
def releases() -> None:
    """Releases: import from JSON Lines."""


@releases.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path, allow_dash=True))
@pass_ctx
def import_command(ctx: Context, file: Path) -> None:
    """Import releases from FILE, JSON Lines: one release per line, fields as in the API.

    Each line also names its ``organization`` (slug or name; unknown names are
    created) and may carry ``external_id`` so that importing the same file
    again changes nothing. Bad lines are reported and skipped; the good ones
    are kept. Exits with status 1 if any line was bad.
    """
    from feeds.importer import import_releases

    try:
        if str(file) == "-":
            text = sys.stdin.read()
        else:
            text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{file} is not UTF-8 text (byte {exc.start})") from exc
    lines = text.splitlines()
    with _session(ctx) as session:
        report = _import_with_progress(
            f"importing {file.name}", lines, lambda progress: import_releases(session, lines, progress=progress)
        )
        session.commit()
    _report_problems(report)
    click.echo(_summary(str(file), report))
    if report.problems:
        count = len(report.problems)
        raise click.ClickException(f"{count} bad line{'s' if count != 1 else ''} skipped (reported above)")


# -- organizations ---------------------------------------------------------------------


@click.group()
def organizations() -> None:
    """Organizations: add, list, issue API tokens."""


@organizations.command("add")
@click.argument("name")
@click.option("--country", "country", default=None, help="ISO 3166-1 alpha-2 code or country name")
@click.option("--slug", default=None, help="the URL name (default: transliterated from NAME)")
@click.option("--website", default=None, help="the organization's web site")
@pass_ctx
def organizations_add(ctx: Context, name: str, country: str | None, slug: str | None, website: str | None) -> None:
    """Add an organization; prints its slug (fixed from now on: feed URLs use it)."""
    from feeds.organizations import create_organization

    with _session(ctx) as session:
        org = create_organization(session, name, country_code=country, slug=slug, website=website)
        session.commit()
        click.echo(org.slug)


@organizations.command("list")
@pass_ctx
def organizations_list(ctx: Context) -> None:
    """List organizations: slug, country, releases, name."""
    from feeds.organizations import list_organizations

    with _session(ctx) as session:
        rows = list_organizations(session)
    width = max((len(org.slug) for org, _ in rows), default=4)
    for org, count in rows:
        click.echo(f"{org.slug:<{width}}  {org.country_code or '--'}  {count:>5}  {org.name}")


@organizations.command("token")
@click.argument("slug")
@pass_ctx
def organizations_token(ctx: Context, slug: str) -> None:
    """Print a new API token for organization SLUG (only its hash is stored; keep it safe)."""
    from feeds.organizations import get_organization, issue_token

    with _session(ctx) as session:
        token = issue_token(session, get_organization(session, slug))
        session.commit()
    click.echo(token)


def register(cli: click.Group) -> None:
    cli.add_command(demo)
    cli.add_command(releases)
    cli.add_command(organizations)
