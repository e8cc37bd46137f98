"""Graph subscriptions in the sandbox, against the harness's real receiver: the rules of docs/contracts/graph.md §4."""

from __future__ import annotations

from datetime import timedelta

import pytest

from harness.client.auth import EntraSignIn
from harness.client.graph import GRAPH_SCOPES, GraphClient, MarkerSource
from harness.client.notifications.receiver import Registration
from harness.client.notifications.service import ReceiverService
from harness.core.config import load_profile
from harness.sandbox.notifier import EndpointHealth
from harness.sandbox.server import Sandbox
from harness.wire import notification_crypto as crypto
from harness.wire import transport

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world():
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        info = sandbox.tenant_info("contoso")
        tenant = load_profile("sandbox").for_sandbox(info, sandbox.host_routes(), "sandbox")
        keys = crypto.jwks_keys(sandbox.ctx.entra_signer.jwks())
        service = ReceiverService.start(audience=tenant.client_id, trusted_keys=keys)
        token = str(EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES).access_token)
        client = GraphClient(tenant, token, sleep=lambda _: None, markers=MarkerSource("subs"))
        oids = info.oids()
        yield sandbox, service, client, oids
        client.close()
        service.stop()


def body(service, client, chat: str, *, minutes: int = 30, lifecycle: bool = True, url: str | None = None):
    key = service.receiver.new_key(f"key-{chat[-6:]}")
    payload = {
        "changeType": "created",
        "notificationUrl": url or f"{service.public_url}/notifications",
        "resource": f"/chats/{chat}/messages",
        "includeResourceData": True,
        "encryptionCertificate": key.certificate_b64,
        "encryptionCertificateId": key.id,
        "expirationDateTime": (client.server_now() + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clientState": "state",
    }
    if lifecycle:
        payload["lifecycleNotificationUrl"] = f"{service.public_url}/lifecycle"
    return payload


def new_chat(client, oids) -> str:
    return client.create_chat("group", [oids["adele"], oids["megan"]], "subs").body["id"]


def test_more_than_an_hour_needs_a_lifecycle_url(world) -> None:
    _, service, client, oids = world
    result = client.create_subscription(body(service, client, new_chat(client, oids), minutes=90, lifecycle=False))
    assert result.status == 400
    assert result.message.startswith("lifecycleNotificationUrl is a required property for subscription creation")


def test_at_most_4320_minutes(world) -> None:
    _, service, client, oids = world
    assert client.create_subscription(body(service, client, new_chat(client, oids), minutes=4321)).status == 400
    assert client.create_subscription(body(service, client, new_chat(client, oids), minutes=4300)).status == 201


def test_a_failed_validation_handshake_fails_the_create(world) -> None:
    _, service, client, oids = world
    result = client.create_subscription(
        body(service, client, new_chat(client, oids), url=f"{service.local_url}/nowhere")
    )
    assert result.status == 400 and "validation request failed" in result.message


def test_one_subscription_per_chat_and_app(world) -> None:
    _, service, client, oids = world
    chat = new_chat(client, oids)
    assert client.create_subscription(body(service, client, chat)).status == 201
    second = client.create_subscription(body(service, client, chat))
    assert second.status == 403 and second.code == "Forbidden"


def test_get_all_messages_delivers_from_every_chat_of_the_user(world) -> None:
    sandbox, service, client, oids = world
    payload = body(service, client, new_chat(client, oids))
    payload["resource"] = "/me/chats/getAllMessages"
    created = client.create_subscription(payload)
    assert created.status == 201
    service.receiver.register(
        Registration(created.body["id"], "state", channel="all", key_id=payload["encryptionCertificateId"])
    )
    chats = [new_chat(client, oids) for _ in range(2)]
    sent = [client.send(f"chats/{chat}/messages", "to everyone").message.id for chat in chats]
    for message_id in sent:
        decision = service.receiver.wait_for(
            lambda d, m=message_id: d.message_id == m and d.subscription_id == created.body["id"]
        )
        assert decision is not None and decision.accepted


def test_slow_endpoints_are_throttled_at_10_percent_and_dropped_at_15() -> None:
    health = EndpointHealth()
    for elapsed in [3000.0] * 10 + [10.0] * 90:
        health.record(elapsed)
    assert health.slow_share == pytest.approx(0.10)
    for elapsed in [3000.0] * 6:
        health.record(elapsed)
    assert health.slow_share >= 0.15


def test_a_create_cut_off_after_graph_made_it_is_found_by_listing_not_made_again(world) -> None:
    """Graph allows one subscription per chat and app: a blind retry of a create that did commit is
    refused as over quota (the flaky profile met it). After an ambiguous failure the client lists."""
    from harness.sandbox.faults import FaultPlan, WorkloadFaults

    sandbox, service, client, oids = world
    chat = new_chat(client, oids)
    before = sandbox.ctx.faults.plan
    sandbox.ctx.faults.plan = FaultPlan(
        {"graph": WorkloadFaults(retry_after=0, drop=1.0, after_processing=1.0)}, seed=3
    )
    try:
        result = client.create_subscription(body(service, client, chat))
    finally:
        sandbox.ctx.faults.plan = before
    assert result.status == 201 and "ambiguous failure; found by listing" in result.retries, result
    made = [s for s in sandbox.ctx.subscriptions.values() if chat in s.resource]
    assert len(made) == 1 and made[0].id == result.body["id"]


def test_a_subscription_over_quota_is_diagnosed_as_such_not_as_membership(world) -> None:
    from harness.conformance.flows.chat import graph_observation

    _, service, client, oids = world
    chat = new_chat(client, oids)
    assert client.create_subscription(body(service, client, chat)).status == 201
    again = client.create_subscription(body(service, client, chat))
    observed = graph_observation(again, "subscribe")
    assert again.status == 403 and "quota" in (observed.diagnosis or ""), observed
    assert "member" not in (observed.diagnosis or "") and "GET /subscriptions" in (observed.remedy or "")
