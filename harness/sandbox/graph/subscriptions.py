"""Graph `/subscriptions` for chat messages: create (with the validation handshake), list, renew,
delete, reauthorize. Rules from docs/contracts/graph.md §4.1-4.3: both URLs validated (200, text/plain,
the decoded token, within 10 s), at most 4,320 minutes, more than 60 minutes needs a
lifecycleNotificationUrl, resource data needs an encryption certificate, quotas per chat and user.
"""

from __future__ import annotations

import asyncio
import base64
import re
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
from cryptography import x509
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.sandbox.graph.chats import chat_for
from harness.sandbox.graph.odata import GraphError, json_body
from harness.sandbox.http import base_url
from harness.sandbox.notifier import Subscription, verify_for
from harness.wire import handshake

if TYPE_CHECKING:
    from harness.sandbox.graph.service import Caller, Graph

MAX_MINUTES = 4320
LIFECYCLE_REQUIRED_AFTER = timedelta(hours=1)
PER_CHAT_QUOTA = 1
PER_USER_QUOTA = 10
CHANGE_TYPES = {"created", "updated", "deleted"}
CHAT_RESOURCE = re.compile(r"^/?chats/([^/]+)/messages$")
USER_RESOURCE = re.compile(r"^/?(?:me|users/([^/]+))/chats/getAllMessages$", re.IGNORECASE)
VALIDATION_FAILED = (
    "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request."
)
VALIDATION_FAILED_SOURCE = (
    "Graph documents that the subscription is not created (docs/contracts/graph.md §4.3), not the message it gives "
    "for a wrong Content-Type or an encoded token; the sandbox gives its 'validation request failed' one"
)
# Graph gives up after 10 s (harness.wire.handshake); its 400 InvalidRequest text for that is reported in public
# threads (microsoftgraph/nodejs-webhooks-sample#350, microsoftgraph/msgraph-sdk-dotnet#2805), not documented.
VALIDATION_LIMIT_S = handshake.LIMIT_S
VALIDATION_TIMED_OUT = "Subscription validation request timed out."
VALIDATION_TIMED_OUT_SOURCE = (
    "the text for an answer later than 10 s, as public threads report it (microsoftgraph/nodejs-webhooks-sample#350)"
)


class Subscriptions:
    """The subscriptions themselves live in the context (`ctx.subscriptions`): the notifier and the
    sandbox's test controls read them too."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.ctx = graph.ctx
        self.reauthorized: list[str] = []  # ids of subscriptions a client reauthorized

    def routes(self) -> list[Route]:
        endpoint = self.graph.endpoint
        return [
            endpoint("POST /subscriptions", "/subscriptions", self.create),
            endpoint("GET /subscriptions", "/subscriptions", self.list),
            endpoint("PATCH /subscriptions/{id}", "/subscriptions/{id}", self.renew),
            endpoint("DELETE /subscriptions/{id}", "/subscriptions/{id}", self.delete),
            endpoint("POST /subscriptions/{id}/reauthorize", "/subscriptions/{id}/reauthorize", self.reauthorize),
        ]

    def reset(self) -> None:
        with self.ctx.lock:
            self.ctx.subscriptions.clear()
            self.reauthorized.clear()

    @staticmethod
    def _error(status: int, code: str, message: str, emulated: str = "") -> GraphError:
        return GraphError(status, code, message, emulated=emulated)

    def _bad(self, message: str, emulated: str = "") -> GraphError:
        return self._error(400, "InvalidRequest", message, emulated)

    def _json(self, subscription: Subscription, base: str) -> dict[str, Any]:
        return {
            "@odata.context": f"{base}/v1.0/$metadata#subscriptions/$entity",
            "id": subscription.id,
            "resource": subscription.resource,
            "applicationId": subscription.app_id,
            "changeType": ",".join(sorted(subscription.change_types)),
            "clientState": subscription.client_state,
            "notificationUrl": subscription.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": subscription.lifecycle_url,
            "expirationDateTime": subscription.expiration,
            "creatorId": subscription.creator,
            "includeResourceData": subscription.include_resource_data,
            "latestSupportedTlsVersion": "v1_2",
            "encryptionCertificate": subscription.certificate,
            "encryptionCertificateId": subscription.certificate_id,
            "notificationUrlAppId": None,
            "notificationContentType": "application/json",
        }

    def _expiration(self, value: Any, lifecycle_url: str | None) -> str:
        try:
            moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            raise self._bad("expirationDateTime must be an ISO 8601 date-time.", "the message for a bad date") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        now = self.ctx.now()
        if moment <= now:
            raise self._bad("Subscription expiration can only be in the future.", "the text for a past expiry")
        if moment - now > timedelta(minutes=MAX_MINUTES):
            raise self._bad(
                f"Subscription expiration can only be {MAX_MINUTES} minutes in the future.",
                "the text for an expiry beyond the maximum",
            )
        if moment - now > LIFECYCLE_REQUIRED_AFTER and not lifecycle_url:
            raise self._bad(
                "lifecycleNotificationUrl is a required property for subscription creation on this "
                "resource when the expirationDateTime value is set to greater than 1 hour."
            )
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")

    async def _validate_url(self, url: str) -> None:
        """The handshake: POST ?validationToken=..., judged as the doctor judges it (harness.wire.handshake):
        200, text/plain, the URL-decoded token, within 10 s; else no subscription."""
        token = (
            f"Validation: Testing client application reachability for subscription Request-Id: "
            f"{self.ctx.ids.next('validation')}"
        )
        limit = VALIDATION_LIMIT_S
        started = time.monotonic()
        try:
            async with httpx.AsyncClient(verify=verify_for(url), timeout=limit + 1) as client:
                response = await asyncio.wait_for(
                    client.post(handshake.query(url, token), headers={"Content-Type": "text/plain; charset=utf-8"}),
                    limit,
                )
        except TimeoutError:
            raise self._bad(VALIDATION_TIMED_OUT, VALIDATION_TIMED_OUT_SOURCE) from None
        except httpx.HTTPError:
            raise self._bad(VALIDATION_FAILED) from None
        problem = handshake.judge(
            response.status_code,
            response.headers.get("content-type", ""),
            response.content.decode("utf-8", "replace"),
            token,
            time.monotonic() - started,
            limit,
        )
        if problem is None:
            return
        if problem.kind == "late":
            raise self._bad(VALIDATION_TIMED_OUT, VALIDATION_TIMED_OUT_SOURCE)
        # A non-200 answer gets the reported text; for the rest Microsoft documents the refusal, not its words.
        emulated = "" if problem.kind == "status" else f"the message for {problem.seen}: {VALIDATION_FAILED_SOURCE}"
        raise self._bad(VALIDATION_FAILED, emulated)

    async def create(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await json_body(request)
        change_types = {c.strip() for c in str(body.get("changeType", "")).split(",") if c.strip()}
        if not change_types or not change_types <= CHANGE_TYPES:
            raise self._bad("changeType must be one or more of created, updated, deleted.", "bad changeType")
        urls = [body.get("notificationUrl"), body.get("lifecycleNotificationUrl")]
        for url in (u for u in urls if u is not None):
            if not isinstance(url, str) or not url.lower().startswith("https://"):
                raise self._bad("The notification URL must use https.", "the text for a non-https URL")
        if not urls[0]:
            raise self._bad("notificationUrl is required.", "the text for a missing notificationUrl")
        resource = str(body.get("resource", ""))
        chat_id = None
        if match := CHAT_RESOURCE.match(resource):
            chat_id = urllib.parse.unquote(match.group(1))
            chat_for(caller, chat_id)
        elif not USER_RESOURCE.match(resource):
            raise self._bad(
                f"Resource '{resource}' is not supported for subscriptions in the sandbox.",
                "only chat message resources are emulated",
            )
        if not caller.scopes & {"Chat.Read", "Chat.ReadWrite"}:
            raise self._error(
                403,
                "Forbidden",
                "Missing scope permissions on the request. API requires one of "
                f"'Chat.Read, Chat.ReadWrite'. Scopes on the request '{', '.join(sorted(caller.scopes))}'",
            )
        certificate, certificate_id = body.get("encryptionCertificate"), body.get("encryptionCertificateId")
        include = bool(body.get("includeResourceData"))
        if include:
            if not certificate or not certificate_id:
                raise self._bad(
                    "encryptionCertificate and encryptionCertificateId are required when includeResourceData is true.",
                    "the text for a missing certificate",
                )
            try:
                x509.load_der_x509_certificate(base64.b64decode(str(certificate), validate=True))
            except ValueError:
                raise self._bad("encryptionCertificate is not a base64 X.509 certificate.", "bad certificate") from None
        client_state = body.get("clientState")
        if client_state is not None and (not isinstance(client_state, str) or len(client_state) > 128):
            raise self._bad("clientState can be at most 128 characters.", "the text for a long clientState")
        expiration = self._expiration(body.get("expirationDateTime"), urls[1])
        mine = [s for s in self.ctx.subscriptions.values() if s.tenant == caller.tenant.name]
        if chat_id and sum(s.chat_id == chat_id and s.app_id == caller.app_id for s in mine) >= PER_CHAT_QUOTA:
            raise self._error(
                403,
                "Forbidden",
                "Subscription quota exceeded: an app can have 1 subscription per chat.",
                "the quota message's text is not documented (its status is)",
            )
        if not chat_id and sum(s.chat_id is None and s.creator == caller.user.oid for s in mine) >= PER_USER_QUOTA:
            raise self._error(
                403,
                "Forbidden",
                "Subscription quota exceeded: a user can have 10 subscriptions to getAllMessages.",
                "the quota message's text is not documented (its status is)",
            )
        for url in (u for u in urls if u):
            await self._validate_url(url)
        subscription = Subscription(
            id=self.ctx.ids.next("subscription"),
            tenant=caller.tenant.name,
            creator=caller.user.oid,
            app_id=caller.app_id,
            resource=resource,
            change_types=change_types,
            notification_url=urls[0],
            lifecycle_url=urls[1],
            expiration=expiration,
            client_state=client_state,
            include_resource_data=include,
            certificate=certificate if include else None,
            certificate_id=certificate_id if include else None,
            chat_id=chat_id,
        )
        with self.ctx.lock:
            self.ctx.subscriptions[subscription.id] = subscription
        if self.ctx.lifecycle_after_s is not None and subscription.lifecycle_url:
            self._schedule_reauthorization(subscription, caller.tenant.tenant_id)
        return self.graph.json(request, self._json(subscription, base_url(request)), 201, request_id)

    def _schedule_reauthorization(self, subscription: Subscription, tenant_id: str) -> None:
        """Graph on its own schedule (emulator-defined): reauthorizationRequired, if the subscription still exists."""

        def due() -> None:
            notifier = self.ctx.notifier
            if notifier is not None and self.ctx.subscriptions.get(subscription.id) is subscription:
                notifier.lifecycle(subscription, tenant_id, "reauthorizationRequired")

        timer = threading.Timer(self.ctx.lifecycle_after_s or 0, due)
        timer.daemon = True
        timer.start()

    def _mine(self, caller: Caller, subscription_id: str) -> Subscription:
        subscription = self.ctx.subscriptions.get(subscription_id)
        if subscription is None or subscription.tenant != caller.tenant.name or subscription.app_id != caller.app_id:
            raise self._error(
                404, "ResourceNotFound", "The object was not found.", "the 404 body for an unknown subscription"
            )
        return subscription

    async def list(self, request: Request, caller: Caller, request_id: str) -> Response:
        base = base_url(request)
        value = [
            self._json(s, base)
            for s in self.ctx.subscriptions.values()
            if s.tenant == caller.tenant.name and s.app_id == caller.app_id
        ]
        for item in value:
            item.pop("@odata.context", None)
        return self.graph.json(
            request, {"@odata.context": f"{base}/v1.0/$metadata#subscriptions", "value": value}, 200, request_id
        )

    async def renew(self, request: Request, caller: Caller, request_id: str) -> Response:
        subscription = self._mine(caller, request.path_params["id"])
        body = await json_body(request)
        subscription.expiration = self._expiration(body.get("expirationDateTime"), subscription.lifecycle_url)
        return self.graph.json(request, self._json(subscription, base_url(request)), 200, request_id)

    async def delete(self, request: Request, caller: Caller, request_id: str) -> Response:
        subscription = self._mine(caller, request.path_params["id"])
        with self.ctx.lock:
            self.ctx.subscriptions.pop(subscription.id, None)
        return self.graph.no_content(request, request_id)

    async def reauthorize(self, request: Request, caller: Caller, request_id: str) -> Response:
        self._mine(caller, request.path_params["id"])
        self.reauthorized.append(request.path_params["id"])
        return self.graph.no_content(request, request_id)
