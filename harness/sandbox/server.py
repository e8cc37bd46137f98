"""The embedded sandbox tenant: one real HTTPS server on loopback serving Entra ID and ACS.

Routes are disjoint by path, so one port serves every workload whichever host name a client uses:
the canonical Microsoft host (in-process clients route those names to this port) or `localhost`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from harness.sandbox import services
from harness.sandbox.context import SandboxContext
from harness.sandbox.faults import FaultInjection, plan_from_profile
from harness.sandbox.graph import GraphPaths
from harness.sandbox.notifier import Notifier
from harness.sandbox.state import SANDBOX_EPOCH, Clock, Directory, IdSource, extra_app_ids
from harness.wire.calling import VERSION
from harness.wire.contract import ENTRA_HOST, GRAPH_HOST, SANDBOX_CALLING_HOST
from harness.wire.serving import LOOPBACK, Certificates, ServerThread
from harness.wire.tenant import HOME_TENANT, PhoneNumbers, TenantInfo, TenantMeeting, TenantUser


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
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.clock.tick()
        date = format_datetime(self.clock.now(), usegmt=True).encode()

        async def dated(message):  # type: ignore[no-untyped-def]
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"date", date)]}
            await send(message)

        await self.app(scope, receive, dated)


def build_app(ctx: SandboxContext) -> ClockTick:
    routes: list[Route] = [route for service in services.build(ctx) for route in service.routes()]
    app = Starlette(routes=routes, exception_handlers={404: _not_found, 405: _method_not_allowed})
    # Graph's paths without their empty segments before anything (faults included) looks at them.
    return ClockTick(GraphPaths(FaultInjection(app, ctx.faults)), ctx.clock)


class Sandbox:
    """Start with `start()` (or as a context manager); stops with `stop()`.

    `deterministic=True` fixes the model clock and id streams so that recordings are reproducible.
    """

    def __init__(self, *, port: int = 0, deterministic: bool = False, seed: str = "cte-sandbox") -> None:
        self.deterministic = deterministic
        ids = IdSource(seed)
        clock = Clock.fixed(SANDBOX_EPOCH) if deterministic else Clock()
        self.ctx = SandboxContext(
            directory=Directory.build(ids), clock=clock, ids=ids, sessions_outlive_scenarios=not deterministic
        )
        self.app = build_app(self.ctx)
        self._requested_port = port
        self._server: ServerThread | None = None
        self._listeners: list[ServerThread] = []
        self._sent_twice_before = 0  # messages sent twice in the worlds of earlier scenarios
        self.port = 0
        self.certificates: Certificates | None = None

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 10.0) -> Sandbox:
        self.certificates = Certificates.issue(
            self.ctx.directory.acs.host, *self.hosts(), organization="cte-conformance sandbox"
        )
        self.ctx.notifier = Notifier(self.ctx.entra_signer.sign)
        self.ctx.notifier.start()
        self._server = ServerThread(self.app, self.certificates, port=self._requested_port, name="cte-sandbox")
        self._server.start(timeout)
        self.port = self._server.port
        return self

    def add_listener(self, port: int = 0) -> int:
        """Serve on one more loopback port (the same tenant): each workload its own host:port, as in the cloud."""
        assert self.certificates is not None, "start() the sandbox first"
        server = ServerThread(self.app, self.certificates, port=port, name="cte-sandbox").start()
        self._listeners.append(server)
        return server.port

    def stop(self) -> None:
        for listener in self._listeners:
            listener.stop()
        self._listeners.clear()
        if self.ctx.notifier is not None:
            self.ctx.notifier.stop()
            self.ctx.notifier = None
        if self._server is not None:
            self._server.stop()
        if self.certificates is not None:
            self.certificates.directory.cleanup()
        self._server = self.certificates = None

    def begin_stream(self, name: str, start: datetime = SANDBOX_EPOCH) -> None:
        """Give one scenario (`name`) a fresh world: the seeded tenants with no chats, messages,
        agents, calls, subscriptions, tokens or fault rules yet, and no policy or meeting option an
        earlier scenario changed, so that what it sees does not depend on which scenarios ran before.
        Entra's refresh tokens outlive it outside recordings: a user's session, as on a live tenant.

        Deterministic: ids restarted in stream `name` and the fixed clock back at `start`, so that
        recordings are reproducible. Otherwise the real clock (taking back what waits moved it on by) and
        ids (and chat message ids) continue where they were: nothing handed out earlier in the process is
        handed out again, so a stale id a client kept is unknown, never someone else's. The run's health
        counters (requests, faults injected, messages sent twice) and the `flaky` plan carry on across
        scenarios."""
        with self.ctx.lock:
            self._sent_twice_before += self._sent_twice()
            if self.deterministic:
                self.ctx.ids.restart("build")
            self.ctx.directory = Directory.build(self.ctx.ids)  # stable ids only: the same tenants, users, keys
            self.ctx.reset()
            if self.deterministic:
                self.ctx.restart(name, start)
            elif self.ctx.clock.rewind():
                # The real clock again: an earlier scenario's waits (a token outlived) moved it on. Chat message
                # ids (epoch milliseconds, strictly increasing) start from the real time again too, so that a
                # message's time and id agree; the world they named is gone.
                self.ctx.last_message_ms = 0

    def _sent_twice(self) -> int:
        """Messages posted twice with the same content in one chat or channel of the current world."""
        with self.ctx.lock:
            threads = [c.messages for t in self.ctx.directory.tenants.values() for c in t.chats.values()]
            threads += [
                ch.messages
                for t in self.ctx.directory.tenants.values()
                for team in t.teams.values()
                for ch in team.channels.values()
            ]
            return sum(len(m) - len({x.content for x in m}) for m in threads)

    def health(self) -> dict[str, Any]:
        """What the sandbox saw over the whole run, for the run report: requests per workload, faults
        injected (the `flaky` profile) and messages posted twice with the same content in one chat or
        channel (a resend that should not have happened: the harness's messages carry unique markers),
        summed over every scenario's world."""
        with self.ctx.lock:
            twice = self._sent_twice_before + self._sent_twice()
        plan = self.ctx.faults.plan
        requests = self.ctx.faults.request_counts()
        return {"requests": requests, "faults": plan.summary() if plan else {}, "messages_sent_twice": twice}

    # -- what a client needs to use it -------------------------------------------------------------

    @property
    def loopback_base(self) -> str:
        return f"https://localhost:{self.port}"

    def hosts(self) -> tuple[str, ...]:
        """The canonical host names the services play (wildcards included)."""
        return tuple(host for service in services.SERVICES for host in service.hosts)

    def host_routes(self) -> dict[str, tuple[str, int]]:
        """Canonical host names -> this server, for clients that keep canonical URLs."""
        return {host: (LOOPBACK, self.port) for host in self.hosts()}

    def tenant_info(self, name: str = HOME_TENANT, *, canonical: bool = True) -> TenantInfo:
        """Everything a client of tenant `name` needs, as `cte sandbox serve` prints it."""
        assert self.certificates is not None, "start() the sandbox first"
        directory = self.ctx.directory
        tenant = directory.tenants[name]
        acs = directory.acs
        entra_base = f"https://{ENTRA_HOST}" if canonical else self.loopback_base
        acs_endpoint = f"https://{acs.host}" if canonical else self.loopback_base
        graph_base = f"https://{GRAPH_HOST}/v1.0" if canonical else f"{self.loopback_base}/v1.0"
        calling_base = f"https://{SANDBOX_CALLING_HOST}{VERSION}" if canonical else f"{self.loopback_base}{VERSION}"
        app = tenant.apps.get(directory.client_id)
        return TenantInfo(
            tenant=tenant.name,
            authority=f"{entra_base}/{tenant.tenant_id}",
            tenant_id=tenant.tenant_id,
            client_id=directory.client_id,
            client_secret=app.client_secret if app else None,
            acs_endpoint=acs_endpoint,
            acs_connection_string=f"endpoint={acs_endpoint}/;accesskey={acs.access_key}",
            acs_access_key=acs.access_key,
            graph_base_url=graph_base,
            calling_base_url=calling_base,
            meetings={
                m.name: TenantMeeting(
                    m.join_url, m.meeting_code, m.passcode, m.thread_id, m.organizer, tenant.tenant_id
                )
                for m in tenant.meetings.values()
            },
            phone_numbers=PhoneNumbers(outbound="+14255550100", inbound_caller="+14255550199"),
            ca_bundle=str(self.certificates.ca_bundle),
            users=tuple(
                TenantUser(u.alias, u.upn, u.password, u.oid, u.teams_license, u.mfa_required)
                for u in tenant.users.values()
            ),
            expired_teams_token=self.expired_teams_token(name),
            misconfiguration=tenant.misconfiguration,
            tenants=tuple(sorted(directory.tenants)),
            extra_apps=extra_app_ids(self.ctx.ids) if name == HOME_TENANT else {},
        )

    def lifecycle_event(self, subscription_id: str, event: str = "reauthorizationRequired") -> None:
        """Make Graph send a lifecycle notification for a subscription (a test's control)."""
        subscription = self.ctx.subscriptions[subscription_id]
        tenant = self.ctx.directory.tenants[subscription.tenant]
        assert self.ctx.notifier is not None
        self.ctx.notifier.lifecycle(subscription, tenant.tenant_id, event)

    def expired_teams_token(self, name: str = HOME_TENANT, alias: str = "adele") -> str:
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


def embedded(
    *, deterministic: bool, faults: Mapping[str, Any] | None = None, where: str = "profile"
) -> Callable[[], Sandbox]:
    """For the pytest plugin and the CLI (harness.run.modes.mode_for): the profile's [faults] table checked
    now (ValueError, one line), and a function that makes the sandbox to start, with those faults."""
    plan = plan_from_profile(dict(faults), where) if faults is not None else None

    def make() -> Sandbox:
        sandbox = Sandbox(deterministic=deterministic)
        sandbox.ctx.faults.plan = plan
        return sandbox

    return make


LIFECYCLE_AFTER_S = 4.0  # a served tenant's Graph sends reauthorizationRequired this long after a subscription


def serve_forever(
    port: int,
    *,
    deterministic: bool,
    tenant: str,
    canonical: bool = False,
    write_profile: str | None = None,
    token_lifetime_s: int | None = None,
) -> None:
    """`cte sandbox serve`: one JSON line on stdout, then serve until interrupted. With `write_profile`,
    Entra ID, Graph and ACS each get their own port and the line says where the live profile is and
    which environment variables hold its secrets."""
    import dataclasses
    import json
    import signal
    from pathlib import Path

    with Sandbox(port=port, deterministic=deterministic) as sandbox:
        sandbox.ctx.access_token_lifetime_s = token_lifetime_s
        info = sandbox.tenant_info(tenant, canonical=canonical)
        line = info.to_dict()
        if write_profile:
            from harness.sandbox.served import free_port, write_profiles

            sandbox.ctx.lifecycle_after_s = LIFECYCLE_AFTER_S
            origins = {
                "entra": sandbox.loopback_base,
                "graph": f"https://localhost:{sandbox.add_listener()}",
                "acs": f"https://localhost:{sandbox.add_listener()}",
            }
            written = write_profiles(sandbox, Path(write_profile), origins, free_port())
            # The line says what the profile says: each workload at its own origin.
            info = dataclasses.replace(
                info,
                acs_endpoint=origins["acs"],
                acs_connection_string=f"endpoint={origins['acs']}/;accesskey={info.acs_access_key}",
                graph_base_url=origins["graph"] + "/v1.0",
            )
            line = {**info.to_dict(), **written}
        print(json.dumps(line), flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.is_set() and sandbox._server is not None and sandbox._server.alive:
            stop.wait(0.5)
