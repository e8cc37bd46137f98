"""The browser calling driver and `cte run --calling browser`: the real Calling SDK behind the driver
protocol, offline against the sandbox, cross-checked with the sandbox model.

The comparison rules and the SDK shapes are checked without a browser; the rest runs the real SDK
in Chromium (skipped with the reason without one, a failure under CI=true).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from harness.client.calling.browser import BridgeError
from harness.client.calling.browser_driver import SDK, BrowserCallingDriver, checked, locator_data, target_data
from harness.client.calling.cross_check import MODEL, compare
from harness.client.calling.protocol import (
    NEEDS_CALLING_SERVICES,
    CallingCommunicationError,
    GroupLocator,
    MeetingCoordinates,
    MeetingId,
    MeetingLink,
    NeedsLiveTenant,
    PhoneNumber,
    TeamsUser,
)
from harness.conformance.flows.identity import IdentityFlow
from harness.conformance.verdicts import WITNESSES_AGREE as AGREE
from harness.core.cassettes import display_path
from harness.core.config import load_profile
from harness.core.places import SUITE_PYTEST_ARGS
from harness.core.prerequisites import MissingPrerequisite
from harness.sandbox.server import Sandbox
from harness.wire import transport

ROOT = Path(__file__).resolve().parent.parent


def sdk_error(code: int, sub: int, message: str = "m") -> CallingCommunicationError:
    return CallingCommunicationError(code, sub, message, evidence={SDK: f"threw {code}/{sub}"})


# -- the comparison (no browser) -------------------------------------------------------------------


def test_both_refusing_with_the_same_code_is_the_sdks_error_with_both_answers_and_agreement() -> None:
    with pytest.raises(CallingCommunicationError) as raised:
        compare("join", sdk_error(400, 40238, "model says"), sdk_error(400, 40238, "sdk says"))
    err = raised.value
    assert (err.code, err.sub_code, err.message) == (400, 40238, "sdk says")
    assert err.agreement is not None and err.agreement[0] is True
    assert err.evidence[MODEL] == "400/40238 model says" and SDK in err.evidence


@pytest.mark.parametrize(
    ("model", "why"),
    [(None, "join accepted"), (sdk_error(400, 40210), "400/40210")],
    ids=["model accepted", "model gave another code"],
)
def test_the_sdk_refusing_what_the_model_did_not_refuse_alike_is_a_disagreement(model, why) -> None:
    with pytest.raises(CallingCommunicationError) as raised:
        compare("join", model, sdk_error(400, 40238))
    assert raised.value.sub_code == 40238, "the SDK's answer is the observation"
    assert raised.value.agreement == (False, f"{SDK}: 400/40238; {MODEL}: {why}" + ("" if model is None else " m"))


def test_a_model_refusing_with_a_client_side_code_the_sdk_did_not_raise_is_a_disagreement() -> None:
    offline = NeedsLiveTenant("needs a live tenant: offline ...")
    with pytest.raises(CallingCommunicationError) as raised:
        compare("join", sdk_error(400, 40209), offline)
    assert raised.value.agreement is not None and raised.value.agreement[0] is False
    assert "refused client-side (40209)" in raised.value.agreement[1]


@pytest.mark.parametrize(
    "model",
    [None, sdk_error(412, 41056), sdk_error(480, 10037)],
    ids=["model accepted", "model refused 41056", "model refused 10037"],
)
def test_what_the_sdk_accepted_offline_needs_a_live_tenant_whatever_the_model_said(model) -> None:
    with pytest.raises(NeedsLiveTenant) as raised:
        compare("startCall", model, NeedsLiveTenant("needs a live tenant: offline the SDK could not reach Microsoft"))
    assert str(raised.value).startswith("needs a live tenant")
    assert isinstance(raised.value, MissingPrerequisite), "a SKIP, never a verdict"


@pytest.mark.parametrize(
    ("model", "sdk"),
    [(sdk_error(401, 44113), None), (None, sdk_error(401, 44113))],
    ids=["model refused server-side", "SDK error not client-side"],
)
def test_every_offline_skip_of_the_cross_check_says_it_needs_microsofts_calling_services(model, sdk) -> None:
    with pytest.raises(NeedsLiveTenant) as raised:
        compare("createTeamsCallAgent", model, sdk)
    assert str(raised.value).startswith("needs a live tenant: ") and NEEDS_CALLING_SERVICES in str(raised.value)


def test_a_server_side_refusal_by_the_model_of_an_agent_the_sdk_created_needs_a_live_tenant() -> None:
    with pytest.raises(NeedsLiveTenant, match="only the service can refuse it"):
        compare("createTeamsCallAgent", sdk_error(401, 44113), None)


def test_an_sdk_error_that_is_not_a_client_side_check_needs_a_live_tenant_offline() -> None:
    """Offline, an SDK error other than its own client-side checks comes from unreachable services:
    nothing to compare with the model, nothing to judge."""
    with pytest.raises(NeedsLiveTenant) as raised:
        compare("createTeamsCallAgent", None, sdk_error(401, 44113, "no voip"))
    assert "failed createTeamsCallAgent with 401/44113 (no voip), not one of its client-side checks" in str(
        raised.value
    )


def test_both_accepting_raises_nothing() -> None:
    assert compare("createTeamsCallAgent", None, None) is None


# -- the SDK's shapes (docs/contracts/calling.md §1) ----------------------------------------------------


def test_locators_and_targets_take_the_sdks_shapes() -> None:
    assert locator_data(MeetingLink("https://l")) == {"meetingLink": "https://l"}
    assert locator_data(MeetingId("123 456", "pass")) == {"meetingId": "123 456", "passcode": "pass"}
    assert locator_data(MeetingId("123")) == {"meetingId": "123"}
    assert locator_data(MeetingCoordinates("19:t", "o", "t", "0")) == {
        "threadId": "19:t",
        "organizerId": "o",
        "tenantId": "t",
        "messageId": "0",
    }
    assert locator_data(GroupLocator("g")) == {"groupId": "g"}
    assert target_data(TeamsUser("oid")) == {"microsoftTeamsUserId": "oid"}
    assert target_data(PhoneNumber("+1")) == {"phoneNumber": "+1"}


def test_an_sdk_error_becomes_a_calling_error_and_a_bridge_error_a_harness_fault() -> None:
    error = {"name": "CallingCommunicationError", "code": 400, "subCode": 40209, "message": "Invalid"}
    with pytest.raises(CallingCommunicationError) as raised:
        checked({"ok": False, "error": error, "ms": 1.0}, "join")
    assert (raised.value.code, raised.value.sub_code) == (400, 40209)
    assert raised.value.evidence == {SDK: "join failed with 400/40209 after 1.0 ms"}
    with pytest.raises(BridgeError, match="join failed in the bridge: BridgeError: no TeamsCallAgent"):
        checked({"ok": False, "error": {"name": "BridgeError", "message": "no TeamsCallAgent"}}, "join")
    assert checked({"ok": True, "id": "c"}, "join")["id"] == "c"


# -- the CLI's one-line refusals -------------------------------------------------------------------


def cte(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.run.cli", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )


def test_a_missing_sdk_is_named_with_its_fix_before_anything_runs(tmp_path) -> None:
    result = cte("run", "--calling", "browser", env={"CTE_CALLING_SDK_DIR": str(tmp_path)})
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("cte: --calling browser cannot run here: ") and line.endswith("(make calling-sdk)")


def test_an_unknown_calling_driver_in_the_environment_is_named(tmp_path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *SUITE_PYTEST_ARGS,
            "-q",
            "-p",
            "no:cacheprovider",
            "--cte-report-dir",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "CTE_CALLING": "teams-desktop"},
    )
    assert result.returncode != 0
    assert "calling driver 'teams-desktop' is not valid; use one of sandbox, browser (--calling)" in (
        result.stdout + result.stderr
    )


# -- the real SDK ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def teams_token(browser_here) -> str:
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        flow = IdentityFlow(tenant)
        flow.sign_in_with_password("adele")
        flow.exchange_token()
        return str(flow.exchange.token)


def test_offline_a_started_call_is_tracked_to_its_network_failure_and_needs_a_live_tenant(teams_token) -> None:
    """startCall through the bridge: the SDK accepts it, the page tracks its states to the end the
    SDK gives offline (490/4525, docs/contracts/calling.md §4), and the driver says a live tenant is needed."""
    driver = BrowserCallingDriver(offline=True)
    try:
        started = time.perf_counter()
        agent = driver.create_teams_call_agent(teams_token)
        created_s = time.perf_counter() - started
        assert "TeamsCallAgent created in" in agent.evidence[SDK]
        with pytest.raises(NeedsLiveTenant) as raised:
            agent.start_call(TeamsUser("00000000-0000-0000-0000-0000000000b2"))
        reason = str(raised.value)
        assert "accepted startCall (no client-side error)" in reason
        assert "None → Connecting → Disconnected, 490/4525" in reason
        assert reason.startswith("needs a live tenant: offline, ") and NEEDS_CALLING_SERVICES in reason
        events = [e["event"] for e in agent.page.transcript()]
        assert events[:1] == ["createTeamsCallAgent"] and "startCall" in events
        assert events.count("stateChanged") >= 2, events
        with pytest.raises(NeedsLiveTenant, match="no call can reach"):
            agent.wait_for_incoming_call(timeout=1)
        with pytest.raises(NeedsLiveTenant, match="no phone network"):
            driver.phone_network()
        print(f"\nTeamsCallAgent offline on the virtual clock: {created_s:.2f} s")
    finally:
        driver.close()


def run_browser(tmp_path: Path, profile: str, keyword: str) -> dict[str, dict]:
    report = tmp_path / profile
    cte("run", "-q", "--calling", "browser", "--profile", profile, "-k", keyword, "--report-dir", str(report))
    document = json.loads((report / "conformance.json").read_text())
    return {s["name"]: s for s in document["scenarios"]}


def test_cte_run_calling_browser_rejects_rows_9_and_10_with_sdk_evidence_and_skips_what_needs_a_live_tenant(
    browser_here, tmp_path
) -> None:
    scenarios = run_browser(
        tmp_path, "sandbox", "personal_use or groupcall_locator or acs_users_token or make_a_voip or channel"
    )
    for name, sub in [
        ("Join a Teams meeting scheduled in an application for personal use", 40238),
        ("A group-call locator is refused by a TeamsCallAgent with 400/40209", 40209),
        ("A TeamsCallAgent cannot be created with an ACS user's token", 40231),
    ]:
        s = scenarios[name]
        assert (s["verdict"], s["says"], s["evidence"]["code"]) == ("PASS", "correctly rejected", sub), s
        assert f"failed with {s['evidence']['status']}/{sub} after " in s["evidence"][SDK]
        assert s["evidence"][MODEL].startswith(f"{s['evidence']['status']}/{sub} ")
        assert [c["name"] for c in s["evidence"]["checks"] if c["passed"]] == [AGREE]
    for name in ("Make a VoIP call to a Teams user", "Join a channel Teams meeting"):
        s = scenarios[name]
        assert s["verdict"] == "SKIP", s
        assert s["detail"].startswith("needs a live tenant: offline, the real SDK"), s["detail"]
        assert NEEDS_CALLING_SERVICES in s["detail"], "the words every such SKIP carries"
        assert "TeamsCallAgent created in" in s["evidence"][SDK], "the agent itself came from the real SDK"
    table = (tmp_path / "sandbox" / "conformance.md").read_text()
    assert "| PASS | 400/40238 · real SDK and sandbox model agree |" in table  # row 9
    # row 10 (a Teams call that rings the app, joined by its id): offline no call rings the real SDK
    assert "| 10 | Join Teams 1:1 or group call | ❌ not supported | not covered in this run |" in table
    row_1 = "| 1 | Make a voice-over-IP (VoIP) call to Teams user | ✔️ supported | skipped | SKIP | needs a live tenant"
    assert row_1 in table


def test_a_model_that_disagrees_with_the_real_sdk_fails_the_row(browser_here, tmp_path) -> None:
    scenarios = run_browser(tmp_path, "personal-use-joinable", "personal_use")
    s = scenarios["Join a Teams meeting scheduled in an application for personal use"]
    assert (s["verdict"], s["says"]) == ("FAIL", "rejected, but a check failed"), s
    assert s["detail"] == f"{AGREE}: {SDK}: 400/40238; {MODEL}: join accepted"
    report = (tmp_path / "personal-use-joinable" / "conformance.md").read_text()
    assert "| 9 | Join Teams meeting scheduled in an application for personal use |" in report
    assert "400/40238 · real SDK and sandbox model disagree" in report


# -- recordings of the real SDK --------------------------------------------------------------------

RECORDED = "personal_use or groupcall_locator or make_a_voip"


@pytest.fixture(scope="module")
def recorded(browser_here, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """`cte record --calling browser` into a new folder (the committed cassettes/ stay as they are)."""
    cassettes = tmp_path_factory.mktemp("recorded-cassettes") / "cassettes"
    report = tmp_path_factory.mktemp("recorded")
    result = cte(
        "record", "--calling", "browser", "-k", RECORDED, "--report-dir", str(report),
        "--cassette-dir", str(cassettes),
    )  # fmt: skip
    assert (report / "conformance.json").exists(), result.stdout + result.stderr
    document = json.loads((report / "conformance.json").read_text())
    return cassettes, {s["name"]: s for s in document["scenarios"]}


def replay(cassettes: Path, report: Path, keyword: str = RECORDED) -> dict[str, dict]:
    """Replay with --calling browser where no browser or SDK could run: the recordings answer."""
    env = {"CTE_CALLING_SDK_DIR": str(report / "no-sdk-here")}
    cte(
        "run", "--mode", "replay", "--calling", "browser", "-k", keyword, "--report-dir", str(report),
        "--cassette-dir", str(cassettes), env=env,
    )  # fmt: skip
    return {s["name"]: s for s in json.loads((report / "conformance.json").read_text())["scenarios"]}


def test_what_the_real_sdk_answered_is_recorded_scrubbed_and_replayed_without_a_browser(recorded, tmp_path) -> None:
    cassettes, in_record = recorded
    files = sorted(cassettes.rglob("*.calling-sdk.yaml"))
    assert len(files) == 3, files
    from harness.run.audit import scan

    assert scan(files) == [], "a recording of the SDK carries no secret"
    voip = yaml.safe_load(next(f for f in files if f.name.startswith("make-a-voip")).read_text())
    assert voip["offline"] is True and not voip["live_tenant"]
    # Row 1 drives both ends: adele's page, then megan's, each creates an agent; then adele calls.
    assert [(c["page"], c["call"]) for c in voip["calls"][:3]] == [
        (0, "createTeamsCallAgent"),
        (1, "createTeamsCallAgent"),
        (0, "startCall"),
    ]
    assert any(e["event"] == "stateChanged" for e in voip["transcripts"]["0"]), "the SDK's events are kept"
    in_replay = replay(cassettes, tmp_path / "replay")
    assert {n: (s["verdict"], s["detail"]) for n, s in in_replay.items()} == {
        n: (s["verdict"], s["detail"]) for n, s in in_record.items()
    }
    row9 = in_replay["Join a Teams meeting scheduled in an application for personal use"]
    assert row9["verdict"] == "PASS" and "failed with 400/40238" in row9["evidence"][SDK]


def test_a_replay_that_asks_the_sdk_something_else_names_the_call_and_the_recording(recorded, tmp_path) -> None:
    cassettes, _ = recorded
    work = tmp_path / "cassettes"
    shutil.copytree(cassettes, work)
    (path,) = work.rglob("a-group-call-locator-is-refused-by-a-teamscallagent-with-400-40209.calling-sdk.yaml")
    path.write_text(path.read_text().replace("groupId: 00000000-0000-0000-0000-00000000ca11", "meetingLink: x"))
    scenario = replay(work, tmp_path / "replay", "groupcall_locator")[
        "A group-call locator is refused by a TeamsCallAgent with 400/40209"
    ]
    assert scenario["verdict"] == "ERROR"
    assert scenario["detail"].startswith(
        f'replay: {display_path(path)}: call 2 is page 0 join[{{"groupId": "<guid>"}}], but the '
        'recording has page 0 join[{"meetingLink": "x"}]; '
        "re-record with: cte record -k test_a_groupcall_locator_is_refused_by_a_teamscallagent_with_40040209 "
    ), scenario["detail"]


def test_every_bridge_function_answers_in_plain_data_even_when_misused(teams_token) -> None:
    """The page's JSON bridge never throws: each function, asked about a call or an incoming call
    that does not exist (or before an agent exists), answers {ok: false, error} in one piece."""
    driver = BrowserCallingDriver(offline=True)
    try:
        page = driver.open_page()
        assert page.call("startCall", [{"microsoftTeamsUserId": "x"}], {})["error"]["message"] == (
            "no TeamsCallAgent: create one first"
        )
        assert page.call("createTeamsCallAgent", teams_token)["ok"]
        assert page.call("createTeamsCallAgent", teams_token)["error"]["message"] == (
            "this page already has a TeamsCallAgent"
        )
        for function, args in [
            ("view", ["nope"]),
            ("hangUp", ["nope"]),
            ("unmute", ["nope"]),
            ("startVideo", ["nope"]),
            ("startScreenSharing", ["nope"]),
            ("lobbyParticipants", ["nope"]),
            ("admit", ["nope", "8:orgid:x"]),
            ("accept", ["nope"]),
            ("reject", ["nope"]),
        ]:
            answer = page.call(function, *args)
            assert answer["ok"] is False and answer["error"]["name"] == "BridgeError", (function, answer)
            assert "nope" in answer["error"]["message"], (function, answer)
        assert page.call("incomingCalls") == {"ok": True, "ids": [], "callers": []}
        missing = page.call("noSuchFunction")["error"]
        assert (missing["name"], missing["message"]) == ("BridgeError", "no bridge function noSuchFunction")
        assert page.call("dispose")["ok"]
    finally:
        driver.close()


def test_a_replay_that_stops_short_of_the_recording_is_named(recorded, tmp_path) -> None:
    cassettes, _ = recorded
    work = tmp_path / "cassettes"
    shutil.copytree(cassettes, work)
    (path,) = work.rglob("a-group-call-locator-is-refused-by-a-teamscallagent-with-400-40209.calling-sdk.yaml")
    document = yaml.safe_load(path.read_text())
    recorded_calls = len(document["calls"])
    document["calls"].append({**document["calls"][-1], "call": "hangUp"})
    path.write_text(yaml.safe_dump(document))
    scenario = replay(work, tmp_path / "replay", "groupcall_locator")[
        "A group-call locator is refused by a TeamsCallAgent with 400/40209"
    ]
    assert scenario["verdict"] == "ERROR", scenario
    assert (
        f"the replay asked for {recorded_calls} of {recorded_calls + 1} recorded calls; the next was page 0 hangUp"
        in scenario["detail"]
    )
