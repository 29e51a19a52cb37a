"""``syndicate digests send [--now]`` and ``syndicate digests status``.

Also where the configuration becomes the plain values ``subscribers`` needs
(``mail_settings``, ``make_runner``): the scheduler's tick and the sign-up
view build their runner here too, so every caller runs the same code.
"""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from config import Config


def mail_settings(config: Config) -> Any:
    from subscribers.settings import MailSettings

    return MailSettings(
        base_url=config.base_url,
        secret_key=config.secret_key,
        mail_from=config.mail_from,
        mail_rate=config.mail_rate,
        default_language=config.language,
        default_timezone=config.timezone,
    )


def make_runner(config: Config, factory: sessionmaker[Session], node: str, **kwargs: Any) -> Any:
    """A ``DigestRunner`` for this configuration (mailer from ``SYNDICATE_MAIL_URL``)."""
    from subscribers.mailer import mailer_from_url
    from subscribers.send import DigestRunner

    return DigestRunner(factory, mailer_from_url(config.mail_url), mail_settings(config), node=node, **kwargs)


def run_digests(config: Config, factory: sessionmaker[Session], node: str, *, force: bool = False) -> Any:
    """One digest pass (what the scheduler's tick calls); returns its ``PassReport``."""
    return make_runner(config, factory, node).run_pass(force=force)


def register(cli: click.Group) -> None:
    from syndicate.cli import Context, pass_ctx

    @cli.group()
    def digests() -> None:
        """Email digests."""

    @digests.command("send")
    @click.option("--now", "force", is_flag=True, help="treat every confirmed subscription as due now")
    @pass_ctx
    def send(ctx: Context, force: bool) -> None:
        """One digest pass now: plan what is due and send the outbox (same code as the scheduler)."""
        from syndicate.scheduler import node_id

        report = run_digests(ctx.config, ctx.session_factory(), node_id(), force=force)
        click.echo(
            f"{report.planned} subscriptions looked at, {report.digests} digests written, "
            f"{report.sent} mails sent, {report.retried} to retry, {report.failed} failed, "
            f"{report.cancelled} cancelled"
        )
        if report.error:
            raise click.ClickException(f"mail server: {report.error}")

    @digests.command("status")
    @pass_ctx
    def status(ctx: Context) -> None:
        """Subscriptions by state and the outbox queue."""
        from feeds.db import utcnow
        from subscribers.models import Subscription
        from subscribers.outbox import outbox_counts

        now = utcnow()
        with ctx.session_factory()() as session:
            states = dict(
                session.execute(select(Subscription.status, func.count()).group_by(Subscription.status)).all()
            )
            due = session.scalar(
                select(func.min(Subscription.next_due_at)).where(Subscription.status == "active")
            )
            counts = outbox_counts(session, now)
        click.echo(
            "subscriptions: "
            + (", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none")
        )
        click.echo(f"next digest due: {due.isoformat() if due else '-'}")
        click.echo(
            f"outbox: {counts.pending} pending ({counts.leased} being sent), {counts.sent} sent, "
            f"{counts.failed} failed, {counts.cancelled} cancelled"
        )
