"""The webhook receiver: an ASGI app that takes Graph's change notifications and pushes messages to clients.

- Validation handshake: `?validationToken=...` -> 200, text/plain, the URL-decoded token.
- Bad input: wrong content type -> 415, body over the limit -> 413, not a notification collection
  -> 400; never a 5xx for what a sender did.
- Acknowledges with 202 at once; verification and decryption run off the request path in worker
  threads fed by a bounded queue (full -> 503 with Retry-After: Graph retries, nothing is lost).
- Per notification: a known subscription, `clientState` compared in constant time, validationTokens
  verified (signature, audience, Graph's app id, expiry) when resource data is present,
  `dataSignature` checked before decrypting, duplicates from Graph's retries dropped.
- Accepted messages are pushed to the subscriber's clients over Server-Sent Events: the stand-in
  for the SignalR hop. In production an Azure SignalR Service hub takes this role: the worker calls
  its REST API (or a SignalR hub method) instead of `PushHub.publish`, and clients connect to
  SignalR instead of `/events`.
- Lifecycle events go to the subscription's handler (reauthorize, renew, or re-subscribe).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import queue
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from harness.notifications.crypto import EncryptionKey, Rejected, TokenVerifier, decrypt

MAX_BODY = 1024 * 1024
QUEUE_SIZE = 10_000
DEDUPE_WINDOW = 50_000
KEEP_ALIVE_S = 1.0  # also how soon a client that closed its side is noticed


@dataclass
class Registration:
    subscription_id: str
    client_state: str
    channel: str  # which clients get its messages
    key_id: str | None = None  # the encryption key its certificate belongs to
    on_lifecycle: Callable[[str], None] | None = None
    seen: OrderedDict[str, None] = field(default_factory=OrderedDict)  # notification ids already handled


@dataclass
class Decision:
    notification_id: str
    subscription_id: str
    kind: str  # change | lifecycle
    accepted: bool
    reason: str = ""
    message_id: str | None = None
    at: float = field(default_factory=time.monotonic)


class PushHub:
    """Clients connected over SSE, by channel; publish is safe from any thread."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, list[asyncio.Queue[str]]] = {}
        self._lock = threading.Lock()
        self.pushed = 0

    def connect(self, channel: str) -> asyncio.Queue[str]:
        self._loop = asyncio.get_running_loop()
        inbox: asyncio.Queue[str] = asyncio.Queue(maxsize=10_000)
        with self._lock:
            self._queues.setdefault(channel, []).append(inbox)
        return inbox

    def disconnect(self, channel: str, inbox: asyncio.Queue[str]) -> None:
        with self._lock:
            if inbox in self._queues.get(channel, []):
                self._queues[channel].remove(inbox)

    def publish(self, channel: str, event: dict[str, Any]) -> int:
        data = json.dumps(event)
        with self._lock:
            inboxes = list(self._queues.get(channel, []))
        loop = self._loop
        if loop is None:
            return 0
        for inbox in inboxes:
            loop.call_soon_threadsafe(self._offer, inbox, data)
        self.pushed += len(inboxes)
        return len(inboxes)

    def close_all(self) -> None:
        """End every open stream (before the server stops, so none is cut off mid-flight)."""
        with self._lock:
            inboxes = [inbox for group in self._queues.values() for inbox in group]
        if self._loop is not None:
            for inbox in inboxes:
                self._loop.call_soon_threadsafe(self._offer, inbox, "")

    @staticmethod
    def _offer(inbox: asyncio.Queue[str], data: str) -> None:
        if not inbox.full():  # a client that stopped reading loses events rather than the receiver its memory
            inbox.put_nowait(data)


class Receiver:
    def __init__(
        self,
        *,
        audience: str,
        trusted_keys: dict[str, Any] | None = None,
        workers: int = 2,
        queue_size: int = QUEUE_SIZE,
        capture: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.keys: dict[str, EncryptionKey] = {}
        self.registrations: dict[str, Registration] = {}
        self.verifier = TokenVerifier(trusted_keys or {}, audience)
        self.hub = PushHub()
        # /events serves decrypted messages: only this process's push clients may read it, even when
        # a tunnel forwards every path of the receiver to the internet (live mode).
        self.push_token = secrets.token_urlsafe(32)
        self.capture = capture
        self.decisions: list[Decision] = []
        self.stats = {"received": 0, "acknowledged": 0, "rejected": 0, "duplicates": 0, "busy": 0, "bad_input": 0}
        self._queue: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._workers = [
            threading.Thread(target=self._work, name=f"cte-receiver-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()
        self.app = Starlette(
            routes=[
                Route("/notifications", self.notifications, methods=["POST"]),
                Route("/lifecycle", self.lifecycle, methods=["POST"]),
                Route("/events", self.events, methods=["GET"]),
            ]
        )

    # -- configuration ---------------------------------------------------------------------------

    def new_key(self, key_id: str) -> EncryptionKey:
        key = EncryptionKey.generate(key_id)
        self.keys[key_id] = key
        return key

    def register(self, registration: Registration) -> None:
        with self._lock:
            self.registrations[registration.subscription_id] = registration

    def trust(self, keys: dict[str, Any]) -> None:
        self.verifier.keys.update(keys)

    def close(self) -> None:
        for _ in self._workers:
            self._queue.put(None)

    # -- HTTP --------------------------------------------------------------------------------------

    async def notifications(self, request: Request) -> Response:
        return await self._receive(request, "change")

    async def lifecycle(self, request: Request) -> Response:
        return await self._receive(request, "lifecycle")

    async def _receive(self, request: Request, kind: str) -> Response:
        token = request.query_params.get("validationToken")
        if token is not None:
            return PlainTextResponse(token, status_code=200)  # the query parser has URL-decoded it
        self.stats["received"] += 1
        if not request.headers.get("content-type", "").lower().startswith("application/json"):
            return self._bad(415, "Content-Type must be application/json.")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY:
            return self._bad(413, f"The body is over {MAX_BODY} bytes.")
        body = bytearray()
        async for chunk in request.stream():
            body.extend(chunk)
            if len(body) > MAX_BODY:
                return self._bad(413, f"The body is over {MAX_BODY} bytes.")
        try:
            collection = json.loads(bytes(body).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return self._bad(400, "The body is not JSON.")
        if (
            not isinstance(collection, dict)
            or not isinstance(collection.get("value"), list)
            or not all(isinstance(item, dict) for item in collection["value"])
        ):
            return self._bad(400, "The body is not a change notification collection.")
        try:
            self._queue.put_nowait((kind, collection))
        except queue.Full:
            self.stats["busy"] += 1
            return Response(status_code=503, headers={"Retry-After": "1"})
        self.stats["acknowledged"] += 1
        return Response(status_code=202)

    def _bad(self, status: int, message: str) -> JSONResponse:
        self.stats["bad_input"] += 1
        return JSONResponse({"error": {"code": "BadNotification", "message": message}}, status_code=status)

    async def events(self, request: Request) -> Response:
        offered = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(offered.encode(), self.push_token.encode()):
            return JSONResponse(
                {"error": {"code": "Unauthorized", "message": "the push channel needs the receiver's bearer token"}},
                status_code=401,
            )
        channel = request.query_params.get("channel", "")
        if not channel:
            return JSONResponse({"error": {"code": "BadRequest", "message": "channel is required"}}, status_code=400)
        inbox = self.hub.connect(channel)

        async def stream():  # type: ignore[no-untyped-def]
            try:
                yield ": connected\n\n"
                while True:
                    try:
                        data = await asyncio.wait_for(inbox.get(), timeout=KEEP_ALIVE_S)
                    except TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    batch = [data]
                    while not inbox.empty() and len(batch) < 500:  # under load, one write for many events
                        batch.append(inbox.get_nowait())
                    closing = "" in batch
                    yield "".join(f"data: {item}\n\n" for item in batch if item)
                    if closing:  # the receiver is closing
                        return
            finally:
                self.hub.disconnect(channel, inbox)

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    # -- off the request path ----------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            kind, collection = item
            try:
                self._process(kind, collection)
            except Exception as err:  # a bug must not kill the worker; it is recorded as a decision
                self._decide(Decision("?", "?", kind, False, f"receiver fault: {type(err).__name__}: {err}"))

    def _process(self, kind: str, collection: dict[str, Any]) -> None:
        tokens_problem = None
        if any("encryptedContent" in n for n in collection["value"]):
            try:
                tokens = collection.get("validationTokens")
                if not isinstance(tokens, list) or not tokens:
                    raise Rejected("resource data without validationTokens")
                for token in tokens:
                    self.verifier.verify(str(token))
            except Rejected as err:
                tokens_problem = str(err)
        for notification in collection["value"]:
            notification_id = str(
                notification.get("id")
                or json.dumps(
                    [notification.get(k) for k in ("subscriptionId", "changeType", "resource", "lifecycleEvent")]
                )
            )
            decision = Decision(notification_id, str(notification.get("subscriptionId", "")), kind, False)
            try:
                self._one(kind, notification, decision, tokens_problem)
            except Rejected as err:
                decision.reason = str(err)
                self.stats["rejected"] += 1
            self._decide(decision)

    def _one(self, kind: str, notification: dict[str, Any], decision: Decision, tokens_problem: str | None) -> None:
        registration = self.registrations.get(decision.subscription_id)
        if registration is None:
            raise Rejected("unknown subscription")
        if not hmac.compare_digest(
            str(notification.get("clientState", "")).encode(), registration.client_state.encode()
        ):
            raise Rejected("clientState does not match")
        if kind == "lifecycle" or notification.get("lifecycleEvent"):
            self._lifecycle(registration, notification, decision)
            return
        message = None
        if "encryptedContent" in notification:
            if tokens_problem:
                raise Rejected(tokens_problem)
            content = notification["encryptedContent"]
            if not isinstance(content, dict):
                raise Rejected("encryptedContent is not an object")
            try:
                message = json.loads(decrypt(content, self.keys))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise Rejected("decrypted content is not JSON") from None
        if self._duplicate(registration, decision.notification_id):
            decision.reason = "duplicate"
            self.stats["duplicates"] += 1
            return
        decision.accepted = True
        resource_data = notification.get("resourceData") if isinstance(notification.get("resourceData"), dict) else {}
        decision.message_id = str((message if isinstance(message, dict) else resource_data or {}).get("id"))
        event = {
            "subscriptionId": decision.subscription_id,
            "changeType": notification.get("changeType"),
            "resource": notification.get("resource"),
            "message": message,
            "receivedAt": time.time(),
        }
        # Recorded before it is pushed: a client that sees the push may end its scenario (and close
        # the recording) at once, and a notification captured after that would be lost to replay.
        if self.capture:
            self.capture({"kind": "change", "notification": notification, "message": message})
        self.hub.publish(registration.channel, event)

    def _lifecycle(self, registration: Registration, notification: dict[str, Any], decision: Decision) -> None:
        event = str(notification.get("lifecycleEvent", ""))
        if event not in ("reauthorizationRequired", "subscriptionRemoved", "missed"):
            raise Rejected(f"unknown lifecycle event {event!r}")
        if self._duplicate(registration, decision.notification_id):
            decision.reason = "duplicate"
            return
        if self.capture:
            self.capture({"kind": "lifecycle", "notification": notification})
        if registration.on_lifecycle:
            registration.on_lifecycle(event)
        decision.accepted, decision.reason = True, event

    def _duplicate(self, registration: Registration, notification_id: str) -> bool:
        """Graph retries deliver the same notification again: once per subscription is enough."""
        with self._lock:
            if notification_id in registration.seen:
                return True
            registration.seen[notification_id] = None
            if len(registration.seen) > DEDUPE_WINDOW:
                registration.seen.popitem(last=False)
            return False

    def _decide(self, decision: Decision) -> None:
        with self._changed:
            self.decisions.append(decision)
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Decision], bool], timeout: float = 10.0) -> Decision | None:
        """The first decision matching `predicate`, waiting up to `timeout` seconds for it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((d for d in self.decisions if predicate(d)), None)
                remaining = deadline - time.monotonic()
                if found or remaining <= 0:
                    return found
                self._changed.wait(remaining)
