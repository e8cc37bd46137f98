"""The sandbox calling model through the sandbox driver, with tokens from the real identity chain."""

from __future__ import annotations

import pytest

from harness.client.calling.protocol import (
    CallingCommunicationError,
    EndReason,
    GroupLocator,
    MeetingId,
    MeetingLink,
    PhoneNumber,
    TeamsUser,
)
from harness.client.calling.sandbox_driver import SandboxCallingDriver
from harness.client.identity import AcsIdentity
from harness.conformance.flows.identity import IdentityFlow
from harness.core.config import load_profile
from harness.sandbox.calling import capabilities_for
from harness.sandbox.server import Sandbox
from harness.wire import contract, transport

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world():
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        driver = SandboxCallingDriver(tenant.calling_base_url, tenant.ca_bundle, sleep=lambda _: None)
        tokens = {}
        for alias in ("adele", "megan"):
            flow = IdentityFlow(tenant)
            flow.sign_in_with_password(alias)
            flow.exchange_token()
            tokens[alias] = str(flow.exchange.token)
        yield sandbox, tenant, driver, tokens
        driver.close()


def agent(world, alias: str = "adele"):
    _, _, driver, tokens = world
    return driver.create_teams_call_agent(tokens[alias])


@pytest.mark.parametrize("scopes, code, sub", [(("voip",), 403, 40231), (("chat",), 401, 44113)])
def test_acs_user_tokens_cannot_create_a_teams_call_agent(world, scopes, code, sub) -> None:
    _, tenant, driver, _ = world
    token = AcsIdentity(tenant).create_user_with_token(scopes).token
    with pytest.raises(CallingCommunicationError) as raised:
        driver.create_teams_call_agent(str(token))
    assert (raised.value.code, raised.value.sub_code) == (code, sub)


@pytest.mark.parametrize(
    "locator, code, sub",
    [
        (MeetingLink("HTTPS://TEAMS.LIVE.COM/meet/123?p=abc"), 400, 40238),
        (MeetingLink("https://teams.microsoft.com/not-a-meeting"), 400, 40210),
        (GroupLocator("00000000-0000-0000-0000-000000000123"), 400, 40209),
    ],
)
def test_the_sdk_locator_checks_throw_synchronously(world, locator, code, sub) -> None:
    with pytest.raises(CallingCommunicationError) as raised:
        agent(world).join(locator)
    assert (raised.value.code, raised.value.sub_code) == (code, sub)


def test_an_invalid_meeting_link_is_diagnosed_with_where_the_link_comes_from(world) -> None:
    from harness.conformance.flows.calling import error_observation

    with pytest.raises(CallingCommunicationError) as raised:
        agent(world).join(MeetingLink("https://teams.microsoft.com/not-a-meeting"))
    observed = error_observation("join", raised.value)
    assert (observed.status, observed.code) == (400, 40210)
    assert "joinWebUrl" in str(observed.remedy) and "Join link" in str(observed.remedy)


def test_a_short_link_and_a_meeting_id_need_the_right_passcode(world) -> None:
    _, tenant, _, _ = world
    meeting = tenant.meeting("regular")
    short = f"https://teams.microsoft.com/meet/{meeting.meeting_id}?p={meeting.passcode}"
    assert agent(world).join(MeetingLink(short)).wait_until().state == "Connected"
    wrong = agent(world).join(MeetingId(meeting.meeting_id, "WRONG1")).wait_until()
    assert wrong.state == "Disconnected" and (wrong.end_reason.code, wrong.end_reason.sub_code) == (404, 0)


def test_regular_meetings_make_teams_users_presenters_and_webinars_attendees(world) -> None:
    _, tenant, _, _ = world
    regular = agent(world).join(MeetingLink(tenant.meeting("regular").join_url)).wait_until()
    webinar_call = agent(world).join(MeetingLink(tenant.meeting("webinar").join_url))
    webinar = webinar_call.wait_until()
    assert regular.role == "Presenter" and webinar.role == "Attendee"
    assert webinar.emulator_defined, "webinar capability values are the emulator's choice"
    assert webinar_call.start_screen_sharing().succeeded, "roles are not honoured in webinars"


def test_an_attendee_whose_role_is_honoured_is_restricted() -> None:
    honoured = capabilities_for("Attendee", honour_roles=True)
    assert honoured["shareScreen"] == {"isPresent": False, "reason": "RoleRestricted"}
    assert honoured["unmuteMic"]["isPresent"]
    assert capabilities_for("Attendee", honour_roles=False)["shareScreen"]["isPresent"]


def test_a_call_rings_every_agent_of_the_callee_and_stops_once_answered(world) -> None:
    _, tenant, _, _ = world
    first, second, caller = agent(world), agent(world), agent(world, "megan")
    call = caller.start_call(TeamsUser(tenant.user("adele").oid))
    assert call.view().state == "Ringing"
    incoming = first.wait_for_incoming_call(timeout=1)
    elsewhere = second.wait_for_incoming_call(timeout=1)
    assert elsewhere is not None and elsewhere.wait_until_ended(timeout=0) is None, "both ring"
    answered = incoming.accept().wait_until()
    assert answered.state == "Connected" and call.view().state == "Connected"
    assert second.wait_for_incoming_call(timeout=0) is None, "answered elsewhere: no longer ringing"
    assert elsewhere.wait_until_ended(timeout=0) == EndReason(487, 10003), "call-end.md: accepted elsewhere"
    assert incoming.wait_until_ended(timeout=0) is None, "taken here: it did not end elsewhere"
    with pytest.raises(CallingCommunicationError) as late:
        elsewhere.accept()
    assert (late.value.code, late.value.sub_code) == (400, 41006), "accept when not Ringing"
    assert answered.id and call.hang_up().end_reason.code == 0


@pytest.mark.parametrize("endpoints", [1, 2])
def test_a_call_rings_on_until_every_endpoint_declined(world, endpoints) -> None:
    """One endpoint declines: the caller's call ends 603/0 (call-end.md's "0 | 603", subcode first). Two:
    it rings on after the first declines, and ends 487/10024 once both did (which side sees 10024 is the
    sandbox's choice: emulator-defined)."""
    sandbox, tenant, _, _ = world
    sandbox.begin_stream(f"declined-on-{endpoints}")  # no agent of an earlier test rings too
    callees, caller = [agent(world) for _ in range(endpoints)], agent(world, "megan")
    call = caller.start_call(TeamsUser(tenant.user("adele").oid))
    ringing = [callee.wait_for_incoming_call(timeout=1) for callee in callees]
    for n, incoming in enumerate(ringing, 1):
        incoming.reject()
        view = call.view()
        assert view.state == ("Disconnected" if n == endpoints else "Ringing"), view
    assert view.end_reason == (EndReason(603, 0) if endpoints == 1 else EndReason(487, 10024))
    assert ("declined" in (view.emulator_defined or "")) is (endpoints == 2)


def test_a_phone_number_must_be_e164(world) -> None:
    with pytest.raises(CallingCommunicationError) as raised:
        agent(world).start_call(PhoneNumber("425-555-0100"))
    assert raised.value.code == 400 and raised.value.emulator_defined


def test_a_group_call_needs_a_thread_id(world) -> None:
    _, tenant, _, _ = world
    targets = [TeamsUser(tenant.user("megan").oid), PhoneNumber("+14255550100")]
    with pytest.raises(CallingCommunicationError) as raised:
        agent(world).start_call(targets)
    assert (raised.value.code, raised.value.sub_code) == (400, 40212)


def test_personal_use_link_constant_is_refused_before_any_service(world) -> None:
    with pytest.raises(CallingCommunicationError) as raised:
        agent(world).join(MeetingLink(contract.PERSONAL_USE_MEETING_LINK))
    assert raised.value.sub_code == 40238


def test_a_meeting_option_change_says_what_it_was_so_it_can_be_undone(world) -> None:
    """The organizer's stand-in answers with the previous values: the scenario's clean-up puts them
    back (before, it answered none and the undo changed nothing)."""
    _, tenant, driver, _ = world
    thread = tenant.meeting("organizer-presents").thread_id
    client = driver.teams_client()
    previous = client.set_meeting_options(thread, attendee_mic=False)
    assert previous == {"attendeeMic": True}
    assert client.set_meeting_options(thread, attendee_mic=previous["attendeeMic"]) == {"attendeeMic": False}
