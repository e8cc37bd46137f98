"""What every emulated service of one sandbox shares: the tenant directory, clocks, ids, keys, the
services themselves; and what outlives a service's own state (subscriptions the notifier serves,
calls, fault rules)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from harness.sandbox.calling_state import CallingState
from harness.sandbox.faults import Faults

# The HTTP helpers' former home: harness/sandbox/calling.py imports them from here.
from harness.sandbox.http import emulator_defined as emulator_defined
from harness.sandbox.http import json_object as json_object
from harness.sandbox.notifier import Notifier, Subscription
from harness.sandbox.signing import Signer
from harness.sandbox.state import Clock, Directory, IdSource

if TYPE_CHECKING:
    from harness.sandbox.http import Service


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
    last_message_ms: int = 0  # chat message ids are epoch milliseconds, strictly increasing: an id stream
    faults: Faults = field(default_factory=Faults)
    calling: CallingState = field(default_factory=CallingState)
    subscriptions: dict[str, Subscription] = field(default_factory=dict)  # Graph's, which the notifier serves
    notifier: Notifier | None = None
    # `cte sandbox serve --lifecycle-after S`: Graph's own schedule for lifecycle notifications, as a
    # client outside sees it: reauthorizationRequired S seconds after a subscription is created
    # (emulator-defined: Microsoft documents no schedule). None: only a test's control sends them.
    lifecycle_after_s: float | None = None
    # `cte sandbox serve --token-lifetime S`: how long a user's Entra access token lives (a tenant's token
    # lifetime policy; Entra's own default is 60-90 minutes). None: harness.sandbox.entra's default.
    access_token_lifetime_s: int | None = None
    # Entra's sessions (its refresh tokens) outlive a scenario's fresh world, as they outlive an app's
    # session on a live tenant; not where ids restart with each scenario (recordings), since a refresh
    # token handed out again would then name another scenario's sign-in.
    sessions_outlive_scenarios: bool = True
    services: list[Service] = field(default_factory=list)  # harness.sandbox.services.build adds them

    def now(self) -> datetime:
        return self.clock.now().astimezone(UTC)

    def epoch(self) -> int:
        return int(self.now().timestamp())

    def reset(self) -> None:
        """Every service forgets what clients did, and the fault rules go (the `flaky` plan and the
        run's counters stay); the directory is the caller's to rebuild."""
        with self.lock:
            for service in self.services:
                service.reset()
            self.faults.clear()

    def restart(self, stream: str, start: datetime) -> None:
        """Reproducible from here: ids (chat message ids too) restarted in `stream`, the fixed clock at `start`."""
        with self.lock:
            self.last_message_ms = 0
            self.ids.restart(stream)
            self.clock.restart(start)
