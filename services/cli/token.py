"""`los token`: a bearer token for development, for the Alerts API or the Sources API
(services/kernel/tokens.py says what each holds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from services.kernel.ids import validate_org
from services.kernel.settings import get_settings, iso_duration
from services.kernel.tokens import mint_source
from services.kernel.vocabulary import SourceSystem
from services.outcomes.auth import mint


def token(
    coordinator: Annotated[
        str | None, typer.Option(help="for the Alerts API: the caller's coordinator id")
    ] = None,
    team: Annotated[list[str] | None, typer.Option(help="a team (org_unit) they are in")] = None,
    source: Annotated[
        list[SourceSystem] | None,
        typer.Option(help="for the Sources API: a source.system the client may send for"),
    ] = None,
    org: Annotated[
        list[str] | None, typer.Option(help="a source.org it may send as (default: any)")
    ] = None,
    client: Annotated[
        str | None, typer.Option(help="the source client's name, for the reasons it is given")
    ] = None,
    hours: Annotated[int, typer.Option(min=1, help="hours until it expires")] = 8,
) -> None:
    """Print a bearer token (for development): a coordinator's for the Alerts API
    (--coordinator; signed with LOS_TOKEN_KEY), or a source system's client's for the
    Sources API (--source and --client, with --org to bind it to organisations; signed
    with LOS_SOURCE_TOKEN_KEY)."""
    settings, now, lifetime = get_settings(), datetime.now(UTC), timedelta(hours=hours)
    if lifetime > settings.token_max_lifetime:
        limit = iso_duration(settings.token_max_lifetime)
        raise typer.BadParameter(f"--hours {hours}: longer than LOS_TOKEN_MAX_LIFETIME ({limit})")
    if coordinator is not None and not (source or org or client):
        key = settings.token_key.get_secret_value()
        print(mint(key, coordinator, team or [], now=now, lifetime=lifetime))
    elif source and client and coordinator is None and not team:
        for each in org or []:
            try:
                validate_org(each)
            except ValueError as error:
                raise typer.BadParameter(f"--org {each}: {error}") from None
        key = settings.source_token_key.get_secret_value()
        print(mint_source(key, client, source, org or [], now=now, lifetime=lifetime))
    else:
        raise typer.BadParameter(
            "give --coordinator (and --team), or --source and --client (and --org)"
        )
