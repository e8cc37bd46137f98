"""The sandbox's authorization-code + PKCE sign-in over real HTTPS on loopback: the authorize request and
its sign-in page, the code's redemption, and what Entra answers a redirect URI registered under no platform
(AADSTS50011) or the wrong one (AADSTS9002326, AADSTS9002327), and a SPA's redemption without PKCE
(AADSTS9002325); docs/contracts/identity.md §11."""

from __future__ import annotations

import base64
import hashlib
import re
import urllib.parse
from collections.abc import Iterator

import pytest
import requests

from harness.sandbox.server import Sandbox
from harness.wire.tenant import SANDBOX_SPA_REDIRECT_URI, TenantInfo
from harness.wire.tokens import claims

pytestmark = pytest.mark.integration

ACS = "https://auth.msft.communication.azure.com"
SCOPE = f"{ACS}/Teams.ManageCalls {ACS}/Teams.ManageChats openid profile offline_access"
VERIFIER = "a-code-verifier-of-the-test-that-is-at-least-43-characters-long"
ORIGIN = "http://localhost:3000"


def challenge(verifier: str = VERIFIER) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture
def session(sandbox: Sandbox) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.verify = sandbox.tenant_info("contoso", canonical=False).ca_bundle
        s.trust_env = False
        yield s


def authorize_url(info: TenantInfo, redirect_uri: str = SANDBOX_SPA_REDIRECT_URI, **extra: str) -> str:
    query = {
        "client_id": info.client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": "the-state",
        "code_challenge": challenge(),
        "code_challenge_method": "S256",
        **extra,
    }
    query = {k: v for k, v in query.items() if v}  # an empty value: the parameter left out
    return f"{info.authority}/oauth2/v2.0/authorize?{urllib.parse.urlencode(query)}"


def sign_in(session: requests.Session, info: TenantInfo, alias: str = "adele", **extra: str) -> requests.Response:
    """GET the authorize URL (the sign-in page), then post the user's credentials to it."""
    url = authorize_url(info, **extra)
    page = session.get(url, timeout=10)
    assert page.status_code == 200 and 'name="password"' in page.text, page.text[:300]
    user = info.user(alias)
    return session.post(url, data={"username": user.upn, "password": user.password}, allow_redirects=False, timeout=10)


def code_of(response: requests.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(SANDBOX_SPA_REDIRECT_URI), location
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).query))


def redeem(
    session: requests.Session, info: TenantInfo, code: str, *, origin: str | None = ORIGIN, verifier: str = VERIFIER
) -> requests.Response:
    headers = {"Origin": origin} if origin else {}
    body = {
        "client_id": info.client_id,
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": SANDBOX_SPA_REDIRECT_URI,
        "code_verifier": verifier,
        "scope": SCOPE,
    }
    body = {k: v for k, v in body.items() if v}  # verifier="": no code_verifier at all
    return session.post(f"{info.authority}/oauth2/v2.0/token", data=body, headers=headers, timeout=10)


def aadsts(response: requests.Response) -> int:
    return int(response.json()["error_codes"][0])


def test_a_spa_signs_in_and_redeems_its_code_from_the_browser(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    params = code_of(sign_in(session, info))
    assert params["state"] == "the-state"
    token = redeem(session, info, params["code"])
    assert token.status_code == 200, token.text
    assert token.headers["access-control-allow-origin"] == "*"
    access = claims(token.json()["access_token"])
    assert access["aud"] == ACS and access["upn"] == info.user("adele").upn
    assert set(access["scp"].split()) == {"Teams.ManageCalls", "Teams.ManageChats"}


def test_a_code_is_redeemed_once(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    code = code_of(sign_in(session, info))["code"]
    assert redeem(session, info, code).status_code == 200
    again = redeem(session, info, code)
    assert again.status_code == 400 and aadsts(again) == 70000


def test_the_pkce_verifier_must_match_the_challenge(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    code = code_of(sign_in(session, info))["code"]
    wrong = redeem(session, info, code, verifier="another-verifier-that-is-also-at-least-43-characters")
    assert wrong.status_code == 400 and aadsts(wrong) == 50148
    assert wrong.json()["error"] == "invalid_grant"


def test_response_mode_fragment_puts_the_code_in_the_fragment(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    response = sign_in(session, info, response_mode="fragment")
    location = response.headers["location"]
    fragment = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(location).fragment))
    assert fragment["state"] == "the-state" and fragment["code"]


def test_a_wrong_password_stays_on_the_sign_in_page_with_50126(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    url = authorize_url(info)
    response = session.post(url, data={"username": info.user("adele").upn, "password": "nope"}, allow_redirects=False)
    assert response.status_code == 400 and "AADSTS50126" in response.text


def test_a_back_end_redeeming_a_spa_code_gets_9002327(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    code = code_of(sign_in(session, info))["code"]
    refused = redeem(session, info, code, origin=None)
    assert refused.status_code == 400 and aadsts(refused) == 9002327
    assert refused.json()["error"] == "invalid_request"
    assert "may only be redeemed via cross-origin requests" in refused.json()["error_description"]


def test_a_browser_redeeming_a_mobile_desktop_uri_code_gets_9002326(
    sandbox: Sandbox, session: requests.Session
) -> None:
    info = sandbox.tenant_info("redirect-uri-wrong-platform", canonical=False)
    code = code_of(sign_in(session, info))["code"]
    refused = redeem(session, info, code)
    assert refused.status_code == 400 and aadsts(refused) == 9002326
    description = refused.json()["error_description"]
    assert "permitted only for the 'Single-Page Application' client-type" in description
    assert f"Request origin: '{ORIGIN}'" in description
    assert refused.headers["access-control-allow-origin"] == "*"  # the page can read why


def test_the_same_code_redeemed_without_an_origin_is_issued(sandbox: Sandbox, session: requests.Session) -> None:
    """The wrong-platform tenant's URI is a mobile/desktop one: a native app (no Origin) redeems it."""
    info = sandbox.tenant_info("redirect-uri-wrong-platform", canonical=False)
    code = code_of(sign_in(session, info))["code"]
    assert redeem(session, info, code, origin=None).status_code == 200


def test_an_unregistered_redirect_uri_is_50011_on_the_sign_in_page(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("redirect-uri-unregistered", canonical=False)
    page = session.get(authorize_url(info), timeout=10)
    assert page.status_code == 400
    assert re.search(r"AADSTS50011: The redirect URI 'http://localhost:3000/spa' specified in the request", page.text)
    posted = session.post(authorize_url(info), data={"username": "x", "password": "y"}, allow_redirects=False)
    assert posted.status_code == 400 and "location" not in posted.headers  # never redirected to an unknown URI


def test_a_loopback_redirect_uri_matches_whatever_its_port(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    page = session.get(authorize_url(info, redirect_uri="http://localhost:49152/spa"), timeout=10)
    assert page.status_code == 200
    other_path = session.get(authorize_url(info, redirect_uri="http://localhost:3000/other"), timeout=10)
    assert other_path.status_code == 400 and "AADSTS50011" in other_path.text


def test_the_token_endpoint_answers_a_cors_preflight(sandbox: Sandbox, session: requests.Session) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    response = session.options(
        f"{info.authority}/oauth2/v2.0/token",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "x-a"},
        timeout=10,
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-allow-headers"] == "x-a"


@pytest.mark.parametrize(
    ("authorize", "verifier"),
    [
        ({"code_challenge": "", "code_challenge_method": ""}, ""),  # no PKCE at all
        ({}, ""),  # a challenge sent, the verifier left out of the redemption
    ],
    ids=["no-pkce", "no-verifier"],
)
def test_a_spa_redemption_without_pkce_gets_9002325(
    sandbox: Sandbox, session: requests.Session, authorize: dict[str, str], verifier: str
) -> None:
    info = sandbox.tenant_info("contoso", canonical=False)
    code = code_of(sign_in(session, info, **authorize))["code"]
    refused = redeem(session, info, code, verifier=verifier)
    assert refused.status_code == 400 and aadsts(refused) == 9002325
    assert refused.json()["error"] == "invalid_request"
    description = refused.json()["error_description"]
    assert description.startswith(
        "AADSTS9002325: Proof Key for Code Exchange is required for cross-origin authorization code redemption."
    )
    assert refused.headers["x-cte-emulator-defined"]  # only third parties quote it
    assert refused.headers["access-control-allow-origin"] == "*"  # the page can read why


def test_a_code_without_pkce_for_a_mobile_desktop_uri_is_issued_to_a_native_app(
    sandbox: Sandbox, session: requests.Session
) -> None:
    """PKCE is required for a browser's (cross-origin) redemption only: a native app redeeming a code issued
    to its mobile/desktop URI without PKCE is not refused with 9002325."""
    info = sandbox.tenant_info("redirect-uri-wrong-platform", canonical=False)
    code = code_of(sign_in(session, info, code_challenge="", code_challenge_method=""))["code"]
    assert redeem(session, info, code, origin=None, verifier="").status_code == 200


def test_the_id_token_carries_the_nonce_of_the_authorize_request(sandbox: Sandbox, session: requests.Session) -> None:
    """OpenID Connect: the nonce sent with the authorize request comes back in the ID token (MSAL.js checks it)."""
    info = sandbox.tenant_info("contoso", canonical=False)
    code = code_of(sign_in(session, info, nonce="the-nonce-of-this-request"))["code"]
    token = redeem(session, info, code)
    assert claims(token.json()["id_token"])["nonce"] == "the-nonce-of-this-request"
    without = redeem(session, info, code_of(sign_in(session, info))["code"])
    assert "nonce" not in claims(without.json()["id_token"])
