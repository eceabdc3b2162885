"""A source system's client, as its bearer token for the `Sources` API names it."""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import partial

import jwt
import pytest

from services.kernel.tokens import SOURCES_AUDIENCE, Refused, mint_source, source_client_from
from services.outcomes.auth import caller_from

KEY = "unit-test-token-key-of-32-bytes-or-more"
NOW = datetime.now(UTC)
LIMIT = timedelta(hours=24)


def _signed(**claims: object) -> str:
    everything = {"sub": "nav-arena", "aud": SOURCES_AUDIENCE, "iat": NOW, "exp": NOW + LIMIT}
    return f"Bearer {jwt.encode(everything | claims, KEY, algorithm='HS256')}"


def test_a_client_covers_its_systems_and_its_organisations() -> None:
    token = mint_source(KEY, "oslo", ["kommune", "fylke"], ["0301"], now=NOW)
    client = source_client_from(f"Bearer {token}", KEY, LIMIT)

    assert client.name == "oslo"
    assert (client.covers_system("kommune"), client.covers_system("fylke")) == (True, True)
    assert client.covers_system("nav") is False
    assert (client.covers_org("0301"), client.covers_org("4601")) == (True, False)


def test_a_client_bound_to_no_organisation_covers_any() -> None:
    client = source_client_from(
        f"Bearer {mint_source(KEY, 'nav-arena', ['nav'], now=NOW)}", KEY, LIMIT
    )
    assert client.covers_org("974760673")


@pytest.mark.parametrize("systems", [None, [], ["nav", "skatt"], "nav", [5]])
def test_a_token_that_names_no_known_source_system_is_refused(systems: object) -> None:
    claims = {} if systems is None else {"systems": systems}
    with pytest.raises(Refused, match="the token is not valid: its systems must"):
        source_client_from(_signed(**claims), KEY, LIMIT)


def test_organisations_that_are_not_a_list_are_refused() -> None:
    with pytest.raises(Refused, match="its orgs must be a list of organisation numbers"):
        source_client_from(_signed(systems=["nav"], orgs="974760673"), KEY, LIMIT)


def test_a_token_opens_only_the_api_it_is_for() -> None:
    source = f"Bearer {mint_source(KEY, 'nav-arena', ['nav'], now=NOW)}"
    with pytest.raises(Refused, match="Audience doesn't match"):
        caller_from(source, KEY, LIMIT)  # the Alerts API's reading


def test_a_token_that_names_no_client_is_refused() -> None:
    with pytest.raises(Refused, match="its sub names no one"):
        source_client_from(_signed(sub="", systems=["nav"]), KEY, LIMIT)


# Each API's audience, and how it reads a token for it.
APIS = [
    pytest.param(
        SOURCES_AUDIENCE, partial(source_client_from, key=KEY, max_lifetime=LIMIT), id="Sources"
    ),
    pytest.param("los", partial(caller_from, key=KEY, max_lifetime=LIMIT), id="Alerts"),
]


def _token(audience: str, **claims: object) -> str:
    everything = {"sub": "c-1", "aud": audience, "systems": ["nav"], **claims}
    return f"Bearer {jwt.encode(everything, KEY, algorithm='HS256')}"


@pytest.mark.parametrize(("audience", "read"), APIS)
def test_a_token_valid_for_longer_than_the_limit_is_refused(
    audience: str, read: Callable[[str], object]
) -> None:
    assert read(_token(audience, iat=NOW, exp=NOW + LIMIT))  # the limit itself is allowed
    with pytest.raises(Refused, match="valid for longer than the P1D LOS_TOKEN_MAX_LIFETIME"):
        read(_token(audience, iat=NOW, exp=NOW + LIMIT + timedelta(seconds=1)))


@pytest.mark.parametrize(("audience", "read"), APIS)
def test_a_token_without_an_issue_time_or_issued_in_the_future_is_refused(
    audience: str, read: Callable[[str], object]
) -> None:
    now = datetime.now(UTC)  # not NOW: the tests before may have taken minutes
    with pytest.raises(Refused, match='missing the "iat" claim'):
        read(_token(audience, exp=now + timedelta(hours=1)))
    later = now + timedelta(minutes=5)
    with pytest.raises(Refused, match="issued in the future"):
        read(_token(audience, iat=later, exp=later + timedelta(hours=1)))
    # Within the allowance for issuers' clocks a little ahead of ours.
    soon = now + timedelta(seconds=10)
    assert read(_token(audience, iat=soon, exp=soon + timedelta(hours=1)))
