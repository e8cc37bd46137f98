"""The Graph service: who calls (the bearer token), what the token may do (delegated `scp` per route,
docs/contracts/graph.md), throttling, Graph's headers; each resource's routes under `/v1.0`.

Authorisation follows the delegated `scp` of the bearer token, per route, with the permissions of the
v1.0 reference pages (graph/endpoints.py, cross-checked in tests against the maps in
docs/contracts/graph.md).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.sandbox.context import SandboxContext
from harness.sandbox.graph.chats import Chats
from harness.sandbox.graph.endpoints import APPLICATION_ONLY, MESSAGE_POSTS, PERMISSIONS, TEAMS_WORKLOAD
from harness.sandbox.graph.meetings import Meetings
from harness.sandbox.graph.odata import GRAPH_VERSION_PREFIX, GraphError, Query, note
from harness.sandbox.graph.subscriptions import Subscriptions
from harness.sandbox.graph.teams import Teams
from harness.sandbox.graph.users import Users
from harness.sandbox.http import Service
from harness.sandbox.state import GRAPH_APP_ID, GRAPH_RESOURCE_URI, Tenant, User
from harness.wire.contract import GRAPH_HOST, REQUEST_ID_HEADER

CONTENT_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"

# Requests per second per app per tenant (throttling-limits.md, the newer revision), and the
# per-team/channel cap that both revisions state.
RATE_LIMITS = {"chat-post": 20, "chat-get": 20, "channel-post": 50, "channel-get": 20, "other-get": 30, "other": 30}
PER_TEAM_LIMIT = 4

Handler = Callable[[Request, "Caller", str], Awaitable[Response]]


# What Graph answers an app-only token on the routes that know application context
# (docs/contracts/graph.md §9). Texts as partners report them; the refusals themselves are documented.
IMPORT_ONLY = (
    "Message POST is allowed in application-only context only for import purposes. Refer to "
    "https://docs.microsoft.com/microsoftteams/platform/graph-api/import-messages/import-external-messages-to-teams "
    "for more details."
)
PROTECTED_API = (
    "Invoked API requires Protected API access in application-only context when not using Resource Specific "
    "Consent. Visit https://docs.microsoft.com/en-us/graph/teams-protected-apis for more details."
)
# The licence refusal of Teams routes, as partners report it (docs/contracts/graph.md §9.3).
NO_LICENCE = (
    "Failed to get license information for the user. Ensure user has a valid Office365 license assigned to them."
)


class Caller:
    """Who is calling: the token's tenant, user (None for an app-only token) and app, and its delegated scopes."""

    def __init__(self, tenant: Tenant, user: User | None, app_id: str, scopes: set[str]) -> None:
        self.tenant, self.app_id, self.scopes = tenant, app_id, scopes
        self.user: User = user  # type: ignore[assignment]  # None only for app-only callers, stopped at the gate

    @property
    def app_only(self) -> bool:
        return self.user is None


class Graph(Service):
    workload = "graph"
    hosts = (GRAPH_HOST,)
    prefixes = ("/v1.0/", "/beta/")

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.rate_windows: dict[tuple[str, ...], deque[datetime]] = {}  # throttling
        self.subscriptions = Subscriptions(self)
        # In the order their routes are tried.
        self.resources = (self.subscriptions, Users(self), Chats(self), Meetings(self), Teams(self))

    def routes(self) -> list[Route]:
        return [route for resource in self.resources for route in resource.routes()]

    def reset(self) -> None:
        with self.ctx.lock:
            self.rate_windows.clear()
            self.subscriptions.reset()

    def endpoint(self, route: str, path: str, fn: Handler) -> Route:
        """`route` ("GET /chats/{id}", as graph/endpoints.py names it) at `path` under /v1.0, answered by
        `fn(request, caller, request_id)` once the caller is authenticated, authorised and not throttled."""
        method = route.split(" ", 1)[0]

        async def handle(request: Request) -> Response:
            request.state.request_id = request_id = self.ctx.ids.next("graph-request")
            try:
                caller = self._authenticate(request)
                self._gate(caller, route)
                self._authorise(caller, route)
                # System query options apply to GET only ("query parameters" page); others ignore them.
                query = Query.parse(request.query_params.multi_items(), route) if request.method == "GET" else Query()
                request.state.query = query
                self._throttle(caller, route, request)
                response = await fn(request, caller, request_id)
            except GraphError as err:
                return err.render(request, self)
            if query.ignored:
                note(
                    response,
                    f"query parameters without $ ignored ({', '.join(sorted(set(query.ignored)))}): v1.0 accepts "
                    "them only for an undocumented subset of APIs",
                )
            return response

        return Route(GRAPH_VERSION_PREFIX + path, handle, methods=[method])

    # -- answers -------------------------------------------------------------------------------

    def headers(self, request: Request, request_id: str) -> dict[str, str]:
        return {
            REQUEST_ID_HEADER: request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
            "Strict-Transport-Security": "max-age=31536000",
            "Cache-Control": "no-store, no-cache",
        }

    def json(self, request: Request, body: Any, status: int, request_id: str) -> JSONResponse:
        return JSONResponse(
            body, status_code=status, headers=self.headers(request, request_id), media_type=CONTENT_TYPE
        )

    def no_content(self, request: Request, request_id: str) -> Response:
        return Response(status_code=204, headers=self.headers(request, request_id))

    # -- who may call --------------------------------------------------------------------------

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
        if tenant is not None and claims.get("idtyp") == "app" and "scp" not in claims:
            return Caller(tenant, None, str(claims.get("appid", "")), set())  # an app-only token (client credentials)
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
    def _gate(caller: Caller, route: str) -> None:
        """What Graph refuses before permissions: an app-only token where application context is not (or only
        for import) allowed, a delegated token on an application-only API, a user without a Teams licence."""
        if caller.app_only:
            if route in MESSAGE_POSTS:
                # chat-post-messages: application permissions for migration only (Teamwork.Migrate.All)
                raise GraphError(
                    401,
                    "Unauthorized",
                    IMPORT_ONLY,
                    emulated="status and text as partners report them (msteams-docs#12992)",
                )
            if route in APPLICATION_ONLY:
                # teams-protected-apis: protected APIs need Microsoft's approval, which no sandbox app has
                raise GraphError(
                    403,
                    "Forbidden",
                    PROTECTED_API,
                    emulated="no sandbox app is approved for protected APIs; the text is as partners report it",
                )
            raise GraphError(
                401,
                "InvalidAuthenticationToken",
                "Access token validation failure.",
                emulated="an app-only or foreign token on a delegated-only route",
            )
        if route in APPLICATION_ONLY:
            raise GraphError(
                403,
                "Forbidden",
                "Delegated permissions are not supported for this API: it requires an application permission "
                "(Chat.Read.All, Chat.ReadWrite.All or ChannelMessage.Read.All) and protected-API approval.",
                emulated="the reference pages say delegated permissions are not supported; Graph's answer is not "
                "documented",
            )
        if route in TEAMS_WORKLOAD and not caller.user.teams_license:
            raise GraphError(
                403,
                "Forbidden",
                NO_LICENCE,
                emulated="the licence refusal's text as partners report it (not documented)",
            )

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
                window = self.rate_windows.setdefault(key, deque())
                while window and now - window[0] >= timedelta(seconds=1):
                    window.popleft()
                if len(window) >= limit:
                    wait = max(1, math.ceil((window[0] + timedelta(seconds=1) - now).total_seconds()))
                    raise GraphError(
                        429, "TooManyRequests", "Please retry again later.", headers={"Retry-After": str(wait)}
                    )
            for key, _ in keys:
                self.rate_windows[key].append(now)
