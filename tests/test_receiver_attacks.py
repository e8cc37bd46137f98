"""The receiver as an attacker meets it: a real receiver over HTTPS on loopback, holding a
subscription created with resource data, with a push client connected. Each attack found in issue
15 is here, and each must leave the receiver answering 4xx or 202, its workers alive, and the client
without the forged or replayed message.
"""

from __future__ import annotations

import json
import secrets
import ssl
import time
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.client.notifications.push import PushClient
from harness.client.notifications.receiver import Registration
from harness.client.notifications.service import ReceiverService
from harness.client.notifications.verification import JWKS_MAX_AGE_S, JWKS_REFRESH_BURST, KeySet
from harness.wire import notification_crypto as crypto
from harness.wire.serving import Certificates, ServerThread
from tests.support import CLIENT_STATE, RECEIVER_AUDIENCE, RECEIVER_TENANT, run_async, sealed_notification

pytestmark = pytest.mark.integration
AUDIENCE, TENANT = RECEIVER_AUDIENCE, RECEIVER_TENANT
OTHER_TENANT = "00000000-0000-0000-0000-00000000a002"
STATE = CLIENT_STATE


class World:
    def __init__(self) -> None:
        self.signer = crypto.TokenSigner(kid="graph")
        self.service = ReceiverService.start(audience=AUDIENCE, trusted_keys={self.signer.kid: self.signer.public_key})
        self.receiver = self.service.receiver
        self.key = self.receiver.new_key("key-1")
        self.receiver.register(Registration("sub-1", STATE, channel="adele", key_id=self.key.id))
        self.client = httpx.Client(base_url=self.service.local_url, verify=self.service.tls_context())
        self.push = PushClient(
            self.service.events_url("adele"), str(self.service.certificates.ca_bundle), self.receiver.push_token
        )

    def sealed(self, message_id: str | None = None, *, token: str | None = None, **fields: Any) -> dict[str, Any]:
        """A notification as Graph sends it: its resource sealed for our key, a validation token."""
        message_id = message_id or secrets.token_hex(6)
        token = token or self.signer.token(AUDIENCE, TENANT)
        return sealed_notification(self.key, token, message_id, nid=f"n-{secrets.token_hex(8)}", **fields)

    def post(self, body: dict[str, Any] | bytes, path: str = "/notifications") -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.client.post(path, content=content, headers={"content-type": "application/json"})

    def decided(self, notification_id: str) -> Any:
        decision = self.receiver.wait_for(lambda d: d.notification_id == notification_id, timeout=5)
        assert decision is not None, f"no decision on {notification_id}"
        return decision

    def pushed(self, message_id: str, timeout: float = 0.5) -> int:
        """How many times `message_id` reached the client (waiting `timeout` for a first or a second)."""
        deadline = time.monotonic() + timeout
        while True:
            count = sum(1 for e in self.push.events if str((e.get("message") or {}).get("id")) == message_id)
            if time.monotonic() > deadline:
                return count
            time.sleep(0.02)

    def faults(self) -> list[str]:
        return [d.reason for d in list(self.receiver.decisions) if d.reason.startswith("receiver fault")]

    def close(self) -> None:
        self.push.close()
        self.client.close()
        self.service.stop()


@pytest.fixture(scope="module")
def world():
    world = World()
    yield world
    world.close()


def _one_line_400(answer: httpx.Response, *words: str) -> str:
    assert answer.status_code == 400, f"{answer.status_code}: {answer.text[:200]}"
    message = answer.json()["error"]["message"]
    assert "\n" not in message and all(w in message for w in words), message
    return message


# -- bad input: 4xx, never a 5xx, never a crashed worker -----------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"value": [' * 5_000 + b"]}" * 5_000, b'{"value": [{"a": ' * 600 + b"1" + b"}]" * 600 + b"}"],
    ids=["100k-arrays", "5k-collections", "600-objects"],
)
def test_deeply_nested_json_gets_400_not_500(world: World, body: bytes) -> None:
    _one_line_400(world.post(body), "nested")
    assert world.service.server.alive


def test_an_integer_with_thousands_of_digits_gets_400_not_500(world: World) -> None:
    body = b'{"value": [{"id": "n-big", "subscriptionId": "sub-1", "sequence": ' + b"7" * 5000 + b"}]}"
    _one_line_400(world.post(body), "digits")


def test_a_lone_surrogate_in_client_state_gets_400_and_crashes_no_worker(world: World) -> None:
    body = world.sealed(clientState="\ud800")
    raw = json.dumps(body).encode()  # ensure_ascii: the lone surrogate travels as its \ud800 escape
    assert b"\\ud800" in raw
    _one_line_400(world.post(raw), "surrogate")
    lifecycle = b'{"value": [{"subscriptionId": "sub-1", "clientState": "\\udc00", "lifecycleEvent": "missed"}]}'
    _one_line_400(world.post(lifecycle, "/lifecycle"), "surrogate")
    time.sleep(0.2)
    assert world.faults() == []
    # ...and the workers still verify and push what Graph sends.
    good = world.sealed()
    assert world.post(good).status_code == 202
    assert world.decided(good["value"][0]["id"]).accepted


# -- pushed only if authentic and new ------------------------------------------------------------------


def test_a_captured_notification_posted_again_with_a_new_id_is_not_pushed_twice(world: World) -> None:
    body = world.sealed()
    message_id = body["value"][0]["resourceData"]["id"]
    assert world.post(body).status_code == 202
    assert world.decided(body["value"][0]["id"]).accepted
    for n in range(3):  # the same capture, each time under an id of the attacker's choosing
        body["value"][0]["id"] = f"replayed-{n}-{secrets.token_hex(4)}"
        assert world.post(body).status_code == 202
        assert world.decided(body["value"][0]["id"]).reason == "duplicate"
    assert world.pushed(message_id) == 1


def test_a_graph_retry_sealed_again_is_recognised_by_its_decrypted_content(world: World) -> None:
    """Graph may seal a retry afresh (a new AES key, so new ciphertext): the resource is still the same."""
    body = world.sealed()
    first_id, message_id = body["value"][0]["id"], body["value"][0]["resourceData"]["id"]
    assert world.post(body).status_code == 202
    assert world.decided(first_id).accepted
    message = {"id": message_id, "body": {"contentType": "text", "content": f"hello {message_id}"}}
    resealed = crypto.encrypt(world.key.certificate_b64, json.dumps(message).encode(), world.key.id)
    body["value"][0].update(id=f"retry-{secrets.token_hex(4)}", encryptedContent=resealed)
    assert world.post(body).status_code == 202
    assert world.decided(body["value"][0]["id"]).reason == "duplicate"
    assert world.pushed(message_id) == 1


def test_two_changes_to_one_message_are_both_pushed(world: World) -> None:
    """Dedupe must not swallow a real second change: an edit is new content under the same message id."""
    message_id = secrets.token_hex(6)
    for version, change in enumerate(("created", "updated")):
        message = {"id": message_id, "etag": str(version), "body": {"contentType": "text", "content": f"v{version}"}}
        body = world.sealed(message_id, changeType=change)
        body["value"][0]["encryptedContent"] = crypto.encrypt(
            world.key.certificate_b64, json.dumps(message).encode(), world.key.id
        )
        assert world.post(body).status_code == 202
        assert world.decided(body["value"][0]["id"]).accepted
    assert world.pushed(message_id) == 2


def test_resource_data_stripped_of_its_content_and_tokens_is_not_pushed(world: World) -> None:
    body = world.sealed()
    del body["value"][0]["encryptedContent"], body["validationTokens"]
    assert world.post(body).status_code == 202
    decision = world.decided(body["value"][0]["id"])
    assert not decision.accepted and "encryptedContent" in decision.reason
    assert world.pushed(body["value"][0]["resourceData"]["id"]) == 0
    assert not [e for e in world.push.events if e.get("message") is None and e.get("changeType")]


def _claims(**changes: Any) -> dict[str, Any]:
    claims = crypto.validation_token_claims(AUDIENCE, TENANT)
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (_claims(iss=f"https://sts.windows.net/{OTHER_TENANT}/"), "issuer"),
        (_claims(iss="https://evil.example/"), "issuer"),
        (_claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", ver="2.0", azp="someone-else"), "app"),
        (_claims(tid=OTHER_TENANT, iss=f"https://sts.windows.net/{OTHER_TENANT}/"), "tenantId"),
        (_claims(tid="contoso.example", iss="https://sts.windows.net/contoso.example/"), "tid"),
        (_claims(tid=None), "tid"),
        (_claims(appid="11111111-1111-1111-1111-111111111111", azp=None), "app"),
        (_claims(appid=None, azp=None), "app"),
        (_claims(aud="00000000-0000-0000-0000-0000000000ff"), "audience"),
        (_claims(exp=int(time.time()) - 5), "expired"),
        (_claims(nbf=int(time.time()) + 600), "ImmatureSignature"),
    ],
    ids=[
        "iss-other-tenant",
        "iss-not-entra",
        "v2-azp-other-app",
        "tid-not-the-notification-tenant",
        "tid-not-a-guid",
        "no-tid",
        "appid-other-app",
        "no-appid-nor-azp",
        "aud-other-app",
        "expired",
        "not-yet-valid",
    ],
)
def test_a_validation_token_that_graph_would_not_issue_is_refused(world: World, claims: dict, reason: str) -> None:
    body = world.sealed(token=world.signer.sign(claims))
    assert world.post(body).status_code == 202
    decision = world.decided(body["value"][0]["id"])
    assert not decision.accepted and reason in decision.reason, decision.reason
    assert world.pushed(body["value"][0]["resourceData"]["id"]) == 0


@pytest.mark.parametrize(
    "claims",
    [
        _claims(),  # v1.0, as the resource-data page's example
        _claims(iss=f"https://login.microsoftonline.com/{TENANT}/v2.0", ver="2.0", appid=None),  # v2.0: azp only
        _claims(ver=None),  # no version: appid and azp both Graph's
    ],
    ids=["v1.0", "v2.0", "unversioned"],
)
def test_a_validation_token_of_either_version_from_graph_is_accepted(world: World, claims: dict) -> None:
    body = world.sealed(token=world.signer.sign(claims))
    assert world.post(body).status_code == 202
    assert world.decided(body["value"][0]["id"]).accepted


def test_one_bad_token_in_a_collection_makes_every_item_suspect(world: World) -> None:
    body = world.sealed()
    body["validationTokens"].append(crypto.TokenSigner(kid="attacker").token(AUDIENCE, TENANT))
    assert world.post(body).status_code == 202
    decision = world.decided(body["value"][0]["id"])
    assert not decision.accepted and "unknown key" in decision.reason


def test_content_sealed_for_another_subscriptions_key_is_refused(world: World) -> None:
    other = world.receiver.new_key("key-2")
    world.receiver.register(Registration("sub-2", "other-state", channel="megan", key_id=other.id))
    body = world.sealed()
    message = {"id": "m-x", "body": {"contentType": "text", "content": "for sub-2's key"}}
    body["value"][0]["encryptedContent"] = crypto.encrypt(other.certificate_b64, json.dumps(message).encode(), other.id)
    assert world.post(body).status_code == 202
    decision = world.decided(body["value"][0]["id"])
    assert not decision.accepted and "another key" in decision.reason


# -- the signing keys rotate ---------------------------------------------------------------------------


class Jwks:
    """An HTTPS JWKS endpoint whose keys can be rotated; counts its fetches."""

    def __init__(self, *signers: crypto.TokenSigner) -> None:
        self.signers = list(signers)
        self.fetches = 0
        app = Starlette(routes=[Route("/keys", self.keys)])
        self.certificates = Certificates.issue(organization="cte jwks")
        self.server = ServerThread(app, self.certificates, name="cte-jwks").start()
        self.url = f"https://localhost:{self.server.port}/keys"

    async def keys(self, request: Any) -> JSONResponse:
        self.fetches += 1
        entries = []
        for signer in self.signers:
            entry = json.loads(crypto.jwt.algorithms.RSAAlgorithm.to_jwk(signer.public_key))
            entries.append({**entry, "kid": signer.kid, "use": "sig"})
        return JSONResponse({"keys": entries})

    def stop(self) -> None:
        self.server.stop()
        self.certificates.directory.cleanup()


def test_a_rotated_signing_key_is_fetched_once_and_an_unknown_kid_flood_is_rate_limited() -> None:
    yesterday, today = crypto.TokenSigner(kid="key-yesterday"), crypto.TokenSigner(kid="key-today")
    jwks = Jwks(yesterday)
    service = ReceiverService.start(
        audience=AUDIENCE,
        trusted_keys={},
        jwks_url=jwks.url,
        jwks_verify=ssl.create_default_context(cafile=str(jwks.certificates.ca_bundle)),
    )
    try:
        key = service.receiver.new_key("key-1")
        service.receiver.register(Registration("sub-1", STATE, channel="adele", key_id=key.id))
        with httpx.Client(base_url=service.local_url, verify=service.tls_context()) as client:

            def deliver(signer: crypto.TokenSigner) -> Any:
                nid = f"n-{secrets.token_hex(6)}"
                message = json.dumps({"id": nid, "body": {"content": "x"}}).encode()
                item = {
                    "id": nid,
                    "subscriptionId": "sub-1",
                    "clientState": STATE,
                    "tenantId": TENANT,
                    "encryptedContent": crypto.encrypt(key.certificate_b64, message, key.id),
                }
                body = {"value": [item], "validationTokens": [signer.token(AUDIENCE, TENANT)]}
                assert client.post("/notifications", json=body).status_code == 202
                return service.receiver.wait_for(lambda d: d.notification_id == nid, timeout=10)

            assert deliver(yesterday).accepted
            assert jwks.fetches == 1  # the first token fetched the set
            jwks.signers.append(today)  # Entra publishes a new key and starts signing with it
            assert deliver(today).accepted, "a token signed with the new key was refused"
            assert jwks.fetches == 2  # its unknown kid fetched the set again, once
            for _ in range(20):  # an attacker's tokens, each naming a kid nobody publishes
                refused = deliver(crypto.TokenSigner(kid=f"forged-{secrets.token_hex(3)}"))
                assert not refused.accepted and "unknown key" in refused.reason
            # The rotation's fetch and the flood's share the limit: a few fetches, not one per token.
            assert jwks.fetches == 1 + JWKS_REFRESH_BURST
            assert deliver(today).accepted and deliver(yesterday).accepted
            assert jwks.fetches == 1 + JWKS_REFRESH_BURST
    finally:
        service.stop()
        jwks.stop()


def test_the_key_set_is_refetched_when_it_is_older_than_a_day_and_kept_when_a_fetch_fails() -> None:
    signer = crypto.TokenSigner(kid="k1")
    jwks = Jwks(signer)
    now = [1000.0]
    verify = ssl.create_default_context(cafile=str(jwks.certificates.ca_bundle))
    keys = KeySet(jwks_url=jwks.url, verify=verify, clock=lambda: now[0])
    try:
        assert keys.get("k1") is not None and jwks.fetches == 1
        now[0] += JWKS_MAX_AGE_S - 1
        assert keys.get("k1") is not None and jwks.fetches == 1
        now[0] += 2
        assert keys.get("k1") is not None and jwks.fetches == 2
        jwks.stop()  # the endpoint goes away: the keys held are kept, the failure is said
        now[0] += JWKS_MAX_AGE_S + 1
        assert keys.get("k1") is not None and keys.last_error
        assert "fetch failed" in keys.describe()
    finally:
        jwks.stop()


@pytest.mark.parametrize("url", ["http://login.example/keys", "ftp://127.0.0.1/keys", "keys.json"])
def test_a_jwks_url_that_is_not_https_is_refused_unless_on_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="not https"):
        KeySet(jwks_url=url)
    KeySet(jwks_url="http://127.0.0.1:9/keys")  # a local stand-in, as tests and benchmarks use


def test_a_flood_past_the_queue_gets_503_with_retry_after_and_nothing_is_lost() -> None:
    """Acknowledging is cheap and verifying is not: a full queue answers 503 + Retry-After, so Graph
    keeps the notification and sends it again, rather than the receiver holding unbounded work."""

    from harness.client.notifications.receiver import Receiver

    receiver = Receiver(audience=AUDIENCE, workers=0, queue_size=2)
    body = json.dumps({"value": [{"id": "n", "subscriptionId": "s", "clientState": "x"}]}).encode()

    async def post() -> httpx.Response:
        transport = httpx.ASGITransport(app=receiver.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://receiver.test") as client:
            return await client.post("/notifications", content=body, headers={"content-type": "application/json"})

    answers = [run_async(post()) for _ in range(4)]
    assert [a.status_code for a in answers] == [202, 202, 503, 503]
    assert answers[2].headers["retry-after"] == "1"
    assert receiver.stats["busy"] == 2 and receiver._queue.qsize() == 2


def test_what_waits_to_be_verified_is_bounded_in_bytes_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bodies of up to 1 MiB each: a queue bounded only in count would hold gigabytes."""

    from harness.client.notifications import receiver as receiver_module

    monkeypatch.setattr(receiver_module, "QUEUED_BYTES", 3000)
    receiver = receiver_module.Receiver(audience=AUDIENCE, workers=0)
    body = json.dumps({"value": [{"id": "n", "subscriptionId": "s", "clientState": "x" * 1000}]}).encode()

    async def post() -> int:
        transport = httpx.ASGITransport(app=receiver.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://receiver.test") as client:
            answer = await client.post("/notifications", content=body, headers={"content-type": "application/json"})
            return answer.status_code

    assert [run_async(post()) for _ in range(4)] == [202, 202, 503, 503]
