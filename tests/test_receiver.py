"""The webhook receiver: handshake, bad input, forgeries, decryption, duplicates; a fuzz of its surface."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.client.notifications.push import PushClient
from harness.client.notifications.receiver import MAX_BODY, Registration
from harness.client.notifications.service import ReceiverService
from harness.wire import notification_crypto as crypto
from tests.support import CLIENT_STATE, RECEIVER_AUDIENCE, RECEIVER_TENANT, sealed_notification

pytestmark = pytest.mark.integration
AUDIENCE, TENANT = RECEIVER_AUDIENCE, RECEIVER_TENANT


@pytest.fixture(scope="module")
def world():
    signer = crypto.TokenSigner(kid="graph")
    service = ReceiverService.start(audience=AUDIENCE, trusted_keys={signer.kid: signer.public_key})
    key = service.receiver.new_key("key-1")
    service.receiver.register(Registration("sub-1", "the-client-state", channel="adele", key_id=key.id))
    client = httpx.Client(base_url=service.local_url, verify=service.tls_context())
    yield service, signer, key, client
    client.close()
    service.stop()


def notification(key, signer, *, nid: str, message_id: str = "1", state: str = CLIENT_STATE) -> dict:
    return sealed_notification(
        key, signer.token(AUDIENCE, TENANT), message_id, nid=nid, with_resource_data=False, clientState=state
    )


def test_the_validation_handshake_echoes_the_decoded_token(world) -> None:
    _, _, _, client = world
    answer = client.post("/notifications", params={"validationToken": "Validation: a b&c=d"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    assert answer.text == "Validation: a b&c=d"


def test_a_notification_is_acknowledged_with_202_decrypted_and_deduplicated(world) -> None:
    service, signer, key, client = world
    body = notification(key, signer, nid="n-dup", message_id="42")
    for _ in range(3):  # Graph retries
        assert client.post("/notifications", json=body).status_code == 202
    decision = service.receiver.wait_for(lambda d: d.notification_id == "n-dup" and d.accepted)
    assert decision is not None and decision.message_id == "42"
    time.sleep(0.2)
    same = [d for d in service.receiver.decisions if d.notification_id == "n-dup"]
    assert [d.accepted for d in same] == [True, False, False] and {d.reason for d in same[1:]} == {"duplicate"}


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b"{}", 415),
        ("application/json", b"{not json", 400),
        ("application/json", b'{"value": 3}', 400),
        ("application/json", b'["value"]', 400),
        ("application/json", b"\xff\xfe", 400),
        ("application/json", b"x" * (MAX_BODY + 1), 413),
    ],
)
def test_bad_input_gets_a_clear_4xx(world, content_type: str, body: bytes, status: int) -> None:
    _, _, _, client = world
    answer = client.post("/notifications", content=body, headers={"content-type": content_type})
    assert answer.status_code == status and answer.json()["error"]["message"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=2000),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=50),
            lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
            max_leaves=30,
        ).map(lambda v: json.dumps(v).encode()),
        st.builds(
            lambda v: json.dumps({"value": v, "validationTokens": ["x.y.z"]}).encode(),
            st.lists(
                st.dictionaries(
                    st.sampled_from(
                        ["id", "subscriptionId", "clientState", "encryptedContent", "lifecycleEvent", "resourceData"]
                    ),
                    st.text(max_size=20) | st.integers() | st.none(),
                    max_size=6,
                ),
                max_size=3,
            ),
        ),
    ),
    path=st.sampled_from(["/notifications", "/lifecycle"]),
)
def test_hostile_input_never_gets_a_5xx_nor_reaches_a_client(world, body: bytes, path: str) -> None:
    service, _, _, client = world
    published_before = service.receiver.hub.published  # counted whether or not a client is connected
    answer = client.post(path, content=body, headers={"content-type": "application/json"})
    assert answer.status_code < 500 or answer.status_code == 503
    assert service.server.alive
    assert service.receiver.drain()
    assert service.receiver.hub.published == published_before


def test_a_fault_in_processing_is_recorded_not_fatal(world) -> None:
    service, signer, key, client = world
    body = notification(key, signer, nid="n-after-fuzz", message_id="77")
    assert client.post("/notifications", json=body).status_code == 202
    assert service.receiver.wait_for(lambda d: d.notification_id == "n-after-fuzz" and d.accepted) is not None
    faults = [d.reason for d in service.receiver.decisions if d.reason.startswith("receiver fault")]
    assert faults == [], f"hostile input raised inside the receiver: {faults[:3]}"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer not-the-token", "not-the-token"])
def test_the_push_channel_refuses_a_reader_without_the_receivers_token(world, authorization) -> None:
    """/events carries decrypted messages; a tunnel in front of the receiver must not expose it."""
    _, _, _, client = world
    headers = {"Authorization": authorization} if authorization is not None else {}
    answer = client.get("/events", params={"channel": "adele"}, headers=headers)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "Unauthorized"


def test_the_push_channel_serves_its_own_client(world) -> None:
    from harness.client.notifications.push import PushClient

    service, _, _, _ = world
    push = PushClient(service.events_url("megan"), str(service.certificates.ca_bundle), service.receiver.push_token)
    try:
        assert service.receiver.hub.publish("megan", {"changeType": "created", "message": {"id": "m-1"}}) == 1
        assert push.wait_for(lambda e: (e.get("message") or {}).get("id") == "m-1", timeout=5) is not None
    finally:
        push.close()


def test_a_recording_holds_a_notification_before_its_client_can_see_it() -> None:
    """Record mode ends a scenario as soon as its client sees the push: a notification captured after
    the push could miss the scenario's recording, and its replay would then wait for nothing."""
    signer = crypto.TokenSigner(kid="graph")
    pushed_at_capture: list[int] = []
    service = ReceiverService.start(
        audience=AUDIENCE,
        trusted_keys={signer.kid: signer.public_key},
        capture=lambda entry: pushed_at_capture.append(service.receiver.hub.pushed),
    )
    try:
        key = service.receiver.new_key("key-1")
        service.receiver.register(Registration("sub-1", "the-client-state", channel="adele", key_id=key.id))
        push = PushClient(service.events_url("adele"), str(service.certificates.ca_bundle), service.receiver.push_token)
        with httpx.Client(base_url=service.local_url, verify=service.tls_context()) as client:
            assert client.post("/notifications", json=notification(key, signer, nid="n-rec")).status_code == 202
        assert service.receiver.wait_for(lambda d: d.notification_id == "n-rec" and d.accepted) is not None
        assert push.wait_for(lambda e: e.get("subscriptionId") == "sub-1", timeout=5) is not None
        push.close()
        assert pushed_at_capture == [0], "the notification was pushed before it was recorded"
    finally:
        service.stop()


def test_keys_are_separate_key_pairs_unless_the_receiver_is_told_to_share_one() -> None:
    from harness.client.notifications.receiver import Receiver

    receiver = Receiver(audience=AUDIENCE, workers=0)
    separate = [receiver.new_key(key_id) for key_id in ("a", "b", "b2")]  # the 2nd and 3rd: spares made meanwhile
    assert [key.id for key in separate] == ["a", "b", "b2"] and receiver.keys["b2"] is separate[2]
    assert len({key.certificate_b64 for key in separate}) == 3, "each subscription its own key pair by default"
    assert len({id(key.private_key) for key in separate}) == 3
    receiver.use_one_key_pair()  # replay: the harness seals every notification itself
    third, fourth = receiver.new_key("c"), receiver.new_key("d")
    assert (third.id, fourth.id) == ("c", "d") and receiver.keys["d"] is fourth
    assert third.certificate_b64 == fourth.certificate_b64 and third.private_key is fourth.private_key
    assert third.certificate_b64 not in {key.certificate_b64 for key in separate}
    sealed = crypto.encrypt(fourth.certificate_b64, b'{"id": "1"}', fourth.id)
    assert crypto.decrypt(sealed, receiver.keys) == b'{"id": "1"}'
