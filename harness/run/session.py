"""One run of the Gherkin suite as the pytest plugin holds it, without pytest: the mode and profile the
session resolves from its options, the webhook receiver, the results; and what each scenario is
given as it starts (a fresh world, its cassettes) and gives back as it ends.

The plugin (harness/pytest_plugin.py) wires these to pytest's hooks; nothing here asks which mode it is.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from harness import __version__
from harness.client import auth
from harness.conformance import expectations
from harness.conformance.scenario import AREAS, ScenarioRun
from harness.core.cassettes import take_unused
from harness.core.config import PROFILE_DIR, Profile, ProfileError, Tenant, load_profile, resolve_mode
from harness.core.prerequisites import MissingPrerequisite
from harness.reporting.session import ReportedScenario, report_scenario
from harness.run.modes import EmbeddedSandbox, Scenario, mode_for

GHERKIN_TAGS = {
    **{area: f"scenarios of the {area} area" for area in AREAS},
    "emulator-defined": "the expected answer is the sandbox's choice: Microsoft documents none",
    "caveat": "a supported row with a documented caveat (WARN when confirmed)",
    "supported": "a row the source table marks supported",
    "unsupported": "a row the source table marks not supported",
    **{f"row-{n}": f"covers row {n} of the source document's table" for n in range(1, 13)},
}


def scenario_order(value: str | None) -> Callable[[list[Any]], list[Any]] | None:
    """--cte-order as a function of the collected items (None: as written); a bad value is one line."""
    if not value:
        return None
    if value == "reverse":
        return lambda items: items[::-1]
    kind, _, seed = value.partition(":")
    if kind == "shuffle" and seed.lstrip("-").isdigit():

        def shuffled(items: list[Any]) -> list[Any]:
            items = list(items)
            random.Random(int(seed)).shuffle(items)
            return items

        return shuffled
    raise ProfileError(f"--cte-order {value!r} is not an order; use reverse or shuffle:SEED (shuffle:1, say)")


def calling_driver_option(value: str | None) -> str | None:
    from harness.client.calling import DRIVERS

    if value and value not in DRIVERS:
        raise ProfileError(f"calling driver {value!r} is not valid; use one of {', '.join(DRIVERS)} (--calling)")
    return value or None


class CteSession:
    """Session-wide state: the mode object (which owns the tenants, trust and cassettes), the
    webhook receiver (started on first use), the results. Nothing here asks which mode it is.

    Each argument is the value of its --cte-* option (None: not given; some fall back on CTE_* variables)."""

    def __init__(
        self,
        *,
        mode: str | None = None,
        profile: str | None = None,
        calling: str | None = None,
        cassette_dir: str | None = None,
        run_id: str | None = None,
        report_dir: str | None = None,
        backend_url: str | None = None,
        embedded: EmbeddedSandbox | None = None,
    ) -> None:
        mode = resolve_mode(mode)
        self.profile = load_profile(profile or os.environ.get("CTE_PROFILE") or "sandbox")
        calling = calling_driver_option(calling or os.environ.get("CTE_CALLING"))
        cassette_dir = cassette_dir or os.environ.get("CTE_CASSETTE_DIR")
        self.mode = mode_for(
            mode,
            self.profile,
            calling=calling,
            cassette_dir=Path(cassette_dir) if cassette_dir else None,
            embedded=embedded,
        )
        self.started = datetime.now(UTC)
        self.clock_start = time.monotonic()
        self.run_id = run_id or self.started.strftime("%Y%m%dT%H%M%SZ") + f"-{mode}"
        self.report_dir = Path(report_dir) if report_dir else Path("reports") / self.run_id
        self.results: list[dict[str, Any]] = []
        self._receiver: Any = None
        self.deviations = expectations.load(expectations.expectations_path(self.profile.path, self.profile.name))
        # The run's sign-ins, one token cache per process; with cassettes, each scenario signs in itself.
        self.sign_ins = auth.SignIns(reuse=not self.mode.uses_cassettes)
        auth.install(self.sign_ins)
        self.token_requests: Counter[tuple[str, str]] = Counter()  # (alias, resource): every process's
        # `cte backend check`: the partner's token service under test ([backend] and --cte-backend-url).
        self.backend_url = backend_url or os.environ.get("CTE_BACKEND_URL")
        self._token_service: Any = None
        self._token_service_spec: Any = None
        if self.backend_url:  # a bad [backend] table or URL: one line now, not in each scenario
            from harness.core.token_service import BackendProfileError, spec_from

            where = str(self.profile.path) if self.profile.path else f"profile {self.profile.name!r}"
            try:
                self._token_service_spec = spec_from(self.profile.data.get("backend"), where, url=self.backend_url)
            except BackendProfileError as err:
                raise ProfileError(str(err)) from None

    def token_wait_limit(self) -> float:
        """How long a scenario may wait for a user's token to expire. A sandbox profile's tenant waits on
        its model clock (replayed: not at all): no limit. A live tenant's waits take real time: its
        profile's [tokens] max_expiry_wait_s (default 0), in a replay of its recording too, so that the
        replay skips what the recording skipped."""
        return float("inf") if self.profile.kind == "sandbox" else self.profile.max_token_wait_s()

    def token_service(self) -> Any:
        """The token service under test with what the tenant offers to check it (TokenServiceSetup);
        MissingPrerequisite without one. Its identifying values join what the run scrubs."""
        if self._token_service is None:
            from harness.conformance.flows.backend import TokenServiceSetup, second_tenant
            from harness.core.token_service import known_secrets
            from harness.wire.contract import SANDBOX_EXCHANGE_LOG_PATH

            spec = self._token_service_spec
            if spec is None:
                raise MissingPrerequisite(
                    "no token service to check: run these scenarios with cte backend check --url URL"
                )
            tenant = self.tenant()
            second = second_tenant(tenant, spec, os.environ)
            password = str(second.users["second-tenant"].password) if second is not None else None
            self.known_secrets.update(known_secrets(spec, password))
            # The exchange log is the ACS resource's: at the tenant's ACS endpoint as this mode reaches it.
            log_url = f"{tenant.acs_endpoint}{SANDBOX_EXCHANGE_LOG_PATH}" if spec.exchange_log_url else None
            self._token_service = TokenServiceSetup(spec, second, log_url)
        return self._token_service

    @property
    def known_secrets(self) -> dict[str, str]:
        return self.mode.known_secrets

    @property
    def profile_argument(self) -> str:
        """The profile as a command line names it: a packaged one by its name, any other by its path."""
        path = self.profile.path
        return str(path) if path is not None and path.parent.resolve() != PROFILE_DIR else self.profile.name

    def tenant(self, profile: Profile | None = None) -> Tenant:
        return self.mode.tenant(profile)

    def receiver(self) -> Any:
        """The notification receiver, started on first use, trusting the keys the mode says Graph signs with."""
        if self._receiver is None:
            from harness.client.notifications.service import ReceiverService

            trust = self.mode.receiver_trust()
            self._receiver = ReceiverService.start(
                audience=self.tenant().client_id,
                trusted_keys=trust.keys,
                public_url=trust.public_url,
                port=trust.port,
                capture=self._capture,
            )
        return self._receiver

    def notification_environment(self, inbound: Any) -> Any:
        """What a notifications scenario works with (MissingPrerequisite when the receiver cannot start)."""
        from harness.conformance.flows.notifications import NotificationEnvironment

        service = self.receiver()
        return NotificationEnvironment(
            service=service,
            audience=self.tenant().client_id,
            inbound=inbound,
            trigger_lifecycle=self.mode.lifecycle_trigger(),
            signer=self.mode.signer(),
            lifecycle_wait_s=self.tenant().lifecycle_wait_s,
        )

    def report(
        self,
        setup: ScenarioSetup,
        when: str,
        outcome: str,
        skip_reason: str,
        error: BaseException | None,
        test_name: str,
    ) -> ReportedScenario:
        """A scenario's test report (its phase `when`, its `outcome`, the `error` raised) judged by
        harness.reporting.session.report_scenario with what the session knows: its profile, the
        deviations it expects, its secrets."""
        return report_scenario(
            setup.run,
            outcome=outcome,
            skip_reason=skip_reason,
            error=error,
            test_name=test_name,
            cassette=setup.cassette,
            profile=self.profile_argument,
            unused=setup.unused if when == "call" else None,  # replay: known once the scenario has ended
            elapsed=setup.elapsed(),
            deviations=self.deviations,
            known_secrets=self.known_secrets,
        )

    def _capture(self, entry: dict[str, Any]) -> None:
        if self.mode.capture_sink is not None:
            self.mode.capture_sink(entry)

    def take_token_requests(self) -> list[tuple[str, str, int]]:
        """This process's token requests since the last take (a scenario's, handed on with its report)."""
        return self.sign_ins.take()

    def count_token_requests(self, taken: Iterable[tuple[str, str, int]]) -> None:
        """A scenario's token requests, from this process or an xdist worker."""
        for alias, resource, sent in taken:
            self.token_requests[alias, resource] += sent

    def token_requests_by_user(self) -> dict[str, dict[str, int]]:
        """alias -> resource -> token requests sent to Entra ID over the run (every worker's)."""
        self.count_token_requests(self.take_token_requests())  # any made outside a scenario's report
        by_user: dict[str, dict[str, int]] = {}
        for (alias, resource), sent in sorted(self.token_requests.items()):
            by_user.setdefault(alias, {})[resource] = sent
        return by_user

    def stale(self) -> list[expectations.Deviation]:
        """The profile's expected deviations this run no longer gives."""
        return expectations.stale(self.deviations, self.results)

    def run_info(self) -> dict[str, Any]:
        """The `run` block of the reports."""
        return {
            "id": self.run_id,
            "mode": self.mode.name,
            "profile": self.profile.name,
            "started": self.started.isoformat().replace("+00:00", "Z"),
            "duration_s": round(time.monotonic() - self.clock_start, 3),
            "harness_version": __version__,
            **({"sandbox": health} if (health := self.mode.health()) is not None else {}),
            "embedded_sandbox": "harness.sandbox" in sys.modules,  # False: the tenant was reached only by its profile
            "token_requests": self.token_requests_by_user(),
        }

    def write_reports(self) -> dict[str, Path]:
        from harness.reporting import write_reports

        return write_reports(
            self.results,
            report_dir=self.report_dir,
            run=self.run_info(),
            known_secrets=self.known_secrets,
            stale=[d.__dict__ for d in self.stale()],
        )

    def close(self) -> None:
        auth.uninstall(self.sign_ins)
        # The receiver and the mode's servers (the embedded sandbox) stop side by side: each stop is mostly
        # uvicorn's wait for its connections to close, which need not be waited out one after the other.
        receiver_stopped = _in_thread(self._receiver.stop) if self._receiver is not None else None
        try:
            self.mode.close()
        finally:
            if receiver_stopped is not None:
                receiver_stopped()
        if (browser := sys.modules.get("harness.client.calling.browser")) is not None:  # its Chromium, if started
            browser.close_shared_browsers()


class ScenarioSetup:
    """One Gherkin scenario as it runs: its ScenarioRun, and what its mode gave it when it started (a
    fresh world; record and replay: its cassette, the inbound notifications, the Calling SDK's recording)."""

    def __init__(self, nodeid: str, example_params: Mapping[str, Any], feature: Any, scenario: Any) -> None:
        example = _example_label(example_params)
        tags = set(feature.tags) | set(scenario.tags)
        self.area = next((p for p in Path(feature.filename).parts if p in AREAS), "tenant")
        self.run = ScenarioRun(
            id=nodeid.split("::")[-1],
            name=scenario.name + (f" [{example}]" if example and example not in scenario.name else ""),
            feature=feature.name,
            area=self.area,
            row=_row(tags),
            tags=sorted(tags),
        )
        self.described = Scenario(nodeid, self.area, feature.filename, scenario.name, example)
        self.started = time.monotonic()
        self.stack = contextlib.ExitStack()
        self.cassette: Path | None = None
        self.inbound: Any = None
        self.sdk_cassette: Any = None
        self.unused: Any = None  # replay: a recording.UnusedInteractions, once the scenario has ended

    def begin(self, cte: CteSession) -> None:
        """What the mode gives the scenario as it starts; on failure, whatever was set up is undone."""
        try:
            self._begin(cte)
        except BaseException:
            self.stack.close()  # pytest-bdd calls no after-scenario hook for a scenario that never started
            raise

    def _begin(self, cte: CteSession) -> None:
        self.cassette = cte.mode.cassette_for(self.described)  # first: a cassette that does not load is explained
        receiver = cte.receiver if self.area == "notifications" else None
        recording = cte.mode.begin(self.described, self.stack, receiver)
        if recording is None:
            return
        self.run.cassette = recording.shown
        self.inbound = recording.inbound
        if self.area in ("calling", "policies"):  # what the real Calling SDK answered (browser driver only)
            from harness.client.calling.sdk_cassette import SdkCassette

            scrubber = recording.scrubber

            def scrub(value: Any) -> Any:
                scrubber.learn_all(cte.known_secrets)  # a tenant resolved mid-scenario is known too
                return scrubber.json_value(value)

            self.sdk_cassette = SdkCassette(recording.path, record=recording.record, scrub=scrub)
            self.stack.callback(self.sdk_cassette.finish)

    def finish(self, cleanups: list[Callable[[], Any]]) -> None:
        """The scenario's clean-ups (best effort, newest first), then its cassettes closed."""
        for cleanup in reversed(cleanups):
            with contextlib.suppress(Exception):  # clean-up is best effort; its failure is not the scenario's
                cleanup()
        self.stack.close()
        if self.cassette is not None:  # replay: recorded interactions this scenario never asked for
            self.unused = take_unused(self.cassette)

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def _in_thread(work: Callable[[], Any]) -> Callable[[], None]:
    """`work` started in a thread of its own; returns what waits for it to end and raises what it raised."""
    raised: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to whoever waits
            raised.append(exc)

    thread = threading.Thread(target=run, name="cte-stop", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if raised:
            raise raised[0]

    return wait


def _row(tags: set[str]) -> int | None:
    for tag in tags:
        if tag.startswith("row-") and tag[4:].isdigit():
            return int(tag[4:])
    return None


def _example_label(params: Mapping[str, Any]) -> str | None:
    """A Scenario Outline example's name: its `case` column, else its first value, else None."""
    example = params.get("_pytest_bdd_example") or {}
    if not example:
        return None
    return str(example.get("case") or next(iter(example.values())))
