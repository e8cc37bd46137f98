"""`cte receiver serve`: the receiver on its own, as a team runs it behind their tunnel. A real
subprocess, a real JWKS endpoint, a subscription registered over its API, notifications sealed for
the certificate it printed, read back over SSE and over a WebSocket."""

from __future__ import annotations

import json
import os
import secrets
import signal
import ssl
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from harness.client.notifications.push import PushClient
from harness.wire import notification_crypto as crypto
from tests.test_receiver_attacks import Jwks

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[1]
AUDIENCE = "00000000-0000-0000-0000-00000000c001"
TENANT = "00000000-0000-0000-0000-00000000a001"


class Served:
    """`cte receiver serve ...` in a subprocess, and the JSON line it printed."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "harness.run.cli", "receiver", "serve", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(self.process.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        if not line or not line[0]:
            self.process.kill()
            raise AssertionError(f"no JSON line; stderr: {self.process.stderr.read()[:500]}")
        self.line: dict[str, Any] = json.loads(line[0])

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(10)
        finally:
            if self.process.poll() is None:
                self.process.kill()


@pytest.fixture(scope="module")
def graph_keys():
    signer = crypto.TokenSigner(kid="graph-today")
    jwks = Jwks(signer)
    yield signer, jwks
    jwks.stop()


@pytest.fixture(scope="module")
def served(graph_keys):
    _, jwks = graph_keys
    served = Served(
        "--plain-http",
        "--audience",
        AUDIENCE,
        "--jwks-url",
        jwks.url,
        "--jwks-ca",
        str(jwks.certificates.ca_bundle),
        "--public-url",
        "https://contoso-tunnel.example",
    )
    yield served
    assert served.stop() == 0


def _register(served: Served, **body: Any) -> httpx.Response:
    local = served.line["listening"]
    headers = {"Authorization": f"Bearer {served.line['pushToken']}"}
    return httpx.post(f"{local}/subscriptions", json=body, headers=headers)


def _sealed(served: Served, signer: crypto.TokenSigner, subscription: str, state: str) -> dict[str, Any]:
    message_id = secrets.token_hex(6)
    message = {"id": message_id, "body": {"contentType": "text", "content": f"hello {message_id}"}}
    content = crypto.encrypt(
        served.line["encryptionCertificate"], json.dumps(message).encode(), served.line["encryptionCertificateId"]
    )
    item = {
        "id": f"n-{message_id}",
        "subscriptionId": subscription,
        "changeType": "created",
        "clientState": state,
        "resource": f"chats('c')/messages('{message_id}')",
        "tenantId": TENANT,
        "encryptedContent": content,
    }
    return {"value": [item], "validationTokens": [signer.token(AUDIENCE, TENANT)]}


def test_the_line_says_where_graph_the_app_and_its_clients_reach_the_receiver(served: Served) -> None:
    line = served.line
    assert line["listening"].startswith("http://localhost:")
    assert line["notificationUrl"] == "https://contoso-tunnel.example/notifications"
    assert line["lifecycleNotificationUrl"] == "https://contoso-tunnel.example/lifecycle"
    assert line["registrationUrl"] == "https://contoso-tunnel.example/subscriptions"
    assert line["pushUrl"] == "https://contoso-tunnel.example/events?channel={channel}"
    assert line["pushWebSocketUrl"] == "wss://contoso-tunnel.example/ws?channel={channel}"
    assert len(line["pushToken"]) >= 40 and line["audience"] == [AUDIENCE]
    certificate = crypto.x509.load_der_x509_certificate(crypto.base64.b64decode(line["encryptionCertificate"]))
    assert certificate.public_key().key_size >= 2048
    answer = httpx.post(f"{line['listening']}/notifications", params={"validationToken": "Validation: a b"})
    assert answer.status_code == 200 and answer.text == "Validation: a b"


def test_a_registered_subscription_reaches_its_clients_over_sse_and_websocket(served: Served, graph_keys) -> None:
    signer, _ = graph_keys
    state = secrets.token_urlsafe(24)
    created = _register(served, subscriptionId="sub-a", clientState=state, includeResourceData=True, channel="adele")
    assert created.status_code == 201, created.text
    local = served.line["listening"]
    token = served.line["pushToken"]
    sse = PushClient(f"{local}/events?channel=adele", None, token)
    websocket_url = local.replace("http://", "ws://") + "/ws?channel=adele"
    with connect(websocket_url, additional_headers={"Authorization": f"Bearer {token}"}) as websocket:
        body = _sealed(served, signer, "sub-a", state)
        message_id = body["value"][0]["id"].removeprefix("n-")
        assert httpx.post(f"{local}/notifications", json=body).status_code == 202
        event = json.loads(websocket.recv(timeout=10))
        assert event["message"]["id"] == message_id and event["subscriptionId"] == "sub-a"
        assert sse.wait_for(lambda e: (e.get("message") or {}).get("id") == message_id, timeout=10)
        body["value"][0]["id"] = "replayed-" + secrets.token_hex(4)  # a capture, posted again under a new id
        assert httpx.post(f"{local}/notifications", json=body).status_code == 202
        with pytest.raises(TimeoutError):
            websocket.recv(timeout=1)
    sse.close()
    stats = httpx.get(f"{local}/stats", headers={"Authorization": f"Bearer {token}"}).json()
    assert stats["accepted"] == 1 and stats["duplicates"] == 1 and stats["faults"] == 0


def test_the_app_side_needs_the_push_token(served: Served) -> None:
    local = served.line["listening"]
    for method, path in (("GET", "/events?channel=x"), ("POST", "/subscriptions"), ("GET", "/stats")):
        answer = httpx.request(method, f"{local}{path}", headers={"Authorization": "Bearer guessed"})
        assert answer.status_code == 401, path
    with pytest.raises(InvalidStatus) as refused:
        connect(local.replace("http://", "ws://") + "/ws?channel=x", additional_headers={"Authorization": "Bearer x"})
    assert refused.value.response.status_code == 403


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"clientState": "x", "includeResourceData": False}, "subscriptionId"),
        ({"subscriptionId": "s", "clientState": 3}, "clientState"),
        ({"subscriptionId": "s", "clientState": "x", "includeResourceData": "yes"}, "includeResourceData"),
        (
            {"subscriptionId": "s", "clientState": "x", "includeResourceData": True, "encryptionCertificateId": "k"},
            "encryptionCertificateId",
        ),
    ],
)
def test_a_bad_registration_gets_one_line_saying_what_to_fix(served: Served, body: dict, words: str) -> None:
    answer = _register(served, **body)
    assert answer.status_code == 400
    message = answer.json()["error"]["message"]
    assert words in message and "\n" not in message


def test_tls_from_the_given_certificate_and_key(tmp_path: Path, graph_keys) -> None:
    _, jwks = graph_keys
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    leaf.private_key_pem.write_to_path(str(tmp_path / "key.pem"))  # a throwaway test key
    leaf.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    served = Served(
        "--cert",
        str(tmp_path / "cert.pem"),
        "--key",
        str(tmp_path / "key.pem"),
        "--audience",
        AUDIENCE,
        "--jwks-url",
        jwks.url,
        "--jwks-ca",
        str(jwks.certificates.ca_bundle),
    )
    try:
        local = served.line["listening"]
        assert local.startswith("https://localhost:") and served.line["notificationUrl"] == f"{local}/notifications"
        assert served.line["pushWebSocketUrl"].startswith("wss://localhost:")
        verify = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
        answer = httpx.post(f"{local}/notifications", params={"validationToken": "t"}, verify=verify)
        assert answer.status_code == 200 and answer.text == "t"
    finally:
        assert served.stop() == 0


def _refused(*args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "receiver", "serve", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 2 and result.stdout == "", result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cte: receiver serve: "), result.stderr
    return lines[0]


def test_settings_that_cannot_work_are_refused_in_one_line(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate")
    assert "--audience" in _refused("--plain-http")
    assert "loopback only" in _refused("--plain-http", "--host", "0.0.0.0", "--audience", "a")
    assert "--cert and --key" in _refused("--audience", "a")
    assert "no such file" in _refused("--cert", str(tmp_path / "none.pem"), "--key", str(garbage), "--audience", "a")
    assert "do not load" in _refused("--cert", str(garbage), "--key", str(garbage), "--audience", "a")
    assert "https" in _refused("--plain-http", "--audience", "a", "--public-url", "http://tunnel.example")
    assert "not https" in _refused("--plain-http", "--audience", "a", "--jwks-url", "http://keys.example/k")
    assert "--workers" in _refused("--plain-http", "--audience", "a", "--workers", "0")
