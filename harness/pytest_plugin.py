"""The pytest plugin (the only harness module that imports pytest): options, hooks, thin fixtures. The session:
harness.run.session.CteSession; each Gherkin scenario: a ScenarioSetup there; its verdict when it ends:
harness.reporting.session; the terminal's summary: harness.reporting.terminal."""

from __future__ import annotations

import gc
import importlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from harness.conformance.scenario import ScenarioRun
from harness.core.config import ProfileError, Tenant
from harness.core.prerequisites import MissingPrerequisite
from harness.reporting.session import scrub_report_files
from harness.reporting.terminal import last_line, summary
from harness.run.cli import embedded_sandbox
from harness.run.modes import Pacing
from harness.run.session import GHERKIN_TAGS, CteSession, ScenarioSetup, scenario_order

SETUP_KEY = pytest.StashKey[ScenarioSetup]()
CLEANUPS_KEY = pytest.StashKey[list]()
STEP_LOOKUP_KEY = pytest.StashKey[Any]()  # pytest-bdd's step lookup, while ours stands in for it
# Set to 1, every step is looked up both ways and a difference stops the run (make test's replay run does).
CHECK_STEP_LOOKUP_ENV = "CTE_CHECK_STEP_LOOKUP"
RESULT_PROPERTY = "cte_result"
TOKENS_PROPERTY = "cte_token_requests"  # (alias, resource, count): the token requests made in this phase
_SESSIONS: list[CteSession] = []  # the session of this process (logreport gets no config)
OPTIONS = {  # --cte-NAME: its help (each CteSession argument but order)
    "mode": "sandbox (default) | replay | record | live; or CTE_MODE",
    "profile": "profile name or .toml path (default: sandbox); or CTE_PROFILE",
    "report-dir": "where to write reports (default: reports/<run-id>)",
    "cassette-dir": "the cassettes replay reads and record writes (default: cassettes/)",
    "calling": "calling driver: sandbox (the sandbox's model) | browser (the real Calling SDK); or CTE_CALLING",
    "run-id": "the run's id (default: <UTC stamp>-<mode>); `cte run` passes the one its report folder is named by",
    "backend-url": "the token service cte backend check checks (see [backend] in a profile); or CTE_BACKEND_URL",
    "order": "the order scenarios run in: as written (default) | reverse | shuffle:SEED (a seeded shuffle, the "
    "same in every xdist worker); a verdict must not depend on it",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cte", "cte-conformance")
    for name, text in OPTIONS.items():
        group.addoption(f"--cte-{name}", default=None, help=text)


def _session(config: pytest.Config) -> CteSession:
    return config._cte_session  # type: ignore[attr-defined]


def _setup(node: pytest.Item) -> ScenarioSetup | None:
    return node.stash.get(SETUP_KEY, None)


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    for tag, meaning in GHERKIN_TAGS.items():
        config.addinivalue_line("markers", f"{tag}: {meaning}")
    try:
        scenario_order(config.getoption("--cte-order"))
        options = {name.replace("-", "_"): config.getoption(f"--cte-{name}") for name in OPTIONS if name != "order"}
        config._cte_session = CteSession(**options, embedded=embedded_sandbox)  # type: ignore[attr-defined]
    except ProfileError as err:
        raise pytest.UsageError(str(err)) from None
    _SESSIONS.append(config._cte_session)  # type: ignore[attr-defined]
    config.stash[STEP_LOOKUP_KEY] = _step_definitions_once()


def _step_definitions_once() -> Callable[..., Any] | None:
    """pytest-bdd finds the definitions of each step of each scenario by asking pytest, for every fixture
    name the session has (a few hundred), whether it is visible to the scenario and is a step definition
    that parses the step: about a millisecond a step, four steps a scenario. Which step definitions a
    scenario sees depends only on its parent node (they are fixtures of modules and conftests, never of one
    test), so they are listed once per parent, in pytest-bdd's order, and each step is matched against that
    list only: the same definitions, in the same order. Listed again when the session's fixture names
    change. Returns pytest-bdd's own lookup, put back at unconfigure (None: a pytest-bdd without the parts
    this relies on; nothing is replaced). With CTE_CHECK_STEP_LOOKUP=1 each lookup is also made pytest-bdd's
    way, and any difference stops the run: `make replay` runs so."""
    try:
        bdd = importlib.import_module("pytest_bdd.scenario")  # the module (the package's `scenario` is a function)
        find, names, visible_defs = bdd.find_fixturedefs_for_step, bdd.get_fixture_names, bdd.getfixturedefs
        registry = bdd.step_function_context_registry
    except (ImportError, AttributeError):
        return None
    listed: dict[tuple[Any, ...], list[tuple[Any, Any]]] = {}

    def find_once(step: Any, fixturemanager: Any, node: Any) -> Iterator[Any]:
        every = names(fixturemanager=fixturemanager)
        key = (id(fixturemanager), node.parent, len(every))
        if (definitions := listed.get(key)) is None:
            definitions = listed[key] = [
                (fixturedef, context)
                for name in every
                for fixturedef in visible_defs(fixturemanager, name, node) or []
                if (context := registry.get(fixturedef.func)) is not None
            ]
        found = [
            fixturedef
            for fixturedef, context in definitions
            if (context.type is None or context.type == step.type) and context.parser.is_matching(step.name)
        ]
        if checking and found != (theirs := list(find(step, fixturemanager, node))):
            raise RuntimeError(
                f"the step lookup shortcut disagrees with pytest-bdd's for {step.name!r} in {node.nodeid}: "
                f"{[d.argname for d in found]} vs {[d.argname for d in theirs]}: pytest-bdd's internals changed; pin "
                "pytest-bdd to the last version that agrees"
            )
        return iter(found)

    checking = os.environ.get(CHECK_STEP_LOOKUP_ENV) == "1"
    bdd.find_fixturedefs_for_step = find_once
    return find  # type: ignore[no-any-return]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """--cte-order: the scenarios reversed or shuffled (each starts from a fresh world: same verdicts)."""
    if (order := scenario_order(config.getoption("--cte-order"))) is not None:
        items[:] = order(items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What start-up and collection made (modules, features, items: live for the session) is left out of
    the garbage collector's full passes from now on (gc.freeze): each pass walked them all, a few times a
    run and twice more as the interpreter exits, about a twentieth of a replay run. They stay out until
    the process ends (a process that runs pytest again in itself keeps the first session's frozen)."""
    gc.freeze()


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
    """name -> the tenant the profile's [misconfigured] names (none named: a SKIP naming the entry to add)."""
    return cte.mode.misconfigured


@pytest.fixture
def graph_pacing(cte: CteSession, request: pytest.FixtureRequest) -> Pacing:
    """Markers and retry sleep: reproducible, no real waits with a cassette; random, real waits against a service."""
    return cte.mode.pacing(request.node.nodeid)


@pytest.fixture
def notification_environment(cte: CteSession, request: pytest.FixtureRequest) -> Any:
    setup = _setup(request.node)
    try:
        return cte.notification_environment(setup.inbound if setup is not None else None)
    except MissingPrerequisite as err:
        pytest.skip(str(err))


@pytest.fixture
def scenario_cleanup(request: pytest.FixtureRequest) -> Callable[[Callable[[], Any]], None]:
    """Register work (deleting a subscription, say) for the scenario's end, while its cassette is open (recorded)."""
    return request.node.stash.setdefault(CLEANUPS_KEY, []).append


@pytest.fixture
def calling_sdk_cassette(request: pytest.FixtureRequest) -> Any:
    """In record and replay modes: the scenario's recording of the real Calling SDK (browser driver)."""
    return setup.sdk_cassette if (setup := _setup(request.node)) is not None else None


@pytest.fixture
def scenario_run(request: pytest.FixtureRequest) -> ScenarioRun:
    if (setup := _setup(request.node)) is None:
        raise RuntimeError("scenario_run is only available inside a Gherkin scenario")
    return setup.run


# -- scenario lifecycle --------------------------------------------------------------------------------
def pytest_bdd_before_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    item = request.node
    params = getattr(getattr(item, "callspec", None), "params", {})
    setup = item.stash[SETUP_KEY] = ScenarioSetup(item.nodeid, params, feature, scenario)
    setup.begin(_session(request.config))


def pytest_bdd_after_scenario(request: pytest.FixtureRequest, feature: Any, scenario: Any) -> None:
    if (setup := _setup(request.node)) is not None:
        setup.finish(request.node.stash.get(CLEANUPS_KEY, []))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    report = yield
    if taken := _session(item.config).take_token_requests():
        report.user_properties.append((TOKENS_PROPERTY, taken))  # with -n, carried to the controller
    setup = _setup(item)
    if setup is None or report.when not in ("setup", "call") or (report.when == "setup" and report.passed):
        return report
    excinfo = call.excinfo
    if excinfo is not None and excinfo.errisinstance(MissingPrerequisite):
        report.outcome = "skipped"
        report.longrepr = (str(item.path), item.location[1] or 0, f"Skipped: {excinfo.value}")
    longrepr, error = report.longrepr, excinfo.value if excinfo is not None else None
    reason = (longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)) if report.skipped else ""
    name = getattr(item, "originalname", item.name)
    reported = _session(item.config).report(setup, report.when, report.outcome, reason, error, name)
    report.outcome = reported.outcome
    if reported.longrepr is not None:
        report.longrepr = reported.longrepr
    report.user_properties.append((RESULT_PROPERTY, reported.result))  # with -n, carried to the controller
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect each scenario's result once, from its own report (serial, or sent by an xdist worker)."""
    if not _SESSIONS:
        return
    for name, value in report.user_properties:
        if name == RESULT_PROPERTY and report.when != "teardown":
            _SESSIONS[-1].results.append(value)
        elif name == TOKENS_PROPERTY:
            _SESSIONS[-1].count_token_requests(value)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Allure's and JUnit's files redacted once their plugins are done; then the session closed."""
    if (find := config.stash.get(STEP_LOOKUP_KEY, None)) is not None:
        importlib.import_module("pytest_bdd.scenario").find_fixturedefs_for_step = find
    cte = getattr(config, "_cte_session", None)
    if cte is None:
        return
    option = config.option
    scrub_report_files(cte.known_secrets, getattr(option, "allure_report_dir", None), getattr(option, "xmlpath", None))
    cte.close()


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    cte = getattr(config, "_cte_session", None)
    if cte is None or not cte.results or hasattr(config, "workerinput"):  # an xdist worker: the controller writes
        return
    paths = cte.write_reports()
    terminalreporter.section(f"cte-conformance: {cte.mode.name} mode, profile {cte.profile.name}")
    for line in summary(cte.results, cte.stale(), paths["json"].parent):
        terminalreporter.write_line(line)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):  # type: ignore[no-untyped-def]
    """After pytest's own summary line ("70 passed", which counts a WARN as passed): the harness's."""
    result = yield
    config = session.config
    cte, reporter = getattr(config, "_cte_session", None), config.pluginmanager.get_plugin("terminalreporter")
    if cte is None or reporter is None or hasattr(config, "workerinput"):
        return result
    status = int(session.exitstatus)
    if (line := last_line(cte.results, status, status == pytest.ExitCode.NO_TESTS_COLLECTED)) is not None:
        reporter.write_line(line)
    return result
