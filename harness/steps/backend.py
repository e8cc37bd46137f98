"""Steps for features/backend (`cte backend check`): each a few lines that call the token-service flow."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance.flows.backend import STAGE, BackendFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.verdicts import Check, Expectation

SERVE = "docs/token-service.md §2: exchange the user's own token (appId = its appid, userId = its oid)"
EXPIRY = "docs/token-service.md §3: the ACS token expires with the Entra token it was exchanged for"
REFUSE = "docs/token-service.md §4: validate the Entra token before exchanging it"
NO_ENTRA_TOKEN = "docs/token-service.md §5: the service hands back the ACS token, never an Entra token"
SECOND_TENANT = "docs/token-service.md §6: a multi-tenant app serves the tenants that bought it"
REFUSED_KINDS = r"(?P<kind>expired|other app's|Graph|chats-only)"


def _served(scenario_run: ScenarioRun, source: str) -> None:
    scenario_run.expect(Expectation("supported", source, stage=STAGE, rejected_says="refused a valid token"))


def _refused(scenario_run: ScenarioRun, flow: BackendFlow, source: str) -> None:
    scenario_run.expect(Expectation("unsupported", source, stage=STAGE, allowed_says="served a token it must refuse"))
    _checks(scenario_run, [c for c in (flow.not_forwarded_check(), flow.refused_as_client_error_check()) if c])


def _checks(scenario_run: ScenarioRun, checks: list[Check]) -> None:
    for check in checks:
        scenario_run.check(check.name, check.passed, check.detail)


@given(parsers.parse('the Teams user "{who}" has signed in to the app'))
def signed_in(backend_flow: BackendFlow, scenario_run: ScenarioRun, who: str) -> None:
    scenario_run.observe(backend_flow.sign_in(who))


@given(parsers.re(rf'the Teams user "(?P<who>[\w-]+)" has signed in for an? {REFUSED_KINDS} token'))
def signed_in_for(backend_flow: BackendFlow, scenario_run: ScenarioRun, who: str, kind: str) -> None:
    backend_flow.current = who
    if kind != "expired":  # the profile's expired token is one the user signed in for long ago
        scenario_run.observe(backend_flow.sign_in(who, kind))


@given(parsers.parse('the Teams user "{who}" has been served an ACS token by the token service'))
def served_before(backend_flow: BackendFlow, scenario_run: ScenarioRun, who: str) -> None:
    scenario_run.observe(backend_flow.sign_in(who))
    scenario_run.observe(backend_flow.hand([who]))


@when("the Entra token is handed to the token service")
def hand(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.observe(backend_flow.hand([backend_flow.current]))


@when(parsers.re(rf"the {REFUSED_KINDS} token is handed to the token service"))
def hand_kind(backend_flow: BackendFlow, scenario_run: ScenarioRun, kind: str) -> None:
    scenario_run.observe(backend_flow.hand([backend_flow.current], kind))


@when(parsers.parse('the Entra tokens of "{first}" and "{second}" are handed to the token service at once'))
def hand_at_once(backend_flow: BackendFlow, scenario_run: ScenarioRun, first: str, second: str) -> None:
    scenario_run.observe(backend_flow.hand([first, second]))


@when("that Entra token has expired and the user signs in again")
def expired_and_again(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    who = backend_flow.current
    backend_flow.wait_for_expiry(who)
    scenario_run.observe(backend_flow.sign_in(who))


@then("the token service serves an ACS token of that user, expiring with their Entra token")
def serves_own(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    _served(scenario_run, f"{SERVE}; {EXPIRY}")
    if not backend_flow.blocked:
        _checks(scenario_run, backend_flow.own_token_checks(1))
    scenario_run.require_verdict()


@then("each user is served an ACS token of their own, expiring with their Entra token")
def serves_each(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    _served(scenario_run, f"{SERVE}; {EXPIRY}")
    if not backend_flow.blocked:
        _checks(scenario_run, backend_flow.own_token_checks(2))
    scenario_run.require_verdict()


@then("the answer carries no Entra token")
def no_entra_token(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    if scenario_run.expectation is None:
        _served(scenario_run, NO_ENTRA_TOKEN)
    if backend_flow.handovers:
        _checks(scenario_run, backend_flow.no_entra_token_checks(1))
    scenario_run.require_verdict()


@then("the token service refuses it without sending it to ACS")
def refuses(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    _refused(scenario_run, backend_flow, REFUSE)
    scenario_run.require_verdict()


@then("the token service answers the second tenant's user as the profile expects")
def second_tenant_as_expected(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    if backend_flow.expected_for_second_tenant() == "serve":
        _served(scenario_run, f"{SECOND_TENANT}; {SERVE}")
        if not backend_flow.blocked:
            _checks(scenario_run, backend_flow.own_token_checks(1))
    else:
        _refused(scenario_run, backend_flow, SECOND_TENANT)
    scenario_run.require_verdict()


@then("the token service serves a new ACS token, expiring with the new Entra token")
def serves_fresh(backend_flow: BackendFlow, scenario_run: ScenarioRun) -> None:
    _served(scenario_run, f"{EXPIRY}; docs/token-service.md §7: a new Entra token gets a new ACS token")
    if not backend_flow.blocked:
        _checks(scenario_run, backend_flow.fresh_token_checks())
    scenario_run.require_verdict()
