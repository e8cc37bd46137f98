"""Steps for features/notifications: each a few lines that call the notifications flow."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance.flows.notifications import NotificationFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.verdicts import Expectation

WEBHOOK = (
    "source document: receive message as Teams user on webhook and push it to the client; docs/contracts/graph.md §4"
)
FORGED = "docs/contracts/graph.md §4.4-4.6: clientState, validationTokens and dataSignature must be checked"


@given(parsers.parse('"{alias}" subscribes to the chat\'s messages with resource data'))
def subscribe(notification_flow: NotificationFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(notification_flow.subscribe(alias))


@given(parsers.parse('"{alias}" subscribes to the chat\'s messages with resource data, for {changes}'))
def subscribe_changes(notification_flow: NotificationFlow, scenario_run: ScenarioRun, alias: str, changes: str) -> None:
    change_types = ",".join(c.strip() for c in changes.replace(" and ", ", ").split(","))
    scenario_run.observe(notification_flow.subscribe(alias, change_types))


@when(parsers.parse('"{alias}" edits the message'))
def edit(chat_flow, scenario_run: ScenarioRun, alias: str) -> None:  # type: ignore[no-untyped-def]
    scenario_run.observe(chat_flow.edit_last(alias))


@when(parsers.parse('"{alias}" deletes the message'))
def delete(chat_flow, scenario_run: ScenarioRun, alias: str) -> None:  # type: ignore[no-untyped-def]
    scenario_run.observe(chat_flow.delete_last(alias))


@then(parsers.parse('the client of "{alias}" receives the message as {changes}'))
def receives_changes(notification_flow: NotificationFlow, scenario_run: ScenarioRun, alias: str, changes: str) -> None:
    expected = [c.strip() for c in changes.replace(", then", ",").split(",")]
    scenario_run.observe(notification_flow.expect_changes(expected))
    scenario_run.expect(Expectation("supported", WEBHOOK))
    scenario_run.require_verdict()


@given(parsers.parse('the client of "{alias}" is connected to the push channel'))
def connect(notification_flow: NotificationFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(notification_flow.connect(alias))


@when("Graph signals that the subscription needs reauthorization")
def lifecycle(notification_flow: NotificationFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.observe(notification_flow.provoke_lifecycle())


@when(parsers.parse("a forged notification with {forgery} is posted to the webhook"))
def forge(notification_flow: NotificationFlow, scenario_run: ScenarioRun, forgery: str) -> None:
    scenario_run.observe(notification_flow.forge(forgery))


@then(parsers.parse('the message reaches the client of "{alias}" through the webhook'))
def reaches(notification_flow: NotificationFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(notification_flow.expect_push())
    scenario_run.expect(Expectation("supported", WEBHOOK))
    scenario_run.require_verdict()


@then("the webhook rejects it and no client receives it")
def rejected(scenario_run: ScenarioRun) -> None:
    scenario_run.expect(Expectation("unsupported", FORGED, stage="webhook"))
    observed = scenario_run.observation
    pushed = bool(observed and observed.evidence.get("pushed_to_a_client"))
    scenario_run.check("no client received the forged message", not pushed, "pushed" if pushed else "not pushed")
    scenario_run.require_verdict()
