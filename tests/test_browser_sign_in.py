"""The browser sign-in (harness/client/browser_sign_in.py: Microsoft's @azure/msal-browser in headless
Chromium) against the sandbox, the [app] redirect_uri and platform keys of a profile, and the doctor's
redirect URI check when a profile names none."""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from harness.client import browser_sign_in
from harness.client.browser_sign_in import MSAL_BROWSER_VERSION, sign_in_in_browser
from harness.conformance.flows.identity import browser_sign_in_observation
from harness.core.config import ProfileError, Tenant, load_profile, validate
from harness.core.prerequisites import MissingPrerequisite
from harness.run.doctor import Doctor
from harness.sandbox import entra
from harness.sandbox.server import Sandbox
from harness.wire import transport

TENANT_ID = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
CLIENT_ID = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
LIVE: dict[str, Any] = {
    "kind": "live",
    "tenant": {
        "tenant_id": TENANT_ID,
        "client_id": CLIENT_ID,
        "acs_endpoint": "https://my-resource.communication.azure.com",
    },
    "secrets": {"acs_connection_string_env": "CTE_TEST_ACS"},
    "users": {"adele": {"upn": "adele@contoso.example.com", "password_env": "CTE_TEST_PASSWORD_ADELE"}},
}


# -- [app] redirect_uri and platform ------------------------------------------------------------------


def test_app_redirect_uri_and_platform_reach_the_tenant() -> None:
    profile = validate({**LIVE, "app": {"redirect_uri": "http://localhost:5173/", "platform": "publicClient"}}, None)
    env = {
        "CTE_TEST_ACS": "endpoint=https://my-resource.communication.azure.com/;accesskey=a2V5",
        "CTE_TEST_PASSWORD_ADELE": "x",
    }
    tenant = profile.for_live(env)
    assert (tenant.redirect_uri, tenant.redirect_platform) == ("http://localhost:5173/", "publicClient")


def test_platform_defaults_to_spa_and_no_redirect_uri_is_none() -> None:
    assert validate({**LIVE, "app": {"redirect_uri": "http://localhost:3000/"}}, None).app_redirect() == (
        "http://localhost:3000/",
        "spa",
    )
    assert validate(LIVE, None).app_redirect() is None


@pytest.mark.parametrize(
    ("app", "needles"),
    [
        ({"redirect_uri": "http://localhost/", "platform": "native"}, ["[app].platform = 'native'", "spa"]),
        ({"redirect_uri": "localhost:3000"}, ["[app].redirect_uri = 'localhost:3000' is not an http(s) URL"]),
        ({"platform": "spa"}, ["[app].platform needs [app].redirect_uri"]),
        ({"redirect_url": "http://localhost/"}, ["[app] takes", "(not 'redirect_url')"]),
        ({"redirect_uri": 3000}, ["[app].redirect_uri = 3000 is not valid"]),
    ],
)
def test_bad_app_table_is_one_line_naming_the_fix(app: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ProfileError) as excinfo:
        validate({**LIVE, "app": app}, None)
    message = str(excinfo.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, message


def test_the_doctor_skips_the_redirect_check_when_the_profile_names_none() -> None:
    tenant = dataclasses.replace(load_profile("sandbox").for_replay(), redirect_uri=None)
    doctor = Doctor(tenant, ["adele"])
    assert doctor.redirect_uri() is True
    assert (doctor.checks[-1].name, doctor.checks[-1].status) == ("redirect URI", "n/a")


def test_without_a_redirect_uri_the_browser_sign_in_is_a_missing_prerequisite() -> None:
    tenant = dataclasses.replace(load_profile("sandbox").for_replay(), redirect_uri=None)
    with pytest.raises(MissingPrerequisite, match=r"set \[app\] redirect_uri"):
        sign_in_in_browser(tenant, tenant.user("adele"))


# -- against the sandbox, in Chromium ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb, transport.route_hosts(sb.host_routes()):
        yield sb


def tenant_of(sandbox: Sandbox, name: str) -> Tenant:
    return load_profile("sandbox").for_sandbox(sandbox.tenant_info(name), sandbox.host_routes(), "sandbox")


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    from harness.client.browser_sign_in import check_available

    try:
        check_available()
    except MissingPrerequisite as missing:
        pytest.skip(str(missing))


def test_a_spa_signs_in_and_its_page_redeems_the_code(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "contoso")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert result.ok and result.stage == "done", result
    assert result.origin == "http://localhost:3000"
    assert result.claims["upn"] == tenant.user("adele").upn
    # The OpenID configuration (read by the page), the authorize page, the form posted, the redemption.
    assert [r.split(" -> ")[1] for r in result.requests] == ["200", "200", "302", "200"]
    assert "/v2.0/.well-known/openid-configuration" in result.requests[0]
    assert result.app_saw == "an access token (Teams.ManageCalls Teams.ManageChats)"
    observation = browser_sign_in_observation(result)
    assert observation.outcome == "allowed" and observation.stage == "code redemption"
    assert observation.evidence["MSAL.js returned"] == result.app_saw


def test_the_page_runs_the_pinned_msal_browser() -> None:
    """The bundle the page loads is the npm package at the pinned version (make msal-browser), not a copy."""
    assert browser_sign_in.msal_browser_installed() == MSAL_BROWSER_VERSION
    assert f'"{MSAL_BROWSER_VERSION}"' in browser_sign_in.MSAL_BUNDLE.read_text(encoding="utf-8")


def test_another_installed_version_is_a_missing_prerequisite(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser_sign_in, "msal_browser_installed", lambda: "4.0.0")
    with pytest.raises(MissingPrerequisite, match=rf"@azure/msal-browser {MSAL_BROWSER_VERSION} .*found 4.0.0"):
        browser_sign_in.check_available()


def test_an_authority_not_at_a_microsoft_host_is_a_known_authority(sandbox: Sandbox) -> None:
    """The served sandbox at https://localhost:<port> (as a live profile names it): MSAL.js, told it is a
    known authority (so it asks no Microsoft host for instance discovery), signs in there."""
    info = sandbox.tenant_info("contoso", canonical=False)
    tenant = load_profile("sandbox").for_sandbox(info, {}, "live")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert result.ok, result
    assert result.requests[0].startswith(f"GET /{info.tenant_id}/v2.0/.well-known/openid-configuration -> 200")


def test_a_wrong_platform_is_9002326_with_its_remedy(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "redirect-uri-wrong-platform")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert (result.ok, result.status, result.aadsts, result.error) == (False, 400, 9002326, "invalid_request")
    assert result.app_saw == "ServerError invalid_request (AADSTS9002326)"  # what MSAL.js threw to the app
    observation = browser_sign_in_observation(result)
    assert observation.code == "AADSTS9002326" and observation.stage == "code redemption"
    assert "register http://localhost:3000/spa under 'Single-page application'" in (observation.remedy or "")
    assert observation.emulator_defined


def test_a_back_end_redeeming_is_9002327(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "contoso")
    result = sign_in_in_browser(tenant, tenant.user("adele"), redeem="server")
    assert (result.ok, result.aadsts, result.origin) == (False, 9002327, None)
    assert result.requests[-1].endswith("/oauth2/v2.0/token -> 400 (no Origin)")
    assert result.app_saw == "ServerError invalid_request (AADSTS9002327)"  # the back end's answer, relayed
    assert "redeem the code in the browser" in (browser_sign_in_observation(result).remedy or "")


def test_an_unregistered_uri_stops_at_the_authorize_request_with_50011(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "redirect-uri-unregistered")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert (result.ok, result.stage, result.status, result.aadsts) == (False, "authorize", 400, 50011)
    assert len(result.requests) == 2  # the OpenID configuration, the authorize request: the page never came back
    assert browser_sign_in_observation(result).stage == "authorize request"


def test_a_wrong_password_stays_on_the_sign_in_page(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "contoso")
    user = dataclasses.replace(tenant.user("adele"), password="not-the-password")
    result = sign_in_in_browser(tenant, user)
    assert (result.ok, result.stage, result.aadsts) == (False, "sign-in", 50126)


def test_msal_refuses_an_id_token_without_its_nonce(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real MSAL.js checks the ID token's nonce: an authority that leaves it out issues tokens (200) that
    the app never gets, and the harness reports what MSAL.js threw."""
    issue = entra.Entra._issue
    monkeypatch.setattr(entra.Entra, "_issue", lambda self, *a, **k: issue(self, *a, **{**k, "nonce": None}))
    tenant = tenant_of(sandbox, "contoso")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert (result.ok, result.stage, result.status, result.error) == (False, "redeem", 200, "nonce_mismatch")
    assert result.app_saw == "ClientAuthError nonce_mismatch"


def test_an_unreachable_authority_ends_the_sign_in_at_once(sandbox: Sandbox) -> None:
    """Nothing listens at the authority: the failure is the outcome, without waiting for the sign-in's timeout."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    info = sandbox.tenant_info("contoso", canonical=False)
    tenant = dataclasses.replace(
        load_profile("sandbox").for_sandbox(info, {}, "live"), authority=f"https://localhost:{port}/{info.tenant_id}"
    )
    started = time.monotonic()
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert not result.ok and "ConnectionError" in (result.error or ""), result
    assert time.monotonic() - started < browser_sign_in.SIGN_IN_TIMEOUT_S / 3


def test_an_error_naming_the_page_address_holds_no_code() -> None:
    """A timeout names where the browser stopped: the redirect URI with `code` in its fragment, redacted."""
    text = "no answer within 45 s at http://localhost:3000/spa#code=0.AbC-d_e&state=eyJpZCI6&client_info=eyJ1"
    redacted = browser_sign_in._redacted(text)
    assert "0.AbC-d_e" not in redacted and "eyJ1" not in redacted
    assert redacted.endswith("#code=<redacted>&state=eyJpZCI6&client_info=<redacted>")
