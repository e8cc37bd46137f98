"""Injected faults: answer a matching request with an error status, before or after the service
has acted on it ("after" is the ambiguous case: the change happened, the client cannot tell).

Tests and the plugin add rules; the rates, latency and dropped connections of the `flaky`
profile build on this.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class FaultRule:
    method: str
    path: re.Pattern[str]
    status: int
    remaining: int = 1
    after_processing: bool = True


@dataclass
class Faults:
    rules: list[FaultRule] = field(default_factory=list)
    fired: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, method: str, path_pattern: str, status: int, *, times: int = 1, after_processing: bool = True
    ) -> None:
        with self._lock:
            self.rules.append(FaultRule(method.upper(), re.compile(path_pattern), status, times, after_processing))

    def take(self, method: str, path: str) -> FaultRule | None:
        with self._lock:
            for rule in self.rules:
                if rule.remaining > 0 and rule.method == method and rule.path.search(path):
                    rule.remaining -= 1
                    self.fired.append(f"{method} {path} -> {rule.status}")
                    return rule
        return None

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.fired.clear()


REASONS = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


class FaultInjection:
    """ASGI middleware applying `Faults` to HTTP requests."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app, self.faults = app, faults

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        rule = self.faults.take(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        if rule.after_processing:

            async def swallow(message: dict[str, Any]) -> None:
                return None

            await self.app(scope, receive, swallow)
        code = REASONS.get(rule.status, "Error")
        body = json.dumps({"error": {"code": code, "message": f"Injected fault: {rule.status} {code}."}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": rule.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-cte-emulator-defined", b"injected fault"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
