"""The webhook path of the source document ("receive message as Teams user on webhook and then push
message to the client"), as scenarios drive it: subscribe, connect a client, send, observe the push.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import httpx

from harness.client.graph import MARKER_PREFIX
from harness.client.notifications.push import PushClient
from harness.client.notifications.receiver import Registration
from harness.client.notifications.service import ReceiverService
from harness.conformance.flows.chat import ChatFlow, graph_observation
from harness.conformance.verdicts import Check, Observation
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import notification_crypto as crypto

SUBSCRIPTION_MINUTES = 55  # under an hour: no lifecycle URL would be required, but we give one anyway
FORGERIES = ("wrong clientState", "expired validation token", "untrusted validation token", "tampered dataSignature")


class Inbound(Protocol):
    """Replay's source of recorded notifications (None when Graph delivers them itself)."""

    pending: int

    def deliver_next(self) -> bool: ...


class Signer(Protocol):
    def token(self, audience: str, tenant_id: str, *, lifetime_s: int = 3600) -> str: ...


# What each forgery must be refused for (the receiver's reason says it), and those that need no
# Graph-signed token to get that far.
FORGERY_REFUSED_FOR = {
    "wrong clientState": "clientState",
    "expired validation token": "expired",
    "untrusted validation token": "unknown key",
    "tampered dataSignature": "dataSignature",
}
KEYLESS_FORGERIES = ("wrong clientState", "untrusted validation token")


@dataclass
class NotificationEnvironment:
    service: ReceiverService
    audience: str
    inbound: Inbound | None = None
    trigger_lifecycle: Callable[[str, str], None] | None = None
    signer: Signer | None = None  # a signer the receiver trusts (sandbox and replay only)
    lifecycle_wait_s: float = 0  # live: how long Graph may take to send a lifecycle event of its own


@dataclass
class NotificationFlow:
    chat: ChatFlow
    env: NotificationEnvironment
    key_id: str
    subscription_id: str | None = None
    client_state: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    push: PushClient | None = None
    push_channel: str = ""
    subscriber: str | None = None
    reauthorized: threading.Event = field(default_factory=threading.Event)
    lifecycle_results: list[str] = field(default_factory=list)

    @property
    def receiver(self):  # type: ignore[no-untyped-def]
        return self.env.service.receiver

    def subscribe(self, alias: str, change_types: str = "created") -> Observation:
        client = self.chat.client(alias)
        if client is None or self.chat.blocked:
            return self.chat.blocking
        assert self.chat.path and self.chat.path.startswith("chats/"), "subscribe to a chat"
        key = self.receiver.new_key(self.key_id)
        expiration = (client.server_now() + timedelta(minutes=SUBSCRIPTION_MINUTES)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body = {
            "changeType": change_types,
            "notificationUrl": f"{self.env.service.public_url}/notifications",
            "lifecycleNotificationUrl": f"{self.env.service.public_url}/lifecycle",
            "resource": "/" + self.chat.path,
            "includeResourceData": True,
            "encryptionCertificate": key.certificate_b64,
            "encryptionCertificateId": key.id,
            "expirationDateTime": expiration,
            "clientState": self.client_state,
        }
        result = client.create_subscription(body)
        if result.ok:
            self.subscription_id, self.subscriber = result.body["id"], alias
            self.receiver.register(
                Registration(
                    self.subscription_id,
                    self.client_state,
                    channel=alias,
                    key_id=key.id,
                    on_lifecycle=self._on_lifecycle,
                    resource_data=True,
                    tenant_id=self.chat.tenant.tenant_id,
                )
            )
        return self.chat._record(graph_observation(result, "subscribe"))

    def _on_lifecycle(self, event: str) -> None:
        """What an app does on a lifecycle event: reauthorize (and renew), or subscribe again."""
        assert self.subscriber and self.subscription_id
        client = self.chat.clients[self.subscriber]
        if event == "reauthorizationRequired":
            result = client.reauthorize_subscription(self.subscription_id)
            self.lifecycle_results.append(f"reauthorize: {result.status}")
            expiration = (client.server_now() + timedelta(minutes=SUBSCRIPTION_MINUTES)).strftime("%Y-%m-%dT%H:%M:%SZ")
            renewed = client.renew_subscription(self.subscription_id, expiration)
            self.lifecycle_results.append(f"renew: {renewed.status}")
            if result.ok and renewed.ok:
                self.reauthorized.set()
        else:
            self.lifecycle_results.append(f"{event}: not handled by this flow")

    def connect(self, alias: str) -> Observation:
        self.push_channel = alias
        try:
            self.push = PushClient(
                self.env.service.events_url(alias),
                str(self.env.service.certificates.ca_bundle),
                self.env.service.receiver.push_token,
            )
        except ConnectionError as err:
            return self.chat._record(Observation("rejected", "connect to push", message=str(err)))
        return self.chat._record(Observation("allowed", "connect to push"))

    def _deliver_until(self, done: Callable[[], bool], timeout: float) -> bool:
        """Wait for `done`; in replay, feed recorded notifications one by one meanwhile."""
        deadline = time.monotonic() + timeout
        while not done():
            if self.env.inbound is not None and self.env.inbound.pending and self.env.inbound.deliver_next():
                continue
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def expect_push(self, timeout: float = 10.0) -> Observation:
        """The last message sent reaches the subscriber's client through the webhook."""
        if self.chat.blocked:
            return self.chat.blocking
        assert self.push is not None and self.chat.sent, "connect a client and send a message first"
        sent = self.chat.sent[-1]
        needle = f"{MARKER_PREFIX}{sent.marker}]"
        started = time.time()

        def arrived() -> dict[str, Any] | None:
            # While recorded notifications wait to be fed (replay), only look: the next is fed at once. Then
            # wait a little for the push, which ends the wait as soon as it comes.
            feeding = self.env.inbound is not None and self.env.inbound.pending
            return self.push.wait_for(
                lambda e: needle in str(((e.get("message") or {}).get("body") or {}).get("content", "")),
                timeout=0 if feeding else 0.05,
            )

        self._deliver_until(lambda: arrived() is not None, timeout)
        event = arrived()
        if event is None:
            decisions = [f"{d.reason or 'accepted'}" for d in list(self.receiver.decisions)[-5:]]
            return self.chat._record(
                Observation(
                    "rejected", "push", message=f"no push within {timeout:g} s", evidence={"receiver": decisions}
                )
            )
        latency = (event["pushedAt"] - sent.sent_at) * 1000 if sent.sent_at else None
        observation = Observation(
            "allowed",
            "push",
            evidence={
                "send_to_client_ms": round(latency, 1) if latency is not None else None,
                "waited_ms": round((time.time() - started) * 1000, 1),
                "changeType": event.get("changeType"),
            },
        )
        return self.chat._record(observation)

    def expect_changes(self, changes: list[str], timeout: float = 10.0) -> Observation:
        """Notifications for the last message sent arrive as `changes`, in that order."""
        if self.chat.blocked:
            return self.chat.blocking
        assert self.push is not None and self.chat.sent and self.chat.sent[-1].message
        message_id = self.chat.sent[-1].message.id

        def every() -> list[str]:
            # In the order the changes happened (the message's lastModifiedDateTime), not the order
            # the receiver's parallel workers happened to push them in.
            mine = [e for e in self.push.events if str((e.get("message") or {}).get("id")) == message_id]

            def when(e: dict[str, Any]) -> tuple[bool, str]:  # an event without the time: last, in arrival order
                stamp = (e.get("message") or {}).get("lastModifiedDateTime")
                return (stamp is None, str(stamp or ""))

            mine.sort(key=when)
            return [str(e.get("changeType")) for e in mine]

        def seen() -> list[str]:
            # A change applied twice (an edit retried after an ambiguous failure) is notified twice;
            # repeats in a row are one change for this comparison. The evidence keeps every event
            # and says how many repeats were merged.
            kinds = every()
            return [k for i, k in enumerate(kinds) if i == 0 or kinds[i - 1] != k]

        self._deliver_until(lambda: len(seen()) >= len(changes), timeout)
        observed = seen()
        events = every()
        evidence = {"changes": observed, "events": events, "repeats_merged": len(events) - len(observed)}
        if observed[: len(changes)] != changes:
            return self.chat._record(
                Observation("rejected", "push", message=f"got {observed}, expected {changes}", evidence=evidence)
            )
        return self.chat._record(Observation("allowed", "push", evidence=evidence))

    def provoke_lifecycle(self, event: str = "reauthorizationRequired", timeout: float = 10.0) -> Observation:
        if self.chat.blocked:
            return self.chat.blocking
        if self.env.trigger_lifecycle is not None:
            assert self.subscription_id
            self.env.trigger_lifecycle(self.subscription_id, event)
        elif self.env.lifecycle_wait_s > 0:  # live: Graph sends them on its own schedule; wait for one
            arrived = lambda: self.reauthorized.is_set() or bool(self.lifecycle_results)  # noqa: E731
            if not self._deliver_until(arrived, self.env.lifecycle_wait_s):
                raise MissingPrerequisite(
                    f"Graph sent no {event} within {self.env.lifecycle_wait_s:g} s ([notifications] lifecycle_wait_s); "
                    "it sends lifecycle events on its own schedule"
                )
        else:
            raise MissingPrerequisite(
                "live Graph sends lifecycle events on its own schedule; set [notifications] lifecycle_wait_s to wait "
                "that many seconds for one"
            )
        if not self._deliver_until(self.reauthorized.is_set, timeout):
            return self.chat._record(
                Observation(
                    "rejected",
                    "lifecycle",
                    message="the subscription was not reauthorized",
                    evidence={"lifecycle": self.lifecycle_results},
                )
            )
        return self.chat._record(Observation("allowed", "lifecycle", evidence={"lifecycle": self.lifecycle_results}))

    # -- forgeries -------------------------------------------------------------------------------------

    def _pushed_before_now(self, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any] | None:
        """What the client was pushed that matches, of all the receiver had decided so far.

        The receiver publishes an accepted notification before it records its decision, and the push
        channel keeps order; so a marker published now reaches the client after anything already
        decided. Once the marker is seen, what has not arrived was never pushed: no blind wait."""
        if self.push is None:
            return None
        marker = f"cte-order-marker-{secrets.token_hex(6)}"
        self.receiver.hub.publish(self.push_channel, {"orderMarker": marker})
        if self.push.wait_for(lambda e: e.get("orderMarker") == marker, timeout=5) is None:
            return self.push.wait_for(predicate, timeout=0)  # the channel is stuck: say what was seen
        return next((e for e in list(self.push.events) if predicate(e)), None)

    def forge(self, kind: str) -> Observation:
        """Post a forged notification to the webhook, as an attacker who knows its URL would."""
        if self.chat.blocked:
            return self.chat.blocking
        # Against Microsoft only Graph holds the key its validation tokens are signed with: an attacker
        # (and the harness, live) signs with a key of its own, and each forgery must still be refused.
        signer = self.env.signer or crypto.TokenSigner(kid="cte-forger")
        assert self.subscription_id and self.key_id in self.receiver.keys
        key = self.receiver.keys[self.key_id]
        message_id = f"forged-{secrets.token_hex(4)}"
        message = {"id": message_id, "body": {"contentType": "text", "content": f"forged {message_id}"}}
        tenant = self.chat.tenant.tenant_id
        notification = {
            "id": f"forged-{secrets.token_hex(8)}",
            "subscriptionId": self.subscription_id,
            "changeType": "created",
            "clientState": self.client_state if kind != "wrong clientState" else "guessed-client-state",
            "resource": f"chats('x')/messages('{message_id}')",
            "tenantId": tenant,
            "resourceData": {"id": message_id},
            "encryptedContent": crypto.encrypt(key.certificate_b64, json.dumps(message).encode(), key.id),
        }
        if kind == "tampered dataSignature":
            signature = notification["encryptedContent"]["dataSignature"]
            notification["encryptedContent"]["dataSignature"] = ("A" if signature[0] != "A" else "B") + signature[1:]
        if kind == "untrusted validation token":
            token = crypto.TokenSigner(kid="attacker").token(self.env.audience, tenant)
        else:
            lifetime = -60 if kind == "expired validation token" else 3600
            token = signer.token(self.env.audience, tenant, lifetime_s=lifetime)
        body = {"value": [notification], "validationTokens": [token]}
        with httpx.Client(verify=self.env.service.tls_context()) as client:
            answer = client.post(f"{self.env.service.local_url}/notifications", json=body)
        decision = self.receiver.wait_for(lambda d: d.notification_id == notification["id"], timeout=5)
        pushed = self._pushed_before_now(lambda e: (e.get("message") or {}).get("id") == message_id)
        evidence = {
            "http_status": answer.status_code,
            "pushed_to_a_client": pushed is not None,
            "signed_with": "a key the receiver trusts"
            if self.env.signer
            else "the forger's own key (only Graph holds Graph's)",
        }
        if decision is None:
            return self.chat._record(
                Observation("allowed", "webhook", message="no decision recorded", evidence=evidence)
            )
        outcome = "allowed" if decision.accepted or pushed else "rejected"
        observation = Observation(
            outcome, "webhook", code=decision.reason or None, message=decision.reason, evidence=evidence
        )
        # Refused for what was forged, where the forgery could get that far: with a key the receiver
        # trusts (sandbox, replay), or where the forgery is the key itself or precedes the token check.
        reason = FORGERY_REFUSED_FOR[kind]
        if outcome == "rejected" and (self.env.signer is not None or kind in KEYLESS_FORGERIES):
            observation.checks.append(
                Check(f"refused for its {reason}", reason in (decision.reason or ""), decision.reason or "")
            )
        elif outcome == "rejected":
            evidence["what_was_checked"] = (
                f"refused for {decision.reason!r}: only Graph can sign a token, so a forged {reason} is met by the "
                "key check first here (sandbox and replay runs check the "
                f"{reason} itself)"
            )
        return self.chat._record(observation)

    def close(self) -> None:
        if self.push is not None:
            self.push.close()
        if self.subscription_id and self.subscriber in self.chat.clients:
            self.chat.clients[self.subscriber].delete_subscription(self.subscription_id)
