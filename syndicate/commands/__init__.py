"""Command groups, one module per area, added to the ``syndicate`` group."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    from syndicate.commands import digests, partners, releases

    releases.register(cli)
    partners.register(cli)
    digests.register(cli)
