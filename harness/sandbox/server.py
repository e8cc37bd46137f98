"""The embedded sandbox tenant: one real HTTPS server on loopback serving Entra ID and ACS.

Routes are disjoint by path, so one port serves every workload whichever host name a client uses:
the canonical Microsoft host (in-process clients route those names to this port) or `localhost`.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import trustme
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.contract import ACS_HOST_SUFFIX, ENTRA_HOST, GRAPH_HOST, SANDBOX_CALLING_HOST
from harness.sandbox.acs import Acs
from harness.sandbox.calling import Calling
from harness.sandbox.context import SandboxContext
from harness.sandbox.entra import Entra
from harness.sandbox.faults import FaultInjection
from harness.sandbox.graph import Graph
from harness.sandbox.state import SANDBOX_EPOCH, Clock, Directory, IdSource

LOOPBACK = "127.0.0.1"


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "NotFound", "message": f"No sandbox route for {request.method} {request.url.path}."}},
        status_code=404,
    )


async def _method_not_allowed(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": "MethodNotAllowed", "message": f"{request.method} is not allowed on {request.url.path}."}},
        status_code=405,
    )


class ClockTick:
    """ASGI middleware: a fixed clock moves on by its step with every request (the system clock ignores it)."""

    def __init__(self, app: Starlette, clock: Clock) -> None:
        self.app, self.clock = app, clock

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            self.clock.tick()
        await self.app(scope, receive, send)


def build_app(ctx: SandboxContext) -> ClockTick:
    routes: list[Route] = [*Acs(ctx).routes(), *Graph(ctx).routes(), *Calling(ctx).routes(), *Entra(ctx).routes()]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _method_not_allowed})
    return ClockTick(FaultInjection(app, ctx.faults), ctx.clock)


@dataclass
class Certificates:
    ca_bundle: Path
    cert_file: Path
    key_file: Path
    directory: tempfile.TemporaryDirectory[str]

    @classmethod
    def issue(cls, acs_host: str) -> Certificates:
        ca = trustme.CA(organization_name="cte-conformance sandbox CA")
        leaf = ca.issue_cert(
            "localhost", LOOPBACK, "::1", ENTRA_HOST, GRAPH_HOST, acs_host, f"*{ACS_HOST_SUFFIX}", SANDBOX_CALLING_HOST
        )
        directory = tempfile.TemporaryDirectory(prefix="cte-sandbox-")
        base = Path(directory.name)
        ca.cert_pem.write_to_path(str(base / "ca.pem"))
        leaf.private_key_pem.write_to_path(str(base / "key.pem"))
        leaf.cert_chain_pems[0].write_to_path(str(base / "cert.pem"))
        for extra in leaf.cert_chain_pems[1:]:
            extra.write_to_path(str(base / "cert.pem"), append=True)
        return cls(base / "ca.pem", base / "cert.pem", base / "key.pem", directory)


class Sandbox:
    """Start with `start()` (or as a context manager); stops with `stop()`.

    `deterministic=True` fixes the model clock and id streams so that recordings are reproducible.
    """

    def __init__(self, *, port: int = 0, deterministic: bool = False, seed: str = "cte-sandbox") -> None:
        self.deterministic = deterministic
        ids = IdSource(seed)
        clock = Clock.fixed(SANDBOX_EPOCH) if deterministic else Clock()
        self.ctx = SandboxContext(directory=Directory.build(ids), clock=clock, ids=ids)
        self.app = build_app(self.ctx)
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0
        self.certificates: Certificates | None = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> Sandbox:
        self.certificates = Certificates.issue(self.ctx.directory.acs.host)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit this (Linux): without it Nagle holds a response body back
        # ~40 ms behind its headers, for every request.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((LOOPBACK, self._requested_port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(self.certificates.cert_file),
            ssl_keyfile=str(self.certificates.key_file),
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=0.2,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._server.serve(sockets=[sock])), name="cte-sandbox", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox did not start on {LOOPBACK}:{self.port}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True  # idle keep-alive connections need no grace period
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self.certificates is not None:
            self.certificates.directory.cleanup()
        self._server = self._thread = self.certificates = None

    def begin_stream(self, name: str, start: datetime = SANDBOX_EPOCH) -> None:
        """Give one scenario a fresh world: the seeded tenants with no chats or messages yet, ids
        restarted and the fixed clock back at its start, so that what it records does not depend on
        which scenarios ran before it."""
        if self.deterministic:
            with self.ctx.lock:
                self.ctx.ids.restart("build")
                self.ctx.directory = Directory.build(self.ctx.ids)
                self.ctx.refresh_tokens.clear()
                self.ctx.device_codes.clear()
                self.ctx.acs_identities.clear()
                self.ctx.last_message_ms = 0
                self.ctx.rate_windows.clear()
                self.ctx.calling.clear()
                self.ctx.ids.restart(name)
                self.ctx.clock.restart(start)

    # -- what a client needs to use it -------------------------------------------------------------

    @property
    def loopback_base(self) -> str:
        return f"https://localhost:{self.port}"

    def host_routes(self) -> dict[str, tuple[str, int]]:
        """Canonical host names -> this server, for clients that keep canonical URLs."""
        hosts = (ENTRA_HOST, GRAPH_HOST, f"*{ACS_HOST_SUFFIX}", SANDBOX_CALLING_HOST)
        return {host: (LOOPBACK, self.port) for host in hosts}

    def tenant_info(self, name: str = "contoso", *, canonical: bool = True) -> dict[str, Any]:
        """Everything a client of tenant `name` needs, as `cte sandbox serve` prints it."""
        assert self.certificates is not None, "start() the sandbox first"
        directory = self.ctx.directory
        tenant = directory.tenants[name]
        acs = directory.acs
        entra_base = f"https://{ENTRA_HOST}" if canonical else self.loopback_base
        acs_endpoint = f"https://{acs.host}" if canonical else self.loopback_base
        graph_base = f"https://{GRAPH_HOST}/v1.0" if canonical else f"{self.loopback_base}/v1.0"
        calling_base = f"https://{SANDBOX_CALLING_HOST}/v1" if canonical else f"{self.loopback_base}/v1"
        app = next(iter(tenant.apps.values()), None)
        return {
            "tenant": tenant.name,
            "authority": f"{entra_base}/{tenant.tenant_id}",
            "tenant_id": tenant.tenant_id,
            "client_id": directory.client_id,
            "client_secret": app.client_secret if app else None,
            "acs_endpoint": acs_endpoint,
            "acs_connection_string": f"endpoint={acs_endpoint}/;accesskey={acs.access_key}",
            "acs_access_key": acs.access_key,
            "graph_base_url": graph_base,
            "calling_base_url": calling_base,
            "meetings": {
                m.kind: {
                    "join_url": m.join_url,
                    "meeting_id": m.meeting_code,
                    "passcode": m.passcode,
                    "thread_id": m.thread_id,
                    "organizer_id": m.organizer,
                    "tenant_id": tenant.tenant_id,
                    "message_id": "0",
                }
                for m in tenant.meetings.values()
            },
            "phone_numbers": {"outbound": "+14255550100", "inbound_caller": "+14255550199"},
            "ca_bundle": str(self.certificates.ca_bundle),
            "users": [
                {
                    "alias": u.alias,
                    "upn": u.upn,
                    "password": u.password,
                    "oid": u.oid,
                    "teams_license": u.teams_license,
                    "mfa_required": u.mfa_required,
                }
                for u in tenant.users.values()
            ],
            "expired_teams_token": self.expired_teams_token(name),
            "misconfiguration": tenant.misconfiguration,
            "tenants": sorted(directory.tenants),
        }

    def expired_teams_token(self, name: str = "contoso", alias: str = "adele") -> str:
        """An Entra token for the Teams scopes that expired an hour ago (real suites keep one recorded)."""
        tenant = self.ctx.directory.tenants[name]
        user = tenant.users[alias]
        iat = self.ctx.epoch() - 2 * 3600 - 900
        return self.ctx.entra_signer.sign(
            {
                "aud": "https://auth.msft.communication.azure.com",
                "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
                "iat": iat,
                "nbf": iat,
                "exp": iat + 4500,
                "appid": self.ctx.directory.client_id,
                "oid": user.oid,
                "scp": "Teams.ManageCalls Teams.ManageChats",
                "tid": tenant.tenant_id,
                "upn": user.upn,
                "ver": "1.0",
            }
        )


def serve_forever(port: int, *, deterministic: bool, tenant: str, canonical: bool = False) -> None:
    """`cte sandbox serve`: one JSON line on stdout, then serve until interrupted."""
    import json
    import signal

    with Sandbox(port=port, deterministic=deterministic) as sandbox:
        print(json.dumps(sandbox.tenant_info(tenant, canonical=canonical)), flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.is_set() and sandbox._thread is not None and sandbox._thread.is_alive():
            stop.wait(0.5)
