"""Injected faults: answer a matching request with an error status, before or after the service
has acted on it ("after" is the ambiguous case: the change happened, the client cannot tell).

Tests and the plugin add rules; the rates, latency and dropped connections of the `flaky`
profile build on this.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import threading
from collections import Counter
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
    plan: FaultPlan | None = None  # the `flaky` profile's random faults; `clear()` keeps it
    requests: Counter[str] = field(default_factory=Counter)  # per workload, faulted or not
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

    def count(self, workload: str) -> None:
        with self._lock:
            self.requests[workload] += 1

    def request_counts(self) -> dict[str, int]:
        with self._lock:
            return dict(sorted(self.requests.items()))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.fired.clear()


REASONS = {
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


class FaultInjection:
    """ASGI middleware applying `Faults` rules, then the `flaky` plan if one is set."""

    def __init__(self, app: Any, faults: Faults) -> None:
        self.app, self.faults = app, faults

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        self.faults.count(workload_of(method, path) or "other")
        rule = self.faults.take(method, path)
        if rule is not None:
            decision = Decision("rule", rule.status, rule.after_processing, 0)
        elif self.faults.plan is not None:
            latency, decision = self.faults.plan.decide(method, path)
            if latency:
                await asyncio.sleep(latency)
        else:
            decision = None
        if decision is None:
            await self.app(scope, receive, send)
            return
        if decision.after_processing:

            async def swallow(message: dict[str, Any]) -> None:
                return None

            await self.app(scope, receive, swallow)
        await _answer(send, decision, oauth=workload_of(method, path) == "entra")


async def _answer(send, decision: Decision, *, oauth: bool) -> None:  # type: ignore[no-untyped-def]
    code = REASONS.get(decision.status, "Error")
    message = f"Injected fault: {decision.status} {code}."
    if decision.kind == "drop":
        # A response cut short: the declared length is never reached and the connection closes.
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"4096")]})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionAbortedError("injected fault: connection dropped")
    if oauth:  # what MSAL parses: an OAuth error (RFC 6749 §5.2 names temporarily_unavailable)
        payload: dict[str, Any] = {"error": "temporarily_unavailable", "error_description": message}
    else:
        payload = {"error": {"code": code, "message": message}}
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-cte-emulator-defined", b"injected fault"),
    ]
    if decision.status in (429, 503) and decision.kind != "rule" and decision.retry_after is not None:
        headers.append((b"retry-after", str(decision.retry_after).encode()))
    await send({"type": "http.response.start", "status": decision.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- the `flaky` profile: faults at random, per workload ----------------------------------------------

WORKLOADS = ("entra", "acs", "graph", "calling")
SERVER_ERRORS = (500, 502, 503, 504)


def workload_of(method: str, path: str) -> str | None:
    """Which emulated service a request is for, by the paths each service declares (`Service.faultable`);
    None: never faulted (Entra, for one, is faulted at its token endpoint only)."""
    from harness.sandbox.services import SERVICES  # the services hold the context, which holds the faults

    for service in SERVICES:
        faultable = service.faultable(method, path)
        if faultable is not None:
            return service.workload if faultable else None
    return None


@dataclass(frozen=True)
class WorkloadFaults:
    """Rates (0..1) of each fault for one workload; `after_processing` is the share of 5xx and drops
    that strike after the service has acted (the ambiguous case)."""

    throttle: float = 0.0  # 429 with Retry-After
    server_error: float = 0.0  # one of `statuses`
    drop: float = 0.0  # the connection closes mid-response
    statuses: tuple[int, ...] = SERVER_ERRORS
    retry_after: int = 1  # seconds, on 429 and 503
    send_retry_after: bool = True  # false: 429 and 503 come without Retry-After
    latency_ms: tuple[int, int] = (0, 0)
    after_processing: float = 0.0


@dataclass(frozen=True)
class Decision:
    kind: str  # "throttle" | "server_error" | "drop"
    status: int
    after_processing: bool
    retry_after: int | None


FREE_PASSES = 3  # after a fault, the next requests with the same method and path are not faulted


class FaultPlan:
    """Seeded random faults per workload. After a fault, the next FREE_PASSES requests with the same
    method and path go through (several, because other clients share paths such as the token
    endpoint), so every retry loop ends and a run's verdicts do not depend on luck; emulator-defined:
    Microsoft documents throttling limits, not fault rates.

    Counts what it did, per workload, for the report: requests seen, faults injected by kind.
    """

    def __init__(self, workloads: dict[str, WorkloadFaults], seed: int = 0) -> None:
        self.workloads = workloads
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._free_passes: dict[tuple[str, str], int] = {}
        self.counts: dict[str, Counter[str]] = {w: Counter() for w in workloads}

    def decide(self, method: str, path: str) -> tuple[float, Decision | None]:
        """(seconds of added latency, the fault to inject or None)."""
        workload = workload_of(method, path)
        rates = self.workloads.get(workload) if workload else None
        if rates is None or workload is None:
            return 0.0, None
        with self._lock:
            counts = self.counts[workload]
            counts["requests"] += 1
            low, high = rates.latency_ms
            latency = self._random.uniform(low, high) / 1000 if high > 0 else 0.0
            key = (method, path)
            if self._free_passes.get(key):
                self._free_passes[key] -= 1
                return latency, None
            roll = self._random.random()
            after = self._random.random() < rates.after_processing
            decision: Decision | None = None
            wait = rates.retry_after if rates.send_retry_after else None
            if roll < rates.throttle:
                decision = Decision("throttle", 429, False, wait)
            elif roll < rates.throttle + rates.server_error:
                decision = Decision("server_error", self._random.choice(rates.statuses), after, wait)
            elif roll < rates.throttle + rates.server_error + rates.drop:
                decision = Decision("drop", 0, after, 0)
            if decision is not None:
                self._free_passes[key] = FREE_PASSES
                counts[decision.kind] += 1
            return latency, decision

    def summary(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {w: dict(sorted(c.items())) for w, c in self.counts.items() if c}


def plan_from_profile(table: dict[str, Any], where: str) -> FaultPlan:
    """A `[faults]` profile table as a plan; a one-line ProfileError-style ValueError names a bad key."""
    if not isinstance(table, dict):
        raise ValueError(f"{where}: faults is not a table; write [faults] with [faults.<workload>] tables")
    seed = table.get("seed", 0)
    if not _is_int(seed):
        raise ValueError(f"{where}: [faults].seed = {seed!r} is not an integer; set seed = 1")
    workloads: dict[str, WorkloadFaults] = {}
    known = {f for f in WorkloadFaults.__dataclass_fields__}
    for name, spec in table.items():
        if name == "seed":
            continue
        if name not in WORKLOADS or not isinstance(spec, dict):
            raise ValueError(f"{where}: [faults.{_key(name)}] is not a workload; use one of {', '.join(WORKLOADS)}")
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(
                f"{where}: [faults.{name}].{_key(unknown[0])} is not a fault setting; use {', '.join(sorted(known))}"
            )
        values = dict(spec)
        for rate in ("throttle", "server_error", "drop", "after_processing"):
            value = values.get(rate, 0.0)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{where}: [faults.{name}].{rate} = {value!r} is not a rate; use a number 0..1")
        if values.get("throttle", 0) + values.get("server_error", 0) + values.get("drop", 0) > 1:
            raise ValueError(f"{where}: [faults.{name}] rates add up to more than 1; lower them")
        statuses = values.get("statuses", SERVER_ERRORS)
        if (
            not isinstance(statuses, list | tuple)
            or not statuses
            or not all(_is_int(x) and x in SERVER_ERRORS for x in statuses)
        ):
            raise ValueError(f"{where}: [faults.{name}].statuses = {statuses!r}; use a list from {list(SERVER_ERRORS)}")
        values["statuses"] = tuple(statuses)
        latency = values.get("latency_ms", [0, 0])
        if not (
            isinstance(latency, list | tuple)
            and len(latency) == 2
            and all(_is_int(x) for x in latency)
            and 0 <= latency[0] <= latency[1] <= 10_000
        ):
            raise ValueError(f"{where}: [faults.{name}].latency_ms = {latency!r}; use [low, high] in ms, e.g. [0, 40]")
        values["latency_ms"] = (int(latency[0]), int(latency[1]))
        retry_after = values.get("retry_after", 1)
        if not _is_int(retry_after) or not 0 <= retry_after <= 60:
            raise ValueError(f"{where}: [faults.{name}].retry_after = {retry_after!r}; use whole seconds 0..60")
        if not isinstance(values.get("send_retry_after", True), bool):
            raise ValueError(f"{where}: [faults.{name}].send_retry_after must be true or false")
        workloads[name] = WorkloadFaults(**values)
    return FaultPlan(workloads, seed)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _key(name: str) -> str:
    """A TOML key as a one-line message shows it: bare if it can be, quoted and escaped otherwise."""
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else json.dumps(name)
