"""The exchange's 401 InvalidAccessToken has one body for every cause (docs/contracts/identity.md §1.3): the
diagnosis names the cause from the Entra token the client sent (exp, aud, scp) at the exchange's time, and
gives that cause's remedy. First the reading itself, then each cause met end to end against the sandbox."""

from __future__ import annotations

import pytest

from harness.conformance import diagnosis
from harness.conformance.flows.identity import IdentityFlow
from harness.core.config import load_profile
from harness.wire import contract, tokens

NOW = 1_767_603_600  # 2026-01-05T09:00:00Z
GOOD = {"aud": contract.ACS_RESOURCE, "exp": NOW + 3600, "scp": "Teams.ManageCalls Teams.ManageChats"}
INVALID = (401, "InvalidAccessToken")


def diagnosed(**claims: object) -> diagnosis.Diagnosis:
    found = diagnosis.for_exchange(*INVALID, tokens.placeholder({**GOOD, **claims}), NOW)
    assert found is not None
    return found


def test_each_cause_is_named_with_what_was_seen_and_its_own_remedy() -> None:
    expired = diagnosed(exp=NOW - 900)
    audience = diagnosed(aud="https://graph.microsoft.com", scp="User.Read")
    scopes = diagnosed(scp="Teams.ManageChats")
    assert "had expired (exp 2026-01-05T08:45:00Z, the exchange at 2026-01-05T09:00:00Z)" in expired.meaning
    assert "acquire_token_silent" in expired.remedy
    assert "'https://graph.microsoft.com'" in audience.meaning and "not for Graph" in audience.remedy
    # a Graph token lacks the Teams scopes as a matter of course: the audience is the cause, not the scopes
    assert "lacks" not in audience.meaning and "permission" not in audience.remedy
    assert "lacks Teams.ManageCalls" in scopes.meaning and "'Teams.ManageChats'" in scopes.meaning
    assert "grant consent" in scopes.remedy
    remedies = {expired.remedy, audience.remedy, scopes.remedy, diagnosis.ACS[INVALID].remedy}
    assert len(remedies) == 4, "every cause has its own remedy"


def test_two_causes_seen_are_both_named() -> None:
    both = diagnosed(exp=NOW, scp="Teams.ManageCalls")  # exp == now: expired
    assert "had expired" in both.meaning and "lacks Teams.ManageChats" in both.meaning
    assert "acquire_token_silent" in both.remedy and "grant consent" in both.remedy


def test_a_v2_token_naming_the_acs_app_id_as_audience_is_not_blamed_for_it() -> None:
    assert diagnosed(aud=diagnosis.ACS_APP_ID).meaning.startswith("the Entra token's exp, aud and scp are as ACS")


def test_what_is_not_an_entra_token_is_named_as_such() -> None:
    assert "not a JWT (it is empty)" in str(diagnosis.for_exchange(*INVALID, "", NOW))
    assert "not a JWT" in str(diagnosis.for_exchange(*INVALID, "invalid", NOW))
    acs = tokens.placeholder({"skypeid": "acs:x", "acsScope": "voip", "exp": NOW + 60})
    assert "(an ACS token)" in str(diagnosis.for_exchange(*INVALID, acs, NOW))


def test_a_token_that_looks_right_gets_the_general_remedy_and_says_what_was_not_seen() -> None:
    found = diagnosed()
    assert "cannot read" in found.meaning and found.remedy == diagnosis.ACS[INVALID].remedy


def test_other_answers_keep_their_own_diagnosis() -> None:
    token = tokens.placeholder({**GOOD, "exp": NOW - 1})
    assert diagnosis.for_exchange(400, "ValidationError", token, NOW) == diagnosis.ACS[(400, "ValidationError")]
    assert diagnosis.for_exchange(*INVALID, None, NOW) == diagnosis.ACS[INVALID]


# -- end to end: the sandbox answers every cause with the same body; the diagnosis tells them apart ------------


@pytest.fixture(scope="module")
def sandbox():  # type: ignore[no-untyped-def]
    from harness.sandbox.server import Sandbox
    from harness.wire import transport

    with Sandbox(deterministic=True) as sandbox, transport.route_hosts(sandbox.host_routes()):
        yield sandbox


def flow(sandbox, tenant: str = "contoso") -> IdentityFlow:  # type: ignore[no-untyped-def]
    profile = load_profile("sandbox")
    return IdentityFlow(profile.for_sandbox(sandbox.tenant_info(tenant), sandbox.host_routes(), "sandbox"))


def rejected(observed) -> None:  # type: ignore[no-untyped-def]
    assert (observed.outcome, observed.status, observed.code) == ("rejected", *INVALID), observed
    assert observed.message == "Provided access token is not valid."


@pytest.mark.integration
def test_an_expired_token_is_diagnosed_as_expired(sandbox) -> None:  # type: ignore[no-untyped-def]
    identity = flow(sandbox)
    identity.sign_in_with_password("licensed")
    observed = identity.exchange_token("expired")
    rejected(observed)
    assert "had expired" in str(observed.diagnosis) and "acquire_token_silent" in str(observed.remedy)


@pytest.mark.integration
def test_a_graph_token_is_diagnosed_as_for_another_audience(sandbox) -> None:  # type: ignore[no-untyped-def]
    identity = flow(sandbox)
    identity.sign_in_with_password("licensed", (contract.GRAPH_USER_READ,))
    observed = identity.exchange_token()
    rejected(observed)
    assert "https://graph.microsoft.com" in str(observed.diagnosis) and "expired" not in str(observed.diagnosis)
    assert "not for Graph" in str(observed.remedy)


@pytest.mark.integration
def test_a_token_without_teams_manage_calls_is_diagnosed_as_missing_it(sandbox) -> None:  # type: ignore[no-untyped-def]
    identity = flow(sandbox, "calls-scope-missing")  # its app has consent for Teams.ManageChats only
    identity.sign_in_with_password("licensed", (contract.TEAMS_MANAGE_CHATS,))
    observed = identity.exchange_token()
    rejected(observed)
    assert "lacks Teams.ManageCalls" in str(observed.diagnosis) and "expired" not in str(observed.diagnosis)
    assert "grant consent" in str(observed.remedy)


@pytest.mark.integration
def test_an_acs_users_token_is_diagnosed_as_not_an_entra_token(sandbox) -> None:  # type: ignore[no-untyped-def]
    identity = flow(sandbox)
    identity.sign_in_with_password("licensed")
    identity.create_acs_user()
    observed = identity.exchange_token("acs-user")
    rejected(observed)
    assert "not an Entra ID access token (an ACS token)" in str(observed.diagnosis)
