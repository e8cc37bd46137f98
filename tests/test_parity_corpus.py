"""The parity corpus: Microsoft's public SDK recordings of the real ACS Identity service answering
`POST /teamsUser/:exchangeAccessToken`, replayed against the embedded sandbox.

Each recording (tests/parity_corpus/*.json, sources in tests/parity_corpus/SOURCES.md) is one test case.
The recorded request carries sanitized values, so the test rebuilds the request the SDK test sent from the
recording's `send` (what that test case passed: a real sandbox Entra token or an expired one, the app's
client ID or the user's object ID, a literal, or no such key) and sends it, HMAC-signed by the real
azure-communication-identity client's pipeline, with the recording's api-version. A recording whose client
authenticated to ACS with an Entra ID credential (`"auth": "bearer"`) is sent the same way, authenticated by the
pipeline's bearer policy with a client-credentials token for https://communication.azure.com (azure-identity's
ClientSecretCredential and the sandbox tenant's app): ACS sees the same kind of credential, a bearer token for
its resource issued to a service principal, whatever kind of principal (a managed identity) held it.
The answers are then compared with harness.run.parity.compare (status; error code, message and target
exactly; key structure and value formats), and the headers the recordings show: the exact Content-Type,
and whether the answer carries api-supported-versions (naming the request's api-version when it does).

`pytest tests/test_parity_corpus.py -s` prints the parity table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.communication.identity import CommunicationIdentityClient
from azure.core.pipeline.transport import HttpRequest
from azure.identity import ClientSecretCredential

from harness.run.parity import Exchange, compare
from harness.sandbox.server import Sandbox
from harness.wire import contract
from harness.wire.tenant import TenantInfo
from tests.support import device_code_sign_in

pytestmark = pytest.mark.integration

CORPUS = Path(__file__).parent / "parity_corpus"
FILES = ("python.json", "js.json", "java.json", "net.json")
EXCHANGE_PATH = "/teamsUser/:exchangeAccessToken"
FIELDS = ("token", "appId", "userId")
# What `send` may name instead of a literal value (SOURCES.md, "How a request is rebuilt").
ENTRA_TOKEN, EXPIRED_TOKEN, CLIENT_ID, USER_OID, ABSENT = (
    "<entra-token>",
    "<expired-entra-token>",
    "<client-id>",
    "<user-oid>",
    "<absent>",
)
PLACEHOLDERS = {ENTRA_TOKEN, EXPIRED_TOKEN, CLIENT_ID, USER_OID, ABSENT}
SANITIZED = {"sanitized", "Sanitized", "REDACTED"}
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# ACS's expiresOn: the .NET round-trip form, up to 7 fractional digits with trailing zeros dropped.
EXPIRES_ON = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.(\d{0,6}[1-9])\+00:00$")


def _recordings() -> list[dict[str, Any]]:
    found = []
    for name in FILES:
        for entry in json.loads((CORPUS / name).read_text(encoding="utf-8"))["recordings"]:
            found.append({**entry, "file": name})
    return found


RECORDINGS = _recordings()
REPLAYED = [r for r in RECORDINGS if "send" in r]


# -- the corpus itself ---------------------------------------------------------------------------------


def test_every_recording_names_its_source_and_is_replayed_or_says_why_not() -> None:
    sources = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    ids = [r["id"] for r in RECORDINGS]
    assert len(ids) == len(set(ids)), "recording ids must be unique"
    for r in RECORDINGS:
        source = r["source"]
        assert re.fullmatch(r"[0-9a-f]{40}", source["commit"]), r["id"]
        assert source["url"].startswith(f"https://github.com/{source['repository']}/blob/{source['commit']}/"), r["id"]
        assert source["commit"][:8] in sources, f"{r['id']}: commit {source['commit']} not in SOURCES.md"
        assert ("send" in r) != bool(r.get("not_replayed")), f"{r['id']}: replayed, or a reason why not"
        assert r["request"]["method"] == "POST" and EXCHANGE_PATH in r["request"]["url"], r["id"]


@pytest.mark.parametrize("recording", REPLAYED, ids=[r["id"] for r in REPLAYED])
def test_the_rebuilt_request_agrees_with_what_was_recorded(recording: dict[str, Any]) -> None:
    """`send` may not contradict the recording: a value the recording kept must be the one sent; a key
    the recording lacks must be sent absent; a sanitized value may stand for anything."""
    recorded, send = recording["request"]["body"], recording["send"]
    assert set(send) <= set(FIELDS) and set(send) >= set(recorded), recording["id"]
    for key, value in send.items():
        if key not in recorded:
            assert value == ABSENT, f"{recording['id']}: {key} is not in the recorded body"
            continue
        kept = recorded[key]
        if kept in SANITIZED:
            assert value != ABSENT, f"{recording['id']}: {key} was recorded"
        elif value in (CLIENT_ID, USER_OID):
            assert GUID.match(kept), f"{recording['id']}: {key} recorded as {kept!r}, sent as {value}"
        else:
            assert value == kept, f"{recording['id']}: {key} recorded as {kept!r}, sent as {value!r}"


# -- against the sandbox ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[tuple[TenantInfo, dict[str, str]]]:
    """The sandbox's tenant, and the values a recording's request names by placeholder."""
    with Sandbox() as running:
        info = running.tenant_info("contoso", canonical=False)
        user = next(u for u in info.users if u.teams_license and not u.mfa_required)
        _, signed_in = device_code_sign_in(info, contract.TEAMS_SCOPES, user)
        assert "access_token" in signed_in, signed_in
        yield (
            info,
            {
                ENTRA_TOKEN: signed_in["access_token"],
                EXPIRED_TOKEN: info.expired_teams_token,
                CLIENT_ID: info.client_id,
                USER_OID: signed_in["id_token_claims"]["oid"],
            },
        )


@pytest.fixture(scope="module")
def parity_table() -> Iterator[list[tuple[str, ...]]]:
    rows: list[tuple[str, ...]] = []
    yield rows
    if rows:
        width = max(len(row[0]) for row in rows)
        print(f"\n{'recording':<{width}}  api-version          status  code  message  target  body  headers")
        for row in rows:
            print(f"{row[0]:<{width}}  {row[1]:<19}  " + "  ".join(f"{cell:<6}" for cell in row[2:]))
        matched = sum(all(cell == "ok" for cell in row[2:]) for row in rows)
        print(f"{matched}/{len(rows)} recordings answered alike")


def _body(send: dict[str, str], values: dict[str, str]) -> dict[str, str]:
    return {key: values.get(value, value) for key, value in send.items() if value != ABSENT}


def _ask_sandbox(
    info: TenantInfo, api_version: str, body: dict[str, str], auth: str = "hmac"
) -> tuple[int, dict[str, str], str]:
    if auth == "bearer":
        authority, _, tenant_id = info.authority.rpartition("/")
        credential = ClientSecretCredential(
            tenant_id,
            info.client_id,
            info.client_secret,
            authority=authority,
            disable_instance_discovery=True,
            connection_verify=info.ca_bundle,
        )
        client = CommunicationIdentityClient(
            info.acs_endpoint, credential, connection_verify=info.ca_bundle, retry_total=0
        )
    else:
        client = CommunicationIdentityClient.from_connection_string(
            info.acs_connection_string, connection_verify=info.ca_bundle, retry_total=0
        )
    request = HttpRequest("POST", f"{info.acs_endpoint}{EXCHANGE_PATH}?api-version={api_version}")
    request.set_json_body(body)
    # the SDK's own pipeline: its HMAC policy signs the exact bytes sent (or its bearer policy authenticates)
    response = client._identity_service_client._client.send_request(request)
    sent = response.request.headers.get("Authorization", "")
    assert sent.startswith("Bearer " if auth == "bearer" else "HMAC-SHA256 "), "the request was not sent as recorded"
    headers = {k.lower(): v for k, v in response.headers.items()}
    return response.status_code, headers, response.text()


def _seven_digits(document: Any) -> str:
    """A success body with its expiresOn fraction padded to 7 digits: a fraction shorter than 7 is the
    service's trimming of trailing zeros (identity.md §1.1), not another precision."""
    if isinstance(document, dict) and isinstance(document.get("expiresOn"), str):
        match = re.fullmatch(r"(.*\.)(\d{1,7})(\+00:00)", document["expiresOn"])
        if match:
            document = {**document, "expiresOn": match.group(1) + match.group(2).ljust(7, "0") + match.group(3)}
    return json.dumps(document)


@pytest.mark.parametrize("recording", REPLAYED, ids=[r["id"] for r in REPLAYED])
def test_the_sandbox_answers_as_the_recorded_service(
    recording: dict[str, Any], sandbox: tuple[TenantInfo, dict[str, str]], parity_table: list[tuple[str, ...]]
) -> None:
    info, values = sandbox
    api_version = recording["request"]["api_version"]
    status, headers, text = _ask_sandbox(
        info, api_version, _body(recording["send"], values), recording.get("auth", "hmac")
    )
    theirs = recording["response"]
    recorded = Exchange(
        "POST",
        recording["request"]["url"],
        theirs["status"],
        _seven_digits(theirs["body"]),
        theirs["headers"]["Content-Type"],
    )
    try:
        ours_body: Any = json.loads(text)
    except ValueError:
        ours_body = None
    ours = Exchange(
        "POST",
        f"{info.acs_endpoint}{EXCHANGE_PATH}?api-version={api_version}",
        status,
        _seven_digits(ours_body) if ours_body is not None else text,
        headers.get("content-type", ""),
    )
    divergences = compare(recorded, ours, recording["id"])
    problems = [d.line() for d in divergences]
    if status == 200 and isinstance(ours_body, dict) and not EXPIRES_ON.match(str(ours_body.get("expiresOn"))):
        problems.append(f"expiresOn {ours_body.get('expiresOn')!r} is not the service's round-trip format")

    # the headers the recordings show
    header_problems = []
    if headers.get("content-type") != theirs["headers"]["Content-Type"]:
        header_problems.append(
            f"Content-Type: recorded {theirs['headers']['Content-Type']!r}; sandbox {headers.get('content-type')!r}"
        )
    recorded_versions = theirs["headers"].get("api-supported-versions")
    our_versions = headers.get("api-supported-versions")
    if (recorded_versions is None) != (our_versions is None):
        header_problems.append(f"api-supported-versions: recorded {recorded_versions!r}; sandbox {our_versions!r}")
    elif our_versions is not None and api_version not in [v.strip() for v in our_versions.split(",")]:
        header_problems.append(f"api-supported-versions {our_versions!r} lacks the request's {api_version}")

    aspects = {d.aspect for d in divergences} | ({"expiresOn"} if len(problems) > len(divergences) else set())

    def cell(*names: str) -> str:
        return "DIFF" if aspects & set(names) else "ok"

    parity_table.append(
        (
            recording["id"],
            api_version,
            cell("status"),
            cell("error.code", "error"),
            cell("error.message"),
            cell("error.target"),
            cell("key", "format", "body", "expiresOn"),
            "DIFF" if header_problems else "ok",
        )
    )
    assert not problems + header_problems, "\n".join(problems + header_problems)
