"""`cte sandbox serve` in its own process, used by unmodified msal and azure-communication-identity."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import datetime

import msal
import pytest
import requests
from azure.communication.identity import CommunicationIdentityClient
from azure.core.exceptions import ClientAuthenticationError

from harness.wire import contract, tokens

pytestmark = pytest.mark.integration
REQUIRED_KEYS = {
    "authority",
    "tenant_id",
    "client_id",
    "acs_connection_string",
    "acs_endpoint",
    "acs_access_key",
    "graph_base_url",
    "ca_bundle",
    "users",
}


@pytest.fixture(scope="module")
def served():
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.run.cli", "sandbox", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        assert line, f"no JSON line; stderr: {process.stderr.read() if process.poll() is not None else ''}"
        info = json.loads(line)
        yield info, process
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def session(info: dict) -> requests.Session:
    s = requests.Session()
    s.verify = info["ca_bundle"]
    s.trust_env = False
    return s


def public_client(info: dict) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(
        info["client_id"], authority=info["authority"], http_client=session(info), instance_discovery=False
    )


def test_prints_one_json_line_with_what_a_client_needs(served) -> None:
    info, process = served
    assert info.keys() >= REQUIRED_KEYS
    assert all({"upn", "password", "oid"} <= user.keys() for user in info["users"])
    assert info["authority"].startswith("https://localhost:") and info["authority"].endswith(info["tenant_id"])
    assert process.poll() is None, "the server keeps serving after printing"


def exchange(info: dict, result: dict):
    client = CommunicationIdentityClient.from_connection_string(
        info["acs_connection_string"], connection_verify=info["ca_bundle"]
    )
    return client.get_token_for_teams_user(result["access_token"], info["client_id"], result["id_token_claims"]["oid"])


def test_device_code_sign_in_and_exchange(served) -> None:
    info, _ = served
    user = info["users"][0]
    app = public_client(info)
    flow = app.initiate_device_flow(scopes=list(contract.TEAMS_SCOPES))
    assert flow.get("user_code"), flow
    approval = requests.post(
        flow["verification_uri"],
        data={"user_code": flow["user_code"], "username": user["upn"], "password": user["password"]},
        verify=info["ca_bundle"],
        timeout=10,
    )
    assert approval.status_code == 200, approval.text
    result = app.acquire_token_by_device_flow(flow)
    assert "access_token" in result, result
    acs = exchange(info, result)
    assert isinstance(acs.expires_on, str)  # the SDK hands back the service's string
    assert int(datetime.fromisoformat(acs.expires_on).timestamp()) == tokens.claims(result["access_token"])["exp"]


def test_password_grant_with_the_user_realm_workaround(served) -> None:
    """MSAL's user-realm discovery drops the port (AzureAD/microsoft-authentication-library-for-python#259)."""
    info, _ = served
    user = info["users"][0]
    msal.authority.Authority._domains_without_user_realm_discovery.add("localhost")
    try:
        result = public_client(info).acquire_token_by_username_password(
            user["upn"], user["password"], scopes=list(contract.TEAMS_SCOPES)
        )
    finally:
        msal.authority.Authority._domains_without_user_realm_discovery.discard("localhost")
    assert "access_token" in result, result
    assert exchange(info, result).token


def test_a_wrong_access_key_is_denied(served) -> None:
    info, _ = served
    bad = info["acs_connection_string"].replace(info["acs_access_key"], "d3Jvbmcta2V5LXdyb25nLWtleQ==")
    client = CommunicationIdentityClient.from_connection_string(bad, connection_verify=info["ca_bundle"])
    with pytest.raises(ClientAuthenticationError) as raised:
        client.create_user()
    assert raised.value.status_code == 401 and raised.value.error.code == "Denied"


def test_with_write_profile_the_line_names_each_workloads_own_origin(tmp_path) -> None:
    """The printed line and the profile it wrote agree: ACS and Graph at their own ports, not Entra's."""
    import tomllib

    profile = tmp_path / "served.toml"
    process = subprocess.Popen(
        [sys.executable, "-m", "harness.run.cli", "sandbox", "serve", "--write-profile", str(profile)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        info = json.loads(process.stdout.readline())
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=10)
    tenant = tomllib.loads(profile.read_text())["tenant"]
    assert info["acs_endpoint"] == tenant["acs_endpoint"] != info["authority"].rsplit("/", 1)[0]
    assert info["graph_base_url"] == tenant["graph_base_url"]
    assert info["acs_connection_string"] == info["env"][next(k for k in info["env"] if k.endswith("CONNECTION_STRING"))]
