"""The sandbox's Entra ID, driven by the real msal library over real HTTPS on loopback."""

from __future__ import annotations

import re
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import msal
import pytest
import requests

from harness.sandbox.server import Sandbox
from harness.wire.tenant import TenantInfo, TenantUser
from harness.wire.tokens import claims

pytestmark = pytest.mark.integration

ACS = "https://auth.msft.communication.azure.com"
TEAMS_SCOPES = [f"{ACS}/Teams.ManageCalls", f"{ACS}/Teams.ManageChats"]
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}Z$")


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module", autouse=True)
def no_user_realm_discovery_on_localhost() -> Iterator[None]:
    """MSAL's password grant asks https://<host>:443 for the user realm (it drops the port)."""
    domains = msal.authority.Authority._domains_without_user_realm_discovery
    added = "localhost" not in domains
    domains.add("localhost")
    yield
    if added:
        domains.discard("localhost")


@pytest.fixture(scope="module")
def info(sandbox: Sandbox) -> TenantInfo:
    return sandbox.tenant_info("contoso", canonical=False)


@pytest.fixture
def session(info: TenantInfo) -> Iterator[requests.Session]:
    with requests.Session() as s:
        s.verify = info.ca_bundle
        s.trust_env = False
        yield s


def user(info: TenantInfo, alias: str) -> TenantUser:
    return info.user(alias)


def public_app(info: TenantInfo, session: requests.Session, client_id: str | None = None) -> Any:
    """A fresh app per call: MSAL caches an identical failing POST per app instance for 60 s."""
    return msal.PublicClientApplication(
        client_id or info.client_id, authority=info.authority, http_client=session, instance_discovery=False
    )


def confidential_app(info: TenantInfo, session: requests.Session, secret: str | None = None) -> Any:
    """The tenant's confidential app (its client secret, unless another is given)."""
    return msal.ConfidentialClientApplication(
        info.client_id,
        client_credential=info.client_secret if secret is None else secret,
        authority=info.authority,
        http_client=session,
        instance_discovery=False,
    )


def password_grant(app: Any, u: TenantUser, password: str | None = None, scopes: list[str] = TEAMS_SCOPES) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return app.acquire_token_by_username_password(
            u.upn, u.password if password is None else password, scopes=scopes
        )


def assert_entra_error(result: dict[str, Any], error: str, code: int) -> None:
    """The real Entra v2 error body (docs/contracts/identity.md §5.3)."""
    assert "access_token" not in result
    assert result["error"] == error, result
    assert result["error_codes"] == [code]
    description = result["error_description"]
    assert description.startswith(f"AADSTS{code}: ")
    uuid.UUID(result["trace_id"])
    uuid.UUID(result["correlation_id"])
    assert TIMESTAMP.match(result["timestamp"])
    assert f"Trace ID: {result['trace_id']}" in description
    assert f"Correlation ID: {result['correlation_id']}" in description
    assert f"Timestamp: {result['timestamp']}" in description
    assert result["error_uri"] == f"https://login.microsoftonline.com/error?code={code}"


# -- successful sign-ins ------------------------------------------------------------------------------


def test_password_grant_issues_a_teams_token(info: TenantInfo, session: requests.Session) -> None:
    adele = user(info, "adele")
    result = password_grant(public_app(info, session), adele)
    assert "access_token" in result, result
    token = claims(result["access_token"])
    assert token["aud"] == ACS
    assert set(token["scp"].split()) >= {"Teams.ManageCalls", "Teams.ManageChats"}
    assert token["appid"] == info.client_id
    assert token["oid"] == adele.oid
    assert token["tid"] == info.tenant_id
    assert token["upn"] == adele.upn
    assert token["exp"] - token["iat"] == 4500
    assert result["expires_in"] == 4500
    assert result["token_type"] == "Bearer"
    assert result["id_token_claims"]["oid"] == adele.oid
    assert result["id_token_claims"]["tid"] == info.tenant_id
    assert result["id_token_claims"]["aud"] == info.client_id
    assert result.get("refresh_token")


def test_access_token_is_signed_by_the_published_keys(info: TenantInfo, session: requests.Session) -> None:
    import jwt

    result = password_grant(public_app(info, session), user(info, "megan"))
    config = session.get(f"{info.authority}/v2.0/.well-known/openid-configuration").json()
    jwks = session.get(config["jwks_uri"]).json()
    kid = jwt.get_unverified_header(result["access_token"])["kid"]
    key = next(jwt.PyJWK(k) for k in jwks["keys"] if k["kid"] == kid)
    verified = jwt.decode(result["access_token"], key.key, algorithms=["RS256"], audience=ACS)
    assert verified["oid"] == user(info, "megan").oid


def test_silent_refresh_uses_the_refresh_token(info: TenantInfo, session: requests.Session) -> None:
    app = public_app(info, session)
    adele = user(info, "adele")
    first = password_grant(app, adele)
    (account,) = app.get_accounts(username=adele.upn)
    cached = app.acquire_token_silent(TEAMS_SCOPES, account)
    assert cached["access_token"] == first["access_token"]
    assert cached["token_source"] == "cache"
    refreshed = app.acquire_token_silent(TEAMS_SCOPES, account, force_refresh=True)
    assert refreshed is not None and "access_token" in refreshed, refreshed
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    token = claims(refreshed["access_token"])
    assert (token["aud"], token["oid"], token["tid"]) == (ACS, adele.oid, info.tenant_id)
    again = app.acquire_token_silent(TEAMS_SCOPES, account, force_refresh=True)
    assert again is not None and "access_token" in again, again


def test_device_code_flow(info: TenantInfo, session: requests.Session) -> None:
    app = public_app(info, session)
    megan = user(info, "megan")
    flow = app.initiate_device_flow(scopes=TEAMS_SCOPES)
    assert flow["user_code"] in flow["message"], flow
    assert flow["verification_uri"] in flow["message"]
    page = requests.post(
        flow["verification_uri"],
        data={"user_code": flow["user_code"], "username": megan.upn, "password": megan.password},
        verify=info.ca_bundle,
        timeout=10,
    )
    assert page.status_code == 200, page.text
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    token = claims(result["access_token"])
    assert token["oid"] == megan.oid
    assert token["aud"] == ACS
    assert set(token["scp"].split()) >= {"Teams.ManageCalls", "Teams.ManageChats"}


def test_device_code_pending_until_approved(info: TenantInfo, session: requests.Session) -> None:
    app = public_app(info, session)
    megan = user(info, "megan")
    flow = app.initiate_device_flow(scopes=TEAMS_SCOPES)
    page = requests.post(
        flow["verification_uri"],
        data={"user_code": flow["user_code"], "username": megan.upn, "password": "not-the-password"},
        verify=info.ca_bundle,
        timeout=10,
    )
    assert page.status_code == 400
    assert "AADSTS50126" in page.text
    flow["expires_at"] = 0  # MSAL's documented way to poll once and not wait
    result = app.acquire_token_by_device_flow(flow)
    assert_entra_error(result, "authorization_pending", 70016)


def test_device_code_page_rejects_an_unknown_code(info: TenantInfo) -> None:
    page = requests.post(
        f"{info.authority.rsplit('/', 1)[0]}/common/oauth2/deviceauth",
        data={"user_code": "NOSUCHCODE", "username": "x", "password": "y"},
        verify=info.ca_bundle,
        timeout=10,
    )
    assert page.status_code == 400
    assert "didn't work" in page.text


def test_client_credentials_token_has_no_delegated_scopes(info: TenantInfo, session: requests.Session) -> None:
    app = confidential_app(info, session)
    result = app.acquire_token_for_client(scopes=[f"{ACS}/.default"])
    assert "access_token" in result, result
    token = claims(result["access_token"])
    assert "scp" not in token
    assert token["aud"] == ACS
    assert token["appid"] == info.client_id
    assert token["tid"] == info.tenant_id
    assert token["idtyp"] == "app"


def test_client_credentials_with_a_wrong_secret(info: TenantInfo, session: requests.Session) -> None:
    app = confidential_app(info, session, "cs~not-the-secret")
    result = app.acquire_token_for_client(scopes=[f"{ACS}/.default"])
    assert_entra_error(result, "invalid_client", 7000215)


# -- rejections, in the real error format ----------------------------------------------------------------


def test_wrong_password(info: TenantInfo, session: requests.Session) -> None:
    result = password_grant(public_app(info, session), user(info, "adele"), password="not-the-password")
    assert_entra_error(result, "invalid_grant", 50126)


def test_unknown_user(info: TenantInfo, session: requests.Session) -> None:
    """As Entra answers the password grant for an account that does not exist (azure-sdk-for-net's
    UsernamePasswordCredential live tests; Learn's HDInsight troubleshooting page): 50034, account hidden."""
    nobody = TenantUser("nobody", "nobody@contoso-sandbox.onmicrosoft.com", "whatever", "", False, False)
    result = password_grant(public_app(info, session), nobody)
    assert_entra_error(result, "invalid_grant", 50034)
    assert result["error_description"].startswith(
        f"AADSTS50034: The user account {{EmailHidden}} does not exist in the {info.tenant_id} directory."
    )
    assert "nobody@" not in result["error_description"]


def test_mfa_user(info: TenantInfo, session: requests.Session) -> None:
    lynne = user(info, "lynne")
    assert lynne.mfa_required is True
    result = password_grant(public_app(info, session), lynne)
    assert_entra_error(result, "invalid_grant", 50076)
    assert "multi-factor authentication" in result["error_description"]


def test_invalid_scope(info: TenantInfo, session: requests.Session) -> None:
    result = password_grant(public_app(info, session), user(info, "adele"), scopes=[f"{ACS}/Teams.ManageEverything"])
    assert_entra_error(result, "invalid_scope", 70011)


def test_unknown_client_id(info: TenantInfo, session: requests.Session) -> None:
    stranger = str(uuid.uuid4())
    result = password_grant(public_app(info, session, client_id=stranger), user(info, "adele"))
    assert_entra_error(result, "unauthorized_client", 700016)
    assert stranger in result["error_description"]


def test_consent_missing_tenant(sandbox: Sandbox, session: requests.Session) -> None:
    tenant = sandbox.tenant_info("consent-missing", canonical=False)
    result = password_grant(public_app(tenant, session), user(tenant, "adele"))
    assert_entra_error(result, "invalid_grant", 65001)
    assert result["suberror"] == "consent_required"
    assert tenant.client_id in result["error_description"]


def test_public_client_disabled_tenant(sandbox: Sandbox, session: requests.Session) -> None:
    tenant = sandbox.tenant_info("public-client-disabled", canonical=False)
    result = password_grant(public_app(tenant, session), user(tenant, "adele"))
    assert_entra_error(result, "invalid_client", 7000218)


def test_public_client_disabled_refuses_the_device_code_flow(sandbox: Sandbox, session: requests.Session) -> None:
    tenant = sandbox.tenant_info("public-client-disabled", canonical=False)
    flow = public_app(tenant, session).initiate_device_flow(scopes=TEAMS_SCOPES)
    assert "user_code" not in flow
    assert_entra_error(flow, "invalid_client", 7000218)


def test_a_users_password_is_only_good_in_their_tenant(
    sandbox: Sandbox, info: TenantInfo, session: requests.Session
) -> None:
    other_tenant = sandbox.tenant_info("consent-missing", canonical=False)
    result = password_grant(public_app(info, session), user(other_tenant, "adele"))
    assert_entra_error(result, "invalid_grant", 50020)
    assert f"from identity provider 'https://sts.windows.net/{other_tenant.tenant_id}/'" in result["error_description"]
    assert "needs to be added as an external user" in result["error_description"]


def test_correlation_id_is_the_clients_request_id(info: TenantInfo, session: requests.Session) -> None:
    seen: list[str] = []

    def remember(response: requests.Response, *args: Any, **kwargs: Any) -> None:
        if response.request.method == "POST":
            seen.append(response.request.headers.get("client-request-id", ""))

    session.hooks["response"].append(remember)
    result = password_grant(public_app(info, session), user(info, "adele"), password="not-the-password")
    assert seen and seen[-1], "MSAL sent no client-request-id"
    assert result["correlation_id"] == seen[-1]


def test_error_description_ends_with_trace_correlation_and_timestamp(
    info: TenantInfo, session: requests.Session
) -> None:
    """Sources differ on the separator: the reference doc's example uses \\r\\n, responses seen since 2024
    use spaces (both listed in docs/contracts/identity.md §5.3 and the AADSTS findings); the sandbox sends spaces."""
    result = password_grant(public_app(info, session), user(info, "adele"), password="not-the-password")
    description = result["error_description"]
    assert re.search(
        r"\. Trace ID: [0-9a-f-]{36} Correlation ID: [0-9a-f-]{36} Timestamp: \d{4}-\d\d-\d\d "
        r"\d\d:\d\d:\d\dZ$",
        description,
    ), description


def test_a_users_token_request_for_two_resources_is_28000_with_one_request_per_resource_as_remedy(
    info: TenantInfo, session: requests.Session
) -> None:
    """The ACS Teams scopes and Graph's in one request: Entra answers AADSTS28000 (reported verbatim in
    public issues, docs/contracts/identity.md §5.3), and the harness says to make one request per resource."""
    from harness.conformance.diagnosis import for_aadsts

    scopes = [f"{ACS}/Teams.ManageCalls", "https://graph.microsoft.com/Chat.ReadWrite"]
    result = password_grant(public_app(info, session), user(info, "adele"), scopes=scopes)
    assert_entra_error(result, "invalid_scope", 28000)
    assert "is not valid because it contains more than one resource. Scope " in result["error_description"]
    assert f"{ACS}/Teams.ManageCalls https://graph.microsoft.com/Chat.ReadWrite" in result["error_description"]
    found = for_aadsts(28000)
    assert found is not None and "one token request per resource" in found.remedy


def test_an_apps_token_request_for_two_resources_is_70011(info: TenantInfo, session: requests.Session) -> None:
    """Client credentials asking two resources' .default: 70011 with the whole scope (azure-sdk-for-net#9076)."""
    app = confidential_app(info, session)
    result = app.acquire_token_for_client(scopes=[f"{ACS}/.default", "https://graph.microsoft.com/.default"])
    assert_entra_error(result, "invalid_scope", 70011)
    assert result["error_description"].startswith(
        "AADSTS70011: The provided request must include a 'scope' input parameter. The provided value for the "
        f"input parameter 'scope' is not valid. The scope {ACS}/.default https://graph.microsoft.com/.default is"
    )
