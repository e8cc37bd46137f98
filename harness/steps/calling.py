"""Steps for harness/features/calling: each a few lines that call harness.conformance.flows.calling."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance.flows.calling import ENDPOINTS, CallingFlow, refused_before_media
from harness.conformance.flows.chat import ChatFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.table import WEBINAR_FOOTNOTE
from harness.conformance.verdicts import Expectation, ExpectedRejection

TABLE = "seed table row {row}: {text}"
CALL_END = "docs/contracts/calling.md §2: documented codes (call-end.md, calling-sdk.md, the SDK's error catalogue)"
TOKEN_REFRESH = (
    "docs/contracts/calling.md §7: a call longer than the ACS token's lifetime goes on when the app's credential "
    "renews the token (AzureCommunicationTokenCredential with tokenRefresher and refreshProactively)"
)


def _row_source(run: ScenarioRun) -> str:
    from harness.conformance.table import row

    return TABLE.format(row=run.row, text=row(run.row).scenario) if run.row else CALL_END


@given(parsers.parse('"{alias}" has a Teams call agent'))
def has_agent(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.agent(alias))


@given(parsers.parse('"{alias}" tries to create a Teams call agent with an ACS user\'s token'))
def agent_from_acs_token(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.agent_from_acs_user_token(alias))


@when(parsers.parse('"{caller}" calls the Teams user "{callee}"'))
def call_user(calling_flow: CallingFlow, scenario_run: ScenarioRun, caller: str, callee: str) -> None:
    scenario_run.observe(calling_flow.call_teams_user(caller, callee))


@when(parsers.parse('"{caller}" calls the outbound phone number'))
def call_phone(calling_flow: CallingFlow, scenario_run: ScenarioRun, caller: str) -> None:
    scenario_run.observe(calling_flow.call_phone(caller))


@when(parsers.parse('"{caller}" calls "{callee}", whose app is ringing'))
def ring(calling_flow: CallingFlow, scenario_run: ScenarioRun, caller: str, callee: str) -> None:
    scenario_run.observe(calling_flow.ring(caller, callee))


@when(parsers.parse('a phone caller dials "{callee}"'))
def phone_dials(calling_flow: CallingFlow, scenario_run: ScenarioRun, callee: str) -> None:
    scenario_run.observe(calling_flow.phone_dials(callee))


@when(parsers.parse('"{callee}" accepts the incoming call'))
def accept(calling_flow: CallingFlow, scenario_run: ScenarioRun, callee: str) -> None:
    scenario_run.observe(calling_flow.accept(callee))


@when(parsers.parse('"{callee}" declines the call from "{caller}"'))
def decline(calling_flow: CallingFlow, scenario_run: ScenarioRun, callee: str, caller: str) -> None:
    scenario_run.observe(calling_flow.reject(callee, caller))


# -- one user on two endpoints (desktop and mobile): answered or declined elsewhere --------------------


@given(parsers.parse('"{alias}" has a Teams call agent on her desktop and on her mobile'))
def agents_on_endpoints(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.agents_on_endpoints(alias))


@when(parsers.parse('"{callee}" accepts the incoming call on her {endpoint}'))
def accept_on(calling_flow: CallingFlow, scenario_run: ScenarioRun, callee: str, endpoint: str) -> None:
    scenario_run.observe(calling_flow.accept(callee, endpoint))


@when(parsers.parse('"{callee}" declines the call from "{caller}" on her desktop and on her mobile'))
def decline_everywhere(calling_flow: CallingFlow, scenario_run: ScenarioRun, callee: str, caller: str) -> None:
    scenario_run.observe(calling_flow.reject(callee, caller, ENDPOINTS))


@then(
    parsers.parse(
        'the call stops ringing on "{callee}"\'s {endpoint}, where it ends with code {code:d} and subcode {sub:d}'
    )
)
def ended_elsewhere(
    calling_flow: CallingFlow, scenario_run: ScenarioRun, callee: str, endpoint: str, code: int, sub: int
) -> None:
    """Judged on the endpoint that did not answer: its incoming call's callEndReason; the endpoint that
    accepted and the caller must be connected (checks)."""
    rejection = ExpectedRejection(status=code, code=sub)
    scenario_run.expect(
        Expectation(
            scenario_run.outcome("unsupported"),
            CALL_END,
            rejection,
            stage=f"on the {endpoint}",
            rejected_says="ended there as documented",
            documented_as=f"the call ends {code}/{sub} on the callee's endpoints that did not answer",
        )
    )
    scenario_run.observe(calling_flow.answered_elsewhere(callee, endpoint))
    for who, (connected, detail) in calling_flow.connected_elsewhere(callee).items():
        scenario_run.check(f"{who} connected", connected, detail)
    scenario_run.require_verdict()


# -- a call that outlives the first ACS token ------------------------------------------------------


@when(parsers.parse('"{alias}"\'s ACS token has expired'))
def acs_token_expired(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str, cte) -> None:  # type: ignore[no-untyped-def]
    if (observed := calling_flow.outlive_token(alias, cte.token_wait_limit())) is not None:
        scenario_run.observe(observed)


@then(parsers.parse('"{alias}"\'s call goes on, with a new ACS token from the token refresher'))
def call_goes_on(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    """The verdict is the call after the expiry (still connected, an unmute succeeds: the service checks
    the token for both) and the credential: a second token, exchanged after the first expired, in use."""
    scenario_run.expect(Expectation(scenario_run.outcome("supported"), TOKEN_REFRESH))
    observed = calling_flow.call_after_token_expiry(alias)
    scenario_run.observe(observed)
    if observed.outcome == "allowed":
        unmuted = str(observed.evidence.get("unmute", "not tried: the call was not connected"))
        scenario_run.check("unmute succeeded after the token expired", unmuted == "succeeded", unmuted)
    scenario_run.check(
        "a second ACS token, exchanged after the first expired, is the one in use",
        *calling_flow.acs_token_renewed(alias),
    )
    scenario_run.require_verdict()


@when(
    parsers.re(
        r'"(?P<alias>[\w-]+)" joins the (?P<kind>[\w-]+) meeting by (?P<how>link|meeting id and passcode|coordinates)'
    )
)
def join(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str, kind: str, how: str) -> None:
    scenario_run.observe(calling_flow.join(alias, calling_flow.locator(kind, how)))


@when(parsers.parse('"{alias}" joins a meeting of Teams for personal use by its link'))
def join_personal(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.join_personal_use_meeting(alias))


@when(parsers.re(r'"(?P<caller>[\w-]+)" starts a Teams (?P<kind>1:1|group) call that rings "(?P<callee>[\w-]+)"'))
def ring_in_a_call(
    calling_flow: CallingFlow, chat_flow: ChatFlow, scenario_run: ScenarioRun, caller: str, kind: str, callee: str
) -> None:
    thread_id = None
    if kind == "group":  # a Teams group call lives on a group chat's thread (Graph makes the chat)
        scenario_run.observe(chat_flow.share("group", caller, callee))
        thread_id = chat_flow.chat_id
    scenario_run.observe(calling_flow.ring_in_a_call(caller, callee, kind, thread_id))


@when(parsers.parse('"{alias}" joins a group call by a group id'))
def join_group_call(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.join_group_call(alias))


@when(parsers.parse('"{alias}" joins the ringing call by its id instead of accepting it'))
def join_ringing_call(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.join_ringing_call_by_id(alias))


@then("the call is allowed and connects")
def connects(calling_flow: CallingFlow, scenario_run: ScenarioRun) -> None:
    """Judged on the scenario's own user's call once it settled: for a call she placed and the callee
    accepted (row 1), the caller's call, not the ring or the accept (CallingFlow.connected_call)."""
    if (observed := calling_flow.connected_call()) is not None:
        scenario_run.observe(observed)
    scenario_run.expect(Expectation(scenario_run.outcome("supported"), _row_source(scenario_run)))
    scenario_run.require_verdict()


@then("the join is refused")
def join_refused(scenario_run: ScenarioRun) -> None:
    """No code is documented (live events): a refusal before media counts (flow.refused_before_media)."""
    scenario_run.expect(Expectation(scenario_run.outcome("unsupported"), _row_source(scenario_run), stage="join"))
    observed = scenario_run.observation
    if observed and observed.outcome == "rejected" and observed.stage == "join":
        scenario_run.check(
            "a refusal (4xx, not 'not found' or a timeout) before any media", *refused_before_media(observed)
        )
    scenario_run.require_verdict()


@then(parsers.parse("the join is rejected with code {code:d} and subcode {sub:d}"))
def join_rejected_with(scenario_run: ScenarioRun, code: int, sub: int) -> None:
    rejection = ExpectedRejection(status=code, code=sub)
    outcome = scenario_run.outcome("unsupported")
    scenario_run.expect(Expectation(outcome, _row_source(scenario_run), rejection, stage="join"))
    scenario_run.require_verdict()


@then(parsers.re(r"the (?P<what>call|agent) is rejected with code (?P<code>\d+) and subcode (?P<sub>\d+)"))
def rejected_with(scenario_run: ScenarioRun, what: str, code: str, sub: str) -> None:
    stage = "create agent" if what == "agent" else None
    rejection = ExpectedRejection(status=int(code), code=int(sub))
    outcome = scenario_run.outcome("unsupported")
    scenario_run.expect(Expectation(outcome, CALL_END, rejection, stage=stage or "start call"))
    scenario_run.require_verdict()


@then(parsers.parse('"{alias}" is in the webinar as an "{role}"'))
def webinar_role(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str, role: str) -> None:
    scenario_run.expect(Expectation(scenario_run.outcome("caveat"), f"seed table footnote [1]: {WEBINAR_FOOTNOTE}"))
    if scenario_run.observation and scenario_run.observation.outcome == "allowed":
        observed = calling_flow.role(alias)
        scenario_run.check(f"role is {role}", observed == role, f"role {observed}")
    # judged by the next step, once the restricted actions have been tried


@then(parsers.parse('"{alias}" tries the attendee-restricted actions: unmute, start video, share screen'))
def restricted_actions(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    if scenario_run.observation and scenario_run.observation.outcome == "allowed":
        calling_flow.try_restricted_actions(alias)
    scenario_run.require_verdict()
