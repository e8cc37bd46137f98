"""Calling against a live tenant, without one: which driver a live profile gets, what the real SDK's
answers amount to with no sandbox model beside it, and row 1 driven from both ends.

- `[calling] offline = true` (this machine cannot reach Microsoft's calling services): the real SDK
  runs offline on the virtual clock, not cross-checked; its client-side checks are observed and
  everything it accepts SKIPs with "needs Microsoft's calling services".
- Live, a call that ends with one of the SDK's network-failure codes, or an agent it cannot create,
  is that same SKIP with the README's firewall list, never a FAIL.
- Row 1: the callee has her own agent; her app rings, she accepts the call from the expected caller
  (and no one else's), and the verdict comes from the caller's connected call.

The driver selection, the judging and the caller matching run without a browser; the rest runs the
real SDK in Chromium (skipped with the reason without one, a failure under CI=true).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from harness.client.calling import browser, driver_for
from harness.client.calling.browser import BridgeError, shared_browser
from harness.client.calling.browser_driver import (
    OFFLINE_SETTLE_S,
    SDK,
    BrowserCall,
    BrowserCallingDriver,
    BrowserTeamsCallAgent,
    judged,
    network_failure,
)
from harness.client.calling.cross_check import CrossCheckedDriver
from harness.client.calling.protocol import (
    ANY_PHONE_NUMBER,
    NEEDS_CALLING_SERVICES,
    CallingCommunicationError,
    MeetingLink,
    NeedsLiveTenant,
    TeamsUser,
    same_caller,
    teams_user_raw_id,
)
from harness.client.calling.sdk_cassette import SdkCassette
from harness.conformance.flows.calling import CallingFlow
from harness.conformance.flows.identity import IdentityFlow
from harness.core.config import Tenant, load_profile
from harness.core.prerequisites import MissingPrerequisite
from harness.sandbox.server import Sandbox
from harness.wire import transport

TEAMS_FOR_PERSONAL_USE = "https://teams.live.com/meet/9391234567890?p=abcdEFGH"
REGULAR_MEETING = "https://teams.microsoft.com/meet/3401888872340?p=5CKN7S"
FIREWALL = "the firewall list in the README"
OID = "00000000-0000-0000-0000-0000000000b2"


def live(tenant: Tenant, *, offline: bool, mode: str = "live") -> Tenant:
    """The tenant as a live profile gives it: no sandbox model, the browser driver, [calling] offline."""
    return dataclasses.replace(
        tenant, mode=mode, calling_base_url=None, calling_driver="browser", calling_offline=offline
    )


@pytest.fixture
def chromium_not_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Driver selection only: the driver opens no browser until an agent is created."""
    monkeypatch.setattr(browser, "check_available", lambda: None)


# -- which driver a live profile gets (no browser) -------------------------------------------------


def test_a_live_profile_with_calling_offline_gets_the_offline_sdk_on_the_virtual_clock_not_cross_checked(
    chromium_not_needed,
) -> None:
    driver = driver_for(live(load_profile("sandbox").for_replay(), offline=True))
    assert isinstance(driver, BrowserCallingDriver) and not isinstance(driver, CrossCheckedDriver)
    assert (driver.offline, driver.virtual_clock, driver.live_tenant) == (True, True, True)


def test_a_live_profile_that_reaches_microsoft_gets_the_online_sdk_on_the_real_clock(chromium_not_needed) -> None:
    driver = driver_for(live(load_profile("sandbox").for_replay(), offline=False))
    assert isinstance(driver, BrowserCallingDriver)
    assert (driver.offline, driver.virtual_clock, driver.live_tenant) == (False, False, True)


def test_recording_a_live_profile_offline_records_that_it_was_a_live_tenant(chromium_not_needed, tmp_path) -> None:
    cassette = SdkCassette(tmp_path / "row.yaml", record=True, scrub=lambda value: value)
    driver = driver_for(live(load_profile("sandbox").for_replay(), offline=True, mode="record"), sdk_cassette=cassette)
    assert isinstance(driver, BrowserCallingDriver) and driver.offline and driver.live_tenant
    assert (cassette.offline, cassette.virtual_clock, cassette.live_tenant) == (True, True, True)


def test_a_replayed_live_offline_recording_is_not_cross_checked(tmp_path) -> None:
    cassette_file = tmp_path / "row.yaml"
    document = {"format": 1, "offline": True, "virtual_clock": True, "live_tenant": True, "calls": []}
    (tmp_path / "row.calling-sdk.yaml").write_text(yaml.safe_dump(document))
    replayed = load_profile("sandbox").for_replay()  # replay: a sandbox host stands in for the model
    driver = driver_for(
        dataclasses.replace(replayed, calling_driver="browser"),
        sdk_cassette=SdkCassette(cassette_file, record=False, scrub=lambda value: value),
    )
    assert isinstance(driver, BrowserCallingDriver)
    assert (driver.offline, driver.virtual_clock, driver.live_tenant) == (True, False, True)


def test_a_sandbox_profile_is_still_cross_checked_with_the_model(chromium_not_needed) -> None:
    replayed = load_profile("sandbox").for_replay()
    sandbox_mode = dataclasses.replace(replayed, mode="sandbox", calling_driver="browser", calling_offline=False)
    driver = driver_for(sandbox_mode)
    assert isinstance(driver, CrossCheckedDriver)
    assert driver.sdk.offline and not driver.sdk.live_tenant
    driver.close()


# -- what the SDK's answers amount to with no model beside it (no browser) -------------------------


def sdk_error(code: int, sub: int | None) -> CallingCommunicationError:
    return CallingCommunicationError(code, sub, "m")


@pytest.mark.parametrize("sub", [40231, 40238, 40210, 40209])
def test_offline_on_a_live_profile_the_sdks_client_side_checks_are_observations(sub) -> None:
    err = sdk_error(400, sub)
    assert judged(err, "join", offline=True, live_tenant=True) is err


def test_offline_on_a_live_profile_any_other_sdk_error_needs_microsofts_calling_services() -> None:
    skip = judged(sdk_error(401, 44113), "createTeamsCallAgent", offline=True, live_tenant=True)
    assert isinstance(skip, NeedsLiveTenant) and isinstance(skip, MissingPrerequisite)
    assert str(skip).startswith(f"{NEEDS_CALLING_SERVICES}, which this machine cannot reach: ")
    assert "[calling] offline = true" in str(skip) and "not one of its client-side checks" in str(skip)


@pytest.mark.parametrize(("code", "sub"), [(490, 4525), (490, 4522), (496, 4526), (498, 4104), (490, None)])
def test_live_a_network_failure_needs_microsofts_calling_services_and_names_the_firewall_list(code, sub) -> None:
    skip = judged(sdk_error(code, sub), "startCall", offline=False, live_tenant=True)
    assert isinstance(skip, NeedsLiveTenant), skip
    assert str(skip).startswith(f"{NEEDS_CALLING_SERVICES}, which this machine could not reach: ")
    assert FIREWALL in str(skip)


@pytest.mark.parametrize(("code", "sub"), [(412, 41056), (480, 10037), (403, 40231), (603, 0), (500, 0)])
def test_live_any_other_error_is_the_observation(code, sub) -> None:
    err = sdk_error(code, sub)
    assert network_failure(code, sub) is None
    assert judged(err, "startCall", offline=False, live_tenant=True) is err


def test_against_the_sandbox_errors_go_to_the_cross_check_as_they_are() -> None:
    err = sdk_error(490, 4525)
    assert judged(err, "startCall", offline=True, live_tenant=False) is err


class FakePage:
    """A page whose bridge answers from a script: enough for the driver's own logic."""

    virtual_clock = True

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers, self.asked, self.advanced = answers, [], 0

    def call(self, function: str, *args: Any, timeout_s: float = 90.0) -> dict[str, Any]:
        self.asked.append((function, args))
        answer = self.answers[function]
        if isinstance(answer, Exception):
            raise answer
        return answer(*args) if callable(answer) else answer

    def advance(self, ms: int) -> None:
        self.advanced += ms

    def close(self) -> None:
        return None


def ended(code: int, sub: int) -> dict[str, Any]:
    return {
        "ok": True,
        "id": "c1",
        "state": "Disconnected",
        "stateHistory": ["None", "Connecting", "Disconnected"],
        "callEndReason": {"code": code, "subCode": sub},
    }


def test_live_a_call_that_ends_in_a_network_failure_is_a_skip_naming_the_firewall_list() -> None:
    call = BrowserCall(FakePage({"view": ended(490, 4525)}), "c1", live=True, what="startCall")
    with pytest.raises(NeedsLiveTenant) as raised:
        call.wait_until()
    reason = str(raised.value)
    assert reason.startswith(f"{NEEDS_CALLING_SERVICES}, which this machine could not reach: ")
    assert "startCall ended 490/4525 (request failed: CORS or network; None → Connecting → Disconnected)" in reason
    assert FIREWALL in reason


def test_live_a_call_that_ends_otherwise_is_observed() -> None:
    view = BrowserCall(FakePage({"view": ended(480, 10037)}), "c1", live=True).wait_until()
    assert (view.end_reason.code, view.end_reason.sub_code) == (480, 10037)
    assert BrowserCall(FakePage({"view": ended(490, 4525)}), "c1", live=False).wait_until().state == "Disconnected"


def test_live_an_agent_the_sdk_never_creates_needs_microsofts_calling_services(monkeypatch) -> None:
    page = FakePage({"createTeamsCallAgent": BridgeError("the SDK did not answer createTeamsCallAgent within 90 s")})
    driver = BrowserCallingDriver(offline=False, live_tenant=True)
    monkeypatch.setattr(driver, "open_page", lambda start=None: page)
    with pytest.raises(NeedsLiveTenant) as raised:
        driver.create_teams_call_agent("token")
    assert str(raised.value).startswith(f"{NEEDS_CALLING_SERVICES}, which this machine could not reach: ")
    assert "did not create a TeamsCallAgent" in str(raised.value) and FIREWALL in str(raised.value)
    page.answers["createTeamsCallAgent"] = {"ok": False, "error": {"code": 490, "subCode": 4502, "message": "m"}}
    with pytest.raises(NeedsLiveTenant, match="failed createTeamsCallAgent with 490/4502"):
        driver.create_teams_call_agent("token")
    page.answers["createTeamsCallAgent"] = BridgeError("the Calling SDK page failed during createTeamsCallAgent")
    with pytest.raises(BridgeError):  # the bridge itself failing is still a harness fault
        driver.create_teams_call_agent("token")


# -- accepting only the expected caller's call (no browser) ----------------------------------------


def test_callers_match_by_object_id_or_phone_digits() -> None:
    adele = teams_user_raw_id(OID)
    assert same_caller(f"8:orgid:{OID.upper()}", adele)
    assert same_caller(f"8:gcch:{OID}", adele), "another cloud's prefix, the same user"
    assert not same_caller("8:orgid:00000000-0000-0000-0000-0000000000b3", adele)
    assert not same_caller("4:+15550100002", adele) and not same_caller(None, adele) and not same_caller("", adele)
    assert same_caller("4:+1 555 010 0002", "4:+15550100002")
    assert not same_caller("4:+15550100003", "4:+15550100002")
    assert same_caller("4:+15550100003", ANY_PHONE_NUMBER) and not same_caller(adele, ANY_PHONE_NUMBER)


def test_the_browser_agent_accepts_only_the_expected_callers_call() -> None:
    ringing = {"ok": True, "ids": ["from-megan", "from-adele"], "callers": ["8:orgid:megan", f"8:orgid:{OID}"]}
    page = FakePage({"incomingCalls": ringing})
    agent = BrowserTeamsCallAgent(page, offline=False, created_ms=1.0, live_tenant=True)
    incoming = agent.wait_for_incoming_call(timeout=1, caller=teams_user_raw_id(OID))
    assert incoming is not None and (incoming.id, incoming.caller) == ("from-adele", f"8:orgid:{OID}")
    assert agent.wait_for_incoming_call(timeout=0).id == "from-megan", "no caller named: the first"
    assert agent.wait_for_incoming_call(timeout=1, caller="8:orgid:lynne") is None
    assert page.advanced == 1000, "it waited the timeout out (page time) before giving up"


def test_offline_on_a_live_profile_no_call_can_ring() -> None:
    agent = BrowserTeamsCallAgent(FakePage({}), offline=True, created_ms=None, live_tenant=True)
    with pytest.raises(NeedsLiveTenant, match=f"^{NEEDS_CALLING_SERVICES}, which this machine cannot reach"):
        agent.wait_for_incoming_call(timeout=1)


# -- row 1 from both ends, against the sandbox model ----------------------------------------------


@pytest.fixture(scope="module")
def sandbox_tenant():
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        yield load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")


def test_row_1_rings_the_callees_agent_she_accepts_and_the_callers_call_decides(sandbox_tenant) -> None:
    """megan's Teams client would answer by itself in the sandbox; with an agent of her own, her app
    rings instead, and nothing connects until she accepts."""
    flow = CallingFlow(sandbox_tenant, sleep=lambda _: None)
    try:
        assert flow.agent("adele").outcome == "allowed" and flow.agent("megan").outcome == "allowed"
        rung = flow.ring("adele", "megan")
        assert (rung.outcome, rung.evidence["state"]) == ("allowed", "Ringing"), "rung, not auto-answered"
        assert flow.calls["adele"].view().state == "Ringing"
        accepted = flow.accept("megan")
        assert (accepted.outcome, accepted.stage) == ("allowed", "accept")
        assert flow.incoming["megan"].caller == teams_user_raw_id(flow._oid("adele"))
        decided = flow.connected_call()
        assert decided is not None and decided is flow.last and decided is not accepted
        assert (decided.outcome, decided.stage) == ("allowed", "start call")
        assert decided.evidence["states"] == "Connecting → Ringing → Connected"
        assert decided.evidence["other end"] == "megan: Connecting → Connected"
        assert flow.connected_call() is decided, "judged once"
    finally:
        flow.close()


def test_the_callee_accepts_the_expected_callers_call_not_the_first_to_ring(sandbox_tenant) -> None:
    flow = CallingFlow(sandbox_tenant, sleep=lambda _: None)
    try:
        flow.agent("megan")
        flow.agent("adele")
        phone = flow._driver().phone_network()
        phone.dial(sandbox_tenant.phone_number("inbound_caller"), TeamsUser(flow._oid("megan")))  # rings first
        flow.ring("adele", "megan")
        assert flow.accept("megan").outcome == "allowed"
        assert flow.incoming["megan"].caller == teams_user_raw_id(flow._oid("adele"))
        assert flow.connected_call() is flow.settled["megan"], "told from megan's side: her accepted call"
        assert flow.calls["adele"].view().state == "Connected"
    finally:
        flow.close()


def test_a_call_from_someone_else_is_left_ringing_and_nothing_is_accepted(sandbox_tenant, monkeypatch) -> None:
    flow = CallingFlow(sandbox_tenant, sleep=lambda _: None)
    try:
        flow.agent("adele")
        flow.agent("megan")
        flow.expected_callers["megan"], flow.peers["megan"] = teams_user_raw_id(flow._oid("adele")), "adele"
        phone = flow._driver().phone_network()
        phone.dial(sandbox_tenant.phone_number("inbound_caller"), TeamsUser(flow._oid("megan")))  # not adele
        waits = flow.agents["megan"].wait_for_incoming_call
        monkeypatch.setattr(flow.agents["megan"], "wait_for_incoming_call", lambda timeout, caller: waits(0, caller))
        missing = flow.accept("megan")
        assert (missing.outcome, missing.stage) == ("rejected", "incoming call")
        assert missing.message == "no incoming call from adele arrived within 10 s"
        assert missing.evidence["expected caller"] == teams_user_raw_id(flow._oid("adele"))
        assert flow.connected_call() is missing, "a rejection on the way stands"
        assert flow.agents["megan"].wait_for_incoming_call(0, None).caller.startswith("4:"), "still ringing"
    finally:
        flow.close()


# -- the real SDK, offline on a live profile ------------------------------------------------------


@pytest.fixture(scope="module")
def teams_token(browser_here, sandbox_tenant) -> str:
    flow = IdentityFlow(sandbox_tenant)
    flow.sign_in_with_password("adele")
    flow.exchange_token()
    return str(flow.exchange.token)


def test_offline_on_a_live_profile_the_real_sdk_refuses_teams_live_com_and_skips_a_regular_join(
    teams_token, sandbox_tenant
) -> None:
    driver = driver_for(live(sandbox_tenant, offline=True))
    assert isinstance(driver, BrowserCallingDriver) and driver.offline and driver.virtual_clock
    try:
        agent = driver.create_teams_call_agent(teams_token)
        assert agent.evidence[SDK].endswith("(offline)")
        with pytest.raises(CallingCommunicationError) as refused:
            agent.join(MeetingLink(TEAMS_FOR_PERSONAL_USE))
        assert (refused.value.code, refused.value.sub_code) == (400, 40238)
        assert refused.value.agreement is None, "no sandbox model to agree with"
        assert "join failed with 400/40238" in refused.value.evidence[SDK]
        with pytest.raises(NeedsLiveTenant) as skipped:
            agent.join(MeetingLink(REGULAR_MEETING))
        reason = str(skipped.value)
        assert NEEDS_CALLING_SERVICES in reason
        assert reason.startswith(f"{NEEDS_CALLING_SERVICES}, which this machine cannot reach: offline ")
        assert "accepted join (no client-side error)" in reason and "490/4525" in reason
        with pytest.raises(NeedsLiveTenant, match=NEEDS_CALLING_SERVICES):
            agent.start_call(TeamsUser(OID))
        with pytest.raises(NeedsLiveTenant, match=NEEDS_CALLING_SERVICES):
            driver.phone_network()
    finally:
        driver.close()


def test_live_when_microsoft_is_unreachable_a_started_call_is_a_skip_naming_the_firewall_list(
    teams_token, monkeypatch
) -> None:
    """A live driver on a machine whose traffic to Microsoft goes nowhere (the offline browser stands
    in for the firewall): the SDK still creates the agent, the call ends 490/4525, and that is
    "needs Microsoft's calling services", not a FAIL."""
    driver = BrowserCallingDriver(offline=False, virtual_clock=True, live_tenant=True)
    monkeypatch.setattr(driver, "browser", lambda: shared_browser(offline=True, virtual_clock=True))
    try:
        agent = driver.create_teams_call_agent(teams_token)
        call = agent.start_call(TeamsUser(OID))  # live: accepted, not settled by the driver
        with pytest.raises(NeedsLiveTenant) as skipped:
            call.wait_until(timeout=OFFLINE_SETTLE_S)
        reason = str(skipped.value)
        assert reason.startswith(f"{NEEDS_CALLING_SERVICES}, which this machine could not reach: ")
        assert "startCall ended 490/4525" in reason and FIREWALL in reason
    finally:
        driver.close()


@pytest.mark.parametrize(
    ("status", "states", "refused"),
    [
        (403, "Connecting → Disconnected", True),
        (400, "", True),  # the SDK refused it on the client: no call at all
        (0, "Connecting → Disconnected", False),  # a plain end is not a refusal
        (403, "Connecting → Connected → Disconnected", False),  # after media: it was allowed first
        (403, "Connecting → InLobby → Disconnected", False),
        (404, "Connecting → Disconnected", False),
        (490, "Connecting → Disconnected", False),  # the network, not the service
        (500, "Connecting → Disconnected", False),
    ],
)
def test_row_8_counts_only_a_refusal_before_media(status: int, states: str, refused: bool) -> None:
    from harness.conformance.flows.calling import refused_before_media
    from harness.conformance.verdicts import Observation

    observed = Observation("rejected", "join", status=status, evidence={"states": states} if states else {})
    assert refused_before_media(observed)[0] is refused
