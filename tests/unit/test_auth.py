"""Who is calling the Alerts API: the bearer token read from the `authorization` header."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.outcomes.auth import Refused, caller_from, mint

KEY = "unit-test-token-key-of-32-bytes-or-more"
NOW = datetime.now(UTC)
LIMIT = timedelta(hours=24)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_read_whatever_its_case(scheme: str) -> None:
    token = mint(KEY, "c-1", ["nav-0301"], now=NOW)
    caller = caller_from(f"{scheme} {token}", KEY, LIMIT)
    assert (caller.coordinator, caller.teams) == ("c-1", frozenset({"nav-0301"}))
    assert caller.expires_at == (NOW + timedelta(hours=8)).replace(microsecond=0)


@pytest.mark.parametrize("header", [None, "", "Bearer", "Bearer ", "Basic abc", "token"])
def test_a_header_without_a_bearer_token_is_refused(header: str | None) -> None:
    with pytest.raises(Refused, match="no bearer token"):
        caller_from(header, KEY, LIMIT)


@pytest.mark.parametrize("teams", ["nav-0301", 5, ["nav-0301", 7], {"nav-0301": True}])
def test_teams_that_are_not_a_list_of_names_are_refused(teams: object) -> None:
    claims = {"sub": "c-1", "teams": teams, "aud": "los", "iat": NOW, "exp": NOW + LIMIT}
    with pytest.raises(Refused, match="teams must be a list of team names"):
        caller_from(f"Bearer {jwt.encode(claims, KEY, algorithm='HS256')}", KEY, LIMIT)


def test_an_expired_token_is_refused() -> None:
    token = mint(KEY, "c-1", [], now=NOW - timedelta(hours=2), lifetime=timedelta(hours=1))
    with pytest.raises(Refused, match="expired"):
        caller_from(f"Bearer {token}", KEY, LIMIT)
