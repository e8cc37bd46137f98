"""Calling as a Teams user: the driver protocol, the drivers, and driver selection by configuration."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from harness.client.calling.protocol import CallingDriver
from harness.core.config import CALLING_DRIVERS, Tenant

if TYPE_CHECKING:
    from harness.client.calling.sdk_cassette import SdkCassette


class DriverUnavailable(Exception):
    """The configured driver cannot run here; the reason says what is missing."""


DRIVERS = CALLING_DRIVERS


def driver_for(
    tenant: Tenant, *, sleep: Callable[[float], None] = time.sleep, sdk_cassette: SdkCassette | None = None
) -> CallingDriver:
    """sandbox: the sandbox's calling model. browser: the real Calling SDK in Chromium:

    - against the sandbox: offline, cross-checked with the model (harness.client.calling.cross_check);
    - a live profile (live mode, or record against it: no sandbox model): on its own, talking to
      Microsoft; or, with `[calling] offline = true` (this machine cannot reach Microsoft's calling
      services), offline on the virtual clock with nothing to cross-check: what the SDK decides on
      the client (40231, 40238, 40209, 40210) is judged, everything it accepts SKIPs as needing
      Microsoft's calling services.

    In record mode the SDK's answers go to `sdk_cassette`; in replay they come from it, with no browser."""
    if tenant.calling_driver not in DRIVERS:
        raise DriverUnavailable(f"calling driver {tenant.calling_driver!r} is unknown; use one of {', '.join(DRIVERS)}")
    model = None
    if tenant.calling_base_url:
        from harness.client.calling.sandbox_driver import SandboxCallingDriver

        model = SandboxCallingDriver(tenant.calling_base_url, tenant.ca_bundle, sleep=sleep)
    if tenant.calling_driver == "sandbox":
        if model is None:
            raise DriverUnavailable(f"profile {tenant.profile!r} has no sandbox calling model to drive")
        return model
    from harness.client.calling.browser_driver import BrowserCallingDriver

    if tenant.mode in ("record", "replay") and sdk_cassette is None:
        raise DriverUnavailable(f"the browser calling driver in {tenant.mode} mode needs the scenario's SDK cassette")
    if tenant.mode == "replay":
        assert sdk_cassette is not None
        if sdk_cassette.path.is_file():  # a recording of the offline SDK, or of a live one
            recording = sdk_cassette.load()
            offline, live_tenant = recording.offline, recording.live_tenant or model is None
        else:  # the SDK was not asked anything when recording: it fails, naming the recording, if asked now
            live_tenant = model is None
            offline = tenant.calling_offline if live_tenant else True
    else:
        from harness.client.calling.browser import BrowserUnavailable, check_available

        try:
            check_available()
        except BrowserUnavailable as missing:
            raise DriverUnavailable(f"the browser calling driver cannot run here: {missing}") from None
        live_tenant = tenant.mode == "live" or model is None  # a live profile: no sandbox model
        # A sandbox tenant has no Microsoft to reach; a live one, when this machine cannot reach it.
        offline = tenant.calling_offline if live_tenant else True
    sdk = BrowserCallingDriver(
        offline=offline,
        virtual_clock=offline and tenant.mode != "replay",
        cassette=sdk_cassette,
        live_tenant=live_tenant,
    )
    if not offline or live_tenant:
        if model is not None:
            model.close()  # replaying a live recording: no model answers beside the SDK
        return sdk
    if model is None:
        raise DriverUnavailable(f"profile {tenant.profile!r} has no sandbox calling model to cross-check the SDK with")
    from harness.client.calling.cross_check import CrossCheckedDriver

    return CrossCheckedDriver(model, sdk)
