"""Steps for features/identity: each a few lines that call the identity flow and record observations."""

from __future__ import annotations

from pytest_bdd import given, parsers, then, when

from harness.conformance.flows.identity import ACS_CHAT_STAGE, SCOPE_SETS, IdentityFlow
from harness.conformance.scenario import ScenarioRun
from harness.conformance.verdicts import Expectation, ExpectedRejection
from harness.core.config import Tenant

EXCHANGE = "teamsUser/:exchangeAccessToken"  # the stage an exchange scenario is about
RECORDED = "docs/contracts/identity.md §1.3: response recorded from the real service by Microsoft's SDK tests"
EMULATOR_DEFINED = "emulator-defined: Microsoft documents no response for this case"
ACS_CHAT_SOURCE = (
    "docs/contracts/identity.md §9: ACS Chat is not for Teams users (microsoft/MicrosoftCloud#29); "
    "the 403 body is emulator-defined"
)
AADSTS_DOC = "docs/contracts/identity.md §5.3 and the Entra error-code reference"
BROWSER_SIGN_IN = "docs/contracts/identity.md §11: the authorization code flow with PKCE for single-page apps"


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


@given("the Entra token has been exchanged for an ACS token")
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


@when("the Teams user's ACS token is used to start an ACS Chat thread")
def chat_through_acs(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.observe(identity_flow.chat_through_acs())


@then(parsers.parse('ACS Chat refuses it with status {status:d} and code "{code}"'))
def acs_chat_refused(scenario_run: ScenarioRun, status: int, code: str) -> None:
    rejection = ExpectedRejection(status, code)
    scenario_run.expect(Expectation("unsupported", ACS_CHAT_SOURCE, rejection, stage=ACS_CHAT_STAGE))
    scenario_run.require_verdict()


@then(parsers.parse('the remedy says "{text}"'))
def remedy_says(scenario_run: ScenarioRun, text: str) -> None:
    observed = scenario_run.observation
    remedy = (observed and observed.remedy) or ""
    scenario_run.check(f"the remedy says {text!r}", text.lower() in remedy.lower(), remedy or "no remedy")
    scenario_run.require_verdict()


@then(parsers.parse('the diagnosis is about "{expected}", not "{wrong}"'))
def diagnosis_is_about(scenario_run: ScenarioRun, expected: str, wrong: str) -> None:
    observed = scenario_run.observation
    said = " ".join(filter(None, (observed and observed.diagnosis, observed and observed.remedy)))
    right = expected.lower() in said.lower() and wrong.lower() not in said.lower()
    scenario_run.check(f"the diagnosis names {expected!r}, not {wrong!r}", right, said or "no diagnosis")
    scenario_run.require_verdict()


@when(parsers.parse('the Teams user "{alias}" signs in through the browser as a single-page app'))
def sign_in_in_browser(identity_flow: IdentityFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(identity_flow.sign_in_in_browser(alias))


@when(parsers.parse('the Teams user "{alias}" signs in through the browser and a back end redeems the code'))
def sign_in_in_browser_redeemed_elsewhere(identity_flow: IdentityFlow, scenario_run: ScenarioRun, alias: str) -> None:
    scenario_run.observe(identity_flow.sign_in_in_browser(alias, redeem="server"))


@then("the browser sign-in is allowed")
def browser_sign_in_allowed(scenario_run: ScenarioRun) -> None:
    scenario_run.expect(Expectation("supported", BROWSER_SIGN_IN, stage="code redemption"))
    scenario_run.require_verdict()


@then("the token carries the Teams scopes")
def browser_token_scopes(identity_flow: IdentityFlow, scenario_run: ScenarioRun) -> None:
    scenario_run.check(
        "the token's scp has Teams.ManageCalls and Teams.ManageChats", *identity_flow.browser_token_has_teams_scopes()
    )
    scenario_run.require_verdict()


@then(
    parsers.parse(
        'the browser sign-in is rejected at the {stage} with status {status:d}, error "{error}" and AADSTS{aadsts:d}'
    )
)
def browser_sign_in_rejected(scenario_run: ScenarioRun, stage: str, status: int, error: str, aadsts: int) -> None:
    rejection = ExpectedRejection(status, f"AADSTS{aadsts}", error)
    scenario_run.expect(Expectation("unsupported", BROWSER_SIGN_IN, rejection, stage=stage))
    scenario_run.require_verdict()
