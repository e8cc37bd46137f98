"""The emulated ACS Identity service driven by the real azure-communication-identity SDK."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from harness.sandbox.server import Sandbox
from harness.wire import contract, tokens
from harness.wire.tenant import TenantInfo
from tests.support import device_code_sign_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def info():
    with Sandbox() as sandbox:
        yield sandbox.tenant_info("contoso", canonical=False)


def client(info: TenantInfo, **kwargs) -> CommunicationIdentityClient:
    return CommunicationIdentityClient.from_connection_string(
        info.acs_connection_string, connection_verify=info.ca_bundle, **kwargs
    )


@pytest.fixture(scope="module")
def entra_token(info: TenantInfo) -> dict:
    return device_code_sign_in(info, contract.TEAMS_SCOPES)[1]


def test_identity_lifecycle(info: TenantInfo) -> None:
    acs = client(info)
    user, token = acs.create_user_and_token([CommunicationTokenScope.VOIP], token_expires_in=timedelta(minutes=60))
    assert user.properties["id"].startswith("8:acs:")
    claims = tokens.claims(token.token)
    assert claims["acsScope"] == "voip" and "tid" not in claims
    assert claims["exp"] - claims["iat"] == 3600
    assert acs.get_token(user, [CommunicationTokenScope.CHAT]).token
    acs.revoke_tokens(user)
    acs.delete_user(user)
    with pytest.raises(ResourceNotFoundError):
        acs.get_token(user, [CommunicationTokenScope.CHAT])


@pytest.mark.parametrize("minutes", [59, 1441])
def test_token_lifetime_outside_60_to_1440_minutes_is_rejected(info: TenantInfo, minutes: int) -> None:
    acs = client(info)
    user = acs.create_user()
    with pytest.raises(HttpResponseError) as raised:
        acs.get_token(user, [CommunicationTokenScope.VOIP], token_expires_in=timedelta(minutes=minutes))
    assert raised.value.status_code == 400


@pytest.mark.parametrize("api_version", ["2022-06-01", "2022-10-01", "2023-10-01"])
def test_exchange_on_every_ga_version(info: TenantInfo, entra_token: dict, api_version: str) -> None:
    responses = []
    token = client(info, api_version=api_version).get_token_for_teams_user(
        entra_token["access_token"],
        info.client_id,
        entra_token["id_token_claims"]["oid"],
        raw_response_hook=responses.append,
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00", token.expires_on)
    headers = responses[-1].http_response.headers
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert api_version in headers["api-supported-versions"]
    claims = tokens.claims(token.token)
    assert claims["skypeid"] == f"orgid:{entra_token['id_token_claims']['oid']}"
    assert claims["exp"] == tokens.claims(entra_token["access_token"])["exp"]


def test_an_unsupported_api_version_is_rejected_as_emulator_defined(info: TenantInfo, entra_token: dict) -> None:
    with pytest.raises(HttpResponseError) as raised:
        client(info, api_version="2020-01-01").get_token_for_teams_user(
            entra_token["access_token"], info.client_id, entra_token["id_token_claims"]["oid"]
        )
    assert raised.value.status_code == 400
    assert contract.EMULATOR_DEFINED_HEADER in raised.value.response.headers


def test_a_body_that_is_not_json_gets_a_4xx(info: TenantInfo) -> None:
    """Malformed input gets a clear 4xx, never a 5xx (signed correctly, so it reaches validation)."""
    from azure.core.pipeline.transport import HttpRequest

    acs = client(info)
    request = HttpRequest("POST", info.acs_endpoint + "/teamsUser/:exchangeAccessToken?api-version=2023-10-01")
    request.body = "not json"
    request.headers["Content-Type"] = "application/json"
    response = acs._identity_service_client._client.send_request(request)  # the SDK's own signing pipeline
    assert response.status_code == 400 and json.loads(response.text())["error"]["code"] == "ValidationError"


def test_the_exchange_log_says_what_reached_acs_without_the_token(info: TenantInfo, entra_token: dict) -> None:
    """The sandbox's own diagnostics for `cte backend check`: each exchange request's ids, its token's facts
    and the answer, after a mark; marked emulator-defined (no Microsoft service has it)."""
    import httpx

    log_url = f"{info.acs_endpoint}{contract.SANDBOX_EXCHANGE_LOG_PATH}"
    with httpx.Client(verify=info.ca_bundle) as http:
        mark = http.get(log_url, params={"since": 2**31}).json()["last"]
        token, oid = entra_token["access_token"], tokens.claims(entra_token["access_token"])["oid"]
        client(info).get_token_for_teams_user(token, info.client_id, oid)
        with pytest.raises(HttpResponseError):
            client(info).get_token_for_teams_user(token, "00000000-0000-0000-0000-00000000beef", oid)
        answer = http.get(log_url, params={"since": mark})
    assert answer.headers[contract.EMULATOR_DEFINED_HEADER]
    entries = answer.json()["entries"]
    assert [(e["app_id"], e["status"], e["code"]) for e in entries] == [
        (info.client_id, 200, None),
        ("00000000-0000-0000-0000-00000000beef", 400, "ValidationError"),
    ]
    assert entries[0]["token"] == {
        "aud": "https://auth.msft.communication.azure.com",
        "appid": info.client_id,
        "oid": oid,
        "tid": info.tenant_id,
        "scp": "Teams.ManageCalls Teams.ManageChats",
        "expired": False,
    }
    assert token not in answer.text and token.split(".")[2] not in answer.text
