"""What Graph's resources share: Graph's error body, the OData system query options (parsed the way
Graph reads them, docs/contracts/graph.md §8), `$select`/`$expand` shaping, paging, and the
`@odata.context` of an answer.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from harness.sandbox.graph.endpoints import EXPANDABLE, QUERY_OPTIONS
from harness.sandbox.http import ServiceError, base_url, emulator_defined, json_object
from harness.wire.contract import EMULATOR_DEFINED_HEADER, REQUEST_ID_HEADER

MAX_TOP = 50
DEFAULT_TOP = 20  # emulator-defined: the page size when $top is absent is not documented
GRAPH_VERSION_PREFIX = "/v1.0"

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

# The properties `$select` may name per type besides those the sandbox fills (a selected property the
# sandbox has no value for comes back null).
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


class GraphError(ServiceError):
    """Graph's error: `{"error": {"code", "message", "innerError"}}` with Graph's headers."""

    def __init__(self, status: int, code: str, message: str, *, emulated: str = "", headers: dict | None = None):
        super().__init__(status, message, emulated=emulated, headers=headers)
        self.code = code

    def render(self, request: Request, service: Any, **options: Any) -> Response:
        request_id = request.state.request_id
        inner = {
            "date": service.ctx.now().strftime("%Y-%m-%dT%H:%M:%S"),
            REQUEST_ID_HEADER: request_id,
            "client-request-id": request.headers.get("client-request-id", request_id),
        }
        body = {"error": {"code": self.code, "message": self.message, "innerError": inner}}
        headers = {**service.headers(request, request_id), **self.headers}
        return self.marked(JSONResponse(body, status_code=self.status, headers=headers))


def graph_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def bad_request(message: str, emulated: str) -> GraphError:
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
                raise bad_request(
                    f"The query parameter '{key}' is not supported.",
                    "the 400 message for an unknown system query option is not documented",
                )
            if name in query.options:
                raise bad_request(
                    f"Query option '${name}' was specified more than once, but it must be specified at most once.",
                    "the 400 message for a repeated query option is not documented",
                )
            if name not in allowed:
                raise bad_request(
                    f"The query specified in the URI is not valid. Query option '{SYSTEM_QUERY_OPTIONS[name]}' is "
                    "not allowed. To allow it, set the 'AllowedQueryOptions' property on EnableQueryAttribute or "
                    "QueryValidationSettings.",
                    "whether Graph rejects or ignores an option the route's page does not list is not documented; "
                    "this body was seen from Teams endpoints",
                )
            if name == "count" and value.lower() not in ("true", "false"):
                # The collections that take it carry @odata.count anyway; only the value is checked.
                raise bad_request(f"'{value}' is not a valid count option.", "the 400 message for a bad $count value")
            query.options[name] = value
        return query


def note(response: Response, reason: str) -> None:
    """Mark a response emulator-defined, keeping a reason it already carries. A reason may quote the
    client's query: only printable ASCII of it goes into the header."""
    reason = "".join(c if " " <= c <= "~" else "?" for c in reason)[:300]
    earlier = response.headers.get(EMULATOR_DEFINED_HEADER)
    emulator_defined(response, f"{earlier}; {reason}" if earlier else reason)


def unknown_property(name: str, type_name: str) -> GraphError:
    return bad_request(
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


# -- what a handler asks of its request ---------------------------------------------------------------


def query(request: Request) -> Query:
    """The request's system query options (parsed by the Graph service before the handler runs)."""
    return getattr(request.state, "query", None) or Query()


def context(request: Request, fragment: str) -> str:
    return f"{base_url(request)}/v1.0/$metadata#{fragment}"


async def json_body(request: Request) -> dict[str, Any]:
    body = json_object(await request.body())
    if body is None:
        raise bad_request(
            "The request body is not a valid JSON object.", "the 400 body for a malformed request is not documented"
        )
    return body


def expanded(request: Request, route: str, type_name: str) -> list[str]:
    """The navigation properties `$expand` names (canonical spelling), or 400 for one the route cannot expand."""
    known = {name.lower(): name for name in EXPANDABLE.get(route, ())}
    names = []
    for item in query(request).names("expand"):
        if item.lower() not in known:
            raise unknown_property(item, type_name)
        names.append(known[item.lower()])
    return list(dict.fromkeys(names))


def selected(request: Request, type_name: str, filled: Iterable[str]) -> list[str] | None:
    """The properties `$select` names (canonical spelling, in the order sent), None without `$select`
    (or with `*`); 400 for a property the type does not have."""
    items = query(request).names("select")
    if not items or "*" in items:
        return None
    known = {name.lower(): name for name in [*filled, *UNFILLED_PROPERTIES.get(type_name, ())]}
    known = {k: v for k, v in known.items() if not k.startswith("@")}
    chosen = []
    for item in items:
        if item.lower() not in known:
            raise unknown_property(item, type_name)
        chosen.append(known[item.lower()])
    return list(dict.fromkeys(chosen))


def project(body: dict[str, Any], chosen: list[str] | None, keep: Iterable[str] = ()) -> dict[str, Any]:
    """Only the selected properties, the kept ones (`id` of Teams resources, expanded relationships)
    and every annotation; the body unchanged without `$select`."""
    if chosen is None:
        return body
    wanted = {*chosen, *keep}
    projected = {k: v for k, v in body.items() if "@" in k or k in wanted}
    for name in chosen:
        projected.setdefault(name, None)
    return projected


# -- paging ---------------------------------------------------------------------------------------------


def top(request: Request) -> int:
    raw = query(request).get("top")
    if raw is None:
        return DEFAULT_TOP
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 3) or not 1 <= int(raw) <= MAX_TOP:
        raise bad_request(
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP}",
            "the message for $top outside 1..50 is not documented",
        )
    return int(raw)


def skip(request: Request) -> int:
    """How many items earlier pages held (an offset `$skiptoken`)."""
    token = query(request).get("skiptoken")
    if not token:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"]
        if not isinstance(offset, int) or not 0 <= offset <= 1_000_000:
            raise ValueError
        return offset
    except (ValueError, KeyError, TypeError, RecursionError):
        raise bad_request("The skip token is not valid.", "the message for a bad $skiptoken") from None


def cursor(request: Request) -> tuple[datetime, int] | None:
    """Where the previous page ended: (time, message id), or None on the first page."""
    token = query(request).get("skiptoken")
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
        raise bad_request("The skip token is not valid.", "the message for a bad $skiptoken") from None


def next_link(request: Request, params: dict[str, str], state: dict[str, Any]) -> str:
    token = base64.urlsafe_b64encode(json.dumps(state, sort_keys=True).encode()).decode()
    encoded = urllib.parse.urlencode({**params, "$skiptoken": token}, safe="$", quote_via=urllib.parse.quote)
    return f"{base_url(request)}{request.url.path}?{encoded}"


def page_note(request: Request, response: JSONResponse) -> JSONResponse:
    """A page answered without `$top` says its size is the emulator's."""
    if query(request).get("top") is None:
        note(response, f"the page size without $top ({DEFAULT_TOP}) is not documented")
    return response


def normal_time(value: str) -> str:
    """A filter bound in the same form graph_time() writes, so string comparison orders correctly."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"Invalid date-time in $filter: {value}", "the message for a bad $filter date") from None
    return graph_time(moment)
