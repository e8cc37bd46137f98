"""The pytest plugin (the only harness module that imports pytest): modes, fixtures, cassettes, verdicts, reports.

Options: --cte-mode (or CTE_MODE), --cte-profile (or CTE_PROFILE), --cte-report-dir.
Each Gherkin scenario gets a ScenarioRun (`scenario_run` fixture); in record and replay modes it
runs inside its own cassette; its verdict is judged from expectation + observation when it ends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness import __version__, expectations, transport
from harness.config import Profile, ProfileError, Tenant, load_profile, resolve_mode
from harness.graph import MarkerSource
from harness.recording import (
    cassette_path,
    check_cassette,
    display_path,
    explain_mismatch,
    make_vcr,
)
from harness.reporting import redact_result, write_reports
from harness.scenario import AREAS, MissingPrerequisite, ScenarioRun, VerdictFailed
from harness.verdicts import Fault, Skipped

RUN_KEY = pytest.StashKey[ScenarioRun]()
STACK_KEY = pytest.StashKey[contextlib.ExitStack]()
STARTED_KEY = pytest.StashKey[float]()
CASSETTE_KEY = pytest.StashKey[Path]()
RESULT_PROPERTY = "cte_result"
_SESSIONS: list[CteSession] = []  # the session of this process (logreport gets no config)
INBOUND_KEY = pytest.StashKey[Any]()
CAPTURE_KEY = pytest.StashKey[Any]()
CLEANUPS_KEY = pytest.StashKey[list]()
SDK_CASSETTE_KEY = pytest.StashKey[Any]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cte", "cte-conformance")
    group.addoption("--cte-mode", default=None, help="sandbox (default) | replay | record | live; or CTE_MODE")
    group.addoption("--cte-profile", default=None, help="profile name or .toml path (default: sandbox); or CTE_PROFILE")
    group.addoption("--cte-report-dir", default=None, help="where to write reports (default: reports/<run-id>)")
    group.addoption(
        "--cte-calling",
        default=None,
        help="calling driver: sandbox (the sandbox's model) | browser (the real Calling SDK); or CTE_CALLING",
    )


def calling_driver_option(value: str | None) -> str | None:
    from harness.calling import DRIVERS

    if value and value not in DRIVERS:
        raise ProfileError(f"calling driver {value!r} is not valid; use one of {', '.join(DRIVERS)} (--calling)")
    return value or None


class CteSession:
    """Session-wide state: the mode, the profile, the sandbox (started on first use), the results."""

    def __init__(self, config: pytest.Config) -> None:

        self.config = config
        self.mode = resolve_mode(config.getoption("--cte-mode"))
        self.profile = load_profile(config.getoption("--cte-profile") or os.environ.get("CTE_PROFILE") or "sandbox")
        self.started = datetime.now(UTC)
        self.clock_start = time.monotonic()
        self.run_id = self.started.strftime("%Y%m%dT%H%M%SZ") + f"-{self.mode}"
        report_dir = config.getoption("--cte-report-dir")
        self.report_dir = Path(report_dir) if report_dir else Path("reports") / self.run_id
        self.results: list[dict[str, Any]] = []
        self.known_secrets: dict[str, str] = {}
        self._sandbox: Any = None
        self._stack = contextlib.ExitStack()
        self._tenants: dict[str, Tenant] = {}
        self._receiver: Any = None
        self.deviations = expectations.load(expectations.expectations_path(self.profile.path, self.profile.name))
        self.replay_signer: Any = None
        self.capture_sink: Callable[[dict[str, Any]], None] | None = None
        self._fault_plan = self.fault_plan()  # a bad [faults] table fails here, before any scenario
        self.calling = calling_driver_option(config.getoption("--cte-calling") or os.environ.get("CTE_CALLING"))

    @property
    def uses_sandbox(self) -> bool:
        return self.mode in ("sandbox", "record")

    def sandbox(self) -> Any:
        if self._sandbox is None:
            from harness.sandbox.server import Sandbox  # only the plugin, cli and tests start it

            self._sandbox = self._stack.enter_context(Sandbox(deterministic=self.mode == "record"))
            self._sandbox.ctx.faults.plan = self._fault_plan
            self._stack.enter_context(transport.route_hosts(self._sandbox.host_routes()))
        return self._sandbox

    def fault_plan(self) -> Any:
        """The profile's `[faults]` (the `flaky` profile): random faults the sandbox injects."""
        table = self.profile.data.get("faults")
        if table is None:
            return None
        from harness.sandbox.faults import plan_from_profile

        if self.mode == "record":
            raise ProfileError(f"profile {self.profile.name!r} injects faults; record with a profile without [faults]")
        if self.mode != "sandbox":
            raise ProfileError(
                f"profile {self.profile.name!r} injects faults, which only the sandbox does; run it with --mode sandbox"
            )
        try:
            return plan_from_profile(table, str(self.profile.path or self.profile.name))
        except ValueError as exc:
            raise ProfileError(str(exc)) from None

    def tenant(self, profile: Profile | None = None) -> Tenant:
        profile = profile or self.profile
        if profile.name in self._tenants:
            return self._tenants[profile.name]
        if self.mode == "replay":
            tenant = profile.for_replay()
        elif profile.kind == "sandbox":
            if not self.uses_sandbox:
                raise MissingPrerequisite(
                    f"profile {profile.name!r} is a sandbox tenant; it runs in sandbox, record or replay mode only"
                )
            sandbox = self.sandbox()
            tenant = profile.for_sandbox(sandbox.tenant_info(profile.sandbox_tenant), sandbox.host_routes(), self.mode)
        else:
            tenant = profile.for_live()
        if self.calling:
            tenant = dataclasses.replace(tenant, calling_driver=self.calling)
        self.known_secrets.update(tenant.known_secrets())
        self._tenants[profile.name] = tenant
        return tenant

    # -- the webhook receiver (notifications) ------------------------------------------------------

    def receiver(self) -> Any:
        """The notification receiver, started on first use, trusting the keys Graph signs with here."""
        if self._receiver is None:
            from harness.notifications import crypto
            from harness.notifications.service import ReceiverService

            tenant = self.tenant()
            public_url = None
            if self.mode == "replay":
                self.replay_signer = crypto.TokenSigner()
                keys = {self.replay_signer.kid: self.replay_signer.public_key}
            elif self.profile.kind == "sandbox":
                keys = crypto.jwks_keys(self.sandbox().ctx.entra_signer.jwks())
            else:
                import httpx

                public_url = os.environ.get("CTE_NOTIFICATION_URL") or self.profile.data.get("notifications", {}).get(
                    "public_url"
                )
                if not public_url:
                    raise MissingPrerequisite(
                        "live notifications need a public HTTPS URL in front of the receiver: "
                        "set CTE_NOTIFICATION_URL or [notifications].public_url"
                    )
                jwks = httpx.get("https://login.microsoftonline.com/common/discovery/v2.0/keys", timeout=30).json()
                keys = crypto.jwks_keys(jwks)
            self._receiver = ReceiverService.start(
                audience=tenant.client_id, trusted_keys=keys, public_url=public_url, capture=self._capture
            )
            self._stack.callback(self._receiver.stop)
        return self._receiver

    def _capture(self, entry: dict[str, Any]) -> None:
        if self.capture_sink is not None:
            self.capture_sink(entry)

    def trusted_signer(self) -> Any:
        """Signs validation tokens the receiver trusts: the sandbox's key, or replay's; None live."""
        if self.mode == "replay":
            return self.replay_signer
        if self.profile.kind == "sandbox":
            return _SandboxSigner(self.sandbox())
        return None

    def lifecycle_trigger(self) -> Callable[[str, str], None] | None:
        if self.mode == "replay":
            return lambda subscription_id, event: None  # the recorded lifecycle notification is replayed
        if self.profile.kind == "sandbox":
            return self.sandbox().lifecycle_event
        return None

    def close(self) -> None:
        self._stack.close()


class _SandboxSigner:
    """Validation tokens signed with the sandbox's Entra key (for forging expired ones in tests)."""

    def __init__(self, sandbox: Any) -> None:
        self._sign = sandbox.ctx.entra_signer.sign

    def token(self, audience: str, tenant_id: str, *, lifetime_s: int = 3600) -> str:
        from harness.notifications.crypto import NOTIFICATION_APP_ID

        now = int(time.time())
        return self._sign(
            {
                "aud": audience,
                "iss": f"https://sts.windows.net/{tenant_id}/",
                "iat": now - 60,
                "nbf": now - 60,
                "exp": now + lifetime_s,
                "appid": NOTIFICATION_APP_ID,
                "azp": NOTIFICATION_APP_ID,
                "tid": tenant_id,
                "ver": "1.0",
            }
        )


def _session(config: pytest.Config) -> CteSession:
    return config._cte_session  # type: ignore[attr-defined]


GHERKIN_TAGS = {
    **{area: f"scenarios of the {area} area" for area in AREAS},
    "emulator-defined": "the expected answer is the sandbox's choice: Microsoft documents none",
    "caveat": "a supported row with a documented caveat (WARN when confirmed)",
    "supported": "a row the source table marks supported",
    "unsupported": "a row the source table marks not supported",
    **{f"row-{n}": f"covers row {n} of the source document's table" for n in range(1, 13)},
}


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for tag, meaning in GHERKIN_TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}")
    try:
        config._cte_session = CteSession(config)  # type: ignore[attr-defined]
    except ProfileError as err:
        raise pytest.UsageError(str(err)) from None
    _SESSIONS.append(config._cte_session)  # type: ignore[attr-defined]


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cte(pytestconfig: pytest.Config) -> CteSession:
    return _session(pytestconfig)


@pytest.fixture
def tenant(cte: CteSession) -> Tenant:
    """The tenant of the profile this run was started with."""
    try:
        return cte.tenant()
    except MissingPrerequisite as err:
        pytest.skip(str(err))


@pytest.fixture
def tenant_for(cte: CteSession):  # type: ignore[no-untyped-def]
    """A function: profile name -> Tenant (skips the scenario when this mode cannot provide it)."""

    def lookup(name: str) -> Tenant:
        try:
            return cte.tenant(load_profile(name))
        except (MissingPrerequisite, ProfileError) as err:
            pytest.skip(str(err))

    return lookup


@dataclass
class GraphPacing:
    markers: MarkerSource
    sleep: Callable[[float], None]


@pytest.fixture
def graph_pacing(cte: CteSession, request: pytest.FixtureRequest) -> GraphPacing:
    """Message markers and the retry sleep: reproducible markers and no real waiting when a
    cassette is involved; random markers and real waits against a service."""
    if cte.mode in ("record", "replay"):
        seed = request.node.nodeid
        return GraphPacing(MarkerSource(seed), (lambda _: None) if cte.mode == "replay" else time.sleep)
    return GraphPacing(MarkerSource(), time.sleep)


@pytest.fixture
def notification_environment(cte: CteSession, request: pytest.FixtureRequest) -> Any:
    from harness.notifications.flow import NotificationEnvironment

    try:
        service = cte.receiver()
    except MissingPrerequisite as err:
        pytest.skip(str(err))
    return NotificationEnvironment(
        service=service,
        audience=cte.tenant().client_id,
        inbound=request.node.stash.get(INBOUND_KEY, None),
        trigger_lifecycle=cte.lifecycle_trigger(),
        signer=cte.trusted_signer(),
    )


@pytest.fixture
def scenario_cleanup(request: pytest.FixtureRequest) -> Callable[[Callable[[], Any]], None]:
    """Register work (deleting a subscription, say) to run at the end of the scenario, while its
    cassette is still open, so that it is recorded and replayed with the rest."""
    return request.node.stash.setdefault(CLEANUPS_KEY, []).append


@pytest.fixture
def calling_sdk_cassette(request: pytest.FixtureRequest) -> Any:
    """In record and replay modes: the scenario's recording of the real Calling SDK (browser driver)."""
    return request.node.stash.get(SDK_CASSETTE_KEY, None)


@pytest.fixture
def scenario_run(request: pytest.FixtureRequest) -> ScenarioRun:
    run = request.node.stash.get(RUN_KEY, None)
    if run is None:
        raise RuntimeError("scenario_run is only available inside a Gherkin scenario")
    return run


# -- scenario lifecycle --------------------------------------------------------------------------------


def _area(feature_file: str) -> str:
    parts = Path(feature_file).parts
    return next((p for p in parts if p in AREAS), "tenant")


def _row(tags: set[str]) -> int | None:
    for tag in tags:
        if tag.startswith("row-") and tag[4:].isdigit():
            return int(tag[4:])
    return None


def _example_label(item: pytest.Item) -> str | None:
    """A Scenario Outline example's name: its `case` column, else its first value, else None."""
    params = getattr(getattr(item, "callspec", None), "params", {})
    example = params.get("_pytest_bdd_example") or {}
    if not example:
        return None
    return str(example.get("case") or next(iter(example.values())))


def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    cte = _session(request.config)
    item = request.node
    example = _example_label(item)
    tags = set(feature.tags) | set(scenario.tags)
    area = _area(feature.filename)
    run = ScenarioRun(
        id=item.nodeid.split("::")[-1],
        name=scenario.name + (f" [{example}]" if example and example not in scenario.name else ""),
        feature=feature.name,
        area=area,
        row=_row(tags),
        tags=sorted(tags),
    )
    item.stash[RUN_KEY] = run
    item.stash[STARTED_KEY] = time.monotonic()
    stack = contextlib.ExitStack()
    item.stash[STACK_KEY] = stack
    if cte.mode in ("record", "replay"):
        path = cassette_path(area, feature.filename, scenario.name, example).resolve()
        item.stash[CASSETTE_KEY] = path
        run.cassette = display_path(path)
        record = cte.mode == "record"
        receiver = cte.receiver() if area == "notifications" else None
        if record:
            path.unlink(missing_ok=True)
            if cte.uses_sandbox and cte.profile.kind == "sandbox":
                cte.sandbox().begin_stream(run.cassette)
        else:
            if path.exists():
                check_cassette(path)  # before anything is pushed on the stack: a bad one leaves nothing behind
            allowed = {receiver.server.port} if receiver else set()
            stack.enter_context(transport.block_network("replay mode blocks the network", allow_ports=allowed))
        # The scrubber asks for the session's known secrets at each request, so tenants resolved
        # inside the scenario (a Given step naming another profile) are scrubbed too.
        recorder, scrubber = make_vcr(lambda: cte.known_secrets, record=record)
        stack.enter_context(recorder.use_cassette(str(path)))
        if area in ("calling", "policies"):  # what the real Calling SDK answered (browser driver only)
            from harness.calling.sdk_cassette import SdkCassette

            def scrub(value: Any) -> Any:
                scrubber.learn_all(cte.known_secrets)  # a tenant resolved mid-scenario is known too
                return scrubber.json_value(value)

            sdk = SdkCassette(path, record=record, scrub=scrub)
            item.stash[SDK_CASSETTE_KEY] = sdk
            stack.callback(sdk.finish)
        if receiver is not None:
            from harness.notifications.inbound import InboundCapture, InboundReplayer

            if record:
                capture = InboundCapture(scrubber.json_value)
                cte.capture_sink = capture
                stack.callback(capture.write, path)
                stack.callback(setattr, cte, "capture_sink", None)
            else:
                item.stash[INBOUND_KEY] = InboundReplayer(path, receiver, cte.replay_signer, cte.tenant().client_id)


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    for cleanup in reversed(request.node.stash.get(CLEANUPS_KEY, [])):
        with contextlib.suppress(Exception):  # clean-up is best effort; its failure is not the scenario's
            cleanup()
    stack = request.node.stash.get(STACK_KEY, None)
    if stack is not None:
        stack.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    run = item.stash.get(RUN_KEY, None)
    if run is None or report.when not in ("setup", "call") or (report.when == "setup" and report.passed):
        return report
    cte = _session(item.config)
    excinfo = call.excinfo
    if excinfo is not None and excinfo.errisinstance(MissingPrerequisite):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {excinfo.value}")
    if report.skipped:
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        judgement = run.judgement(Skipped(reason.removeprefix("Skipped: ")))
    elif report.failed and excinfo is not None and excinfo.errisinstance(VerdictFailed):
        judgement = run.judgement()
    elif report.failed and excinfo is not None:
        cassette = item.stash.get(CASSETTE_KEY, None)
        test_name = getattr(item, "originalname", item.name)
        mismatch = explain_mismatch(excinfo.value, cassette, test_name) if cassette else None
        text = "".join(traceback.format_exception(excinfo.value))
        judgement = run.judgement(Fault(mismatch or f"{excinfo.typename}: {excinfo.value}", text))
        if mismatch:
            report.longrepr = mismatch
    else:
        judgement = run.judgement()
        if judgement.verdict in ("ERROR", "FAIL"):
            report.outcome = "failed"
            report.longrepr = f"{judgement.says}: {judgement.detail}"
    started = item.stash.get(STARTED_KEY, time.monotonic())
    result = run.report(judgement, time.monotonic() - started)
    deviation = expectations.match(cte.deviations, result["id"], result["name"], result["verdict"])
    if deviation is not None:
        result["evidence"]["expected_deviation"] = deviation.reason
        if report.failed:  # known and recorded for this profile: reported, but not a failure of the run
            report.outcome = "passed"
    # Redacted here, where the tenant's secrets are known (with -n, in the worker), then carried on the
    # report to whoever writes the reports (with -n, the controller).
    report.user_properties.append((RESULT_PROPERTY, redact_result(result, cte.known_secrets)))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect each scenario's result once, from its own report (serial, or sent by an xdist worker)."""
    if not _SESSIONS or report.when == "teardown":
        return
    for name, value in report.user_properties:
        if name == RESULT_PROPERTY:
            _SESSIONS[-1].results.append(value)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Allure's files are written by its own plugin: redact them once it is done (tracebacks and
    step parameters may quote a tenant id or a user)."""
    cte = getattr(config, "_cte_session", None)
    directory = getattr(config.option, "allure_report_dir", None)
    if cte is None:
        return
    from harness import scrubbing

    scrubber = scrubbing.Scrubber(cte.known_secrets, unknown_guids=False)
    files = list(Path(directory).glob("*")) if directory and Path(directory).is_dir() else []
    if getattr(config.option, "xmlpath", None):
        files.append(Path(config.option.xmlpath))
    for path in files:
        if path.suffix in (".json", ".txt", ".xml") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            cleaned = scrubber.text(text)
            if cleaned != text:
                path.write_text(cleaned, encoding="utf-8")
    cte.close()
    from harness.calling.browser import close_shared_browsers  # the browser driver's Chromium, if started

    close_shared_browsers()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    cte = getattr(config, "_cte_session", None)
    if cte is None or not cte.results or hasattr(config, "workerinput"):  # an xdist worker: the controller writes
        return
    paths = write_reports(
        cte.results,
        report_dir=cte.report_dir,
        run={
            "id": cte.run_id,
            "mode": cte.mode,
            "profile": cte.profile.name,
            "started": cte.started.isoformat().replace("+00:00", "Z"),
            "duration_s": round(time.monotonic() - cte.clock_start, 3),
            "harness_version": __version__,
            **({"sandbox": cte._sandbox.health()} if cte._sandbox is not None else {}),
        },
        known_secrets=cte.known_secrets,
        stale=[d.__dict__ for d in expectations.stale(cte.deviations, cte.results)],
    )
    tr = terminalreporter
    tr.section(f"cte-conformance: {cte.mode} mode, profile {cte.profile.name}")
    width = max(len(r["name"]) for r in cte.results)
    for result in sorted(cte.results, key=lambda r: (r["area"], r["row"] or 0, r["name"])):
        tr.write_line(f"{result['verdict']:<5}  {result['area']:<9}  {result['name']:<{width}}  {result['says']}")
    counts: dict[str, int] = {}
    for result in cte.results:
        counts[result["verdict"]] = counts.get(result["verdict"], 0) + 1
    tr.write_line(", ".join(f"{n} {v}" for v, n in sorted(counts.items())))
    for deviation in expectations.stale(cte.deviations, cte.results):
        tr.write_line(
            f"stale expectation: {deviation.scenario!r} no longer gives {deviation.verdict} "
            f"({deviation.reason}); remove it from the expectations file"
        )
    expected = sum(1 for r in cte.results if r["evidence"].get("expected_deviation"))
    if expected:
        tr.write_line(f"{expected} known deviation(s) recorded in the profile's expectations file")
    tr.write_line(f"reports: {paths['json'].parent}")


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
