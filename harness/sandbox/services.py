"""The emulated services of one sandbox, in the order a request's workload is looked up."""

from __future__ import annotations

from starlette.routing import Route

from harness.sandbox.acs import Acs
from harness.sandbox.acs_chat import AcsChat
from harness.sandbox.calling import Calling
from harness.sandbox.context import SandboxContext
from harness.sandbox.entra import Entra
from harness.sandbox.graph import Graph
from harness.sandbox.http import Service
from harness.wire.calling import VERSION
from harness.wire.contract import SANDBOX_CALLING_HOST


class CallingService(Service):
    """The calling model (harness/sandbox/calling.py) as a service: its state is the context's `calling`."""

    workload = "calling"
    hosts = (SANDBOX_CALLING_HOST,)
    prefixes = (f"{VERSION}/",)

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.calling = Calling(ctx)

    def routes(self) -> list[Route]:
        return self.calling.routes()

    def reset(self) -> None:
        with self.ctx.lock:
            self.ctx.calling.clear()


SERVICES: tuple[type[Service], ...] = (Entra, Graph, Acs, AcsChat, CallingService)


def build(ctx: SandboxContext) -> list[Service]:
    """Every service for `ctx`, registered with it (so that `ctx.reset()` reaches them), in route order."""
    ctx.services = [Acs(ctx), AcsChat(ctx), Graph(ctx), CallingService(ctx), Entra(ctx)]
    return ctx.services
