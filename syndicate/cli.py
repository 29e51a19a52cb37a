"""``syndicate …`` — the command line. Every command fails with a one-line error."""

from __future__ import annotations

import sys
from typing import Any

import click

from config import Config, ConfigError
from feeds.errors import FeedsError


class Context:
    """What every command gets: the configuration and, on demand, a session factory."""

    def __init__(self, config: Config | None = None) -> None:
        self._config = config
        self._factory: Any = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = Config.from_env()
        return self._config

    def session_factory(self) -> Any:
        from feeds.db import make_session_factory

        if self._factory is None:
            self._factory = make_session_factory(self.config.database_url, writer=True)
        return self._factory


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Syndicate: press-release syndication and subscriptions."""
    ctx.ensure_object(Context)


@cli.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the schema to the newest revision."""
    from feeds.schema import upgrade_database

    upgrade_database(ctx.config.database_url)
    click.echo("database is up to date")


@cli.command()
@click.option("--host", default=None, help="address to listen on (default $HOST or 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (default $PORT or 8000)")
@click.option("--workers", type=int, default=None, help="web worker processes (default: CPU count)")
@click.option("--no-scheduler", is_flag=True, help="do not start the scheduler process")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None, workers: int | None, no_scheduler: bool) -> None:
    """Serve the site, feeds and API with the production server (and run the scheduler)."""
    from syndicate.server import serve as run_server

    run_server(ctx.config, host=host, port=port, workers=workers, with_scheduler=not no_scheduler)


@cli.command()
@pass_ctx
def scheduler(ctx: Context) -> None:
    """Run the scheduler alone (one per node; safe to run on several nodes)."""
    from syndicate.scheduler import main as run_scheduler

    run_scheduler(ctx.config)


def _register_commands() -> None:
    from syndicate import commands

    commands.register(cli)


_register_commands()


def main(argv: list[str] | None = None) -> None:
    """Entry point: turn every expected failure into one line and a non-zero exit."""
    try:
        cli.main(args=argv, prog_name="syndicate", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (ConfigError, FeedsError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a last resort: one line, not a traceback
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else "no reason given"
            click.echo(f"Error: database unavailable: {reason}", err=True)
        else:
            first_line = (str(exc).strip().splitlines() or [""])[0]
            click.echo(f"Error: {exc.__class__.__name__}: {first_line}", err=True)
        sys.exit(1)
