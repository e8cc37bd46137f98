"""Microsoft Graph over httpx: chats, messages, paging, meetings, channels; the error model; retries.

- 429: wait `Retry-After` (integer seconds or an HTTP date), then retry; without it, back off.
- 503/504: capped exponential backoff.
- A message is never re-sent blindly: every message carries a unique marker, and after an
  ambiguous failure (a timeout, a dropped connection, a 5xx) the chat is listed for the marker
  before anything is sent again.
- Every answer becomes a `GraphResult` with status, code, message and request id: the evidence of
  an observation.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from harness.core.config import Tenant
from harness.wire import contract, tokens
from harness.wire.tls import client_context

GRAPH_SCOPES = ("https://graph.microsoft.com/.default",)
RETRY_STATUSES = {429, 503, 504}
AMBIGUOUS_STATUSES = {500, 502, 503, 504}
MARKER_PREFIX = "[cte:"


@dataclass
class GraphResult:
    """One Graph answer (after retries): status, body, and what identifies it."""

    method: str
    path: str
    status: int | None
    body: Any = field(default=None, repr=False)
    code: str | None = None
    message: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    retries: list[str] = field(default_factory=list)
    transport_error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def operation(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ChatMessage:
    id: str
    created: str
    last_modified: str
    sender_id: str | None
    content: str
    content_type: str
    chat_id: str | None
    raw: dict[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @classmethod
    def from_graph(cls, item: dict[str, Any]) -> ChatMessage:
        user = ((item.get("from") or {}).get("user")) or {}
        body = item.get("body") or {}
        return cls(
            id=str(item.get("id")),
            created=str(item.get("createdDateTime")),
            last_modified=str(item.get("lastModifiedDateTime")),
            sender_id=user.get("id"),
            content=str(body.get("content", "")),
            content_type=str(body.get("contentType", "text")),
            chat_id=item.get("chatId"),
            raw=item,
        )


@dataclass
class Sent:
    """The outcome of sending one message: the final result, the message, how it got there."""

    result: GraphResult
    marker: str
    message: ChatMessage | None = None
    attempts: int = 0
    recovered_by_listing: bool = False
    sent_at: float | None = None  # wall-clock time of the first attempt
    content: str = ""  # exactly what was posted, marker included


class MarkerSource:
    """Unique markers for messages. Seeded: the same sequence every run (record/replay);
    unseeded: random (live, where the same chat outlives a run)."""

    def __init__(self, seed: str | None = None) -> None:
        self._seed = seed
        self._counter = itertools.count(1)

    def next(self) -> str:
        if self._seed is None:
            return uuid.uuid4().hex[:12]
        return hashlib.sha256(f"{self._seed}:{next(self._counter)}".encode()).hexdigest()[:12]


def _verify(tenant: Tenant) -> ssl.SSLContext | bool:
    return client_context(str(tenant.ca_bundle) if tenant.ca_bundle else None)


# What identifies a subscription the app created (Graph echoes them in a listing).
SUBSCRIPTION_IDENTITY = ("resource", "notificationUrl", "encryptionCertificateId")


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: an integer, a decimal (tolerated), or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def _expired_token(result: GraphResult) -> bool:
    """Graph's answer to an expired access token."""
    return (
        result.status == 401
        and result.code == "InvalidAuthenticationToken"
        and "expired" in (result.message or "").lower()
    )


class GraphClient:
    def __init__(
        self,
        tenant: Tenant,
        access_token: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_retries: int = 4,
        max_delay: float = 30.0,
        markers: MarkerSource | None = None,
        transport: httpx.BaseTransport | None = None,
        reacquire: Callable[[], str | None] | None = None,
    ) -> None:
        """`reacquire`: a new access token when Graph says the one in use has expired (None: none to be had)."""
        self.tenant = tenant
        self.reacquire = reacquire
        self.token_expiries: list[int | None] = [tokens.time_claim(access_token)]  # each token used, in order: its exp
        self.sleep = sleep
        self.max_retries = max_retries
        self.max_delay = max_delay
        self.markers = markers or MarkerSource()
        self._server_time: datetime | None = None
        self.http = httpx.Client(
            base_url=tenant.graph_base_url.rstrip("/") + "/",
            headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            verify=_verify(tenant),
            timeout=httpx.Timeout(30.0, connect=10.0),
            transport=transport,
            trust_env=not tenant.host_routes,  # a proxy's settings apply, except to the in-process sandbox
        )

    def close(self) -> None:
        self.http.close()

    # -- the request loop ----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        retry_ambiguous: bool = True,
    ) -> GraphResult:
        """One Graph call with retries. `retry_ambiguous=False` stops at the first ambiguous failure
        (used for sends, which recover by listing instead)."""
        result = GraphResult(method, path.split("?", 1)[0], None)
        renewed = False  # a token Graph says has expired is renewed once per call: a second 401 is the answer
        for attempt in range(self.max_retries + 1):
            try:
                response = self.http.request(
                    method, path.lstrip("/") if not path.startswith("http") else path, params=params, json=json
                )
            except httpx.TransportError as exc:
                result.transport_error = f"{type(exc).__name__}: {exc}"
                result.status = None
                if not retry_ambiguous or attempt == self.max_retries:
                    return result
                delay = min(self.max_delay, 0.5 * 2**attempt)
                result.retries.append(f"{type(exc).__name__}; waited {delay:g}s")
                self.sleep(delay)
                continue
            self._fill(result, response)
            if not renewed and self.reacquire is not None and _expired_token(result) and attempt < self.max_retries:
                renewed = True
                if token := self.reacquire():
                    self.http.headers["Authorization"] = f"Bearer {token}"
                    self.token_expiries.append(tokens.time_claim(token))
                    result.retries.append(f"401 {result.code} ({result.message}); signed in again and retried")
                    continue
            if response.status_code not in RETRY_STATUSES or attempt == self.max_retries:
                return result
            if response.status_code != 429 and not retry_ambiguous:
                return result
            delay = retry_after_seconds(response.headers.get("retry-after"))
            if delay is None:
                delay = 0.5 * 2**attempt
            delay = min(self.max_delay, delay)
            result.retries.append(f"{response.status_code}; waited {delay:g}s")
            self.sleep(delay)
        return result

    def server_now(self) -> datetime:
        """The service's time (its last Date header), so that expiry times are in its terms."""
        return self._server_time or datetime.now(UTC)

    def _fill(self, result: GraphResult, response: httpx.Response) -> None:
        if date := response.headers.get("date"):
            with contextlib.suppress(TypeError, ValueError):
                self._server_time = parsedate_to_datetime(date)
        result.status = response.status_code
        result.transport_error = None
        result.request_id = response.headers.get(contract.REQUEST_ID_HEADER)
        result.emulator_defined = response.headers.get(contract.EMULATOR_DEFINED_HEADER)
        try:
            result.body = response.json()
        except ValueError:
            result.body = response.text
        result.code = result.message = None
        if not result.ok:
            error = result.body.get("error") if isinstance(result.body, dict) else None
            if isinstance(error, dict):
                result.code, result.message = error.get("code"), error.get("message")
            elif isinstance(result.body, dict):  # some Teams backends leak {"errorCode":..,"message":..}
                result.code = str(result.body.get("errorCode") or response.reason_phrase)
                result.message = result.body.get("message")
            else:
                result.code, result.message = response.reason_phrase, str(result.body)[:500]

    # -- users, chats, meetings, teams -------------------------------------------------------------

    def me(self) -> GraphResult:
        return self.request("GET", "me")

    def user(self, id_or_upn: str) -> GraphResult:
        return self.request("GET", f"users/{id_or_upn}")

    @staticmethod
    def _member(oid: str) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "roles": ["owner"],
            "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{oid}')",
        }

    def create_chat(self, chat_type: str, member_oids: list[str], topic: str | None = None) -> GraphResult:
        body: dict[str, Any] = {"chatType": chat_type, "members": [self._member(o) for o in member_oids]}
        if topic:
            body["topic"] = topic
        return self.request("POST", "chats", json=body)

    def get_chat(self, chat_id: str, *, expand_members: bool = False) -> GraphResult:
        return self.request("GET", f"chats/{chat_id}", params={"$expand": "members"} if expand_members else None)

    def create_meeting(self, subject: str, attendee_oids: list[str]) -> GraphResult:
        body = {
            "subject": subject,
            "participants": {
                "attendees": [{"identity": {"user": {"id": o}}, "role": "attendee"} for o in attendee_oids]
            },
        }
        return self.request("POST", "me/onlineMeetings", json=body)

    def update_message(self, path: str, message_id: str, content: str, content_type: str = "text") -> GraphResult:
        return self.request(
            "PATCH", f"{path}/{message_id}", json={"body": {"contentType": content_type, "content": content}}
        )

    def soft_delete_message(self, user_id: str, chat_id: str, message_id: str) -> GraphResult:
        """Soft-delete a message, at most once (`post_once`): a blind retry of a delete that did commit
        meets a message already deleted. After an ambiguous failure the message is read: deleted
        (`deletedDateTime` set) means the first POST took effect, answered as Graph answers it (204)."""
        path = f"users/{user_id}/chats/{chat_id}/messages/{message_id}/softDelete"

        def deleted() -> dict[str, Any] | None:
            answer = self.request("GET", f"chats/{chat_id}/messages/{message_id}")
            body = answer.body if answer.ok and isinstance(answer.body, dict) else {}
            return body if body.get("deletedDateTime") else None

        result, found, _ = self.post_once(path, None, deleted, found="ambiguous failure; found deleted by reading it")
        return GraphResult("POST", path, 204, request_id=result.request_id, retries=result.retries) if found else result

    # -- subscriptions ---------------------------------------------------------------------------

    def create_subscription(self, body: dict[str, Any], *, max_creates: int = 3) -> GraphResult:
        """POST a subscription, made at most once (`post_once`): Graph allows one per chat per app, so a
        blind retry of a create that did commit is refused as over quota. It is recognised in the app's
        subscriptions by what the app chose: resource, notification URL and encryption certificate id."""

        def listed() -> dict[str, Any] | None:
            answer = self.request("GET", "subscriptions")
            items = answer.body.get("value", []) if answer.ok and isinstance(answer.body, dict) else []
            return next((i for i in items if all(i.get(k) == body.get(k) for k in SUBSCRIPTION_IDENTITY)), None)

        return self.post_once("subscriptions", body, listed, max_posts=max_creates)[0]

    def post_once(
        self,
        path: str,
        body: Any,
        find: Callable[[], dict[str, Any] | None],
        *,
        max_posts: int = 3,
        found: str = "ambiguous failure; found by listing",
    ) -> tuple[GraphResult, bool, int]:
        """POST `body` so that what it makes is made once: after an ambiguous failure (no answer, a 5xx)
        look for it (`find`: its JSON, or None) before posting again. Returns the result (what was found
        answers as a 201 whose retries say so), whether it was found by looking, and the POSTs sent."""
        result = GraphResult("POST", path, None)
        for attempt in range(1, max_posts + 1):
            result = self.request("POST", path, json=body, retry_ambiguous=False)
            if result.ok or not (result.status is None or result.status in AMBIGUOUS_STATUSES):
                return result, False, attempt
            made = find()
            if made is not None:
                retries = [*result.retries, found]
                return (
                    GraphResult("POST", path, 201, body=made, request_id=result.request_id, retries=retries),
                    True,
                    attempt,
                )
            self.sleep(min(self.max_delay, 0.5 * 2 ** (attempt - 1)))
        return result, False, max_posts

    def renew_subscription(self, subscription_id: str, expiration: str) -> GraphResult:
        return self.request("PATCH", f"subscriptions/{subscription_id}", json={"expirationDateTime": expiration})

    def reauthorize_subscription(self, subscription_id: str) -> GraphResult:
        return self.request("POST", f"subscriptions/{subscription_id}/reauthorize")

    def delete_subscription(self, subscription_id: str) -> GraphResult:
        return self.request("DELETE", f"subscriptions/{subscription_id}")

    def joined_teams(self) -> GraphResult:
        return self.request("GET", "me/joinedTeams")

    def channels(self, team_id: str) -> GraphResult:
        return self.request("GET", f"teams/{team_id}/channels")

    # -- messages ------------------------------------------------------------------------------------

    @staticmethod
    def messages_path(chat_id: str | None = None, team_id: str | None = None, channel_id: str | None = None) -> str:
        if chat_id:
            return f"chats/{chat_id}/messages"
        return f"teams/{team_id}/channels/{channel_id}/messages"

    def send(self, path: str, content: str, content_type: str = "text", *, max_sends: int = 3) -> Sent:
        """POST a message carrying a unique marker; after an ambiguous failure, look for the marker
        before sending again, so that a message is never posted twice."""
        marker = self.markers.next()
        stamped = f"{content} {MARKER_PREFIX}{marker}]"
        body = {"body": {"contentType": content_type, "content": stamped}}
        sent = Sent(result=GraphResult("POST", path, None), marker=marker, sent_at=time.time(), content=stamped)

        def marked() -> dict[str, Any] | None:
            found = self.find_marker(path, marker)
            return found.raw if found is not None else None

        sent.result, sent.recovered_by_listing, sent.attempts = self.post_once(path, body, marked, max_posts=max_sends)
        if sent.result.ok:
            sent.message = ChatMessage.from_graph(sent.result.body)
        return sent

    def find_marker(self, path: str, marker: str, pages: int = 2) -> ChatMessage | None:
        """The message with this marker among the newest ones, or None."""
        needle = f"{MARKER_PREFIX}{marker}]"
        for page_number, page in enumerate(self.pages(path, top=50)):
            if not page.ok:
                return None
            for item in page.body.get("value", []):
                if needle in str((item.get("body") or {}).get("content", "")):
                    return ChatMessage.from_graph(item)
            if page_number + 1 >= pages:
                break
        return None

    def pages(
        self, path: str, *, top: int | None = None, orderby: str | None = None, filter: str | None = None
    ) -> Iterator[GraphResult]:
        """Each page of a listing, following @odata.nextLink until there is none (or a page fails)."""
        params: dict[str, Any] = {}
        if top is not None:
            params["$top"] = str(top)
        if orderby:
            params["$orderby"] = orderby
        if filter:
            params["$filter"] = filter
        result = self.request("GET", path, params=params or None)
        while True:
            yield result
            if not result.ok or not isinstance(result.body, dict) or "@odata.nextLink" not in result.body:
                return
            result = self.request("GET", result.body["@odata.nextLink"])

    def get_all_messages(
        self, *, user_id: str | None = None, team_id: str | None = None, model: str | None = None
    ) -> GraphResult:
        """The Teams export API: every chat message of a user (`/users/{id}/chats/getAllMessages`) or every
        channel message of a team (`/teams/{id}/channels/getAllMessages`); `model` is the payment model
        (A or B; none: evaluation mode). Application permissions only, and a protected API
        (docs/contracts/graph.md §9.2)."""
        path = f"users/{user_id}/chats/getAllMessages" if user_id else f"teams/{team_id}/channels/getAllMessages"
        return self.request("GET", path, params={"model": model} if model else None)

    def all_messages(self, path: str, *, top: int | None = None) -> tuple[list[ChatMessage], list[GraphResult]]:
        messages: list[ChatMessage] = []
        pages = list(self.pages(path, top=top))
        for page in pages:
            if page.ok:
                messages.extend(ChatMessage.from_graph(item) for item in page.body.get("value", []))
        return messages, pages
