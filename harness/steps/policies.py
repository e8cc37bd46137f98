"""Steps for harness/features/policies: each states the policy, does the action, and observes the enforcement."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance import policies
from harness.conformance.flows.calling import CallingFlow
from harness.conformance.flows.chat import ChatFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.verdicts import Expectation, ExpectedRejection, Observation
from harness.core.config import Tenant

SOURCE = "source document: 'Teams policies control communication across applications'"
NOT_ENFORCED = "not enforced"


def _policy(run: ScenarioRun, tenant: Tenant, setting: policies.PolicySetting, enforcement: str) -> None:
    run.policy = policies.report_metadata(setting, enforcement)


@given(
    parsers.parse('the "{policy}" sets "{setting}" to "{value}" for a user, so {enforcement}'),
    target_fixture="flow_tenant",
)
def user_policy(
    flow_tenant: Tenant, scenario_run: ScenarioRun, policy: str, setting: str, value: str, enforcement: str
) -> Tenant:
    """The profile names who has the setting; the scenario calls them "policy-holder"."""
    declared = policies.require(flow_tenant, policy, setting, value)
    _policy(scenario_run, flow_tenant, declared, enforcement)
    assert declared.user is not None
    return flow_tenant.with_role("policy-holder", declared.user)


@given(parsers.parse('the meeting "{meeting}" sets "{setting}" to "{value}", so {enforcement}'))
def meeting_option(
    flow_tenant: Tenant, scenario_run: ScenarioRun, meeting: str, setting: str, value: str, enforcement: str
) -> None:
    declared = policies.require(flow_tenant, "Meeting options", setting, value, meeting=meeting)
    _policy(scenario_run, flow_tenant, declared, enforcement)


@given(
    parsers.parse(
        'the organizer of the meeting "{meeting}" turns "{setting}" to "{value}" during the meeting, so {enforcement}'
    )
)
def option_changed_in_meeting(
    flow_tenant: Tenant, scenario_run: ScenarioRun, meeting: str, setting: str, value: str, enforcement: str
) -> None:
    _policy(scenario_run, flow_tenant, policies.changed_in_meeting(flow_tenant, meeting, setting, value), enforcement)


@given(parsers.parse('"External access" blocks the domain of the external user, so {enforcement}'))
def external_access(flow_tenant: Tenant, scenario_run: ScenarioRun, enforcement: str) -> None:
    _policy(scenario_run, flow_tenant, policies.require_blocked_domain(flow_tenant), enforcement)


def _enforced(run: ScenarioRun, rejection: ExpectedRejection | None = None, stage: str | None = None) -> None:
    enforcement = (run.policy or {}).get("enforcement")
    run.expect(
        Expectation(
            "unsupported",
            SOURCE,
            rejection,
            stage=stage,
            allowed_says=NOT_ENFORCED,
            rejected_says="enforced",
            documented_as=f"enforced: {enforcement}" if enforcement else "enforced",
        )
    )
    run.require_verdict()


@then(parsers.parse("the policy is enforced: the send is rejected with status {status:d}"))
def send_rejected(scenario_run: ScenarioRun, status: int) -> None:
    _enforced(scenario_run, ExpectedRejection(status), "send")


@then("the policy is enforced: the call is rejected")
def call_rejected(scenario_run: ScenarioRun) -> None:
    _enforced(scenario_run, stage="start call")


@then(parsers.parse("the policy is enforced: the call is rejected with code {code:d} and subcode {sub:d}"))
def call_rejected_with(scenario_run: ScenarioRun, code: int, sub: int) -> None:
    _enforced(scenario_run, ExpectedRejection(code, sub), "start call")


@then(parsers.parse('the policy is enforced: "{alias}" waits in the lobby'))
def waits_in_lobby(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.lobby_observation(alias))
    _enforced(scenario_run, stage="lobby")


@then(parsers.parse('once "{organizer}" admits "{alias}", the call connects'))
def admitted(calling_flow: CallingFlow, scenario_run: ScenarioRun, organizer: str, alias: str) -> None:
    result = calling_flow.admit(organizer, alias)
    scenario_run.check(
        f"{organizer} admits {alias} and the call connects", result.outcome == "allowed", result.summary()
    )
    scenario_run.require_verdict()


@then(
    parsers.re(
        r'the policy is enforced: "(?P<alias>[\w-]+)" lacks "(?P<capability>\w+)" \((?P<reason>\w+)\) '
        r'and "(?P<action>\w+)" fails'
    )
)
def lacks(
    calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str, capability: str, reason: str, action: str
) -> None:
    scenario_run.observe(calling_flow.restriction_observation(alias, capability, reason, action))
    _enforced(scenario_run, stage="in the meeting")


@then(
    parsers.parse(
        'once the organizer makes "{alias}" a presenter in Teams, "{capability}" is present after '
        'capabilitiesChanged "{reason}"'
    )
)
def promoted(calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str, capability: str, reason: str) -> None:
    assert scenario_run.policy is not None
    calling_flow.organizer_promotes(scenario_run.policy["holder"], alias)
    scenario_run.check(*calling_flow.changed_to(alias, capability, reason, present=True))
    scenario_run.require_verdict()


@when(parsers.parse('the organizer turns "Allow mic for attendees" off in Teams'))
def mic_off(calling_flow: CallingFlow, scenario_run: ScenarioRun) -> None:
    assert scenario_run.policy is not None
    calling_flow.organizer_sets_option(scenario_run.policy["holder"], attendee_mic=False)


@when(parsers.parse('a Teams admin turns screen sharing off for "{alias}"'))
def admin_screen_sharing_off(calling_flow: CallingFlow, alias: str) -> None:
    calling_flow.admin_sets_screen_sharing(alias, False)


@then(parsers.parse('the policy is enforced: "{alias}" lacks "{capability}" after capabilitiesChanged "{reason}"'))
def lacks_after_change(
    calling_flow: CallingFlow, scenario_run: ScenarioRun, alias: str, capability: str, reason: str
) -> None:
    name, passed, detail = calling_flow.changed_to(alias, capability, reason, present=False)
    scenario_run.observe(
        Observation(
            "rejected" if passed else "allowed",
            "in the meeting",
            message=detail,
            evidence={"capability_changes": calling_flow.describe_capability_changes(alias)},
        )
    )
    _enforced(scenario_run, stage="in the meeting")


@when(parsers.parse('"{alias}" calls the external user'))
def call_external(calling_flow: CallingFlow, flow_tenant: Tenant, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(calling_flow.call_external(alias, flow_tenant.external().oid or ""))


@when(parsers.parse('"{alias}" starts a chat with the external user'))
def chat_external(chat_flow: ChatFlow, flow_tenant: Tenant, alias: str) -> None:
    chat_flow.share_with_external(alias, flow_tenant.external().upn)


@then("the policy is enforced: both the call and the chat are rejected")
def both_rejected(calling_flow: CallingFlow, chat_flow: ChatFlow, scenario_run: ScenarioRun) -> None:
    call, chat = calling_flow.last, chat_flow.last
    outcome = "rejected" if call.outcome == chat.outcome == "rejected" else "allowed"
    scenario_run.observe(
        Observation(
            outcome,
            "external access",
            message=f"call: {call.summary()}; chat: {chat.summary()}",
            emulator_defined=call.emulator_defined or chat.emulator_defined,
            evidence={"call": call.summary(), "chat": chat.summary()},
        )
    )
    _enforced(scenario_run, stage="external access")
