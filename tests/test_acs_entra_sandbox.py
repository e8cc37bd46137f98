"""ACS Identity reached with an Entra ID credential (no access key), against the sandbox, through the real
azure-identity (ClientSecretCredential) and azure-communication-identity: the client-credentials grant for
https://communication.azure.com, bearer authentication and Azure RBAC on the identity routes, and the
errors Entra and ACS answer when the credential or the role assignment is wrong."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import CertificateCredential, ClientSecretCredential
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from harness.sandbox.server import Sandbox
from harness.sandbox.state import ACS_DATA_PLANE_APP_ID, service_principal_oid
from harness.wire import contract, tokens
from harness.wire.tenant import TenantInfo
from tests.support import device_code_sign_in

pytestmark = pytest.mark.integration

ACS_DATA = "https://communication.azure.com"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def info(sandbox: Sandbox) -> TenantInfo:
    return sandbox.tenant_info("contoso", canonical=False)


def credential(info: TenantInfo, secret: str | None = None) -> ClientSecretCredential:
    authority, _, tenant_id = info.authority.rpartition("/")
    return ClientSecretCredential(
        tenant_id,
        info.client_id,
        secret if secret is not None else info.client_secret,
        authority=authority,
        disable_instance_discovery=True,
        connection_verify=info.ca_bundle,
    )


def client(info: TenantInfo, cred: Any) -> CommunicationIdentityClient:
    return CommunicationIdentityClient(info.acs_endpoint, cred, connection_verify=info.ca_bundle)


def session(info: TenantInfo) -> requests.Session:
    s = requests.Session()
    s.verify, s.trust_env = info.ca_bundle, False
    return s


def app_token(info: TenantInfo, scope: str, secret: str | None = None) -> dict[str, Any]:
    """The client-credentials grant by hand, so the answer (and its errors) are seen as sent."""
    response = session(info).post(
        f"{info.authority}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info.client_id,
            "client_secret": secret or info.client_secret,
            "scope": scope,
        },
        timeout=10,
    )
    return {"status": response.status_code, **response.json()}


def teams_user_token(info: TenantInfo) -> dict[str, Any]:
    return device_code_sign_in(info, contract.TEAMS_SCOPES)[1]


def test_the_exchange_and_identities_through_client_secret_credential(info: TenantInfo) -> None:
    acs = client(info, credential(info))
    entra = teams_user_token(info)
    assert "access_token" in entra, entra
    oid = tokens.claims(entra["access_token"])["oid"]
    teams = acs.get_token_for_teams_user(entra["access_token"], info.client_id, oid)
    assert tokens.claims(teams.token)["skypeid"] == f"orgid:{oid}"
    user, token = acs.create_user_and_token([CommunicationTokenScope.VOIP])
    assert user.properties["id"].startswith("8:acs:") and token.token
    acs.revoke_tokens(user)
    acs.delete_user(user)


@pytest.mark.parametrize(
    "scope", [f"{ACS_DATA}/.default", f"{ACS_DATA}//.default", f"{ACS_DATA_PLANE_APP_ID}/.default"]
)
def test_an_app_token_for_the_acs_resource(info: TenantInfo, sandbox: Sandbox, scope: str) -> None:
    answer = app_token(info, scope)
    assert answer["status"] == 200, answer
    claims = tokens.claims(answer["access_token"])
    expected_aud = f"{ACS_DATA}/" if scope.startswith(f"{ACS_DATA}//") else ACS_DATA
    assert claims["aud"] == expected_aud
    assert claims["iss"] == f"https://sts.windows.net/{info.tenant_id}/"
    assert claims["idtyp"] == "app" and claims["appid"] == info.client_id and claims["tid"] == info.tenant_id
    assert claims["oid"] == service_principal_oid(sandbox.ctx.ids, "contoso", info.client_id)
    assert "scp" not in claims and claims["roles"] == []
    # Either spelling of the audience is accepted by ACS.
    response = session(info).post(
        f"{info.acs_endpoint}/identities?api-version=2023-10-01",
        json={},
        headers={"Authorization": f"Bearer {answer['access_token']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def test_an_unknown_resource_is_aadsts500011(info: TenantInfo) -> None:
    answer = app_token(info, "https://northwind.example/.default")
    assert answer["status"] == 400 and answer["error"] == "invalid_resource"
    assert answer["error_codes"] == [500011]


def test_no_service_principal_for_the_resource_is_aadsts500011(info: TenantInfo, sandbox: Sandbox) -> None:
    tenant = sandbox.ctx.directory.tenants["contoso"]
    tenant.service_principals.discard(ACS_DATA_PLANE_APP_ID)
    try:
        answer = app_token(info, f"{ACS_DATA}//.default")
    finally:
        tenant.service_principals.add(ACS_DATA_PLANE_APP_ID)
    assert answer["status"] == 400 and answer["error_codes"] == [500011]
    assert answer["error_description"].startswith(f"AADSTS500011: The resource principal named {ACS_DATA} was not")


def test_an_expired_client_secret_is_aadsts7000222(sandbox: Sandbox) -> None:
    info = sandbox.tenant_info("client-secret-expired", canonical=False)
    answer = app_token(info, f"{ACS_DATA}//.default")
    assert answer["status"] == 401 and answer["error"] == "invalid_client"
    assert answer["error_description"].startswith(
        f"AADSTS7000222: The provided client secret keys for app '{info.client_id}' are expired."
    )
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000222"):
        client(info, credential(info)).create_user()


def test_a_wrong_client_secret_fails_in_azure_identity(info: TenantInfo) -> None:
    with pytest.raises(ClientAuthenticationError, match="AADSTS7000215"):
        client(info, credential(info, "cs~not-the-secret")).create_user()


def test_no_role_on_the_acs_resource_is_403(sandbox: Sandbox) -> None:
    info = sandbox.tenant_info("acs-role-missing", canonical=False)
    with pytest.raises(HttpResponseError) as caught:
        client(info, credential(info)).create_user()
    err = caught.value
    assert err.status_code == 403
    assert err.error is not None and err.error.code == "AuthorizationFailed"
    oid = service_principal_oid(sandbox.ctx.ids, "acs-role-missing", info.client_id)
    assert oid in err.error.message
    assert err.response is not None and contract.EMULATOR_DEFINED_HEADER in {k.lower() for k in err.response.headers}


def forged(sandbox: Sandbox, info: TenantInfo, **changes: Any) -> str:
    claims = tokens.claims(app_token(info, f"{ACS_DATA}/.default")["access_token"])
    claims.update(changes)
    return sandbox.ctx.entra_signer.sign(claims)


@pytest.mark.parametrize(
    "case",
    ["expired", "graph audience", "teams-exchange audience", "other tenant", "wrong issuer", "not signed by Entra"],
)
def test_a_bearer_token_not_valid_for_acs_is_401(sandbox: Sandbox, info: TenantInfo, case: str) -> None:
    fabrikam = sandbox.ctx.directory.tenants["fabrikam"].tenant_id
    if case == "not signed by Entra":
        claims = tokens.claims(app_token(info, f"{ACS_DATA}/.default")["access_token"])
        token = jwt.encode(claims, "not-the-key-of-the-sandbox-entra-xxxxxx", algorithm="HS256")
    else:
        token = forged(
            sandbox,
            info,
            **{
                "expired": {"exp": sandbox.ctx.epoch() - 1},
                "graph audience": {"aud": "https://graph.microsoft.com"},
                "teams-exchange audience": {"aud": "https://auth.msft.communication.azure.com"},
                "other tenant": {"tid": fabrikam, "iss": f"https://sts.windows.net/{fabrikam}/"},
                "wrong issuer": {"iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/"},
            }[case],
        )
    response = session(info).post(
        f"{info.acs_endpoint}/identities?api-version=2023-10-01",
        json={},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "Denied"
    assert contract.EMULATOR_DEFINED_HEADER in {k.lower() for k in response.headers}


def _certificate(path: Path, name: str) -> bytes:
    """A self-signed test certificate and its key, written as one PEM (what CertificateCredential reads)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path.write_bytes(key_pem + cert_pem)
    return cert_pem


def test_a_certificate_credential_reaches_acs(sandbox: Sandbox, info: TenantInfo, tmp_path: Path) -> None:
    registered = _certificate(tmp_path / "registered.pem", "cte-test-registered")
    _certificate(tmp_path / "unregistered.pem", "cte-test-unregistered")
    app = sandbox.ctx.directory.tenants["contoso"].apps[info.client_id]
    app.certificates.append(registered)
    authority, _, tenant_id = info.authority.rpartition("/")

    def certificate(name: str) -> CertificateCredential:
        return CertificateCredential(
            tenant_id,
            info.client_id,
            str(tmp_path / name),
            authority=authority,
            disable_instance_discovery=True,
            connection_verify=info.ca_bundle,
        )

    try:
        user = client(info, certificate("registered.pem")).create_user()
        assert user.properties["id"].startswith("8:acs:")
        with pytest.raises(ClientAuthenticationError, match="AADSTS700027"):
            client(info, certificate("unregistered.pem")).create_user()
    finally:
        app.certificates.remove(registered)
