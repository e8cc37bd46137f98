"""The browser sign-in (harness/client/browser_sign_in.py) against the sandbox, the [app] redirect_uri and
platform keys of a profile, and the doctor's redirect URI check when a profile names none."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from harness.client.browser_sign_in import sign_in_in_browser
from harness.conformance.flows.identity import browser_sign_in_observation
from harness.core.config import ProfileError, Tenant, load_profile, validate
from harness.core.prerequisites import MissingPrerequisite
from harness.run.doctor import Doctor
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
    assert [r.split(" -> ")[1] for r in result.requests] == ["200", "302", "200"]
    observation = browser_sign_in_observation(result)
    assert observation.outcome == "allowed" and observation.stage == "code redemption"


def test_the_fragment_response_mode_works_too(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "contoso")
    assert sign_in_in_browser(tenant, tenant.user("adele"), response_mode="fragment").ok


def test_a_wrong_platform_is_9002326_with_its_remedy(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "redirect-uri-wrong-platform")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert (result.ok, result.status, result.aadsts, result.error) == (False, 400, 9002326, "invalid_request")
    observation = browser_sign_in_observation(result)
    assert observation.code == "AADSTS9002326" and observation.stage == "code redemption"
    assert "register http://localhost:3000/spa under 'Single-page application'" in (observation.remedy or "")
    assert observation.emulator_defined


def test_a_back_end_redeeming_is_9002327(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "contoso")
    result = sign_in_in_browser(tenant, tenant.user("adele"), redeem="server")
    assert (result.ok, result.aadsts, result.origin) == (False, 9002327, None)
    assert "redeem the code in the browser" in (browser_sign_in_observation(result).remedy or "")


def test_an_unregistered_uri_stops_at_the_authorize_request_with_50011(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "redirect-uri-unregistered")
    result = sign_in_in_browser(tenant, tenant.user("adele"))
    assert (result.ok, result.stage, result.status, result.aadsts) == (False, "authorize", 400, 50011)
    assert len(result.requests) == 1  # never signed in: the page never came back
    assert browser_sign_in_observation(result).stage == "authorize request"


def test_a_wrong_password_stays_on_the_sign_in_page(sandbox: Sandbox) -> None:
    tenant = tenant_of(sandbox, "contoso")
    user = dataclasses.replace(tenant.user("adele"), password="not-the-password")
    result = sign_in_in_browser(tenant, user)
    assert (result.ok, result.stage, result.aadsts) == (False, "sign-in", 50126)
