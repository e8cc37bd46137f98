"""Microsoft Graph v1.0 for Teams chat: users, chats, messages, online meetings, teams and channels.

Wire contract: docs/contracts/graph.md. Authorisation follows the delegated `scp` of the bearer token,
per route, with the permissions of the v1.0 reference pages (cross-checked in tests against
the maps in docs/contracts/graph.md). Where Microsoft documents no answer (a message over the size limit, a
malformed body, `$top` over 50, an unknown chat on send), the sandbox answers and marks the
answer emulator-defined.

Paths and query strings are read the way Graph reads them (docs/contracts/graph.md §8): empty path
segments are ignored (`/v1.0//me`, what Microsoft's Python SDK sends), system query option names are
case-insensitive (`$TOP`), each GET route accepts the options its reference page lists, and
`$select`, `$expand` and `$count` shape the answer.
"""

from __future__ import annotations

import base64
import json
import math
import re
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.sandbox.context import SandboxContext, base_url, emulator_defined, json_object
from harness.sandbox.state import GRAPH_APP_ID, GRAPH_RESOURCE_URI, Chat, Meeting, Message, Team, Tenant, User
from harness.sandbox.subscriptions import Subscriptions
from harness.wire.contract import EMULATOR_DEFINED_HEADER

MAX_MESSAGE_BYTES = 28 * 1024  # "Approximately 28 KB per post" (Teams limits); the exact edge is emulator-defined
MAX_TOP = 50
DEFAULT_TOP = 20  # emulator-defined: the page size when $top is absent is not documented
CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

# Delegated permissions per route, from the v1.0 reference pages quoted in docs/contracts/graph.md.
READ_CHAT = ("Chat.ReadBasic", "Chat.Read", "Chat.ReadWrite")
PERMISSIONS: dict[str, tuple[str, ...]] = {
    "GET /me": ("User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All"),
    "GET /users/{id}": ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All"),
    "POST /chats": ("Chat.Create", "Chat.ReadWrite"),
    "GET /me/chats": READ_CHAT,
    "GET /chats/{id}": READ_CHAT,
    "POST /chats/{id}/messages": ("ChatMessage.Send", "Chat.ReadWrite"),
    "GET /chats/{id}/messages": ("Chat.Read", "Chat.ReadWrite"),
    "GET /chats/{id}/messages/{id}": ("Chat.Read", "Chat.ReadWrite"),
    "PATCH /chats/{id}/messages/{id}": ("Chat.ReadWrite",),
    "POST /users/{id}/chats/{id}/messages/{id}/softDelete": ("ChatMessage.ReadWrite",),
    "POST /me/onlineMeetings": ("OnlineMeetings.ReadWrite",),
    "GET /me/joinedTeams": ("Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All"),
    "GET /teams/{id}/channels": ("Channel.ReadBasic.All", "ChannelSettings.Read.All", "ChannelSettings.ReadWrite.All"),
    "POST /teams/{id}/channels/{id}/messages": ("ChannelMessage.Send",),
    "GET /teams/{id}/channels/{id}/messages": ("ChannelMessage.Read.All",),
    # Subscriptions: the permission depends on the subscribed resource; checked by the handler.
    "POST /subscriptions": (),
    "GET /subscriptions": (),
    "PATCH /subscriptions/{id}": (),
    "DELETE /subscriptions/{id}": (),
    "POST /subscriptions/{id}/reauthorize": (),
}

# The OData system query options (OData 4.01 URL conventions §5.1, which Graph's "query parameters"
# page links) and Graph's paging tokens; names are matched without `$` and in lower case.
SYSTEM_QUERY_OPTIONS = {
    "apply": "Apply",
    "compute": "Compute",
    "count": "Count",
    "deltatoken": "DeltaToken",
    "expand": "Expand",
    "filter": "Filter",
    "format": "Format",
    "index": "Index",
    "levels": "Levels",
    "orderby": "OrderBy",
    "schemaversion": "SchemaVersion",
    "search": "Search",
    "select": "Select",
    "skip": "Skip",
    "skiptoken": "SkipToken",
    "top": "Top",
}

# The options each GET route accepts, from its v1.0 reference page (docs/contracts/graph.md §8.3).
# Another system query option is answered 400, as Teams endpoints have been seen to do.
QUERY_OPTIONS: dict[str, frozenset[str]] = {
    "GET /me": frozenset({"select"}),
    "GET /users/{id}": frozenset({"select"}),
    "GET /me/chats": frozenset({"top", "skiptoken", "expand", "filter", "orderby", "select", "count"}),
    "GET /chats/{id}": frozenset({"expand"}),
    "GET /chats/{id}/messages": frozenset({"top", "skiptoken", "orderby", "filter", "count"}),
    "GET /chats/{id}/messages/{id}": frozenset(),
    "GET /me/joinedTeams": frozenset(),
    "GET /teams/{id}/channels": frozenset({"filter", "select"}),
    "GET /teams/{id}/channels/{id}/messages": frozenset({"top", "skiptoken", "expand", "count"}),
    "GET /subscriptions": frozenset(),
}

# What `$expand` may name, per route; and the properties `$select` may name per type besides those the
# sandbox fills (a selected property the sandbox has no value for comes back null).
EXPANDABLE: dict[str, tuple[str, ...]] = {
    "GET /me/chats": ("members", "lastMessagePreview"),
    "GET /chats/{id}": ("members",),
    "GET /teams/{id}/channels/{id}/messages": ("replies",),
}
UNFILLED_PROPERTIES: dict[str, tuple[str, ...]] = {
    "user": (
        "accountEnabled",
        "city",
        "companyName",
        "country",
        "createdDateTime",
        "department",
        "employeeId",
        "faxNumber",
        "imAddresses",
        "mailNickname",
        "otherMails",
        "postalCode",
        "proxyAddresses",
        "state",
        "streetAddress",
        "usageLocation",
        "userType",
    ),
    "chat": ("members", "lastMessagePreview"),
    "channel": ("createdDateTime", "email", "webUrl", "isFavoriteByDefault", "isArchived"),
}
GRAPH_VERSION_PREFIX = "/v1.0"

# Requests per second per app per tenant (throttling-limits.md, the newer revision), and the
# per-team/channel cap that both revisions state.
RATE_LIMITS = {"chat-post": 20, "chat-get": 20, "channel-post": 50, "channel-get": 20, "other-get": 30, "other": 30}
PER_TEAM_LIMIT = 4


class GraphError(Exception):
    def __init__(self, status: int, code: str, message: str, *, emulated: str = "", headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.emulated = status, code, message, emulated
        self.headers = headers or {}


def graph_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _bad_request(message: str, emulated: str) -> GraphError:
    return GraphError(400, "BadRequest", message, emulated=emulated)


def collapse_empty_segments(path: str) -> str:
    """`/v1.0//chats///x` -> `/v1.0/chats/x`: Graph ignores empty path segments (docs/contracts/graph.md §8.1).
    Only Graph's paths change; other workloads' paths come back as they were."""
    collapsed = re.sub(r"/{2,}", "/", path)
    if collapsed == GRAPH_VERSION_PREFIX or collapsed.startswith(GRAPH_VERSION_PREFIX + "/"):
        return collapsed
    return path


class GraphPaths:
    """ASGI middleware in front of the router: a Graph request whose path has empty segments is
    routed, faulted and answered as the same path without them (the raw path too, so that
    percent-encoded slashes inside an id stay as they are)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http" and "//" in scope["path"]:
            path = collapse_empty_segments(scope["path"])
            raw = scope.get("raw_path")
            if path != scope["path"] and raw:
                raw = re.sub(rb"/{2,}", b"/", raw)
                scope = {**scope, "path": urllib.parse.unquote(raw.decode("latin-1")), "raw_path": raw}
            elif path != scope["path"]:
                scope = {**scope, "path": path}
        await self.app(scope, receive, send)


@dataclass
class Query:
    """A GET request's system query options, by lower-case name without `$`, and the names it sent
    without `$` (custom query parameters to v1.0 Teams routes: ignored)."""

    options: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        return self.options.get(name)

    def names(self, name: str) -> list[str]:
        """A comma-separated option's items (`$select=id, topic`), in the order sent."""
        return [item.strip() for item in (self.options.get(name) or "").split(",") if item.strip()]

    @classmethod
    def parse(cls, items: Iterable[tuple[str, str]], route: str) -> Query:
        query = cls()
        allowed = QUERY_OPTIONS.get(route, frozenset())
        for key, value in items:
            if not key.startswith("$"):
                query.ignored.append(key)
                continue
            name = key[1:].lower()
            if name not in SYSTEM_QUERY_OPTIONS:
                raise _bad_request(
                    f"The query parameter '{key}' is not supported.",
                    "the 400 message for an unknown system query option is not documented",
                )
            if name in query.options:
                raise _bad_request(
                    f"Query option '${name}' was specified more than once, but it must be specified at most once.",
                    "the 400 message for a repeated query option is not documented",
                )
            if name not in allowed:
                raise _bad_request(
                    f"The query specified in the URI is not valid. Query option '{SYSTEM_QUERY_OPTIONS[name]}' is "
                    "not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or "
                    "QueryValidationSettings.",
                    "whether Graph rejects or ignores an option the route's page does not list is not documented; "
                    "this body was seen from Teams endpoints",
                )
            if name == "count" and value.lower() not in ("true", "false"):
                # The collections that take it carry @odata.count anyway; only the value is checked.
                raise _bad_request(f"'{value}' is not a valid count option.", "the 400 message for a bad $count value")
            query.options[name] = value
        return query


def _note(response: Response, reason: str) -> None:
    """Mark a response emulator-defined, keeping a reason it already carries. A reason may quote the
    client's query: only printable ASCII of it goes into the header."""
    reason = "".join(c if " " <= c <= "~" else "?" for c in reason)[:300]
    earlier = response.headers.get(EMULATOR_DEFINED_HEADER)
    emulator_defined(response, f"{earlier}; {reason}" if earlier else reason)


def _unknown_property(name: str, type_name: str) -> GraphError:
    return _bad_request(
        f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
        "the 400 message for an unknown property in $select or $expand is not documented",
    )


def with_projection(context: str, items: list[str]) -> str:
    """`...$metadata#users/$entity` with ["displayName"] -> `...$metadata#users(displayName)/$entity`."""
    if not items or "#" not in context:
        return context
    head, _, fragment = context.partition("#")
    suffix = "/$entity" if fragment.endswith("/$entity") else ""
    base = fragment[: len(fragment) - len(suffix)]
    return f"{head}#{base}({','.join(items)}){suffix}"


class Caller:
    """Who is calling: the token's tenant, user and app, and its delegated scopes."""

    def __init__(self, tenant: Tenant, user: User, app_id: str, scopes: set[str]) -> None:
        self.tenant, self.user, self.app_id, self.scopes = tenant, user, app_id, scopes


class Graph:
    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    def _base(self, request: Request) -> str:
        return base_url(request)

    def routes(self) -> list[Route]:
        v = "/v1.0"
        subs = Subscriptions(self)
        return [
            Route(f"{v}/subscriptions", self._handler("POST /subscriptions", subs.create), methods=["POST"]),
            Route(f"{v}/subscriptions", self._handler("GET /subscriptions", subs.list), methods=["GET"]),
            Route(
                f"{v}/subscriptions/{{id}}", self._handler("PATCH /subscriptions/{id}", subs.renew), methods=["PATCH"]
            ),
            Route(
                f"{v}/subscriptions/{{id}}",
                self._handler("DELETE /subscriptions/{id}", subs.delete),
                methods=["DELETE"],
            ),
            Route(
                f"{v}/subscriptions/{{id}}/reauthorize",
                self._handler("POST /subscriptions/{id}/reauthorize", subs.reauthorize),
                methods=["POST"],
            ),
            Route(f"{v}/me", self._handler("GET /me", self.me), methods=["GET"]),
            Route(f"{v}/users/{{id}}", self._handler("GET /users/{id}", self.user), methods=["GET"]),
            Route(f"{v}/chats", self._handler("POST /chats", self.create_chat), methods=["POST"]),
            Route(f"{v}/me/chats", self._handler("GET /me/chats", self.list_chats), methods=["GET"]),
            Route(f"{v}/chats/{{chat}}", self._handler("GET /chats/{id}", self.get_chat), methods=["GET"]),
            Route(
                f"{v}/chats/{{chat}}/messages",
                self._handler("POST /chats/{id}/messages", self.post_message),
                methods=["POST"],
            ),
            Route(
                f"{v}/chats/{{chat}}/messages",
                self._handler("GET /chats/{id}/messages", self.list_messages),
                methods=["GET"],
            ),
            Route(
                f"{v}/chats/{{chat}}/messages/{{message}}",
                self._handler("GET /chats/{id}/messages/{id}", self.get_message),
                methods=["GET"],
            ),
            Route(
                f"{v}/chats/{{chat}}/messages/{{message}}",
                self._handler("PATCH /chats/{id}/messages/{id}", self.update_message),
                methods=["PATCH"],
            ),
            Route(
                f"{v}/users/{{user}}/chats/{{chat}}/messages/{{message}}/softDelete",
                self._handler("POST /users/{id}/chats/{id}/messages/{id}/softDelete", self.soft_delete),
                methods=["POST"],
            ),
            Route(
                f"{v}/me/onlineMeetings",
                self._handler("POST /me/onlineMeetings", self.create_meeting),
                methods=["POST"],
            ),
            Route(f"{v}/me/joinedTeams", self._handler("GET /me/joinedTeams", self.joined_teams), methods=["GET"]),
            Route(
                f"{v}/teams/{{team}}/channels",
                self._handler("GET /teams/{id}/channels", self.channels),
                methods=["GET"],
            ),
            Route(
                f"{v}/teams/{{team}}/channels/{{channel}}/messages",
                self._handler("POST /teams/{id}/channels/{id}/messages", self.post_channel_message),
                methods=["POST"],
            ),
            Route(
                f"{v}/teams/{{team}}/channels/{{channel}}/messages",
                self._handler("GET /teams/{id}/channels/{id}/messages", self.list_channel_messages),
                methods=["GET"],
            ),
        ]

    # -- plumbing ------------------------------------------------------------------------------

    def _headers(self, request: Request, request_id: str) -> dict[str, str]:
        return {
            "request-id": request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
            "Strict-Transport-Security": "max-age=31536000",
            "Cache-Control": "no-store, no-cache",
        }

    def _json(self, request: Request, body: Any, status: int, request_id: str) -> JSONResponse:
        return JSONResponse(
            body, status_code=status, headers=self._headers(request, request_id), media_type=CONTENT_TYPE
        )

    def _error(self, request: Request, err: GraphError, request_id: str) -> JSONResponse:
        inner = {
            "date": self.ctx.now().strftime("%Y-%m-%dT%H:%M:%S"),
            "request-id": request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
        }
        body = {"error": {"code": err.code, "message": err.message, "innerError": inner}}
        response = JSONResponse(
            body, status_code=err.status, headers={**self._headers(request, request_id), **err.headers}
        )
        return emulator_defined(response, err.emulated) if err.emulated else response

    def _handler(self, route: str, fn: Callable[[Request, Caller], Awaitable[Response]]):
        async def handle(request: Request) -> Response:
            request_id = self.ctx.ids.next("graph-request")
            try:
                caller = self._authenticate(request)
                self._authorise(caller, route)
                # System query options apply to GET only ("query parameters" page); others ignore them.
                query = Query.parse(request.query_params.multi_items(), route) if request.method == "GET" else Query()
                request.state.query = query
                self._throttle(caller, route, request)
                response = await fn(request, caller, request_id)
            except GraphError as err:
                return self._error(request, err, request_id)
            if query.ignored:
                _note(
                    response,
                    f"query parameters without $ ignored ({', '.join(sorted(set(query.ignored)))}): v1.0 accepts "
                    "them only for an undocumented subset of APIs",
                )
            return response

        return handle

    @staticmethod
    def _query(request: Request) -> Query:
        return getattr(request.state, "query", None) or Query()

    def _expanded(self, request: Request, route: str, type_name: str) -> list[str]:
        """The navigation properties `$expand` names (canonical spelling), or 400 for one the route cannot expand."""
        known = {name.lower(): name for name in EXPANDABLE.get(route, ())}
        names = []
        for item in self._query(request).names("expand"):
            if item.lower() not in known:
                raise _unknown_property(item, type_name)
            names.append(known[item.lower()])
        return list(dict.fromkeys(names))

    def _selected(self, request: Request, type_name: str, filled: Iterable[str]) -> list[str] | None:
        """The properties `$select` names (canonical spelling, in the order sent), None without `$select`
        (or with `*`); 400 for a property the type does not have."""
        items = self._query(request).names("select")
        if not items or "*" in items:
            return None
        known = {name.lower(): name for name in [*filled, *UNFILLED_PROPERTIES.get(type_name, ())]}
        known = {k: v for k, v in known.items() if not k.startswith("@")}
        selected = []
        for item in items:
            if item.lower() not in known:
                raise _unknown_property(item, type_name)
            selected.append(known[item.lower()])
        return list(dict.fromkeys(selected))

    @staticmethod
    def _project(body: dict[str, Any], selected: list[str] | None, keep: Iterable[str] = ()) -> dict[str, Any]:
        """Only the selected properties, the kept ones (`id` of Teams resources, expanded relationships)
        and every annotation; the body unchanged without `$select`."""
        if selected is None:
            return body
        wanted = {*selected, *keep}
        projected = {k: v for k, v in body.items() if "@" in k or k in wanted}
        for name in selected:
            projected.setdefault(name, None)
        return projected

    def _authenticate(self, request: Request) -> Caller:
        auth = request.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.")
        try:
            claims = self.ctx.entra_signer.verify(token.strip())
        except jwt.InvalidTokenError:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "IDX14100: JWT is not well formed.",
                emulated="the exact message for a token Entra ID did not sign",
            ) from None
        if claims.get("aud") not in (GRAPH_RESOURCE_URI, GRAPH_APP_ID, f"{GRAPH_RESOURCE_URI}/"):
            raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.")
        if int(claims.get("exp", 0)) <= self.ctx.epoch():
            raise GraphError(401, "InvalidAuthenticationToken", "Lifetime validation failed, the token is expired.")
        tenant = self.ctx.directory.tenant(str(claims.get("tid", "")))
        user = tenant.user_by_oid(str(claims.get("oid", ""))) if tenant else None
        if tenant is None or user is None:
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure.",
                emulated="an app-only or foreign token on a delegated-only route",
            )
        return Caller(tenant, user, str(claims.get("appid", "")), set(str(claims.get("scp", "")).split()))

    @staticmethod
    def _authorise(caller: Caller, route: str) -> None:
        allowed = PERMISSIONS[route]
        if allowed and not caller.scopes & set(allowed):
            raise GraphError(
                403,
                "Forbidden",
                f"Missing scope permissions on the request. API requires one of '{', '.join(allowed)}'. "
                f"Scopes on the request '{', '.join(sorted(caller.scopes))}'",
            )

    def _throttle(self, caller: Caller, route: str, request: Request) -> None:
        method = route.split(" ", 1)[0]
        if "/channels/{id}/messages" in route:
            workload = "channel-post" if method == "POST" else "channel-get"
        elif "/chats/{id}/messages" in route:
            workload = "chat-post" if method == "POST" else "chat-get"
        else:
            workload = "other-get" if method == "GET" else "other"
        keys = [((caller.tenant.name, caller.app_id, workload), RATE_LIMITS[workload])]
        if team := request.path_params.get("team"):
            keys.append(((caller.tenant.name, caller.app_id, "team", team), PER_TEAM_LIMIT))
        now = self.ctx.now()
        with self.ctx.lock:
            for key, limit in keys:
                window = self.ctx.rate_windows.setdefault(key, deque())
                while window and now - window[0] >= timedelta(seconds=1):
                    window.popleft()
                if len(window) >= limit:
                    wait = max(1, math.ceil((window[0] + timedelta(seconds=1) - now).total_seconds()))
                    raise GraphError(
                        429, "TooManyRequests", "Please retry again later.", headers={"Retry-After": str(wait)}
                    )
            for key, _ in keys:
                self.ctx.rate_windows[key].append(now)

    async def _body(self, request: Request) -> dict[str, Any]:
        body = json_object(await request.body())
        if body is None:
            raise _bad_request(
                "The request body is not a valid JSON object.", "the 400 body for a malformed request is not documented"
            )
        return body

    def _context(self, request: Request, fragment: str) -> str:
        return f"{base_url(request)}/v1.0/$metadata#{fragment}"

    # -- users -----------------------------------------------------------------------------------

    def _user_json(self, request: Request, user: User, context: str) -> dict[str, Any]:
        given, _, surname = user.display_name.partition(" ")
        return {
            "@odata.context": self._context(request, context),
            "businessPhones": [],
            "displayName": user.display_name,
            "givenName": given,
            "jobTitle": None,
            "mail": user.upn,
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": "en-US",
            "surname": surname,
            "userPrincipalName": user.upn,
            "id": user.oid,
        }

    def _user_answer(self, request: Request, user: User) -> dict[str, Any]:
        """The user, shaped by `$select`: only the selected properties and the annotations; as in the
        user-get page's example, `id` only when selected."""
        body = self._user_json(request, user, "users/$entity")
        selected = self._selected(request, "user", body)
        if selected is not None:
            body["@odata.context"] = with_projection(body["@odata.context"], selected)
        return self._project(body, selected)

    async def me(self, request: Request, caller: Caller, request_id: str) -> Response:
        return self._json(request, self._user_answer(request, caller.user), 200, request_id)

    async def user(self, request: Request, caller: Caller, request_id: str) -> Response:
        key = request.path_params["id"]
        user = caller.tenant.user_by_oid(key) or caller.tenant.user_by_upn(key)
        if user is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects are not present.",
            )
        return self._json(request, self._user_answer(request, user), 200, request_id)

    # -- chats -----------------------------------------------------------------------------------

    def _member_oid(self, tenant: Tenant, member: Any) -> str:
        if not isinstance(member, dict):
            raise _bad_request("Each member must be a conversationMember object.", "malformed members")
        bind = member.get("user@odata.bind", "")
        if not isinstance(bind, str):
            raise _bad_request("user@odata.bind must be a string.", "malformed members")
        match = re.search(r"users\('([^']+)'\)", bind)
        key = match.group(1) if match else ""
        user = (tenant.user_by_oid(key) or tenant.user_by_upn(key)) if match else None
        if user is None and match:  # someone of another organisation: external access decides
            external = next(
                (
                    t
                    for t in self.ctx.directory.tenants.values()
                    if t.name != tenant.name and (t.user_by_oid(key) or t.user_by_upn(key))
                ),
                None,
            )
            if external is not None:
                if external.domain in tenant.blocked_domains or tenant.domain in external.blocked_domains:
                    raise GraphError(
                        403,
                        "Forbidden",
                        f"External access to {external.domain} is blocked by your organization's policy.",
                        emulated="the error when external access blocks a chat member is not documented",
                    )
                user = external.user_by_oid(key) or external.user_by_upn(key)
        if user is None:
            raise GraphError(
                404,
                "NotFound",
                f"User '{match.group(1) if match else bind}' was not found.",
                emulated="the error for an unknown chat member is not documented",
            )
        roles = member.get("roles", [])
        if not isinstance(roles, list) or not roles or not all(r in ("owner", "guest") for r in roles):
            raise _bad_request("Each member must be assigned a role of owner or guest.", "member roles")
        return user.oid

    def _chat_json(
        self,
        request: Request,
        tenant: Tenant,
        chat: Chat,
        *,
        expand_members: bool = False,
        expand_preview: bool = False,
        context: str = "chats/$entity",
    ) -> dict[str, Any]:
        encoded = urllib.parse.quote(chat.id, safe="")
        body: dict[str, Any] = {
            "@odata.context": self._context(request, context),
            "id": chat.id,
            "topic": chat.topic,
            "createdDateTime": graph_time(chat.created),
            "lastUpdatedDateTime": graph_time(chat.created),
            "chatType": chat.chat_type,
            "webUrl": f"https://teams.microsoft.com/l/chat/{encoded}/0?tenantId={tenant.tenant_id}",
            "tenantId": tenant.tenant_id,
            "onlineMeetingInfo": None,
            "viewpoint": {"isHidden": False, "lastMessageReadDateTime": "0001-01-01T00:00:00Z"},
            "isHiddenForAllMembers": False,
        }
        if chat.meeting_id:
            meeting = tenant.meetings[chat.meeting_id]
            body["onlineMeetingInfo"] = {
                "calendarEventId": None,
                "joinWebUrl": meeting.join_url,
                "organizer": {"id": meeting.organizer, "displayName": None, "userIdentityType": "aadUser"},
            }
        if expand_members:
            body["members"] = [self._member_json(tenant, chat, oid) for oid in chat.members]
        if expand_preview:
            body["lastMessagePreview"] = self._preview_json(tenant, chat)
        return body

    def _preview_json(self, tenant: Tenant, chat: Chat) -> dict[str, Any] | None:
        """A chatMessageInfo of the newest message (`$expand=lastMessagePreview`), None in an empty chat."""
        if not chat.messages:
            return None
        newest = max(chat.messages, key=lambda m: (m.created, int(m.id)))
        full = self._message_json(tenant, newest, chat_id=chat.id)
        return {
            "id": newest.id,
            "createdDateTime": full["createdDateTime"],
            "isDeleted": newest.deleted is not None,
            "messageType": full["messageType"],
            "eventDetail": None,
            "body": full["body"],
            "from": full["from"],
        }

    def _member_json(self, tenant: Tenant, chat: Chat, oid: str) -> dict[str, Any]:
        user = tenant.user_by_oid(oid)
        member_id = base64.b64encode(f"{chat.id}##{oid}".encode()).decode()
        return {
            "@odata.type": "#microsoft.graph.aadUserConversationMember",
            "id": member_id,
            "roles": ["owner"],
            "displayName": user.display_name if user else None,
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
            "userId": oid,
            "email": user.upn if user else None,
            "tenantId": tenant.tenant_id,
        }

    async def create_chat(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await self._body(request)
        chat_type = body.get("chatType")
        if chat_type not in ("oneOnOne", "group"):
            raise _bad_request("chatType must be oneOnOne or group.", "the message for a bad chatType")
        members = body.get("members")
        if not isinstance(members, list) or not members:
            raise _bad_request("Members are required.", "the message for missing members")
        oids = list(dict.fromkeys(self._member_oid(caller.tenant, m) for m in members))
        if caller.user.oid not in oids:
            raise _bad_request(
                "The caller must be one of the members of the chat.", "the message when the caller is not listed"
            )
        topic = body.get("topic")
        if chat_type == "oneOnOne":
            if len(oids) != 2 or topic:
                raise _bad_request(
                    "A oneOnOne chat has exactly two members and no topic.", "the message for a malformed oneOnOne chat"
                )
            chat_id = f"19:{'_'.join(sorted(oids))}@unq.gbl.spaces"
        else:
            if len(oids) < 2 or (topic is not None and not isinstance(topic, str)):
                raise _bad_request("A group chat needs at least two members.", "the message for a small group")
            chat_id = f"19:{self.ctx.ids.next('group-chat').replace('-', '')}@thread.v2"
        with self.ctx.lock:
            chat = caller.tenant.chats.get(chat_id)
            if chat is None:  # oneOnOne is idempotent on the member pair; group always creates
                chat = Chat(chat_id, chat_type, oids, self.ctx.now(), topic if chat_type == "group" else None)
                caller.tenant.chats[chat_id] = chat
        return self._json(request, self._chat_json(request, caller.tenant, chat), 201, request_id)

    # The chat properties the sandbox fills (what `$select` may name besides UNFILLED_PROPERTIES).
    _CHAT_PROPERTIES = (
        "id",
        "topic",
        "createdDateTime",
        "lastUpdatedDateTime",
        "chatType",
        "webUrl",
        "tenantId",
        "onlineMeetingInfo",
        "viewpoint",
        "isHiddenForAllMembers",
    )

    def _chat_for(self, caller: Caller, chat_id: str) -> Chat:
        chat = caller.tenant.chats.get(chat_id)
        if chat is None:
            raise GraphError(404, "NotFound", "Unknown chat type")
        if caller.user.oid not in chat.members:
            raise GraphError(403, "Forbidden", "Forbidden")
        return chat

    async def get_chat(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat = self._chat_for(caller, request.path_params["chat"])
        expand = self._expanded(request, "GET /chats/{id}", "chat")
        context = with_projection(self._context(request, "chats/$entity"), [f"{name}()" for name in expand])
        body = self._chat_json(request, caller.tenant, chat, expand_members="members" in expand)
        body["@odata.context"] = context
        if "members" in expand:  # as in the chat-get page's example
            encoded = urllib.parse.quote(chat.id, safe="")
            members = body.pop("members")
            body["members@odata.context"] = self._context(request, f"chats('{encoded}')/members")
            body["members"] = members
        return self._json(request, body, 200, request_id)

    async def list_chats(self, request: Request, caller: Caller, request_id: str) -> Response:
        top = self._top(request)
        expand = self._expanded(request, "GET /me/chats", "chat")
        mine = [c for c in caller.tenant.chats.values() if caller.user.oid in c.members]
        mine.sort(key=lambda c: c.created, reverse=True)
        order = " ".join((self._query(request).get("orderby") or "").split())
        ordered = order.lower() == "lastmessagepreview/createddatetime desc"  # the one documented order
        if ordered:
            newest = {c.id: max((m.created for m in c.messages), default=None) for c in mine}
            mine.sort(key=lambda c: (newest[c.id] is not None, newest[c.id] or c.created), reverse=True)
        start = self._skip(request)
        page = mine[start : start + top]
        items = [
            self._chat_json(
                request,
                caller.tenant,
                c,
                expand_members="members" in expand,
                expand_preview="lastMessagePreview" in expand,
            )
            for c in page
        ]
        selected = self._selected(request, "chat", self._CHAT_PROPERTIES)
        projection = [*(selected or []), *(f"{name}()" for name in expand)]
        body: dict[str, Any] = {
            "@odata.context": with_projection(self._context(request, "chats"), projection),
            "@odata.count": len(page),
            "value": [self._project(item, selected, keep=("id", *expand)) for item in items],
        }
        if start + top < len(mine):
            params = {"$top": str(top)}
            for name in ("expand", "select", "orderby", "filter"):
                if self._query(request).get(name):
                    params[f"${name}"] = str(self._query(request).get(name))
            body["@odata.nextLink"] = self._next_link(request, params, {"offset": start + top})
        for item in body["value"]:
            item.pop("@odata.context", None)
        response = self._page_response(request, body, request_id)
        if order and not ordered:
            _note(response, "an unsupported $orderby on chats is ignored, as Graph was seen to do")
        if self._query(request).get("filter"):
            _note(response, "$filter on chats is accepted but not applied")
        return response

    # -- messages ----------------------------------------------------------------------------------

    def _new_message(self, sender: str, body: dict[str, Any]) -> Message:
        item = body.get("body")
        if not isinstance(item, dict) or not isinstance(item.get("content"), str):
            raise _bad_request("Message body cannot be empty.", "the 400 body for a message without body.content")
        content_type = item.get("contentType", "text")
        if content_type not in ("text", "html"):
            raise _bad_request("contentType must be text or html.", "the message for an unknown contentType")
        if len(item["content"].encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise GraphError(
                413,
                "RequestEntityTooLarge",
                "The request size exceeds the maximum limit.",
                emulated="Teams documents ~28 KB per post; the status and body when exceeded are not",
            )
        with self.ctx.lock:
            now = self.ctx.now()
            millis = int(now.timestamp() * 1000)
            self.ctx.last_message_ms = millis = max(millis, self.ctx.last_message_ms + 1)
        moment = datetime.fromtimestamp(millis // 1000, now.tzinfo) + timedelta(milliseconds=millis % 1000)
        return Message(str(millis), moment, moment, sender, item["content"], content_type)

    def _message_json(
        self,
        tenant: Tenant,
        message: Message,
        *,
        chat_id: str | None = None,
        team: Team | None = None,
        channel_id: str | None = None,
    ) -> dict[str, Any]:
        sender = tenant.user_by_oid(message.sender)
        web_url = None
        if team and channel_id:
            web_url = (
                f"https://teams.microsoft.com/l/message/{urllib.parse.quote(channel_id, safe='')}/"
                f"{message.id}?groupId={team.id}&tenantId={tenant.tenant_id}&createdTime={message.id}"
                f"&parentMessageId={message.id}"
            )
        return {
            "id": message.id,
            "replyToId": None,
            "etag": str(int(message.id) + message.version) if message.version else message.id,
            "messageType": "message",
            "createdDateTime": graph_time(message.created),
            "lastModifiedDateTime": graph_time(message.last_modified),
            "lastEditedDateTime": graph_time(message.edited) if message.edited else None,
            "deletedDateTime": graph_time(message.deleted) if message.deleted else None,
            "subject": None,
            "summary": None,
            "chatId": chat_id,
            "importance": "normal",
            "locale": "en-us",
            "webUrl": web_url,
            "channelIdentity": {"teamId": team.id, "channelId": channel_id} if team else None,
            "policyViolation": None,
            "eventDetail": None,
            "from": {
                "application": None,
                "device": None,
                "conversation": None,
                "user": {
                    "@odata.type": "#microsoft.graph.teamworkUserIdentity",
                    "id": message.sender,
                    "displayName": sender.display_name if sender else None,
                    "userIdentityType": "aadUser",
                    "tenantId": tenant.tenant_id,
                },
            },
            "body": {"contentType": message.content_type, "content": message.content},
            "attachments": [],
            "mentions": [],
            "reactions": [],
        }

    async def post_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat_id = request.path_params["chat"]
        if chat_id not in caller.tenant.chats:
            raise GraphError(
                404, "NotFound", "Unknown chat type", emulated="the 404 for an unknown chat is documented for GET only"
            )
        chat = self._chat_for(caller, chat_id)
        if not caller.user.chat_enabled:
            raise GraphError(
                403,
                "Forbidden",
                "Chat is turned off for this user by the messaging policy.",
                emulated="the error when a messaging policy turns chat off is not documented",
            )
        message = self._new_message(caller.user.oid, await self._body(request))
        with self.ctx.lock:
            chat.messages.append(message)
        body = self._message_json(caller.tenant, message, chat_id=chat.id)
        self._publish(caller.tenant, chat, "created", body)
        encoded = urllib.parse.quote(chat.id, safe="")
        body = {"@odata.context": self._context(request, f"chats('{encoded}')/messages/$entity"), **body}
        return self._json(request, body, 201, request_id)

    def _own_message(self, caller: Caller, chat_id: str, message_id: str) -> tuple[Chat, Message]:
        chat = self._chat_for(caller, chat_id)
        message = next((m for m in chat.messages if m.id == message_id), None)
        if message is None or message.deleted:
            raise GraphError(404, "NotFound", "Message not found.", emulated="the 404 body for an unknown message")
        if message.sender != caller.user.oid:
            raise GraphError(
                403,
                "Forbidden",
                "Only the sender can change a message.",
                emulated="the 403 text for changing someone else's message",
            )
        return chat, message

    async def update_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        """Edit a message's body: 204, and an `updated` change notification."""
        chat, message = self._own_message(caller, request.path_params["chat"], request.path_params["message"])
        edited = self._new_message(caller.user.oid, await self._body(request))
        with self.ctx.lock:
            message.content, message.content_type = edited.content, edited.content_type
            message.edited = message.last_modified = edited.created
            message.version += 1
        self._publish(caller.tenant, chat, "updated", self._message_json(caller.tenant, message, chat_id=chat.id))
        return Response(status_code=204, headers=self._headers(request, request_id))

    async def soft_delete(self, request: Request, caller: Caller, request_id: str) -> Response:
        """Soft-delete one's own message: 204, and a `deleted` change notification (emulator-defined:
        which changeType Graph sends for a soft delete is not documented)."""
        if request.path_params["user"] not in (caller.user.oid, caller.user.upn):
            raise GraphError(
                403,
                "Forbidden",
                "A user can only delete their own messages.",
                emulated="the 403 text for another user's path",
            )
        chat, message = self._own_message(caller, request.path_params["chat"], request.path_params["message"])
        with self.ctx.lock:
            message.deleted = message.last_modified = self.ctx.now()
            message.version += 1
        self._publish(caller.tenant, chat, "deleted", self._message_json(caller.tenant, message, chat_id=chat.id))
        response = Response(status_code=204, headers=self._headers(request, request_id))
        return emulator_defined(response, "a soft delete is notified as changeType deleted (not documented)")

    def _publish(self, tenant: Tenant, chat: Chat, change_type: str, message: dict[str, Any]) -> None:
        """Hand the change to every subscription that covers it."""
        notifier = self.ctx.notifier
        if notifier is None:
            return
        for subscription in list(self.ctx.subscriptions.values()):
            covers = subscription.chat_id == chat.id or (
                subscription.chat_id is None and subscription.creator in chat.members
            )
            if subscription.tenant == tenant.name and covers and change_type in subscription.change_types:
                notifier.message_changed(
                    # validation tokens are checked against the receiver's real clock, whatever the model's
                    subscription,
                    tenant.tenant_id,
                    change_type,
                    chat.id,
                    message,
                    int(self.ctx.wall_clock.now().timestamp()),
                )

    async def get_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat = self._chat_for(caller, request.path_params["chat"])
        message = next((m for m in chat.messages if m.id == request.path_params["message"]), None)
        if message is None:
            raise GraphError(404, "NotFound", "Message not found.", emulated="the 404 body for an unknown message")
        encoded = urllib.parse.quote(chat.id, safe="")
        body = {
            "@odata.context": self._context(request, f"chats('{encoded}')/messages/$entity"),
            **self._message_json(caller.tenant, message, chat_id=chat.id),
        }
        return self._json(request, body, 200, request_id)

    async def list_messages(self, request: Request, caller: Caller, request_id: str) -> Response:
        chat = self._chat_for(caller, request.path_params["chat"])
        encoded = urllib.parse.quote(chat.id, safe="")
        return self._message_page(
            request, caller, request_id, chat.messages, f"chats('{encoded}')/messages", chat_id=chat.id
        )

    def _page_response(self, request: Request, body: dict[str, Any], request_id: str) -> JSONResponse:
        response = self._json(request, body, 200, request_id)
        if self._query(request).get("top") is None:
            _note(response, f"the page size without $top ({DEFAULT_TOP}) is not documented")
        return response

    def _top(self, request: Request) -> int:
        raw = self._query(request).get("top")
        if raw is None:
            return DEFAULT_TOP
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= MAX_TOP:
            raise _bad_request(
                f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP}",
                "the message for $top outside 1..50 is not documented",
            )
        return int(raw)

    @staticmethod
    def _skip(request: Request) -> int:
        token = Graph._query(request).get("skiptoken")
        if not token:
            return 0
        try:
            offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
            if not isinstance(offset, int) or not 0 <= offset <= 1_000_000:
                raise ValueError
            return offset
        except (ValueError, KeyError, TypeError, RecursionError):
            raise _bad_request("The skip token is not valid.", "the message for a bad $skiptoken") from None

    @staticmethod
    def _cursor(request: Request) -> tuple[datetime, int] | None:
        """Where the previous page ended: (time, message id), or None on the first page."""
        token = Graph._query(request).get("skiptoken")
        if not token:
            return None
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode()))
            after = datetime.fromisoformat(str(data["after"]).replace("Z", "+00:00"))
            last_id = str(data["id"])
            if after.tzinfo is None or not (last_id.isascii() and last_id.isdigit() and len(last_id) <= 16):
                raise ValueError
            return after, int(last_id)
        except (ValueError, KeyError, TypeError, RecursionError):
            raise _bad_request("The skip token is not valid.", "the message for a bad $skiptoken") from None

    def _next_link(self, request: Request, params: dict[str, str], state: dict[str, Any]) -> str:
        token = base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()
        query = urllib.parse.urlencode({**params, "$skiptoken": token}, safe="$", quote_via=urllib.parse.quote)
        return f"{base_url(request)}{request.url.path}?{query}"

    def _message_page(
        self,
        request: Request,
        caller: Caller,
        request_id: str,
        messages: list[Message],
        context: str,
        *,
        replies: bool = False,
        **where: Any,
    ) -> Response:
        top = self._top(request)
        query = self._query(request)
        order = query.get("orderby") or ""
        prop, _, direction = order.strip().partition(" ")
        prop = prop or "lastModifiedDateTime"
        if prop not in ("lastModifiedDateTime", "createdDateTime") or direction.strip() not in ("", "desc"):
            raise _bad_request(
                f"$orderby '{order}' is not supported: only lastModifiedDateTime or createdDateTime "
                "in descending order.",
                "the message for an unsupported $orderby",
            )
        attr = "last_modified" if prop == "lastModifiedDateTime" else "created"
        selected = [m for m in messages if self._matches(m, attr, prop, query.get("filter"), bool(order))]
        selected.sort(key=lambda m: (getattr(m, attr), int(m.id)), reverse=True)
        cursor = self._cursor(request)
        if cursor:
            selected = [m for m in selected if (getattr(m, attr), int(m.id)) < cursor]
        page = selected[:top]
        body: dict[str, Any] = {
            "@odata.context": self._context(request, context),
            "@odata.count": len(page),
            "value": [self._message_json(caller.tenant, m, **where) for m in page],
        }
        if replies:  # `$expand=replies` on a channel: the sandbox's channel messages have no replies
            body["@odata.context"] = with_projection(body["@odata.context"], ["replies()"])
            for item in body["value"]:
                item["replies"] = []
        if len(selected) > top:
            last = page[-1]
            params = {"$top": str(top)}
            for name in ("orderby", "filter", "expand"):
                if query.get(name):
                    params[f"${name}"] = str(query.get(name))
            body["@odata.nextLink"] = self._next_link(
                request, params, {"after": graph_time(getattr(last, attr)), "id": last.id}
            )
        return self._page_response(request, body, request_id)

    @staticmethod
    def _matches(message: Message, attr: str, prop: str, expression: str | None, ordered: bool) -> bool:
        """`$filter` on the date properties; ignored unless `$orderby` names the same property."""
        if not expression or not ordered:
            return True
        value = graph_time(getattr(message, attr))
        clauses = re.findall(r"(\w+)\s+(gt|lt)\s+([0-9T:\-.Z]+)", expression)
        if not clauses or any(name != prop for name, _, _ in clauses):
            return True  # "otherwise, the $filter query option is ignored"
        if prop == "createdDateTime" and any(op != "lt" for _, op, _ in clauses):
            raise _bad_request(
                "createdDateTime supports only the lt operator in $filter.",
                "the documented rule (lt only) has no documented error",
            )
        for _, operator, bound in clauses:
            bound = bound if bound.endswith("Z") else bound + "Z"
            if operator == "gt" and not value > _normal_time(bound):
                return False
            if operator == "lt" and not value < _normal_time(bound):
                return False
        return True

    # -- online meetings ---------------------------------------------------------------------------

    async def create_meeting(self, request: Request, caller: Caller, request_id: str) -> Response:
        body = await self._body(request)
        subject = body.get("subject") or ""
        try:
            now = self.ctx.now()
            start = datetime.fromisoformat(str(body.get("startDateTime") or graph_time(now)))
            end = datetime.fromisoformat(str(body.get("endDateTime") or graph_time(now + timedelta(hours=1))))
        except ValueError:
            raise _bad_request(
                "startDateTime and endDateTime must be ISO 8601 date-times.", "the message for a bad meeting time"
            ) from None
        start, end = (m if m.tzinfo else m.replace(tzinfo=UTC) for m in (start, end))
        if end <= start:
            raise _bad_request("endDateTime must be after startDateTime.", "the message for a meeting ending early")
        attendees = []
        participants = body.get("participants") or {}
        listed = participants.get("attendees") or [] if isinstance(participants, dict) else []
        if not isinstance(listed, list) or not all(isinstance(a, dict) for a in listed):
            raise _bad_request("participants.attendees must be a list of objects.", "malformed attendees")
        for attendee in listed:
            identity = attendee.get("identity")
            ident = identity.get("user") if isinstance(identity, dict) else None
            ident = ident if isinstance(ident, dict) else {}
            user = caller.tenant.user_by_oid(str(ident.get("id", ""))) or caller.tenant.user_by_upn(
                str(attendee.get("upn", ""))
            )
            if user is None:
                raise GraphError(404, "NotFound", "An attendee was not found.", emulated="unknown meeting attendee")
            attendees.append(user.oid)
        ids = self.ctx.ids
        meeting_id = base64.b64encode(f"1*{caller.user.oid}*0**{ids.next('meeting')}".encode()).decode()
        thread_key = base64.b64encode(ids.next("meeting-thread").encode()).decode().rstrip("=")
        thread = f"19:meeting_{thread_key}@thread.v2"
        context = urllib.parse.quote(
            json.dumps({"Tid": caller.tenant.tenant_id, "Oid": caller.user.oid}, separators=(",", ":")), safe=""
        )
        join_url = (
            f"https://teams.microsoft.com/l/meetup-join/{urllib.parse.quote(thread, safe='')}/0?context={context}"
        )
        meeting = Meeting(meeting_id, subject, caller.user.oid, attendees, thread, join_url, start, end)
        with self.ctx.lock:
            caller.tenant.meetings[meeting_id] = meeting
            caller.tenant.chats[thread] = Chat(
                thread, "meeting", [caller.user.oid, *attendees], self.ctx.now(), subject or None, meeting_id
            )
        organizer = caller.user
        result = {
            "@odata.type": "#microsoft.graph.onlineMeeting",
            "@odata.context": self._context(request, f"users('{organizer.oid}')/onlineMeetings/$entity"),
            "id": meeting_id,
            "creationDateTime": graph_time(self.ctx.now()),
            "startDateTime": graph_time(start),
            "endDateTime": graph_time(end),
            "joinWebUrl": join_url,
            "subject": subject,
            "chatInfo": {"threadId": thread, "messageId": "0", "replyChainMessageId": None},
            "participants": {
                "organizer": {
                    "identity": {"user": {"id": organizer.oid, "displayName": organizer.display_name}},
                    "upn": organizer.upn,
                    "role": "presenter",
                },
                "attendees": [{"identity": {"user": {"id": oid}}, "role": "attendee"} for oid in attendees],
            },
        }
        return self._json(request, result, 201, request_id)

    # -- teams and channels ------------------------------------------------------------------------

    async def joined_teams(self, request: Request, caller: Caller, request_id: str) -> Response:
        teams = [t for t in caller.tenant.teams.values() if caller.user.oid in t.members]
        value = [
            {
                "id": t.id,
                "displayName": t.display_name,
                "description": None,
                "isArchived": False,
                "tenantId": caller.tenant.tenant_id,
            }
            for t in teams
        ]
        return self._json(
            request,
            {"@odata.context": self._context(request, "teams"), "@odata.count": len(value), "value": value},
            200,
            request_id,
        )

    def _team_for(self, caller: Caller, team_id: str) -> Team:
        team = caller.tenant.teams.get(team_id)
        if team is None:
            raise GraphError(
                404, "NotFound", "No team found with Group Id " + team_id, emulated="the 404 body for an unknown team"
            )
        if caller.user.oid not in team.members:
            raise GraphError(403, "Forbidden", "Forbidden", emulated="the 403 body for a team the user is not in")
        return team

    async def channels(self, request: Request, caller: Caller, request_id: str) -> Response:
        team = self._team_for(caller, request.path_params["team"])
        channel_properties = ("id", "displayName", "description", "membershipType", "tenantId")
        selected = self._selected(request, "channel", channel_properties)
        value = [
            {
                "id": c.id,
                "displayName": c.display_name,
                "description": None,
                "membershipType": "standard",
                "tenantId": caller.tenant.tenant_id,
            }
            for c in team.channels.values()
        ]
        context = with_projection(self._context(request, f"teams('{team.id}')/channels"), selected or [])
        value = [self._project(item, selected, keep=("id",)) for item in value]
        response = self._json(
            request, {"@odata.context": context, "@odata.count": len(value), "value": value}, 200, request_id
        )
        if self._query(request).get("filter"):
            _note(response, "$filter on channels is accepted but not applied")
        return response

    def _channel_for(self, caller: Caller, request: Request) -> tuple[Team, Any]:
        team = self._team_for(caller, request.path_params["team"])
        channel = team.channels.get(request.path_params["channel"])
        if channel is None:
            raise GraphError(404, "NotFound", "Channel not found.", emulated="the 404 body for an unknown channel")
        return team, channel

    async def post_channel_message(self, request: Request, caller: Caller, request_id: str) -> Response:
        team, channel = self._channel_for(caller, request)
        message = self._new_message(caller.user.oid, await self._body(request))
        with self.ctx.lock:
            channel.messages.append(message)
        encoded = urllib.parse.quote(channel.id, safe="")
        body = {
            "@odata.context": self._context(request, f"teams('{team.id}')/channels('{encoded}')/messages/$entity"),
            **self._message_json(caller.tenant, message, team=team, channel_id=channel.id),
        }
        return self._json(request, body, 201, request_id)

    async def list_channel_messages(self, request: Request, caller: Caller, request_id: str) -> Response:
        team, channel = self._channel_for(caller, request)
        expand = self._expanded(request, "GET /teams/{id}/channels/{id}/messages", "chatMessage")
        encoded = urllib.parse.quote(channel.id, safe="")
        return self._message_page(
            request,
            caller,
            request_id,
            channel.messages,
            f"teams('{team.id}')/channels('{encoded}')/messages",
            replies="replies" in expand,
            team=team,
            channel_id=channel.id,
        )


def _normal_time(value: str) -> str:
    """A filter bound in the same form graph_time() writes, so string comparison orders correctly."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad_request(f"Invalid date-time in $filter: {value}", "the message for a bad $filter date") from None
    return graph_time(moment)
