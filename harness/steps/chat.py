"""Steps for features/chat: each a few lines that call the chat flow and record observations."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance.flows.chat import EXPORT_STAGE, ChatFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.verdicts import Expectation, ExpectedRejection

SEND = (
    "seed table row 11 (Send a message to 1:1 chat, group chat or Teams meeting chat) and docs/contracts/graph.md §2.1"
)
GET = (
    "seed table row 12 (Get messages from 1:1 chat, group chat or Teams meeting chat) and docs/contracts/graph.md §2.2"
)
GRAPH_ERRORS = "docs/contracts/graph.md §2.4: real Graph error bodies"


@given(parsers.parse('"{owner}" and "{other}" share a {kind} chat'))
def share_chat(chat_flow: ChatFlow, scenario_run: ScenarioRun, owner: str, other: str, kind: str) -> None:
    scenario_run.observe(chat_flow.share(kind, owner, other))


@given(parsers.parse('"{alias}" has sent {count:d} messages to the chat'))
def have_sent(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str, count: int) -> None:
    scenario_run.observe(chat_flow.send(alias, count=count))


@when(parsers.parse('"{alias}" sends a message to the chat'))
def send(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(chat_flow.send(alias))


@when(parsers.parse('"{alias}" sends a message of {size:d} bytes to the chat'))
def send_sized(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str, size: int) -> None:
    scenario_run.observe(chat_flow.send(alias, "x" * size))


@when(parsers.parse('"{alias}" polls the chat for its messages'))
def poll(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(chat_flow.poll(alias))


@when(parsers.parse('"{alias}" polls the chat {top:d} messages at a time'))
def poll_paged(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str, top: int) -> None:
    scenario_run.observe(chat_flow.poll(alias, top=top))


@when(parsers.parse('"{alias}" reads all their chats with getAllMessages'))
def get_all_messages(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(chat_flow.get_all_messages(alias))


@when(parsers.parse('the app reads all of "{alias}"\'s chats with getAllMessages using its own token'))
def get_all_messages_as_app(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(chat_flow.get_all_messages(alias, as_app=True))


@when("the app posts a message to the chat with its own token")
def send_as_app(chat_flow: ChatFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.observe(chat_flow.send_as_app())


@when(parsers.parse('"{alias}"\'s Graph token has expired'))
def token_expired(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str, cte) -> None:  # type: ignore[no-untyped-def]
    chat_flow.outlive_token(alias, cte.token_wait_limit())


@then(parsers.parse('the message went out with a new token for "{alias}", signed in again silently'))
def token_renewed(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.expect(Expectation(scenario_run.outcome("supported"), SEND))
    scenario_run.check("a second Graph token, re-acquired after the first expired", *chat_flow.token_renewed(alias))
    scenario_run.require_verdict()


@then("the send is allowed")
def send_allowed(scenario_run: ScenarioRun) -> None:
    scenario_run.expect(Expectation(scenario_run.outcome("supported"), SEND))
    scenario_run.require_verdict()


@then("getting messages is allowed")
def get_allowed(scenario_run: ScenarioRun) -> None:
    scenario_run.expect(Expectation(scenario_run.outcome("supported"), GET))
    scenario_run.require_verdict()


@then(parsers.parse('"{alias}" finds each message in the chat exactly once, newest first'))
def other_finds(chat_flow: ChatFlow, scenario_run: ScenarioRun, alias: str) -> None:
    polled = chat_flow.poll(alias)
    scenario_run.check(f"{alias} can list the chat", polled.outcome == "allowed", polled.summary())
    scenario_run.check("each message sent is listed once, newest first", *chat_flow.each_sent_once_newest_first())
    scenario_run.require_verdict()


@then("each message sent is listed exactly once, newest first")
def listed_once(chat_flow: ChatFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.check("each message sent is listed once, newest first", *chat_flow.each_sent_once_newest_first())
    scenario_run.require_verdict()


@then("each message listed is exactly what was sent")
def intact(chat_flow: ChatFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.check("message contents round-trip exactly", *chat_flow.content_intact())
    scenario_run.require_verdict()


@then(parsers.parse("the listing took {pages:d} pages"))
def page_count(chat_flow: ChatFlow, scenario_run: ScenarioRun, pages: int) -> None:
    scenario_run.check(f"{pages} pages", chat_flow.pages == pages, f"{chat_flow.pages} pages")
    scenario_run.require_verdict()


@then(
    parsers.re(
        r"(?P<what>the send|getting messages|creating the chat|getting all messages) "
        r'is rejected with status (?P<status>\d+) and code "(?P<code>\w+)"'
    )
)
def rejected(scenario_run: ScenarioRun, what: str, status: str, code: str) -> None:
    source = GRAPH_ERRORS if "emulator-defined" not in scenario_run.tags else "emulator-defined"
    stage = {"the send": "send", "getting messages": "get", "creating the chat": "create chat"}.get(what, EXPORT_STAGE)
    outcome = scenario_run.outcome("unsupported")
    scenario_run.expect(Expectation(outcome, source, ExpectedRejection(int(status), code), stage=stage))
    scenario_run.require_verdict()


@then(parsers.parse('the diagnosis names the missing permission "{permission}"'))
def names_permission(scenario_run: ScenarioRun, permission: str) -> None:
    observed = scenario_run.observation
    remedy = (observed and observed.remedy) or ""
    scenario_run.check(f"the remedy names {permission}", permission in remedy, remedy or "no remedy")
    scenario_run.require_verdict()
