"""What every emulated service of one sandbox shares: the tenant directory, clocks, ids, keys, stores."""

from __future__ import annotations

import json
import threading
import urllib.parse
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from harness.sandbox.calling_state import CallingState
from harness.sandbox.faults import Faults
from harness.sandbox.notifier import Notifier, Subscription
from harness.sandbox.signing import Signer
from harness.sandbox.state import Clock, Directory, IdSource
from harness.wire.contract import EMULATOR_DEFINED_HEADER

R = TypeVar("R", bound=Response)


@dataclass
class SandboxContext:
    directory: Directory
    clock: Clock  # model time: token lifetimes, timestamps in bodies
    ids: IdSource
    # Request freshness (the HMAC x-ms-date window) is judged against real time even when the
    # model clock is fixed for reproducible recordings: the client signs with its own wall clock.
    wall_clock: Clock = field(default_factory=Clock)
    entra_signer: Signer = field(default_factory=lambda: Signer("entra"))
    acs_signer: Signer = field(default_factory=lambda: Signer("acs"))
    lock: threading.RLock = field(default_factory=threading.RLock)
    refresh_tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    device_codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    acs_identities: dict[str, dict[str, Any]] = field(default_factory=dict)
    last_message_ms: int = 0  # chat message ids are epoch milliseconds, strictly increasing
    faults: Faults = field(default_factory=Faults)
    calling: CallingState = field(default_factory=CallingState)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    notifier: Notifier | None = None
    reauthorized: list[str] = field(default_factory=list)
    # `cte sandbox serve --lifecycle-after S`: Graph's own schedule for lifecycle notifications, as a
    # client outside sees it: reauthorizationRequired S seconds after a subscription is created
    # (emulator-defined: Microsoft documents no schedule). None: only a test's control sends them.
    lifecycle_after_s: float | None = None
    rate_windows: dict[tuple[str, ...], deque[datetime]] = field(default_factory=dict)  # Graph throttling

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def epoch(self) -> int:
        return int(self.now().timestamp())


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
