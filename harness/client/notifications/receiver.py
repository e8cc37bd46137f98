"""The webhook receiver: an ASGI app that takes Graph's change notifications and pushes messages to clients.

- Validation handshake: `?validationToken=...` -> 200, text/plain, the URL-decoded token.
- Bad input (`shape.py`): wrong content type -> 415, body over the limit -> 413, anything that is not
  a well-formed changeNotificationCollection (not UTF-8, not JSON, a lone surrogate, an integer of
  thousands of digits, nesting deeper than a notification needs, a documented key of the wrong type)
  -> 400 with one line saying what is wrong; never a 5xx for what a sender did.
- Acknowledges with 202 at once; verification and decryption run off the request path in worker
  threads fed by a bounded queue (full -> 503 with Retry-After: Graph retries, nothing is lost).
- Per notification (`_one`), pushed only if authentic and new:
  - a registered subscription, and its `clientState` (compared in constant time);
  - a subscription registered with resource data takes only notifications that carry
    `encryptedContent`, in a collection whose `validationTokens` all verify (`verification.TokenVerifier`:
    signature, audience, Graph's app id, issuer and tenant, expiry; an unknown `kid` refreshes the
    key set, rate-limited) and one of which is for the notification's `tenantId`; the content must
    be sealed for the subscription's own key; `dataSignature` is checked before decrypting;
  - duplicates are dropped by what neither Graph's retries vary nor an attacker can forge: the
    digest of the ciphertext and of the decrypted resource, besides Graph's `id` (docs/security.md
    §6 gives the reasoning).
- Accepted messages are pushed to the subscriber's clients over Server-Sent Events (`/events`) or a
  WebSocket (`/ws`), both behind the receiver's bearer token: the stand-in for the SignalR hop. In
  production an Azure SignalR Service hub takes this role: the worker calls its REST API (or a hub
  method) instead of `PushHub.publish`, and clients connect to SignalR instead.
- Lifecycle events go to the subscription's handler (reauthorize, renew, or re-subscribe) and to its
  clients.
- `/subscriptions` (bearer): an app that runs the receiver on its own (`cte receiver serve`)
  registers the subscriptions it created with Graph.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import hmac
import json
import queue
import secrets
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from harness.client.notifications import shape
from harness.client.notifications.verification import KeySet, TokenVerifier
from harness.wire.notification_crypto import ISSUERS, EncryptionKey, Rejected, decrypt

MAX_BODY = 1024 * 1024
QUEUE_SIZE = 10_000  # deliveries waiting to be verified...
QUEUED_BYTES = 32 * 1024 * 1024  # ...and their bodies' bytes (10,000 bodies of 1 MiB would not fit in memory)
DEDUPE_WINDOW = 150_000  # digests remembered per subscription (up to 3 per notification)
DECISIONS_KEPT = 100_000
KEEP_ALIVE_S = 1.0  # also how soon a client that closed its side is noticed
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
SPARE_KEY_MAX_AGE_S = 600  # a spare key pair older than this is not handed out (its certificate ages)


@dataclass
class Registration:
    subscription_id: str
    client_state: str
    channel: str  # which clients get its messages
    key_id: str | None = None  # the encryption key its certificate belongs to
    on_lifecycle: Callable[[str], None] | None = None
    # Created with includeResourceData: every change notification must carry encrypted content and
    # valid validation tokens (None: whenever it has a key).
    resource_data: bool | None = None
    tenant_id: str | None = None  # when known, the only tenantId its notifications may carry
    seen: OrderedDict[bytes, None] = field(default_factory=OrderedDict, repr=False)  # dedupe digests

    def __post_init__(self) -> None:
        if self.resource_data is None:
            self.resource_data = self.key_id is not None


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
    """Clients connected over SSE or WebSocket, by channel; publish is safe from any thread.

    Events published from the workers are handed to the event loop in batches: one wake-up of the
    loop for however many events arrived meanwhile, not one per event.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: dict[str, list[asyncio.Queue[str]]] = {}
        self._lock = threading.Lock()
        self._pending: list[tuple[str, str]] = []
        self._flush_scheduled = False
        self._ended = threading.Condition(self._lock)  # notified as each stream ends
        self.pushed = 0  # events handed to a connected client
        self.published = 0  # events published, whether or not a client was connected

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
            self._ended.notify_all()

    def wait_ended(self, timeout: float) -> bool:
        """Wait, at most `timeout` seconds, until no client is connected (after `close_all`, each stream ends
        once it has written what it held); whether none is."""
        with self._ended:
            return self._ended.wait_for(lambda: not any(self._queues.values()), timeout)

    def publish(self, channel: str, event: dict[str, Any]) -> int:
        data = json.dumps(event)
        with self._lock:
            self.published += 1
            clients = len(self._queues.get(channel, ()))
            loop = self._loop
            if not clients or loop is None:
                return 0
            self.pushed += clients
            self._pending.append((channel, data))
            if self._flush_scheduled:
                return clients
            self._flush_scheduled = True
        try:
            loop.call_soon_threadsafe(self._flush)
        except RuntimeError:  # the loop is closed: the server stopped
            return 0
        return clients

    def _flush(self) -> None:
        with self._lock:
            pending, self._pending, self._flush_scheduled = self._pending, [], False
            inboxes = {channel: list(group) for channel, group in self._queues.items()}
        for channel, data in pending:
            for inbox in inboxes.get(channel, ()):
                self._offer(inbox, data)

    def close_all(self) -> None:
        """End every open stream (before the server stops, so none is cut off mid-flight)."""
        with self._lock:
            inboxes = [inbox for group in self._queues.values() for inbox in group]
        if self._loop is not None:
            for inbox in inboxes:
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._offer, inbox, "")

    @staticmethod
    def _offer(inbox: asyncio.Queue[str], data: str) -> None:
        if not inbox.full():  # a client that stopped reading loses events rather than the receiver its memory
            inbox.put_nowait(data)


class Receiver:
    def __init__(
        self,
        *,
        audience: str | list[str],
        trusted_keys: dict[str, Any] | None = None,
        jwks_url: str | None = None,
        jwks_verify: Any = True,
        issuers: tuple[str, ...] = ISSUERS,
        workers: int = 2,
        queue_size: int = QUEUE_SIZE,
        capture: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.keys: dict[str, EncryptionKey] = {}
        self._one_key_pair = False  # see use_one_key_pair
        self._key_pair: EncryptionKey | None = None
        self._keys_lock = threading.Lock()
        self._spare: concurrent.futures.Future[tuple[float, EncryptionKey]] | None = None  # see _fresh_key_pair
        self.registrations: dict[str, Registration] = {}
        self.key_set = KeySet(trusted_keys, jwks_url=jwks_url, verify=jwks_verify)
        self.verifier = TokenVerifier(self.key_set, audience, issuers=issuers)
        self.hub = PushHub()
        # /events, /ws, /subscriptions and /stats: only this process's push clients (and, standalone,
        # the app that runs the receiver) may use them, even when a tunnel forwards every path of the
        # receiver to the internet (live mode).
        self.push_token = secrets.token_urlsafe(32)
        self.capture = capture
        self.decisions: deque[Decision] = deque(maxlen=DECISIONS_KEPT)
        self.stats = {
            "received": 0,
            "acknowledged": 0,
            "accepted": 0,
            "rejected": 0,
            "duplicates": 0,
            "busy": 0,
            "bad_input": 0,
            "faults": 0,
        }
        self._queue: queue.Queue[tuple[str, dict[str, Any], int] | None] = queue.Queue(maxsize=queue_size)
        self._queued_bytes = 0
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self.worker_thread_ids: list[int] = []  # the OS's ids, for per-thread CPU accounting (benchmarks)
        self._workers = [
            threading.Thread(target=self._work, name=f"cte-receiver-{i}", daemon=True) for i in range(workers)
        ]
        for worker in self._workers:
            worker.start()
        self.app = _AsgiApp(self._asgi)
        self._starlette = Starlette(
            routes=[
                Route("/notifications", self._not_here, methods=["POST"]),  # POSTs never get here: see app
                Route("/lifecycle", self._not_here, methods=["POST"]),
                Route("/events", self.events, methods=["GET"]),
                WebSocketRoute("/ws", self.websocket),
                Route("/subscriptions", self.add_subscription, methods=["POST"]),
                Route("/subscriptions/{id}", self.remove_subscription, methods=["DELETE"]),
                Route("/stats", self.statistics, methods=["GET"]),
            ]
        )

    async def _asgi(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """The ASGI app (`self.app`). Graph's POSTs take a short path of their own (no routing table, no request and
        response objects: at thousands a second those are a good share of the event loop's time);
        everything else, and other methods on Graph's paths (405), goes through Starlette."""
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in GRAPH_PATHS:
            await self._from_graph(scope, receive, send, GRAPH_PATHS[scope["path"]])
        else:
            await self._starlette(scope, receive, send)

    # -- configuration ---------------------------------------------------------------------------

    def new_key(self, key_id: str) -> EncryptionKey:
        """A key pair and certificate for a subscription's resource data, known by `key_id`: one no other
        key id has had, unless `use_one_key_pair` was called."""
        with self._keys_lock:
            if not self._one_key_pair:
                key = dataclasses.replace(self._fresh_key_pair(), id=key_id)
            else:
                if self._key_pair is None:
                    self._key_pair = EncryptionKey.generate(key_id)
                key = dataclasses.replace(self._key_pair, id=key_id)
            self.keys[key_id] = key
        return key

    def _fresh_key_pair(self) -> EncryptionKey:
        """A key pair never handed out: the spare made in the background since the last one was taken
        (waiting for it if it is still being made), else one made now; then the next spare is started.
        A 2048-bit RSA key takes tens of milliseconds, which cryptography spends without the GIL: made
        in a thread of its own while the scenario that took the last one goes on, a subscription rarely
        waits for its key. Only a receiver that has made a key makes spares (one is left over at the end)."""
        spare, self._spare = self._spare, None
        key = None
        if spare is not None:
            try:
                made_at, made = spare.result()
            except Exception:  # the spare failed to be made: make one now, as without spares
                made_at, made = float("-inf"), None
            if time.monotonic() - made_at < SPARE_KEY_MAX_AGE_S:
                key = made
        if key is None:
            key = EncryptionKey.generate("unassigned")
        self._spare = concurrent.futures.Future()
        threading.Thread(target=_make_key_pair, args=(self._spare,), name="cte-receiver-keys", daemon=True).start()
        return key

    def use_one_key_pair(self) -> None:
        """From now on every key id made gets the same key pair (made on first use; 2048-bit RSA costs
        tens of milliseconds a subscription). Only for a receiver whose sealed notifications the harness
        seals itself for the key it looks up by id (replay): there no sender can seal content for one
        subscription's certificate and label it with another's, the confusion separate key pairs
        refuse. Never where Graph (or the sandbox playing Graph) seals them."""
        self._one_key_pair = True

    def register(self, registration: Registration) -> None:
        with self._lock:
            self.registrations[registration.subscription_id] = registration

    def trust(self, keys: dict[str, Any]) -> None:
        self.key_set.update(keys)

    def close(self) -> None:
        for _ in self._workers:
            self._queue.put(None)

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait until every queued collection has been decided (tests, benchmarks)."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)
        return not self._queue.unfinished_tasks

    # -- HTTP: Graph's side ------------------------------------------------------------------------

    async def _from_graph(self, scope: dict[str, Any], receive: Any, send: Any, kind: str) -> None:
        query = scope.get("query_string") or b""
        if query:
            token = _validation_token(query)
            if token is not None:  # the handshake: the token URL-decoded, as text
                await _respond(send, 200, token.encode("utf-8"), b"text/plain; charset=utf-8")
                return
        self.stats["received"] += 1
        content_type = declared = b""
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
            elif name == b"content-length":
                declared = value
        if not content_type.lower().startswith(b"application/json"):
            await self._bad(send, 415, "Content-Type must be application/json")
            return
        if declared.isdigit() and int(declared) > MAX_BODY:
            await self._bad(send, 413, f"the body is over {MAX_BODY} bytes: Graph's deliveries are far smaller")
            return
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # nobody is left to answer
            body += message.get("body", b"")
            if len(body) > MAX_BODY:
                await self._bad(send, 413, f"the body is over {MAX_BODY} bytes: Graph's deliveries are far smaller")
                return
            if not message.get("more_body"):
                break
        try:
            collection = shape.parse(body)
        except shape.BadInput as err:
            await self._bad(send, err.status, str(err))
            return
        with self._lock:
            room = self._queued_bytes + len(body) <= QUEUED_BYTES
            if room:
                try:
                    self._queue.put_nowait((kind, collection, len(body)))
                    self._queued_bytes += len(body)
                except queue.Full:
                    room = False
        if not room:  # Graph waits and sends it again: nothing is lost, and memory stays bounded
            self.stats["busy"] += 1
            await _respond(send, 503, b"", headers=[(b"retry-after", b"1")])
            return
        self.stats["acknowledged"] += 1
        await _respond(send, 202, b"")

    async def _bad(self, send: Any, status: int, message: str) -> None:
        self.stats["bad_input"] += 1
        body = json.dumps({"error": {"code": "BadNotification", "message": message}}).encode()
        await _respond(send, status, body, b"application/json")

    async def _not_here(self, request: Request) -> Response:
        raise AssertionError("Graph's POSTs are answered by Receiver.app")

    # -- HTTP: the app's side (bearer token) -------------------------------------------------------

    def _authorized(self, headers: Any) -> bool:
        offered = str(headers.get("authorization", "")).removeprefix("Bearer ")
        return hmac.compare_digest(offered.encode("utf-8", "surrogatepass"), self.push_token.encode())

    @staticmethod
    def _unauthorized() -> JSONResponse:
        return JSONResponse(
            {"error": {"code": "Unauthorized", "message": "send the receiver's push token as Authorization: Bearer"}},
            status_code=401,
        )

    async def events(self, request: Request) -> Response:
        if not self._authorized(request.headers):
            return self._unauthorized()
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

    async def websocket(self, websocket: WebSocket) -> None:
        """The push channel over a WebSocket: one text frame per event (the JSON of the SSE `data:`)."""
        channel = websocket.query_params.get("channel", "")
        if not self._authorized(websocket.headers) or not channel:
            await websocket.close(code=1008)  # before accept: the handshake is answered 403
            return
        await websocket.accept()
        inbox = self.hub.connect(channel)
        client_gone = asyncio.ensure_future(self._until_disconnect(websocket))
        try:
            while not client_gone.done():
                getting = asyncio.ensure_future(inbox.get())
                await asyncio.wait({getting, client_gone}, return_when=asyncio.FIRST_COMPLETED)
                if not getting.done():
                    getting.cancel()
                    break
                data = getting.result()
                if data == "":  # the receiver is closing
                    await websocket.close(code=1001)
                    break
                await websocket.send_text(data)
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        finally:
            client_gone.cancel()
            self.hub.disconnect(channel, inbox)

    @staticmethod
    async def _until_disconnect(websocket: WebSocket) -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return

    async def add_subscription(self, request: Request) -> Response:
        """Register a subscription the app created with Graph: {subscriptionId, clientState,
        includeResourceData, channel?, tenantId?}. With resource data, its certificate must be the one
        this receiver printed (`encryptionCertificateId` = its key's id)."""
        if not self._authorized(request.headers):
            return self._unauthorized()
        try:
            body = json.loads(await request.body())
        except (ValueError, RecursionError, ClientDisconnect):
            body = None
        problem = _registration_problem(body, self.keys)
        if problem:
            return JSONResponse({"error": {"code": "BadRequest", "message": problem}}, status_code=400)
        assert isinstance(body, dict)
        resource_data = bool(body.get("includeResourceData"))
        key_id = str(body.get("encryptionCertificateId") or next(iter(self.keys), "")) if resource_data else None
        registration = Registration(
            body["subscriptionId"],
            body["clientState"],
            channel=str(body.get("channel") or body["subscriptionId"]),
            key_id=key_id,
            resource_data=resource_data,
            tenant_id=body.get("tenantId"),
        )
        self.register(registration)
        return JSONResponse(
            {
                "subscriptionId": registration.subscription_id,
                "channel": registration.channel,
                "includeResourceData": resource_data,
                "encryptionCertificateId": key_id,
            },
            status_code=201,
        )

    async def remove_subscription(self, request: Request) -> Response:
        if not self._authorized(request.headers):
            return self._unauthorized()
        with self._lock:
            removed = self.registrations.pop(request.path_params["id"], None)
        return Response(status_code=204 if removed else 404)

    async def statistics(self, request: Request) -> Response:
        if not self._authorized(request.headers):
            return self._unauthorized()
        return JSONResponse(
            {
                **self.stats,
                "queued": self._queue.qsize(),
                "queued_bytes": self._queued_bytes,
                "pushed": self.hub.pushed,
                "jwks_fetches": self.key_set.fetches,
                "threads": {"event_loop": threading.get_native_id(), "workers": self.worker_thread_ids},
            }
        )

    # -- off the request path ----------------------------------------------------------------------

    def _work(self) -> None:
        self.worker_thread_ids.append(threading.get_native_id())
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                kind, collection, size = item
                try:
                    self._process(kind, collection)
                except Exception as err:  # a bug must not kill the worker; it is recorded as a decision
                    with self._lock:
                        self.stats["faults"] += 1
                    self._decide(Decision("?", "?", kind, False, f"receiver fault: {type(err).__name__}: {err}"))
                finally:
                    with self._lock:
                        self._queued_bytes -= size
            finally:
                self._queue.task_done()

    def _process(self, kind: str, collection: dict[str, Any]) -> None:
        tokens = _Tokens(self.verifier, collection.get("validationTokens"))
        for notification in collection["value"]:
            decision = Decision(_notification_id(notification), str(notification.get("subscriptionId")), kind, False)
            try:
                self._one(kind, notification, decision, tokens)
            except Rejected as err:
                decision.reason = str(err)
            if decision.reason != "duplicate":  # duplicates are counted as such
                with self._lock:
                    self.stats["accepted" if decision.accepted else "rejected"] += 1
            self._decide(decision)

    def _one(self, kind: str, notification: dict[str, Any], decision: Decision, tokens: _Tokens) -> None:
        registration = self.registrations.get(decision.subscription_id)
        if registration is None:
            raise Rejected("unknown subscription")
        offered = notification.get("clientState") or ""
        if not hmac.compare_digest(
            offered.encode("utf-8", "surrogatepass"), registration.client_state.encode("utf-8", "surrogatepass")
        ):
            raise Rejected("clientState does not match")
        if kind == "lifecycle" or notification.get("lifecycleEvent"):
            self._lifecycle(registration, notification, decision)
            return
        content = notification.get("encryptedContent")
        message = None
        digests = [_digest(b"id", decision.notification_id)] if notification.get("id") else []
        if registration.resource_data:
            if content is None:
                raise Rejected(
                    "no encryptedContent, on a subscription created with resource data: not Graph's notification"
                )
            tokens.covering(str(notification.get("tenantId") or ""), registration.tenant_id)
            if content.get("encryptionCertificateId") != registration.key_id:
                raise Rejected("encryptedContent sealed for another key than this subscription's")
            digests.append(_digest(b"data", str(content.get("data"))))
            if self._seen(registration, digests):  # a retry or a replay: no need to decrypt it again
                self._duplicate(decision)
                return
            plaintext = decrypt(content, self.keys)
            try:
                message = json.loads(plaintext)
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise Rejected("decrypted content is not JSON") from None
            if not isinstance(message, dict):
                raise Rejected("decrypted content is not a resource (a JSON object)")
            digests.append(_digest(b"content", plaintext))
        elif content is not None:
            raise Rejected("encryptedContent, on a subscription created without resource data")
        if not digests:  # neither an id nor content: the fields that say what changed
            digests.append(_digest(b"fields", _fields(notification)))
        if not self._first(registration, digests):
            self._duplicate(decision)
            return
        decision.accepted = True
        resource_data = notification.get("resourceData") or {}
        decision.message_id = str((message or resource_data).get("id"))
        event = {
            "subscriptionId": decision.subscription_id,
            "changeType": notification.get("changeType"),
            "resource": notification.get("resource"),
            "message": message,
            "receivedAt": time.time(),
        }
        if message is None and resource_data:
            event["resourceData"] = resource_data
        # Recorded before it is pushed: a client that sees the push may end its scenario (and close
        # the recording) at once, and a notification captured after that would be lost to replay.
        if self.capture:
            self.capture({"kind": "change", "notification": notification, "message": message})
        self.hub.publish(registration.channel, event)

    def _lifecycle(self, registration: Registration, notification: dict[str, Any], decision: Decision) -> None:
        event = str(notification.get("lifecycleEvent") or "")
        if event not in LIFECYCLE_EVENTS:
            raise Rejected(f"unknown lifecycle event {event[:40]!r}")
        if not self._first(registration, [_digest(b"id", decision.notification_id)]):
            self._duplicate(decision)
            return
        if self.capture:
            self.capture({"kind": "lifecycle", "notification": notification})
        self.hub.publish(
            registration.channel,
            {"subscriptionId": decision.subscription_id, "lifecycleEvent": event, "receivedAt": time.time()},
        )
        if registration.on_lifecycle:
            registration.on_lifecycle(event)
        decision.accepted, decision.reason = True, event

    def _seen(self, registration: Registration, digests: list[bytes]) -> bool:
        with self._lock:
            return any(d in registration.seen for d in digests)

    def _first(self, registration: Registration, digests: list[bytes]) -> bool:
        """True, and remembered, if none of `digests` was seen before on this subscription."""
        with self._lock:
            if any(d in registration.seen for d in digests):
                return False
            for d in digests:
                registration.seen[d] = None
            while len(registration.seen) > DEDUPE_WINDOW:
                registration.seen.popitem(last=False)
            return True

    def _duplicate(self, decision: Decision) -> None:
        decision.reason = "duplicate"
        with self._lock:
            self.stats["duplicates"] += 1

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


def _make_key_pair(future: concurrent.futures.Future[tuple[float, EncryptionKey]]) -> None:
    try:
        key = EncryptionKey.generate("unassigned")
    except Exception as err:  # handed to the taker, who makes its own
        future.set_exception(err)
    else:
        future.set_result((time.monotonic(), key))


class _Tokens:
    """A collection's validationTokens, verified once, when the first notification needs them."""

    def __init__(self, verifier: TokenVerifier, tokens: list[str] | None) -> None:
        self._verifier, self._tokens = verifier, tokens or []
        self._tenants: set[str] | None = None
        self._problem: str | None = None

    def covering(self, tenant_id: str, expected_tenant: str | None) -> None:
        """Every token valid (one that fails makes the whole collection suspect, as Microsoft advises),
        and one of them issued for `tenant_id`, the subscription's tenant when that is known."""
        if self._tenants is None and self._problem is None:
            if not self._tokens:
                self._problem = "resource data without validationTokens"
            else:
                try:
                    self._tenants = {str(self._verifier.verify(t)["tid"]) for t in self._tokens}
                except Rejected as err:
                    self._problem = str(err)
        if self._problem:
            raise Rejected(self._problem)
        assert self._tenants is not None
        if expected_tenant and tenant_id != expected_tenant:
            raise Rejected("tenantId is not the subscription's tenant")
        if tenant_id not in self._tenants:
            raise Rejected("no validation token for the notification's tenantId")


GRAPH_PATHS = {"/notifications": "change", "/lifecycle": "lifecycle"}


class _AsgiApp:
    """An ASGI 3 callable, as servers recognise one (a bound method is not)."""

    def __init__(self, handler: Callable[..., Any]) -> None:
        self._handler = handler

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        await self._handler(scope, receive, send)


def _validation_token(query: bytes) -> str | None:
    """`validationToken` from a query string, URL-decoded (the last one, as Starlette would take it)."""
    found = None
    for name, value in urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if name == "validationToken":
            found = value
    return found


async def _respond(
    send: Any, status: int, body: bytes, content_type: bytes | None = None, headers: list | None = None
) -> None:
    fields = [(b"content-length", str(len(body)).encode())]
    if content_type:
        fields.append((b"content-type", content_type))
    await send({"type": "http.response.start", "status": status, "headers": fields + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def _digest(kind: bytes, value: str | bytes) -> bytes:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return hashlib.sha256(kind + b"\0" + raw).digest()[:16]


def _fields(notification: dict[str, Any]) -> str:
    return json.dumps(
        [notification.get(k) for k in ("subscriptionId", "changeType", "resource", "lifecycleEvent")],
        ensure_ascii=True,
    )


def _notification_id(notification: dict[str, Any]) -> str:
    return str(notification.get("id") or _fields(notification))


def _registration_problem(body: Any, keys: dict[str, EncryptionKey]) -> str | None:
    if not isinstance(body, dict):
        return "send a JSON object: {subscriptionId, clientState, includeResourceData, channel?, tenantId?}"
    for name in ("subscriptionId", "clientState"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} must be a non-empty string: the value Graph's subscription has"
    for name in ("channel", "tenantId", "encryptionCertificateId"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} must be a string"
    if not isinstance(body.get("includeResourceData", False), bool):
        return "includeResourceData must be true or false, as in the Graph subscription"
    if body.get("includeResourceData"):
        key_id = body.get("encryptionCertificateId") or next(iter(keys), None)
        if key_id not in keys:
            return (
                "includeResourceData needs the subscription's encryptionCertificateId to be this receiver's "
                f"({', '.join(keys) or 'none'})"
            )
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "the registration holds a lone UTF-16 surrogate: send valid Unicode"
    return None
