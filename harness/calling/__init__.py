"""Calling as a Teams user: the driver protocol, the drivers, and driver selection by configuration."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.calling.protocol import CallingDriver
from harness.config import Tenant


class DriverUnavailable(Exception):
    """The configured driver cannot run here; the reason says what is missing."""


def driver_for(tenant: Tenant, *, sleep: Callable[[float], None] = time.sleep) -> CallingDriver:
    if tenant.calling_driver == "sandbox":
        if not tenant.calling_base_url:
            raise DriverUnavailable(f"profile {tenant.profile!r} has no sandbox calling model to drive")
        from harness.calling.sandbox_driver import SandboxCallingDriver

        return SandboxCallingDriver(tenant.calling_base_url, tenant.ca_bundle, sleep=sleep)
    raise DriverUnavailable(
        f"calling driver {tenant.calling_driver!r} is not available: the real Calling SDK runs in the browser "
        "(harness/calling/browser.py) for its offline checks only; live calls through it are not built yet"
    )
