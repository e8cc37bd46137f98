"""Strict replay: what scrubbing hides from a cassette is still checked on the request a client sends.

A request the recording shows HMAC-signed (the ACS resource) must be signed as the SDK signs, with an
`x-ms-content-sha256` that is the hash of the body actually sent; one the recording shows with a
Bearer authorization must carry a Bearer token. Either violation fails the request with one line
naming the request, the cassette and what is wrong. A cassette that holds interactions the replay
never asked for is reported (and fails a scenario that otherwise passed).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from azure.communication.identity import CommunicationIdentityClient
from azure.communication.identity._shared.policy import HMACCredentialsPolicy

from harness.core.cassettes import explain_mismatch, make_vcr
from harness.wire import transport
from tests.support import cte

ROOT = Path(__file__).resolve().parent.parent
LICENSED = "identity/token-exchange/a-licensed-teams-user-exchanges-an-entra-token-for-an-acs-token.yaml"
ACS = "https://acs-resource.communication.azure.com"
EXCHANGE = f"{ACS}/teamsUser/:exchangeAccessToken"
KEY = base64.b64encode(b"a replay profile's placeholder access key, any bytes will do").decode()
GRAPH_ME = "https://graph.microsoft.com/v1.0/me"
SCENARIO = "test_strict_replay_scenario"


def recorded(name: str) -> list[dict[str, Any]]:
    data = yaml.safe_load((ROOT / "cassettes" / name).read_text(encoding="utf-8"))
    return data["interactions"]


def exchange_interaction() -> dict[str, Any]:
    """The committed exchange request (scrubbed: `HMAC-SHA256 <scrubbed>`, `<x-ms-content-sha256>`)."""
    return next(i for i in recorded(LICENSED) if i["request"]["uri"].startswith(EXCHANGE))


def graph_interaction(method: str = "GET", uri: str = GRAPH_ME) -> dict[str, Any]:
    return {
        "request": {
            "method": method,
            "uri": uri,
            "body": None,
            "headers": {"Accept": ["application/json"], "authorization": ["Bearer <scrubbed>"]},
        },
        "response": {
            "status": {"code": 200, "message": "OK"},
            "headers": {"content-type": ["application/json"]},
            "body": {"string": '{"id": "00000000-0000-0000-0000-0000000b0100"}'},
        },
    }


def write_cassette(tmp_path: Path, *interactions: dict[str, Any]) -> Path:
    path = tmp_path / "cassettes" / "identity" / "strict-replay" / "scenario.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"interactions": list(interactions), "version": 1}), encoding="utf-8")
    return path


@pytest.fixture
def replaying() -> Iterator[Any]:
    """Open a cassette the way replay mode does: network blocked, strict matching, nothing recorded."""

    def open_cassette(path: Path) -> Any:
        recorder, _ = make_vcr(dict, record=False)
        return recorder.use_cassette(str(path))

    with transport.block_network("strict replay tests"):
        yield open_cassette


def exchange_token(client: CommunicationIdentityClient) -> Any:
    token = exchange_interaction()["request"]["body"]
    body = json.loads(token)
    return client.get_token_for_teams_user(body["token"], body["appId"], body["userId"])


def sdk_client() -> CommunicationIdentityClient:
    return CommunicationIdentityClient.from_connection_string(f"endpoint={ACS}/;accesskey={KEY}", retry_total=0)


def the_line(exc: BaseException, cassette: Path) -> str:
    line = explain_mismatch(exc, cassette, SCENARIO)
    assert line is not None, f"not explained as a replay problem: {exc!r}"
    return line


# -- HMAC: the ACS resource ----------------------------------------------------------------------------


def test_the_sdk_signing_as_it_does_replays(tmp_path: Path, replaying: Any) -> None:
    cassette = write_cassette(tmp_path, exchange_interaction())
    with replaying(cassette):
        result = exchange_token(sdk_client())
    assert result.token


def test_a_content_hash_for_another_body_fails_replay_with_one_line(
    tmp_path: Path, replaying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = HMACCredentialsPolicy._sign_request

    def sign_another_body(self: HMACCredentialsPolicy, request: Any) -> Any:
        sent = request.http_request.body
        request.http_request.body = sent + " "  # hashed and signed: a body that is not the one sent
        try:
            return original(self, request)
        finally:
            request.http_request.body = sent

    monkeypatch.setattr(HMACCredentialsPolicy, "_sign_request", sign_another_body)
    cassette = write_cassette(tmp_path, exchange_interaction())
    with replaying(cassette), pytest.raises(Exception) as failure:
        exchange_token(sdk_client())
    line = the_line(failure.value, cassette)
    assert line == (
        f"replay: POST {EXCHANGE}?api-version=2023-10-01 in cassette cassettes/identity/strict-replay/scenario.yaml: "
        "x-ms-content-sha256 does not match the body sent"
    )
    assert "\n" not in line


def test_an_unsigned_acs_request_fails_replay(tmp_path: Path, replaying: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(HMACCredentialsPolicy, "on_request", lambda self, request: None)
    cassette = write_cassette(tmp_path, exchange_interaction())
    with replaying(cassette), pytest.raises(Exception) as failure:
        exchange_token(sdk_client())
    line = the_line(failure.value, cassette)
    assert line.startswith(f"replay: POST {EXCHANGE}?api-version=2023-10-01 in cassette cassettes/identity/")
    assert line.endswith("recorded with HMAC-SHA256 authorization; sent without an Authorization header")


@pytest.mark.parametrize(
    ("authorization", "wrong"),
    [
        ("HMAC-SHA256 Signature=c2lnbmF0dXJl", "the authorization is not of the form `HMAC-SHA256 SignedHeaders="),
        (
            "HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=c2hvcnQ=",
            "the HMAC-SHA256 signature is not the base64 of 32 bytes",
        ),
    ],
)
def test_a_malformed_hmac_authorization_fails_replay(
    tmp_path: Path, replaying: Any, authorization: str, wrong: str
) -> None:
    interaction = exchange_interaction()
    body = interaction["request"]["body"].encode("utf-8")
    headers = {
        "Content-Type": "application/json",
        "x-ms-date": "Mon, 05 Jan 2026 09:00:00 GMT",
        "x-ms-content-sha256": base64.b64encode(hashlib.sha256(body).digest()).decode(),
        "Authorization": authorization,
    }
    cassette = write_cassette(tmp_path, interaction)
    with replaying(cassette), pytest.raises(Exception) as failure:
        httpx.post(interaction["request"]["uri"], content=body, headers=headers)
    line = the_line(failure.value, cassette)
    assert f"in cassette cassettes/identity/strict-replay/scenario.yaml: {wrong}" in line


# -- Bearer: Graph, the ACS-token and Entra-protected endpoints ------------------------------------------


def test_a_request_with_its_bearer_replays(tmp_path: Path, replaying: Any) -> None:
    cassette = write_cassette(tmp_path, graph_interaction())
    with replaying(cassette):
        response = httpx.get(GRAPH_ME, headers={"Accept": "application/json", "Authorization": "Bearer eyJ.e30."})
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("headers", "wrong"),
    [
        ({}, "recorded with Bearer authorization; sent without an Authorization header"),
        ({"Authorization": "Bearer"}, "the Bearer authorization carries no token"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "recorded with Bearer authorization; sent with Basic"),
    ],
    ids=["no-authorization", "empty-bearer", "another-scheme"],
)
def test_a_request_without_its_bearer_fails_replay(
    tmp_path: Path, replaying: Any, headers: dict[str, str], wrong: str
) -> None:
    cassette = write_cassette(tmp_path, graph_interaction())
    with replaying(cassette), pytest.raises(Exception) as failure:
        httpx.get(GRAPH_ME, headers={"Accept": "application/json", **headers})
    line = the_line(failure.value, cassette)
    assert line == f"replay: GET {GRAPH_ME} in cassette cassettes/identity/strict-replay/scenario.yaml: {wrong}"


def test_a_request_recorded_without_authorization_needs_none(tmp_path: Path, replaying: Any) -> None:
    """MSAL's discovery and token requests carry no Authorization: replay asks for none."""
    discovery = next(i for i in recorded(LICENSED) if i["request"]["method"] == "GET")
    cassette = write_cassette(tmp_path, discovery)
    with replaying(cassette):
        assert httpx.get(discovery["request"]["uri"], headers={"Accept": "*/*"}).status_code == 200


# -- interactions never played -------------------------------------------------------------------------


def test_a_cassette_with_an_extra_interaction_is_reported_as_unused(tmp_path: Path) -> None:
    """End to end: the committed licensed-user cassette plus one Graph request the scenario never makes."""
    cassettes = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes", cassettes)
    path = cassettes / LICENSED
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["interactions"].append(graph_interaction())
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    result = cte(
        "run", "--mode", "replay", "-q", "-k", "licensed", "--report-dir", str(tmp_path / "reports"),
        env={**os.environ, "CTE_CASSETTE_DIR": str(cassettes)},
    )  # fmt: skip
    shown = f"cassettes/{LICENSED}"
    assert f"unused interactions: cassette {shown}: 1 of 5 recorded never played (ERROR)" in result.stdout, (
        result.stdout[-3000:]
    )
    assert f"replay: cassette {shown}: 1 of 5 recorded interaction(s) never played; first: GET {GRAPH_ME}" in (
        result.stdout
    )
    assert result.returncode != 0  # the scenario did less than the recording: it does not pass
    report = json.loads((tmp_path / "reports" / "conformance.json").read_text(encoding="utf-8"))
    (scenario,) = report["scenarios"]
    assert scenario["evidence"]["unused_interactions"] == {
        "count": 1,
        "recorded": 5,
        "requests": [f"GET {GRAPH_ME}"],
    }


# -- each request worked out once ------------------------------------------------------------------------


def test_requests_alike_but_for_their_bodies_replay_in_recorded_order(tmp_path: Path, replaying: Any) -> None:
    """The index narrows the recorded requests to those of the same method, host, path and query; the
    scrubbed body then picks among them, the first not yet played, as vcrpy's own loop does."""

    def post(body: str, answer: str) -> dict[str, Any]:
        interaction = graph_interaction("POST", f"{GRAPH_ME}/chats?$top=2")
        interaction["request"]["body"] = body
        interaction["response"]["body"]["string"] = answer
        return interaction

    cassette = write_cassette(
        tmp_path,
        graph_interaction(),
        post('{"n": 1}', '{"answer": "first one"}'),
        post('{"n": 2}', '{"answer": "two"}'),
        post('{"n": 1}', '{"answer": "second one"}'),
    )
    headers = {"Accept": "application/json", "Authorization": "Bearer eyJ.e30.", "content-type": "application/json"}
    with replaying(cassette):
        answers = [
            httpx.post(f"{GRAPH_ME}/chats?$top=2", content=body, headers=headers).json()["answer"]
            for body in ('{"n": 1}', '{"n": 2}', '{"n": 1}')
        ]
        assert httpx.get(GRAPH_ME, headers=headers).status_code == 200
        with pytest.raises(Exception) as failure:
            httpx.post(f"{GRAPH_ME}/chats?$top=3", content='{"n": 2}', headers=headers)
    assert answers == ["first one", "two", "second one"]
    line = the_line(failure.value, cassette)
    assert "holds no matching interaction; the closest recorded request differs in query" in line


def test_a_request_sent_once_is_scrubbed_at_most_twice(
    tmp_path: Path, replaying: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """vcrpy hands a request sent to the hook three times (and what the hook returned once more): the
    same request, to a scrubber that has learnt nothing since, is not scrubbed again."""
    from harness.core import cassettes

    scrubbed: list[str] = []
    real = cassettes.scrub_request

    def counting(scrubber: Any, request: Any) -> Any:
        scrubbed.append(request.uri)
        return real(scrubber, request)

    monkeypatch.setattr(cassettes, "scrub_request", counting)
    cassette = write_cassette(tmp_path, graph_interaction(), graph_interaction("GET", f"{GRAPH_ME}/chats"))
    with replaying(cassette):
        loaded = len(scrubbed)  # each recorded request, once, as the cassette loads
        for uri in (GRAPH_ME, f"{GRAPH_ME}/chats"):
            httpx.get(uri, headers={"Accept": "application/json", "Authorization": "Bearer eyJ.e30."})
    assert loaded == 2
    assert len(scrubbed) - loaded == 4, scrubbed  # each sent request and its scrubbed self: 2 x 2
