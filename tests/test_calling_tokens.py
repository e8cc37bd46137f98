"""A call that outlives the first ACS token (docs/contracts/calling.md §7).

- The scenario's steps against the in-process sandbox (its model clock moved on by the token's
  lifetime): with the app's token refresher the call goes on with a second token the model accepted;
  without one (a static token) the scenario FAILs, naming the token refresher.
- The real Calling SDK in Chromium, offline, on a virtual clock: the page's credential
  (`{token, tokenRefresher, refreshProactively: true}`) calls the refresher before a short-lived token
  expires, the harness re-acquires and re-exchanges in Python, and the SDK then uses the second token.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import timedelta

import pytest

from harness.client.calling import driver_for
from harness.client.calling.browser_driver import BrowserCallingDriver
from harness.client.calling.credential import TokenCredential
from harness.client.calling.protocol import CallingCommunicationError
from harness.conformance.flows.calling import TOKEN_REFRESHER_REMEDY, CallingFlow
from harness.conformance.flows.identity import IdentityFlow
from harness.conformance.scenario import ScenarioRun, VerdictFailed
from harness.core.config import load_profile
from harness.sandbox.server import Sandbox
from harness.steps import calling as steps
from harness.wire import transport
from harness.wire.tokens import time_claim

pytestmark = pytest.mark.integration

SCENARIO = "A call outlives the user's ACS token: the app exchanges a fresh one and the call goes on"


@pytest.fixture(scope="module")
def world():
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        yield sandbox, tenant


def outlive(world, *, token_refresher: bool) -> tuple[ScenarioRun, CallingFlow]:
    """The scenario's steps, as its feature runs them, on a fresh sandbox world."""
    sandbox, tenant = world
    sandbox.begin_stream(f"tokens-{token_refresher}")
    clock = sandbox.ctx.clock
    flow = CallingFlow(tenant, sleep=lambda s: clock.advance(timedelta(seconds=s)), token_refresher=token_refresher)
    run = ScenarioRun(id="calling-tokens", name=SCENARIO, feature="calling_tokens.feature", area="calling")
    try:
        steps.has_agent(flow, run, "licensed")
        steps.has_agent(flow, run, "colleague")
        steps.ring(flow, run, "licensed", "colleague")
        steps.accept(flow, run, "colleague")
        run.observe(flow.outlive_token("licensed", float("inf")))  # the step, with a sandbox's wait limit
        with contextlib.suppress(VerdictFailed):  # judged below
            steps.call_goes_on(flow, run, "licensed")
    finally:
        flow.close()
    return run, flow


def test_with_the_token_refresher_the_call_goes_on_with_a_second_token_the_model_accepted(world) -> None:
    run, flow = outlive(world, token_refresher=True)
    judgement = run.judgement()
    assert (judgement.verdict, judgement.says) == ("PASS", "supported"), judgement
    first, second = flow.credentials["licensed"].uses
    assert second.expires > first.expires
    assert first.refused and "401/10009" in first.refused[0], "the model refused the first token once it expired"
    assert second.accepted >= 2 and "token refresher" in second.came_from
    tokens = str(run.observation.evidence["ACS tokens"])
    assert "ACS token 1 (expiresOn " in tokens and "ACS token 2 (expiresOn " in tokens
    assert "eyJ" not in tokens and "eyJ" not in repr(flow.credentials["licensed"]), "never the token itself"


def test_without_a_token_refresher_the_scenario_fails_and_names_the_token_refresher(world) -> None:
    run, flow = outlive(world, token_refresher=False)
    judgement = run.judgement()
    assert (judgement.verdict, judgement.says) == ("FAIL", "unexpectedly rejected"), judgement
    observed = run.observation
    assert (observed.status, observed.code, observed.stage) == (401, 10009, "after the ACS token expired")
    assert observed.remedy == TOKEN_REFRESHER_REMEDY and "tokenRefresher" in judgement.detail
    renewed = next(c for c in observed.checks if c.name.startswith("a second ACS token"))
    assert not renewed.passed and len(flow.credentials["licensed"].uses) == 1


def test_a_refresher_that_returns_the_cached_token_is_refused_again(world) -> None:
    """The stale-refresher failure threads report: the refresher is called, but hands back the old token."""
    sandbox, tenant = world
    sandbox.begin_stream("tokens-stale")
    identity = IdentityFlow(tenant)
    identity.sign_in_with_password("adele")
    identity.exchange_token()
    stale = str(identity.exchange.token)
    driver = driver_for(tenant)
    try:
        credential = TokenCredential(stale, lambda: stale)
        agent = driver.create_teams_call_agent(credential)
        sandbox.ctx.clock.advance(timedelta(seconds=(time_claim(stale) or 0) - sandbox.ctx.epoch() + 1))
        with pytest.raises(CallingCommunicationError) as refused:
            agent.wait_for_incoming_call(timeout=0)
        assert (refused.value.code, refused.value.sub_code) == (401, 10009)
        assert [u.expires for u in credential.uses] == [time_claim(stale)] * 2
        assert [len(u.refused) for u in credential.uses] == [1, 1], credential.describe()
    finally:
        driver.close()


# -- the real SDK --------------------------------------------------------------------------------------


@contextlib.contextmanager
def adele_with_short_lived_tokens() -> Iterator[IdentityFlow]:
    """adele signed in and her token exchanged, on a sandbox whose tokens live 300 s (a short token lifetime,
    as `cte sandbox serve --token-lifetime`)."""
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        sandbox.ctx.access_token_lifetime_s = 300
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        identity = IdentityFlow(tenant)
        identity.sign_in_with_password("adele")
        identity.exchange_token()
        yield identity


def test_the_real_sdk_calls_the_pages_token_refresher_and_then_uses_the_second_token(browser_here) -> None:
    """Tokens live 300 s here (a short token lifetime, as `cte sandbox serve --token-lifetime`); the SDK's
    credential refreshes at half the remaining lifetime once under 10 minutes, so ~150 s of page time."""
    with adele_with_short_lived_tokens() as identity:
        exchanges = []

        def refresher() -> str | None:  # what CallingFlow gives the credential: re-acquire, re-exchange
            token = identity.renew("adele")
            exchanges.append(identity.exchange.expires_epoch if identity.exchange else None)
            return token

        credential = TokenCredential(str(identity.exchange.token), refresher)
        driver = BrowserCallingDriver(offline=True)
        try:
            agent = driver.create_teams_call_agent(credential)
            first = credential.expiries[0]
            assert agent.token_in_use() == first and not exchanges
            for _ in range(25):  # page time passes, 10 s at a time, until the SDK asks (at most 250 s)
                if exchanges:
                    break
                driver.pass_time(10)
            assert len(exchanges) == 1, f"the SDK asked the page's tokenRefresher {len(exchanges)} times"
            refreshed = [e for e in agent.page.transcript() if e["event"] == "tokenRefresher"]
            assert refreshed and refreshed[0]["data"]["ok"] is True
            assert refreshed[0]["at"] / 1000 < first, "proactively: before the first token expired"
            second = credential.uses[1]
            assert exchanges == [second.expires] and second.expires > first, "the Python side exchanged a second token"
            assert agent.token_in_use() == second.expires, "the SDK's credential now gives the second token"
            driver.pass_time(60)  # the SDK's next registration with Microsoft (offline: aborted) carries it
            assert second.sent_to, "offline, the SDK still tried to send the second token to Microsoft"
            assert all(h.endswith((".microsoft.com", ".skype.com")) for h in second.sent_to)
        finally:
            driver.close()


def test_a_recording_keeps_where_the_sdk_refreshed_and_a_replay_asks_the_refresher_as_often(
    browser_here, tmp_path
) -> None:
    """Record (real SDK, scrubbed): the refresh the SDK asked for while time passed is written down in its
    place. Replay (no browser): the same steps ask the refresher as often, at the same point, so that its
    sign-in and exchange meet their HTTP recordings in order."""
    from harness.client.calling.sdk_cassette import TOKEN_REFRESHES, SdkCassette
    from harness.core.scrubbing import Scrubber

    scrubber = Scrubber()
    with adele_with_short_lived_tokens() as identity:
        recorded = SdkCassette(tmp_path / "tokens.yaml", record=True, scrub=scrubber.json_value)
        driver = BrowserCallingDriver(offline=True, cassette=recorded)
        first_token = str(identity.exchange.token)
        credential = TokenCredential(first_token, lambda: identity.renew("adele"))
        try:
            agent = driver.create_teams_call_agent(credential)
            for _ in range(25):
                if len(credential.uses) > 1:
                    break
                driver.pass_time(10)
            assert agent.token_in_use() == credential.uses[1].expires
        finally:
            driver.close()
            recorded.write()
    text = recorded.path.read_text()
    assert TOKEN_REFRESHES in text
    assert first_token not in text and identity.exchange.token not in text, "tokens are scrubbed (placeholders)"

    asked = []
    replayed = SdkCassette(tmp_path / "tokens.yaml", record=False, scrub=scrubber.json_value).load()
    driver = BrowserCallingDriver(offline=True, virtual_clock=True, cassette=replayed)
    credential = TokenCredential(str(identity.exchange.token), lambda: asked.append(1) or "eyJ.e30.replayed")
    agent = driver.create_teams_call_agent(credential)
    for _ in range(25):
        if asked:
            break
        driver.pass_time(10)
    assert asked == [1], "the replay asked the refresher once, where the recording did"
    agent.token_in_use()
    replayed.finish()  # every recorded call was asked for
