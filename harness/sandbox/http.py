"""What the emulated services' HTTP sides share: the service (its hosts, paths, routes, state), an
error a route handler raises and that renders itself in its service's shape, and request helpers.

Adding an endpoint to a service is a route in its `routes()` and a handler that returns its answer
or raises the service's error; nothing else needs to know.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from harness.wire.contract import EMULATOR_DEFINED_HEADER

if TYPE_CHECKING:
    from harness.sandbox.context import SandboxContext

R = TypeVar("R", bound=Response)


class ServiceError(Exception):
    """An error answer: its status, the headers it adds, and why it is emulator-defined (empty when
    Microsoft documents or was recorded giving it). Each service's subclass renders its error body."""

    def __init__(
        self, status: int, message: str, *, emulated: str = "", headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.emulated = status, message, emulated
        self.headers = dict(headers or {})

    def render(self, request: Request, service: Any, **options: Any) -> Response:
        """The answer, in the shape `service` gives its errors."""
        raise NotImplementedError

    def marked(self, response: R) -> R:
        return emulator_defined(response, self.emulated) if self.emulated else response


class Service:
    """One emulated cloud service. It declares its workload name (faults and the run report count by
    it), the canonical hosts it plays and how to tell its requests by path; it owns the state clients
    change, which `reset()` forgets (the directory aside: the context rebuilds that)."""

    workload: ClassVar[str]
    hosts: ClassVar[tuple[str, ...]] = ()
    prefixes: ClassVar[tuple[str, ...]] = ()  # the paths its routes start with (disjoint between services)

    def __init__(self, ctx: SandboxContext) -> None:
        self.ctx = ctx

    @classmethod
    def faultable(cls, method: str, path: str) -> bool | None:
        """Whether a request to this service may be faulted; None: not this service's request."""
        return True if path.startswith(cls.prefixes) else None

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def reset(self) -> None:
        """Forget what clients did: the state of a fresh world."""

    def route(
        self, path: str, endpoint: Callable[[Request], Awaitable[Response]], methods: list[str], **options: Any
    ) -> Route:
        """A route whose handler may raise a ServiceError, answered as this service answers errors
        (`options` go to its `render`)."""

        async def handle(request: Request) -> Response:
            try:
                return await endpoint(request)
            except ServiceError as err:
                return err.render(request, self, **options)

        return Route(path, handle, methods=methods)


def base_url(request: Request) -> str:
    """The scheme and authority the client used: canonical host or loopback address alike."""
    host = request.headers.get("host") or f"{request.url.hostname}:{request.url.port}"
    return f"{request.url.scheme}://{host}"


def json_object(raw: bytes) -> dict[str, Any] | None:
    """A request body that is a JSON object of text the service could store and send back, else None.

    Guards what would otherwise be a 5xx: bytes that are not UTF-8, nesting deep enough to exhaust
    the parser's recursion, lone surrogates ("\\ud800") that cannot be encoded again.
    """
    if not raw:
        return None
    try:
        body = json.loads(raw.decode("utf-8"))
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except (UnicodeError, ValueError, RecursionError):
        return None
    return body if isinstance(body, dict) else None


async def form_fields(request: Request) -> dict[str, str]:
    """An x-www-form-urlencoded body as a dict (last value wins), tolerant of any bytes."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return dict(urllib.parse.parse_qsl(body, keep_blank_values=True))


def emulator_defined(response: R, reason: str) -> R:
    response.headers[EMULATOR_DEFINED_HEADER] = reason
    return response
