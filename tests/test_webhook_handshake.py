"""Graph's notificationUrl validation handshake (docs/contracts/graph.md §4.3), judged the same way by the doctor's
probe and by the sandbox's subscription creation (harness.wire.handshake): a small misbehaving HTTPS endpoint on
loopback (it starts and stops with this module) answers late, as JSON, with the token still encoded, decoded
wrongly or twice; both refuse each, and both accept the well-behaved one."""

from __future__ import annotations

import asyncio
import json
import socket
import urllib.parse
from datetime import timedelta

import pytest

from harness.client.auth import EntraSignIn
from harness.client.graph import GRAPH_SCOPES, GraphClient, MarkerSource
from harness.core.config import load_profile
from harness.run import doctor
from harness.sandbox.graph import subscriptions
from harness.sandbox.server import Sandbox
from harness.wire import handshake, transport
from harness.wire.serving import Certificates, ServerThread

SLOW_S = 1.0  # how long the slow endpoint waits before answering
LIMIT_S = 0.4  # Graph's 10 s limit, shortened for the test (the production value is handshake.LIMIT_S)


def _raw_token(query: bytes) -> str:
    """The validationToken exactly as it came in the query string, still form-encoded."""
    for pair in query.decode("ascii").split("&"):
        name, _, value = pair.partition("=")
        if name == "validationToken":
            return value
    return ""


def _answer(behaviour: str, raw: str) -> tuple[int, str, str]:
    decoded = urllib.parse.unquote_plus(raw)
    return {
        "good": (200, "text/plain; charset=utf-8", decoded),
        "slow": (200, "text/plain", decoded),
        "json": (200, "application/json", json.dumps({"validationToken": decoded})),
        "json-typed": (200, "application/json", decoded),  # the right body, labelled JSON
        "encoded": (200, "text/plain", raw),  # echoes the query value without decoding it
        "re-encoded": (200, "text/plain", urllib.parse.quote(decoded, safe="")),
        "half-decoded": (200, "text/plain", urllib.parse.unquote(raw)),  # '+' left for the spaces
        "decoded-twice": (200, "text/plain", urllib.parse.unquote_plus(decoded)),
        "unauthorized": (401, "text/plain", "no"),
    }[behaviour]


async def misbehaving(scope, receive, send) -> None:  # type: ignore[no-untyped-def]
    """An ASGI app: the path names how it answers the validation request."""
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    behaviour = scope["path"].strip("/").split("/")[0]
    if behaviour == "slow":
        await asyncio.sleep(SLOW_S)
    status, content_type, body = _answer(behaviour, _raw_token(scope["query_string"]))
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type.encode())]})
    await send({"type": "http.response.body", "body": body.encode()})


@pytest.fixture(scope="module")
def endpoint():
    certificates = Certificates.issue()
    server = ServerThread(misbehaving, certificates, name="cte-misbehaving-webhook").start()
    try:
        yield f"https://localhost:{server.port}", str(certificates.ca_bundle)
    finally:
        server.stop()
        certificates.directory.cleanup()


MISBEHAVIOURS = [
    ("json", "content-type", "text/plain"),
    ("json-typed", "content-type", "text/plain"),
    ("encoded", "encoded", "URL-decode"),
    ("re-encoded", "encoded", "URL-decode"),
    ("half-decoded", "half-decoded", "'+' is a space"),
    ("decoded-twice", "decoded-twice", "decode the validationToken once"),
    ("unauthorized", "status", "200 OK"),
]


# -- the doctor's probe ------------------------------------------------------------------------------------------


def test_the_probe_token_needs_url_decoding() -> None:
    sent = urllib.parse.urlsplit(handshake.query("https://x.invalid/n", doctor.PROBE_TOKEN)).query
    assert all(c in doctor.PROBE_TOKEN for c in " +/=:")
    assert all(code in sent for code in ("+", "%2B", "%2F", "%3D", "%3A")), sent


def test_the_probe_accepts_an_endpoint_that_answers_as_graph_requires(endpoint) -> None:  # type: ignore[no-untyped-def]
    url, ca = endpoint
    assert doctor.probe_handshake(f"{url}/good", verify=ca) is None


@pytest.mark.parametrize(("behaviour", "kind", "remedy"), MISBEHAVIOURS)
def test_the_probe_fails_a_misbehaving_endpoint_naming_the_fix(endpoint, behaviour, kind, remedy) -> None:  # type: ignore[no-untyped-def]
    url, ca = endpoint
    problem = doctor.probe_handshake(f"{url}/{behaviour}", verify=ca)
    assert problem is not None and problem.kind == kind, problem
    assert remedy in problem.remedy and "\n" not in problem.remedy


def test_the_probe_fails_an_answer_later_than_graphs_limit(endpoint) -> None:  # type: ignore[no-untyped-def]
    url, ca = endpoint
    problem = doctor.probe_handshake(f"{url}/slow", verify=ca, limit_s=LIMIT_S)
    assert problem is not None and problem.kind == "late", problem
    assert f"Graph gives up after {LIMIT_S:g} s" in problem.remedy
    assert doctor.probe_handshake(f"{url}/slow", verify=ca, limit_s=SLOW_S + 2) is None, "in time, it passes"
    assert handshake.LIMIT_S == 10.0  # "within 10 seconds of step 1"


def test_the_doctor_passes_the_harness_receiver_with_the_probe_token() -> None:
    """The doctor's own check, against the receiver it starts on the webhook's port: the receiver decodes it."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    checker = doctor.Doctor(_any_tenant(), [], webhook_url=f"https://localhost:{port}", webhook_port=port)
    assert checker.webhook(), checker.checks
    assert checker.checks[-1].status == "ok", checker.checks


def _any_tenant():  # type: ignore[no-untyped-def]
    with Sandbox() as sandbox:
        return load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")


# -- the sandbox's subscription creation ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graph():
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        info = sandbox.tenant_info("contoso")
        tenant = load_profile("sandbox").for_sandbox(info, sandbox.host_routes(), "sandbox")
        token = str(EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES).access_token)
        client = GraphClient(tenant, token, sleep=lambda _: None, markers=MarkerSource("handshake"))
        yield client, info.oids()
        client.close()


def subscribe(graph, url: str):  # type: ignore[no-untyped-def]
    client, oids = graph
    chat = client.create_chat("group", [oids["adele"], oids["megan"]], "handshake").body["id"]
    return client.create_subscription(
        {
            "changeType": "created",
            "notificationUrl": url,
            "resource": f"/chats/{chat}/messages",
            "expirationDateTime": (client.server_now() + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "clientState": "state",
        }
    )


@pytest.mark.integration
def test_graph_creates_the_subscription_for_an_endpoint_that_answers_as_required(endpoint, graph) -> None:  # type: ignore[no-untyped-def]
    assert subscribe(graph, f"{endpoint[0]}/good").status == 201


@pytest.mark.integration
@pytest.mark.parametrize(("behaviour", "kind", "remedy"), [m for m in MISBEHAVIOURS if m[0] != "decoded-twice"])
def test_graph_refuses_the_subscription_for_a_misbehaving_endpoint(endpoint, graph, behaviour, kind, remedy) -> None:  # type: ignore[no-untyped-def]
    result = subscribe(graph, f"{endpoint[0]}/{behaviour}")
    assert (result.status, result.code) == (400, "InvalidRequest"), result
    assert result.message == subscriptions.VALIDATION_FAILED
    # Graph's text is reported for a non-200 answer; for the others Microsoft documents the refusal, not its words
    assert bool(result.emulator_defined) == (kind != "status"), result.emulator_defined


@pytest.mark.integration
def test_a_double_decoding_endpoint_passes_graphs_current_token_but_not_the_doctor(endpoint, graph) -> None:  # type: ignore[no-untyped-def]
    """Graph's tokens today read "Validation: Testing client application reachability for subscription Request-Id:
    <guid>" (microsoftgraph/microsoft-graph-docs#21160): no '+' or '%', so decoding twice changes nothing and Graph
    (and the sandbox, sending the same) accepts it. Microsoft warns the format "can change without notice": the
    doctor's token has a literal '+', which a second decode turns into a space."""
    assert subscribe(graph, f"{endpoint[0]}/decoded-twice").status == 201
    problem = doctor.probe_handshake(f"{endpoint[0]}/decoded-twice", verify=endpoint[1])
    assert problem is not None and problem.kind == "decoded-twice"


@pytest.mark.integration
def test_graph_refuses_an_answer_later_than_its_limit(endpoint, graph, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(subscriptions, "VALIDATION_LIMIT_S", LIMIT_S)
    result = subscribe(graph, f"{endpoint[0]}/slow")
    assert (result.status, result.code, result.message) == (400, "InvalidRequest", subscriptions.VALIDATION_TIMED_OUT)
    monkeypatch.setattr(subscriptions, "VALIDATION_LIMIT_S", SLOW_S + 2)
    assert subscribe(graph, f"{endpoint[0]}/slow").status == 201, "in time, it is created"
