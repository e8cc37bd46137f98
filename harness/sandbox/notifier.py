"""Graph change notifications as the sandbox delivers them (docs/contracts/graph.md §4).

- resource data encrypted as Graph does (`harness.wire.notification_crypto.seal`: a fresh AES key
  per notification, wrapped with RSA-OAEP for the subscription's certificate);
- `validationTokens`: JWTs signed by the sandbox's Entra key with the claims of
  `harness.wire.notification_crypto.validation_token_claims`: `aud` the subscribing app, `appid`
  Graph's change-notification app;
- delivery: one worker, in order; a 2xx within 3 s is success; otherwise retried (the real service
  retries for up to 4 hours; the sandbox's schedule 1, 2, 4, 8 s is emulator-defined); an endpoint
  whose answers take over 2,900 ms for 10% of 100 notifications is throttled (delayed), at 15% its
  notifications are dropped, counts flushed every 10 minutes.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from harness.wire.notification_crypto import seal, validation_token_claims
from harness.wire.transport import LOOPBACK_NAMES

RETRY_DELAYS_S = (1, 2, 4, 8)
TIMEOUT_S = 3.0
SLOW_MS = 2900


def verify_for(url: str) -> bool:
    """TLS verification for a notification URL: on, except for the loopback receivers of tests, whose
    self-signed certificates the sandbox cannot know (emulator-defined; Graph requires public CAs)."""
    return urllib.parse.urlsplit(url).hostname not in LOOPBACK_NAMES


@dataclass
class Subscription:
    id: str
    tenant: str
    creator: str  # object id
    app_id: str
    resource: str
    change_types: set[str]
    notification_url: str
    lifecycle_url: str | None
    expiration: str
    client_state: str | None
    include_resource_data: bool
    certificate: str | None
    certificate_id: str | None
    chat_id: str | None  # None: every chat of the creator (getAllMessages)


@dataclass
class Delivery:
    url: str
    body: dict[str, Any]
    attempt: int = 0
    not_before: float = 0.0


@dataclass
class EndpointHealth:
    delivered: int = 0
    slow: int = 0
    since: float = field(default_factory=time.monotonic)

    def record(self, elapsed_ms: float) -> None:
        if time.monotonic() - self.since > 600:  # "the accumulation of responses is flushed every 10 minutes"
            self.delivered, self.slow, self.since = 0, 0, time.monotonic()
        self.delivered += 1
        self.slow += elapsed_ms > SLOW_MS

    @property
    def slow_share(self) -> float:
        return self.slow / self.delivered if self.delivered >= 100 else 0.0


class Notifier:
    """Builds and delivers change notifications from a worker thread."""

    def __init__(self, sign_token: Any) -> None:
        self._sign_token = sign_token
        self._queue: queue.Queue[Delivery | None] = queue.Queue()
        self._health: dict[str, EndpointHealth] = {}
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self.delivered: list[dict[str, Any]] = []  # what was acknowledged, for tests
        self.dropped: list[dict[str, Any]] = []
        self.errors: list[str] = []

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="cte-sandbox-notifier", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._queue.put(None)
        if self._thread:
            self._thread.join(timeout=5)

    def wait_idle(self, timeout: float = 10.0) -> bool:
        return self._idle.wait(timeout)

    # -- building ----------------------------------------------------------------------------------

    def validation_token(self, subscription: Subscription, tenant_id: str, now: int) -> str:
        return self._sign_token(
            validation_token_claims(subscription.app_id, tenant_id, now=now, backdate_s=0, idtyp="app")
        )

    def message_changed(
        self,
        subscription: Subscription,
        tenant_id: str,
        change_type: str,
        chat_id: str,
        message: dict[str, Any],
        now: int,
    ) -> None:
        resource = f"chats('{chat_id}')/messages('{message['id']}')"
        notification: dict[str, Any] = {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription.id}/{change_type}/{resource}/{message['etag']}")),
            "subscriptionId": subscription.id,
            "changeType": change_type,
            "clientState": subscription.client_state,
            "subscriptionExpirationDateTime": subscription.expiration,
            "resource": resource,
            "resourceData": {"id": message["id"], "@odata.type": "#Microsoft.Graph.chatMessage", "@odata.id": resource},
            "tenantId": tenant_id,
        }
        body: dict[str, Any] = {"value": [notification]}
        if subscription.include_resource_data and subscription.certificate:
            plaintext = json.dumps({**message, "replies": [], "hostedContents": []}).encode()
            notification["encryptedContent"] = {
                **seal(subscription.certificate, plaintext),
                "encryptionCertificateId": subscription.certificate_id,
            }
            body["validationTokens"] = [self.validation_token(subscription, tenant_id, now)]
        self._queue.put(Delivery(subscription.notification_url, body))
        self._idle.clear()

    def lifecycle(self, subscription: Subscription, tenant_id: str, event: str) -> None:
        if not subscription.lifecycle_url:
            raise ValueError(f"subscription {subscription.id} has no lifecycleNotificationUrl")
        body = {
            "value": [
                {
                    "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{subscription.id}/{event}/{subscription.expiration}")),
                    "subscriptionId": subscription.id,
                    "subscriptionExpirationDateTime": subscription.expiration,
                    "tenantId": tenant_id,
                    "clientState": subscription.client_state,
                    "lifecycleEvent": event,
                }
            ]
        }
        self._queue.put(Delivery(subscription.lifecycle_url, body))
        self._idle.clear()

    # -- delivering --------------------------------------------------------------------------------

    def _run(self) -> None:
        clients: dict[bool, httpx.Client] = {}
        while True:
            item = self._queue.get()
            if item is None:
                break
            wait = item.not_before - time.monotonic()
            if wait > 0:
                time.sleep(min(wait, 10.0))
            verify = verify_for(item.url)
            client = clients.setdefault(verify, httpx.Client(verify=verify, timeout=TIMEOUT_S))
            self._deliver(client, item)
            if self._queue.empty():
                self._idle.set()
        for client in clients.values():
            client.close()

    def _deliver(self, client: httpx.Client, item: Delivery) -> None:
        health = self._health.setdefault(item.url.split("?")[0], EndpointHealth())
        if health.slow_share >= 0.15:
            self.dropped.append(item.body)  # "dropped if ... slow percentage is greater than or equal to 15%"
            return
        if health.slow_share >= 0.10 and item.attempt == 0:
            item.attempt, item.not_before = 1, time.monotonic() + 600  # throttled: "a delay of 10 minutes"
            self._queue.put(item)
            return
        started = time.monotonic()
        try:
            response = client.post(item.url, json=item.body)
            ok = 200 <= response.status_code < 300
        except Exception as err:  # any failure to deliver is the receiver's failure to acknowledge
            self.errors.append(f"{type(err).__name__}: {err}")
            ok = False
        health.record((time.monotonic() - started) * 1000)
        if ok:
            self.delivered.append(item.body)
            return
        if item.attempt < len(RETRY_DELAYS_S):
            item.not_before = time.monotonic() + RETRY_DELAYS_S[item.attempt]
            item.attempt += 1
            self._queue.put(item)
        else:
            self.dropped.append(item.body)
