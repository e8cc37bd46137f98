"""Steps for features/identity: each a few lines that call the identity flow and record observations."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance.flows.identity import SCOPE_SETS, IdentityFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.verdicts import Expectation, ExpectedRejection
from harness.core.config import Tenant

EXCHANGE = "teamsUser/:exchangeAccessToken"  # the stage an exchange scenario is about
RECORDED = "docs/contracts/identity.md §1.3: response recorded from the real service by Microsoft's SDK tests"
EMULATOR_DEFINED = "emulator-defined: Microsoft documents no response for this case"
AADSTS_DOC = "docs/contracts/identity.md §5.3 and the Entra error-code reference"


@given(parsers.parse('the misconfigured tenant "{name}"'), target_fixture="flow_tenant")
def given_misconfigured_tenant(misconfigured_tenant, name: str) -> Tenant:
    """The tenant the profile's [misconfigured] names for `name` (SKIP, naming the entry, without one)."""
    return misconfigured_tenant(name)


@given(
    parsers.re(
        r'the Teams user "(?P<alias>[\w-]+)" has signed in (?P<scopes>with the Teams scopes|for Microsoft Graph only)'
    )
)
@when(
    parsers.re(
        r'the Teams user "(?P<alias>[\w-]+)" signs in (?P<scopes>with the Teams scopes|for Microsoft Graph only)'
    )
)
def sign_in(identity_flow: IdentityFlow, scenario_run: ScenarioRun, alias: str, scopes: str) -> None:
    scenario_run.observe(identity_flow.sign_in_with_password(alias, SCOPE_SETS[scopes]))


@given(parsers.parse('the Teams user "{alias}" has signed in for the scope "{scope}"'))
@when(parsers.parse('the Teams user "{alias}" signs in for the scope "{scope}"'))
def sign_in_for_scope(identity_flow: IdentityFlow, scenario_run: ScenarioRun, alias: str, scope: str) -> None:
    scenario_run.observe(identity_flow.sign_in_with_password(alias, [scope]))


@when(parsers.parse('the Teams user "{alias}" signs in with a wrong password'))
def sign_in_wrong_password(identity_flow: IdentityFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(identity_flow.sign_in_with_password(alias, wrong_password=True))


@given("an ACS user has been issued a voip token by the ACS resource")
def acs_user(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.observe(identity_flow.create_acs_user())


@when("the Entra token is exchanged for an ACS token")
def exchange(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.observe(identity_flow.exchange_token())


@when(parsers.parse("the exchange is attempted with the {token} token, the {app_id} app id and the {user_id} user id"))
def exchange_with(
    identity_flow: IdentityFlow, scenario_run: ScenarioRun, token: str, app_id: str, user_id: str
) -> None:
    scenario_run.observe(identity_flow.exchange_token(token, app_id, user_id))


@then("the exchange is allowed")
def exchange_allowed(scenario_run: ScenarioRun) -> None:
    scenario_run.expect(
        Expectation("supported", "docs/contracts/identity.md §1: exchange for a licensed Teams user", stage=EXCHANGE)
    )
    scenario_run.require_verdict()


@then("the ACS token expires when the Entra token expires")
def expiry_matches(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.check("ACS expiresOn equals the Entra token's exp", *identity_flow.expiry_matches())
    scenario_run.require_verdict()


@then("the ACS token carries the claims the Calling SDK reads")
def calling_claims(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.check(
        "claims read by TeamsCallAgent (docs/contracts/calling.md §2)", *identity_flow.calling_sdk_claims()
    )
    scenario_run.require_verdict()


@then(
    parsers.re(
        r'the exchange is rejected with status (?P<status>\d+), code "(?P<code>[^"]*)", '
        r'message "(?P<message>[^"]*)" and target "(?P<target>[^"]*)"'
    )
)
def exchange_rejected_exactly(scenario_run: ScenarioRun, status: str, code: str, message: str, target: str) -> None:
    rejection = ExpectedRejection(int(status), code, message, target)
    scenario_run.expect(Expectation("unsupported", RECORDED, rejection, stage=EXCHANGE))
    scenario_run.require_verdict()


@then(parsers.parse('the exchange is rejected with status {status:d} and code "{code}"'))
def exchange_rejected(scenario_run: ScenarioRun, status: int, code: str) -> None:
    scenario_run.expect(Expectation("unsupported", EMULATOR_DEFINED, ExpectedRejection(status, code), stage=EXCHANGE))
    scenario_run.require_verdict()


@then(parsers.parse('sign-in is rejected with status {status:d}, error "{error}" and AADSTS{aadsts:d}'))
def sign_in_rejected(scenario_run: ScenarioRun, status: int, error: str, aadsts: int) -> None:
    rejection = ExpectedRejection(status, f"AADSTS{aadsts}", error)
    scenario_run.expect(Expectation("unsupported", AADSTS_DOC, rejection, stage="sign-in"))
    scenario_run.require_verdict()


@then("the ACS-user token is not a Teams user token")
def acs_user_token_not_teams(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.check("the ACS-user token has no tid claim", *identity_flow.acs_user_token_is_not_teams())
    scenario_run.require_verdict()
