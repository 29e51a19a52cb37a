"""``syndicate partners add/list/remove``, ``syndicate poll`` and ``syndicate admin token``.

Thin: each command parses its arguments, calls one function of
``feeds.sources`` / ``feeds.ingest`` (the same ones the scheduler and the
admin API call), commits, and prints. Bad input is one line and exit 1.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable

import click

from config import Config
from feeds.errors import FeedsError

_TIME = "%Y-%m-%d %H:%M"


def make_fetcher(config: Config) -> Any:
    """The partner-feed HTTP client as configured (shared by the CLI, the scheduler and the API)."""
    from feeds.fetch import Fetcher, user_agent

    return Fetcher(allow_private=config.allow_private_fetch, user_agent=user_agent(config.base_url))


def _when(value: datetime | None, never: str = "never") -> str:
    return value.strftime(_TIME) + " UTC" if value else never


def _short(text: str | None, limit: int = 60) -> str:
    if not text:
        return "-"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def result_line(result: Any) -> str:
    """One line about a refreshed source, for ``syndicate poll`` and the scheduler log."""
    head = f"#{result.source_id} {result.status}"
    if result.status in ("ok", "not modified"):
        detail = f"{result.created} new, {result.updated} updated, {result.unchanged} unchanged"
        if result.relinked_to:
            detail += f"; moved permanently, now {result.relinked_to}"
        if result.warning:
            detail += f"; warning: {_short(result.warning, 100)}"
    else:
        detail = result.error or "-"
    tail = f"; next check {_when(result.next_check_at)}" if result.next_check_at else ""
    return f"{head} {result.url}: {detail}{tail}"


def _table(rows: Iterable[tuple[str, ...]], header: tuple[str, ...]) -> str:
    lines = [header, *rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)


def _fail(exc: FeedsError) -> click.ClickException:
    return click.ClickException(str(exc))


def _number(value: str, what: str) -> int:
    """An integer argument, with a one-line error instead of click's usage text."""
    try:
        return int(value.strip())
    except ValueError:
        raise click.ClickException(f"{what} must be a whole number, not {value!r}") from None


@click.group()
def partners() -> None:
    """Partner feeds that Syndicate polls and ingests."""


@partners.command("add")
@click.argument("url")
@click.option("--organization", "organization_slug", required=True, metavar="SLUG",
              help="the organization whose releases the entries become (must exist)")
@click.option("--country", default=None, metavar="CC", help="ISO country code (default: the organization's)")
@click.option("--interval", default="30", show_default=True, metavar="MINUTES", help="minutes between polls")
@click.pass_obj
def partners_add(ctx: Any, url: str, organization_slug: str, country: str | None, interval: str) -> None:
    """Add a partner feed (polled at once by the running scheduler)."""
    from feeds.organizations import find_organization
    from feeds.sources import add_source

    config: Config = ctx.config
    with ctx.session_factory()() as session:
        org = find_organization(session, organization_slug)
        if org is None:
            raise click.ClickException(
                f"no organization with slug {organization_slug!r}; check the slug or create the organization first"
            )
        try:
            source = add_source(session, url, org, country_code=country,
                                interval_minutes=_number(interval, "the interval"),
                                allow_private=config.allow_private_fetch)
        except FeedsError as exc:
            raise _fail(exc) from exc
        session.commit()
        click.echo(f"added source {source.id}: {source.url} for {org.slug} ({source.country_code}), "
                   f"every {source.interval_minutes} min")


@partners.command("list")
@click.pass_obj
def partners_list(ctx: Any) -> None:
    """Every partner feed with its state, last success and error, and next check."""
    from feeds.sources import list_sources, source_state

    with ctx.session_factory()() as session:
        sources = list_sources(session)
        if not sources:
            click.echo("no partner feeds; add one with `syndicate partners add URL --organization SLUG`")
            return
        rows = []
        for s in sources:
            state = source_state(s)
            label = state.state if state.state != "disabled" else f"disabled: {_short(state.reason, 40)}"
            rows.append((
                str(s.id), s.url, s.organization.slug, label, _when(s.last_success_at),
                _short(s.last_error), str(s.error_count), "-" if s.disabled else _when(s.next_check_at),
                str(s.releases_ingested),
            ))
        click.echo(_table(rows, ("ID", "URL", "ORGANIZATION", "STATE", "LAST SUCCESS", "LAST ERROR", "ERRORS",
                                 "NEXT CHECK", "RELEASES")))


@partners.command("remove")
@click.argument("source_id", metavar="ID")
@click.pass_obj
def partners_remove(ctx: Any, source_id: str) -> None:
    """Remove a partner feed; the releases it brought stay."""
    from feeds.sources import remove_source

    with ctx.session_factory()() as session:
        try:
            remove_source(session, _number(source_id, "the source ID"))
        except FeedsError as exc:
            raise _fail(exc) from exc
        session.commit()
    click.echo(f"removed source {source_id}")


@click.command("poll")
@click.option("--all", "poll_all", is_flag=True, help="every enabled source, due or not")
@click.argument("id_args", nargs=-1, metavar="[ID]...")
@click.pass_obj
def poll(ctx: Any, poll_all: bool, id_args: tuple[str, ...]) -> None:
    """One ingestion pass now: due sources (what the scheduler does), --all, or the given IDs."""
    from feeds.ingest import refresh_due_sources, refresh_source
    from feeds.sources import find_source
    from syndicate.scheduler import node_id

    source_ids = [_number(i, "a source ID") for i in id_args]
    if poll_all and source_ids:
        raise click.ClickException("give either --all or source IDs, not both")
    factory = ctx.session_factory()
    fetcher = make_fetcher(ctx.config)
    if source_ids:
        with factory() as session:
            missing = [str(i) for i in source_ids if find_source(session, i) is None]
        if missing:
            raise click.ClickException(f"no source with ID {', '.join(missing)}; see `syndicate partners list`")
        results = [refresh_source(factory, i, fetcher) for i in dict.fromkeys(source_ids)]
    else:
        from feeds.parsing import ParsePool

        # Worker processes for the parsing, started only if more than one feed comes back.
        with ParsePool() as parsers:
            results = refresh_due_sources(factory, fetcher, worker=node_id(), due_only=not poll_all,
                                          parsers=parsers)
    if not results:
        click.echo("no source is due" if not poll_all else "no enabled source")
    for result in results:
        click.echo(result_line(result))


@click.group()
def admin() -> None:
    """Administration."""


@admin.command("token")
@click.pass_obj
def admin_token(ctx: Any) -> None:
    """Print a new administrator API token (manages partner sources over the API)."""
    from feeds.organizations import issue_token

    with ctx.session_factory()() as session:
        token = issue_token(session, None)
        session.commit()
    click.echo(token)


def register(cli: click.Group) -> None:
    cli.add_command(partners)
    cli.add_command(poll)
    existing = cli.commands.get("admin")
    if isinstance(existing, click.Group):  # another area made the group first
        existing.add_command(admin_token)
    else:
        cli.add_command(admin)
