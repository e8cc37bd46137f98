"""Tests that catch broken clients: each check passes on the real code and fails on a named defect.

Each check is a function used twice: by the test of the real code, and by a `..._catches_...` test
that injects the defect (a monkeypatch scoped to that test) and asserts the check then fails. So a
check that stopped catching its defect fails the suite, as does a client that grew the defect.

(a) a Graph client that never sends `$top` when paging with a page size (the sandbox's page size
    without `$top` is 20, emulator-defined): asking for 7 a page must give pages of 7;
(b) a webhook receiver that ignores `clientState`;
(c) one that ignores `dataSignature`;
(d) one that ignores the validation token's `appid` (a token signed by a trusted key but issued to
    another app must be refused).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import types
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from harness.client.auth import EntraSignIn
from harness.client.graph import GRAPH_SCOPES, GraphClient, MarkerSource
from harness.client.notifications import receiver as receiver_module
from harness.client.notifications.receiver import Decision, Registration
from harness.client.notifications.service import ReceiverService
from harness.core.config import load_profile
from harness.sandbox.graph import DEFAULT_TOP
from harness.sandbox.server import Sandbox
from harness.wire import notification_crypto as crypto
from harness.wire import transport

pytestmark = pytest.mark.integration
AUDIENCE = "00000000-0000-0000-0000-00000000c001"
TENANT = "00000000-0000-0000-0000-00000000a001"
CLIENT_STATE = "the-client-state"
ANOTHER_APP = "00000000-0000-0000-0000-00000000c0ff"


# -- (a) Graph paging with a page size ------------------------------------------------------------------

PAGE_SIZE = 7
MESSAGES = 16  # fewer than the sandbox's page size without $top: a client that drops $top gets one page


@pytest.fixture(scope="module")
def graph():
    """A deterministic sandbox, a signed-in Graph client, and a group chat holding MESSAGES messages."""
    with Sandbox(deterministic=True) as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        signed = EntraSignIn(tenant).with_password("adele", GRAPH_SCOPES)
        client = GraphClient(tenant, str(signed.access_token), sleep=lambda _: None, markers=MarkerSource("adele"))
        oids = sandbox.tenant_info("contoso").oids()
        chat = client.create_chat("group", [oids["adele"], oids["megan"]], "paging")
        assert chat.status == 201, chat
        path = f"chats/{chat.body['id']}/messages"
        for n in range(MESSAGES):
            assert client.send(path, f"message {n}").result.status == 201
        yield client, path
        client.close()


def check_pages_have_the_size_asked_for(client: GraphClient, path: str) -> None:
    sizes = []
    for page in client.pages(path, top=PAGE_SIZE):
        assert page.ok, page
        sizes.append(len(page.body["value"]))
    assert MESSAGES < DEFAULT_TOP  # else a client that drops $top would not be told apart
    assert sizes == [PAGE_SIZE, PAGE_SIZE, MESSAGES - 2 * PAGE_SIZE], f"asked for {PAGE_SIZE} a page, got {sizes}"


def test_graph_pages_have_the_size_asked_for(graph) -> None:
    check_pages_have_the_size_asked_for(*graph)


def test_the_page_size_check_catches_a_client_that_never_sends_top(graph, monkeypatch: pytest.MonkeyPatch) -> None:
    real_request = GraphClient.request

    def without_top(self: GraphClient, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        params = kwargs.get("params")
        if params:
            kwargs["params"] = {k: v for k, v in params.items() if k != "$top"} or None
        return real_request(self, method, path, *args, **kwargs)

    monkeypatch.setattr(GraphClient, "request", without_top)
    with pytest.raises(AssertionError, match=f"asked for {PAGE_SIZE} a page"):
        check_pages_have_the_size_asked_for(*graph)


# -- (b, c, d) the webhook receiver ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook():
    signer = crypto.TokenSigner(kid="graph")
    service = ReceiverService.start(audience=AUDIENCE, trusted_keys={signer.kid: signer.public_key})
    key = service.receiver.new_key("defects-key")
    service.receiver.register(Registration("defects-sub", CLIENT_STATE, channel="defects", key_id=key.id))
    client = httpx.Client(base_url=service.local_url, verify=service.tls_context())
    yield service, signer, key, client
    client.close()
    service.stop()


def collection(
    webhook, *, state: str = CLIENT_STATE, appid: str = crypto.NOTIFICATION_APP_ID, tamper: Callable | None = None
) -> tuple[str, dict[str, Any]]:
    """A fresh notification id and a change-notification collection as Graph sends it (valid unless told)."""
    _, signer, key, _ = webhook
    nid = f"n-{uuid.uuid4()}"
    message = {"id": nid, "body": {"contentType": "text", "content": "hello"}}
    content = crypto.encrypt(key.certificate_b64, json.dumps(message).encode(), key.id)
    if tamper is not None:
        content = tamper(content)
    body = {
        "value": [
            {
                "id": nid,
                "subscriptionId": "defects-sub",
                "changeType": "created",
                "clientState": state,
                "resource": f"chats('c')/messages('{nid}')",
                "tenantId": TENANT,
                "encryptedContent": content,
            }
        ],
        "validationTokens": [signer.token(AUDIENCE, TENANT, appid=appid)],
    }
    return nid, body


def deliver(webhook, nid: str, body: dict[str, Any]) -> Decision:
    service, _, _, client = webhook
    assert client.post("/notifications", json=body).status_code == 202
    decision = service.receiver.wait_for(lambda d: d.notification_id == nid, timeout=10)
    assert decision is not None, f"no decision on {nid}"
    return decision


def check_refused(webhook, nid: str, body: dict[str, Any], because: str) -> None:
    decision = deliver(webhook, nid, body)
    assert not decision.accepted, f"a notification that should be refused ({because}) was accepted"
    assert because in decision.reason, decision.reason


def other_signature(content: dict[str, str]) -> dict[str, str]:
    """The same data and key, with the HMAC of other bytes as its dataSignature."""
    forged = hmac.new(b"not the data key", base64.b64decode(content["data"]), hashlib.sha256).digest()
    return {**content, "dataSignature": base64.b64encode(forged).decode()}


def check_wrong_client_state_refused(webhook) -> None:
    check_refused(webhook, *collection(webhook, state="not-the-client-state"), because="clientState does not match")


def check_wrong_data_signature_refused(webhook) -> None:
    check_refused(webhook, *collection(webhook, tamper=other_signature), because="dataSignature does not match")


def check_token_for_another_app_refused(webhook) -> None:
    nid, body = collection(webhook, appid=ANOTHER_APP)
    check_refused(webhook, nid, body, because="validation token not issued to Graph's notification app")


def test_a_valid_notification_is_accepted(webhook) -> None:
    """The control: what the checks below alter is, unaltered, accepted."""
    decision = deliver(webhook, *collection(webhook))
    assert decision.accepted, decision.reason


def test_the_receiver_refuses_a_wrong_client_state(webhook) -> None:
    check_wrong_client_state_refused(webhook)


def test_the_receiver_refuses_a_wrong_data_signature(webhook) -> None:
    check_wrong_data_signature_refused(webhook)


def test_the_receiver_refuses_a_token_issued_to_another_app(webhook) -> None:
    check_token_for_another_app_refused(webhook)


# The defects, injected for one test each. Each comparison is defeated where the real code makes it,
# while the receiver's threads are running (they look these names up at call time).

ALWAYS_EQUAL = types.SimpleNamespace(new=hmac.new, compare_digest=lambda a, b: True)


class AnyApp(str):
    """An app id equal to every app id: an `appid` check against it checks nothing."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__


def test_the_client_state_check_catches_a_receiver_that_ignores_client_state(
    webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(receiver_module, "hmac", ALWAYS_EQUAL)  # the receiver's clientState comparison
    with pytest.raises(AssertionError, match="was accepted"):
        check_wrong_client_state_refused(webhook)


def test_the_data_signature_check_catches_a_receiver_that_ignores_data_signature(
    webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "hmac", ALWAYS_EQUAL)  # decrypt's dataSignature comparison
    with pytest.raises(AssertionError, match="was accepted"):
        check_wrong_data_signature_refused(webhook)


def test_the_appid_check_catches_a_receiver_that_ignores_the_tokens_appid(
    webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crypto, "NOTIFICATION_APP_ID", AnyApp(crypto.NOTIFICATION_APP_ID))
    with pytest.raises(AssertionError, match="was accepted"):
        check_token_for_another_app_refused(webhook)
