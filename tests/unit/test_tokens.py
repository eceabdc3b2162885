"""A source system's client, as its bearer token for the `Sources` API names it."""

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from services.kernel.tokens import SOURCES_AUDIENCE, Refused, mint_source, source_client_from
from services.outcomes.auth import caller_from

KEY = "unit-test-token-key-of-32-bytes-or-more"
NOW = datetime.now(UTC)


def _signed(**claims: object) -> str:
    everything = {"sub": "nav-arena", "aud": SOURCES_AUDIENCE, "exp": NOW + timedelta(hours=1)}
    return f"Bearer {jwt.encode(everything | claims, KEY, algorithm='HS256')}"


def test_a_client_covers_its_systems_and_its_organisations() -> None:
    token = mint_source(KEY, "oslo", ["kommune", "fylke"], ["0301"], now=NOW)
    client = source_client_from(f"Bearer {token}", KEY)

    assert client.name == "oslo"
    assert (client.covers_system("kommune"), client.covers_system("fylke")) == (True, True)
    assert client.covers_system("nav") is False
    assert (client.covers_org("0301"), client.covers_org("4601")) == (True, False)


def test_a_client_bound_to_no_organisation_covers_any() -> None:
    client = source_client_from(f"Bearer {mint_source(KEY, 'nav-arena', ['nav'], now=NOW)}", KEY)
    assert client.covers_org("974760673")


@pytest.mark.parametrize("systems", [None, [], ["nav", "skatt"], "nav", [5]])
def test_a_token_that_names_no_known_source_system_is_refused(systems: object) -> None:
    claims = {} if systems is None else {"systems": systems}
    with pytest.raises(Refused, match="the token is not valid: its systems must"):
        source_client_from(_signed(**claims), KEY)


def test_organisations_that_are_not_a_list_are_refused() -> None:
    with pytest.raises(Refused, match="its orgs must be a list of organisation numbers"):
        source_client_from(_signed(systems=["nav"], orgs="974760673"), KEY)


def test_a_token_opens_only_the_api_it_is_for() -> None:
    source = f"Bearer {mint_source(KEY, 'nav-arena', ['nav'], now=NOW)}"
    with pytest.raises(Refused, match="Audience doesn't match"):
        caller_from(source, KEY)  # the Alerts API's reading


def test_a_token_that_names_no_client_is_refused() -> None:
    with pytest.raises(Refused, match="its sub names no one"):
        source_client_from(_signed(sub="", systems=["nav"]), KEY)
