"""Calling as a Teams user: the driver protocol, the drivers, and driver selection by configuration."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.calling.protocol import CallingDriver
from harness.config import Tenant


class DriverUnavailable(Exception):
    """The configured driver cannot run here; the reason says what is missing."""


DRIVERS = ("sandbox", "browser")


def driver_for(tenant: Tenant, *, sleep: Callable[[float], None] = time.sleep) -> CallingDriver:
    """sandbox: the sandbox's calling model. browser: the real Calling SDK in Chromium; live, on its
    own; against the sandbox, offline, cross-checked with the model (harness.calling.cross_check)."""
    if tenant.calling_driver not in DRIVERS:
        raise DriverUnavailable(f"calling driver {tenant.calling_driver!r} is unknown; use one of {', '.join(DRIVERS)}")
    model = None
    if tenant.calling_base_url:
        from harness.calling.sandbox_driver import SandboxCallingDriver

        model = SandboxCallingDriver(tenant.calling_base_url, tenant.ca_bundle, sleep=sleep)
    if tenant.calling_driver == "sandbox":
        if model is None:
            raise DriverUnavailable(f"profile {tenant.profile!r} has no sandbox calling model to drive")
        return model
    if tenant.mode in ("replay", "record"):
        raise DriverUnavailable(
            f"the browser calling driver does not run in {tenant.mode} mode: it drives the real SDK, "
            "offline against the sandbox (--mode sandbox) or against a live tenant (--mode live)"
        )
    from harness.calling.browser import BrowserUnavailable, check_available
    from harness.calling.browser_driver import BrowserCallingDriver

    try:
        check_available()
    except BrowserUnavailable as missing:
        raise DriverUnavailable(f"the browser calling driver cannot run here: {missing}") from None
    if tenant.mode == "live":
        return BrowserCallingDriver(offline=False)
    if model is None:
        raise DriverUnavailable(f"profile {tenant.profile!r} has no sandbox calling model to cross-check the SDK with")
    from harness.calling.cross_check import CrossCheckedDriver

    return CrossCheckedDriver(model, BrowserCallingDriver(offline=True))
