"""The pytest plugin (the only harness module that imports pytest): modes, fixtures, cassettes, verdicts, reports.

Options: --cte-mode (or CTE_MODE), --cte-profile (or CTE_PROFILE), --cte-report-dir, --cte-order.
Each Gherkin scenario gets a ScenarioRun (`scenario_run` fixture) and what its mode gives it when it
starts (the embedded sandbox: a freshly seeded tenant; record and replay: its own cassette too); its
verdict is judged from expectation + observation when it ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from harness import __version__
from harness.conformance import expectations
from harness.conformance.scenario import AREAS, ScenarioRun, VerdictFailed
from harness.conformance.verdicts import Fault, Skipped
from harness.core.cassettes import explain_mismatch, take_unused
from harness.core.config import PROFILE_DIR, Profile, ProfileError, Tenant, load_profile, resolve_mode
from harness.core.prerequisites import MissingPrerequisite
from harness.reporting import redact_result, write_reports
from harness.run.modes import Pacing, Scenario, mode_for

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
UNUSED_KEY = pytest.StashKey[Any]()  # replay: a recording.UnusedInteractions


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cte", "cte-conformance")
    group.addoption("--cte-mode", default=None, help="sandbox (default) | replay | record | live; or CTE_MODE")
    group.addoption("--cte-profile", default=None, help="profile name or .toml path (default: sandbox); or CTE_PROFILE")
    group.addoption("--cte-report-dir", default=None, help="where to write reports (default: reports/<run-id>)")
    group.addoption(
        "--cte-cassette-dir", default=None, help="the cassettes replay reads and record writes (default: cassettes/)"
    )
    group.addoption(
        "--cte-calling",
        default=None,
        help="calling driver: sandbox (the sandbox's model) | browser (the real Calling SDK); or CTE_CALLING",
    )
    group.addoption(
        "--cte-run-id",
        default=None,
        help="the run's id (default: <UTC stamp>-<mode>); `cte run` passes the one its report folder is named by",
    )
    group.addoption(
        "--cte-order",
        default=None,
        help="the order scenarios run in: as written (default) | reverse | shuffle:SEED (a seeded shuffle, the "
        "same in every xdist worker); a verdict must not depend on it",
    )


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


def embedded_sandbox(**options: Any) -> Any:
    """The plugin may start the embedded sandbox (harness.run.modes asks it to, for a sandbox profile);
    imported only then, so a live run never loads it."""
    from harness.sandbox.server import embedded

    return embedded(**options)


class CteSession:
    """Session-wide state: the mode object (which owns the tenants, trust and cassettes), the
    webhook receiver (started on first use), the results. Nothing here asks which mode it is."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        mode = resolve_mode(config.getoption("--cte-mode"))
        self.profile = load_profile(config.getoption("--cte-profile") or os.environ.get("CTE_PROFILE") or "sandbox")
        calling = calling_driver_option(config.getoption("--cte-calling") or os.environ.get("CTE_CALLING"))
        cassette_dir = config.getoption("--cte-cassette-dir") or os.environ.get("CTE_CASSETTE_DIR")
        self.mode = mode_for(
            mode,
            self.profile,
            calling=calling,
            cassette_dir=Path(cassette_dir) if cassette_dir else None,
            embedded=embedded_sandbox,
        )
        self.started = datetime.now(UTC)
        self.clock_start = time.monotonic()
        self.run_id = config.getoption("--cte-run-id") or self.started.strftime("%Y%m%dT%H%M%SZ") + f"-{mode}"
        report_dir = config.getoption("--cte-report-dir")
        self.report_dir = Path(report_dir) if report_dir else Path("reports") / self.run_id
        self.results: list[dict[str, Any]] = []
        self._receiver: Any = None
        self.deviations = expectations.load(expectations.expectations_path(self.profile.path, self.profile.name))

    @property
    def known_secrets(self) -> dict[str, str]:
        return self.mode.known_secrets

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

    def _capture(self, entry: dict[str, Any]) -> None:
        if self.mode.capture_sink is not None:
            self.mode.capture_sink(entry)

    def close(self) -> None:
        if self._receiver is not None:
            self._receiver.stop()
        self.mode.close()


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
        scenario_order(config.getoption("--cte-order"))
        config._cte_session = CteSession(config)  # type: ignore[attr-defined]
    except ProfileError as err:
        raise pytest.UsageError(str(err)) from None
    _SESSIONS.append(config._cte_session)  # type: ignore[attr-defined]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--cte-order: the scenarios in reverse or in a seeded shuffle (each starts from a fresh world,
    so its verdict must not change)."""
    order = scenario_order(config.getoption("--cte-order"))
    if order is not None:
        items[:] = order(items)


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
def misconfigured_tenant(cte: CteSession):  # type: ignore[no-untyped-def]
    """A function: misconfiguration name -> the tenant the profile's [misconfigured] names for it
    (a MissingPrerequisite, so a SKIP naming the entry to add, when it names none)."""
    return cte.mode.misconfigured


@pytest.fixture
def graph_pacing(cte: CteSession, request: pytest.FixtureRequest) -> Pacing:
    """Message markers and the retry sleep: reproducible markers and no real waiting when a
    cassette is involved; random markers and real waits against a service."""
    return cte.mode.pacing(request.node.nodeid)


@pytest.fixture
def notification_environment(cte: CteSession, request: pytest.FixtureRequest) -> Any:
    from harness.conformance.flows.notifications import NotificationEnvironment

    try:
        service = cte.receiver()
    except MissingPrerequisite as err:
        pytest.skip(str(err))
    return NotificationEnvironment(
        service=service,
        audience=cte.tenant().client_id,
        inbound=request.node.stash.get(INBOUND_KEY, None),
        trigger_lifecycle=cte.mode.lifecycle_trigger(),
        signer=cte.mode.signer(),
        lifecycle_wait_s=cte.tenant().lifecycle_wait_s,
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
    try:
        _begin(cte, item, run, area, feature, scenario, example, stack)
    except BaseException:
        stack.close()  # pytest-bdd calls no after-scenario hook for a scenario that never started
        raise


def _begin(  # type: ignore[no-untyped-def]
    cte: CteSession, item: pytest.Item, run: ScenarioRun, area: str, feature, scenario, example, stack
) -> None:
    """What the mode gives a scenario as it starts: a fresh world (the embedded sandbox), a cassette."""
    described = Scenario(item.nodeid, area, feature.filename, scenario.name, example)
    cassette = cte.mode.cassette_for(described)
    if cassette is not None:
        item.stash[CASSETTE_KEY] = cassette  # first: a cassette that does not load is explained by its path
    recording = cte.mode.begin(described, stack, cte.receiver if area == "notifications" else None)
    if recording is None:
        return
    run.cassette = recording.shown
    if recording.inbound is not None:
        item.stash[INBOUND_KEY] = recording.inbound
    if area in ("calling", "policies"):  # what the real Calling SDK answered (browser driver only)
        from harness.client.calling.sdk_cassette import SdkCassette

        scrubber = recording.scrubber

        def scrub(value: Any) -> Any:
            scrubber.learn_all(cte.known_secrets)  # a tenant resolved mid-scenario is known too
            return scrubber.json_value(value)

        sdk = SdkCassette(recording.path, record=recording.record, scrub=scrub)
        item.stash[SDK_CASSETTE_KEY] = sdk
        stack.callback(sdk.finish)


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    for cleanup in reversed(request.node.stash.get(CLEANUPS_KEY, [])):
        with contextlib.suppress(Exception):  # clean-up is best effort; its failure is not the scenario's
            cleanup()
    stack = request.node.stash.get(STACK_KEY, None)
    if stack is not None:
        stack.close()
    cassette = request.node.stash.get(CASSETTE_KEY, None)
    unused = take_unused(cassette) if cassette is not None else None
    if unused is not None:  # replay: recorded interactions this scenario never asked for
        request.node.stash[UNUSED_KEY] = unused


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
        path = cte.profile.path
        profile = str(path) if path is not None and path.parent.resolve() != PROFILE_DIR else cte.profile.name
        mismatch = explain_mismatch(excinfo.value, cassette, test_name, profile) if cassette else None
        text = "".join(traceback.format_exception(excinfo.value))
        judgement = run.judgement(Fault(mismatch or f"{excinfo.typename}: {excinfo.value}", text))
        if mismatch:
            report.longrepr = mismatch
    else:
        judgement = run.judgement()
        if judgement.verdict in ("ERROR", "FAIL"):
            report.outcome = "failed"
            report.longrepr = f"{judgement.says}: {judgement.detail}"
    unused = item.stash.get(UNUSED_KEY, None) if report.when == "call" else None
    if unused is not None and report.passed and judgement.verdict in ("PASS", "WARN"):
        # A replay that passes without asking for everything the recording holds did less than the client
        # that was recorded (a page not followed, a clean-up not made): the committed cassettes leave none.
        line = unused.line(run.cassette)
        judgement = run.judgement(Fault(line))
        report.outcome = "failed"
        report.longrepr = line
    started = item.stash.get(STARTED_KEY, time.monotonic())
    result = run.report(judgement, time.monotonic() - started)
    if unused is not None:
        result["evidence"]["unused_interactions"] = unused.evidence()
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
    from harness.core import scrubbing

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
    from harness.client.calling.browser import close_shared_browsers  # the browser driver's Chromium, if started

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
            "mode": cte.mode.name,
            "profile": cte.profile.name,
            "started": cte.started.isoformat().replace("+00:00", "Z"),
            "duration_s": round(time.monotonic() - cte.clock_start, 3),
            "harness_version": __version__,
            **({"sandbox": health} if (health := cte.mode.health()) is not None else {}),
            "embedded_sandbox": "harness.sandbox" in sys.modules,  # False: the tenant was reached only by its profile
        },
        known_secrets=cte.known_secrets,
        stale=[d.__dict__ for d in expectations.stale(cte.deviations, cte.results)],
    )
    tr = terminalreporter
    tr.section(f"cte-conformance: {cte.mode.name} mode, profile {cte.profile.name}")
    for line in verdict_table(cte.results):
        tr.write_line(line)
    for deviation in expectations.stale(cte.deviations, cte.results):
        tr.write_line(
            f"stale expectation: {deviation.scenario!r} no longer gives {deviation.verdict} "
            f"({deviation.reason}); remove it from the expectations file"
        )
    for result in sorted(cte.results, key=lambda r: r["evidence"].get("cassette") or ""):
        if unused := result["evidence"].get("unused_interactions"):
            tr.write_line(
                f"unused interactions: cassette {result['evidence'].get('cassette', result['name'])}: "
                f"{unused['count']} of {unused['recorded']} recorded never played ({result['verdict']})"
            )
    expected = sum(1 for r in cte.results if r["evidence"].get("expected_deviation"))
    if expected:
        tr.write_line(f"{expected} known deviation(s) recorded in the profile's expectations file")
    tr.write_line(f"reports: {paths['json'].parent}")


TERMINAL_WIDTH = 100
VERDICT_ORDER = ("ERROR", "FAIL", "WARN", "SKIP", "PASS")


def verdict_table(results: list[dict[str, Any]], width: int = TERMINAL_WIDTH) -> list[str]:
    """The terminal's table: one heading per area, a line per scenario in aligned columns (verdict,
    name, what it says), no line longer than `width` (a long name is cut, never the verdict); what a
    verdict says after its first words (a caveat's advice, a SKIP's reason in a few words) on a line below."""
    from harness.reporting.html import skip_reason

    rows = []
    for result in sorted(results, key=lambda r: (r["area"], r["row"] or 0, r["name"])):
        says, more = result["says"], ""
        if result["verdict"] == "SKIP" and result.get("detail"):
            says, more = "skipped", skip_reason(result["detail"], 60)
        elif len(says) > SAYS_WIDTH and ": " in says:
            says, more = says.split(": ", 1)
        rows.append((result["area"], result["verdict"], result["name"], _cut(says, SAYS_WIDTH), more))
    column = max((len(r[3]) for r in rows), default=0)
    room = width - 11 - column  # "  VERDICT  " before the name, two spaces after it
    lines: list[str] = []
    current = None
    for area, verdict, name, says, more in rows:
        if area != current:
            lines.append(f"{area}:")
            current = area
        lines.append(f"  {verdict:<5}  {_cut_name(name, room):<{room}}  {says}".rstrip())
        if more:
            lines.append(_cut(f"         ↳ {more}", width))
    return lines


SAYS_WIDTH = 20  # "correctly rejected", "caveat confirmed", "not enforced", "skipped"


def _cut_name(name: str, width: int) -> str:
    """A scenario name within `width`: an outline example's label ("[empty app id]") is kept whole,
    the words before it are cut, so the examples stay told apart."""
    base, bracket, label = name.rpartition(" [")
    if len(name) <= width or not bracket or not label.endswith("]") or len(label) + 6 > width:
        return _cut(name, width)
    return f"{_cut(base, width - len(label) - 2)} [{label}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def verdict_line(results: list[dict[str, Any]], exitstatus: int) -> str:
    """The run's last line: the harness's own count of verdicts, and the exit status it ends with."""
    counts = {v: sum(1 for r in results if r["verdict"] == v) for v in VERDICT_ORDER}
    said = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no scenario ran"
    expected = sum(1 for r in results if r["evidence"].get("expected_deviation"))
    if expected:
        said += f" ({expected} known deviation(s))"
    meaning = "no FAIL or ERROR" if exitstatus == 0 else "a FAIL or ERROR" if exitstatus == 1 else "see above"
    return f"cte-conformance: {said}; exit status {int(exitstatus)} ({meaning})"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):  # type: ignore[no-untyped-def]
    """After pytest's own summary line ("70 passed", which counts a WARN as passed): the harness's."""
    result = yield
    config = session.config
    cte = getattr(config, "_cte_session", None)
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if cte is None or reporter is None or hasattr(config, "workerinput"):
        return result
    status = int(session.exitstatus)
    if status == pytest.ExitCode.NO_TESTS_COLLECTED:
        reporter.write_line("cte-conformance: no scenario matched the selection; nothing ran, no report written")
    elif cte.results:
        reporter.write_line(verdict_line(cte.results, status))
    return result


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True)
