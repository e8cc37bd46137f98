"""The real ACS Calling SDK in headless Chromium, offline, against the sandbox model: what the SDK
checks on the client (docs/contracts/calling.md §4) it must answer exactly as the sandbox model does.

Tokens are the sandbox's: a Teams user's ACS token from the real exchange, and an ACS user's.
Without Chromium or the SDK bundle these tests skip with the reason, except under CI=true, where a
missing browser is a failure.
"""

from __future__ import annotations

import pytest

from harness.client.calling import driver_for
from harness.client.calling.browser import SDK_VERSION, CallingSdkPage, SdkAnswer
from harness.client.calling.browser import sdk_version_installed as installed_version
from harness.client.calling.protocol import CallingCommunicationError, GroupLocator, MeetingLink
from harness.conformance.flows.identity import IdentityFlow
from harness.core.config import load_profile
from harness.sandbox.server import Sandbox
from harness.wire import transport

pytestmark = pytest.mark.integration

TEAMS_FOR_PERSONAL_USE = "https://teams.live.com/meet/9391234567890?p=abcdEFGH"
MALFORMED_TEAMS_LINK = "https://teams.microsoft.com/l/meetup-join/not-a-meeting"
GROUP_ID = "8f6a6a0e-3a4e-4c43-9f2b-5d0b4b9e1a11"


@pytest.fixture(scope="module")
def world(browser_here):
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        teams = IdentityFlow(tenant)
        teams.sign_in_with_password("adele")
        teams.exchange_token()
        acs = IdentityFlow(tenant)
        acs.create_acs_user()
        tokens = {"teams": str(teams.exchange.token), "acs": str(acs.acs_user.token)}
        model = driver_for(tenant)
        with CallingSdkPage(offline=True) as page:
            created = page.create_teams_call_agent(tokens["teams"])
            assert created.ok, f"the real SDK did not create a TeamsCallAgent offline: {created}"
            yield page, model, tokens, created
        model.close()


def model_answer(model, token: str, locator) -> tuple[int, int | None]:
    agent = model.create_teams_call_agent(token)
    try:
        agent.join(locator)
    except CallingCommunicationError as err:
        return err.code, err.sub_code
    raise AssertionError(f"the sandbox model accepted {locator}")


def test_the_pinned_sdk_version_is_the_one_installed(world) -> None:
    assert installed_version() == SDK_VERSION


def test_the_real_sdk_creates_a_teams_call_agent_from_a_sandbox_token_offline(world) -> None:
    page, _, _, created = world
    assert created.ok and created.ms is not None
    assert page.blocked_hosts, "offline means the SDK's calls to Microsoft were aborted"
    assert all(h not in ("localhost", "127.0.0.1") for h in page.blocked_hosts)


def test_an_acs_user_token_is_refused_with_40231_by_the_sdk_and_the_model(world) -> None:
    page, model, tokens, _ = world
    answer = SdkAnswer.from_bridge(page.open_page().call("createTeamsCallAgent", tokens["acs"]))  # a fresh page
    assert (answer.ok, answer.code, answer.sub_code) == (False, 403, 40231), answer
    with pytest.raises(CallingCommunicationError) as refused:
        model.create_teams_call_agent(tokens["acs"])
    assert (refused.value.code, refused.value.sub_code) == (403, 40231)


@pytest.mark.parametrize(
    ("locator", "sdk_locator", "expected"),
    [
        (MeetingLink(TEAMS_FOR_PERSONAL_USE), {"meetingLink": TEAMS_FOR_PERSONAL_USE}, (400, 40238)),
        (GroupLocator(GROUP_ID), {"groupId": GROUP_ID}, (400, 40209)),
        (MeetingLink(MALFORMED_TEAMS_LINK), {"meetingLink": MALFORMED_TEAMS_LINK}, (400, 40210)),
    ],
    ids=["teams-for-personal-use (row 9)", "group call (row 10)", "malformed link"],
)
def test_the_sdk_and_the_sandbox_model_refuse_the_same_joins_with_the_same_codes(
    world, locator, sdk_locator, expected
) -> None:
    page, model, tokens, _ = world
    sdk = page.join(sdk_locator)
    assert not sdk.ok and sdk.name == "CallingCommunicationError", sdk
    assert (sdk.code, sdk.sub_code) == expected, f"the real SDK answered {sdk}"
    assert model_answer(model, tokens["teams"], locator) == (sdk.code, sdk.sub_code), "the sandbox model disagrees"
    assert any(e["event"] == "join" and not e["data"].get("ok", True) for e in page.transcript())


def test_the_stable_sdk_takes_coordinates_and_meeting_id_locators_without_a_client_side_error(world) -> None:
    """docs/contracts/calling.md §1: the 2.0.0 typings list the coordinates locator as beta only; the
    runtime of 2.0.0 nevertheless accepts it (and a meeting id with or without passcode) on the
    client: no synchronous error, a call in state None. What the service does with it needs a live tenant."""
    page, _, _, _ = world
    thread = "19:meeting_x@thread.v2"
    coordinates = {"threadId": thread, "organizerId": GROUP_ID, "tenantId": GROUP_ID, "messageId": "0"}
    for locator in (coordinates, {"meetingId": "3401888872340", "passcode": "5CKN7S"}, {"meetingId": "3401888872340"}):
        answer = page.call("join", locator)
        assert answer.ok, f"the real SDK refused {sorted(locator)} client-side: {answer}"
        assert answer.raw["state"] == "None"
        page.call("hangUp", answer.raw["id"])
