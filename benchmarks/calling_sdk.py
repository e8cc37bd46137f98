"""The real Calling SDK offline: what it costs beside the sandbox model, measured in the same run.

    .venv/bin/python benchmarks/calling_sdk.py [--repeat N] [--checks N] [--json PATH]

Figures (median of --repeat):
- time to a first TeamsCallAgent offline on the driver's virtual page clock, against the same on
  the real clock (the SDK waiting out Microsoft's unreachable configuration services);
- one offline check through the bridge (join a teams.live.com link -> 400/40238), against the same
  check answered by the sandbox model over HTTPS;
- the calling scenarios with `--calling browser`, against the same scenarios with the sandbox driver.
Prints figures (and with `--json`, writes them); asserts nothing. Needs chromium and `make calling-sdk`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from suite_timing import PYTEST, Runs, figure, timed  # noqa: E402 - a sibling script

from harness.client.calling import driver_for  # noqa: E402
from harness.client.calling.browser import BrowserUnavailable, CallingSdkBrowser, check_available  # noqa: E402
from harness.client.calling.protocol import CallingCommunicationError, MeetingLink  # noqa: E402
from harness.conformance.flows.identity import IdentityFlow  # noqa: E402
from harness.core.config import load_profile  # noqa: E402
from harness.sandbox.server import Sandbox  # noqa: E402
from harness.wire import transport  # noqa: E402

PERSONAL_USE = {"meetingLink": "https://teams.live.com/meet/9391234567890?p=abcdEFGH"}


def first_agent(token: str, *, virtual_clock: bool) -> tuple[float, float]:
    """Seconds to a TeamsCallAgent (page open + createTeamsCallAgent), and the page load alone."""
    with CallingSdkBrowser(offline=True, virtual_clock=virtual_clock) as browser:
        started = time.perf_counter()
        page = browser.open_page()
        answer = page.call("createTeamsCallAgent", token)
        assert answer["ok"], answer
        return time.perf_counter() - started, page.load_ms / 1000


def sdk_checks(token: str, checks: int) -> list[float]:
    with CallingSdkBrowser(offline=True, virtual_clock=True) as browser:
        page = browser.open_page()
        page.call("createTeamsCallAgent", token)
        times = []
        for _ in range(checks):
            started = time.perf_counter()
            answer = page.call("join", PERSONAL_USE)
            times.append((time.perf_counter() - started) * 1000)
            assert answer["error"]["subCode"] == 40238, answer
        return times


def model_checks(tenant: Any, token: str, checks: int) -> list[float]:
    model = driver_for(tenant)
    agent = model.create_teams_call_agent(token)
    times = []
    for _ in range(checks):
        started = time.perf_counter()
        try:
            agent.join(MeetingLink(PERSONAL_USE["meetingLink"]))
        except CallingCommunicationError as err:
            assert err.sub_code == 40238
        times.append((time.perf_counter() - started) * 1000)
    model.close()
    return times


def measure(repeat: int, checks: int) -> dict[str, Any]:
    check_available()
    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        tenant = load_profile("sandbox").for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")
        flow = IdentityFlow(tenant)
        flow.sign_in_with_password("adele")
        flow.exchange_token()
        token = str(flow.exchange.token)
        virtual, real, loads = [], [], []
        for _ in range(repeat):
            seconds, load = first_agent(token, virtual_clock=True)
            virtual.append(seconds)
            loads.append(load)
            real.append(first_agent(token, virtual_clock=False)[0])
        sdk = sdk_checks(token, checks)
        model = model_checks(tenant, token, checks)
    suites: dict[str, list[float]] = {"browser": [], "sandbox": []}
    said = Runs()  # a failed run's time is kept, and the failure said (as suite_timing does)
    with tempfile.TemporaryDirectory() as reports:
        for n in range(repeat):
            for driver in suites:
                report = f"--cte-report-dir={reports}/{driver}{n}"
                command = [*PYTEST, "-k", "calling", f"--cte-calling={driver}", report]
                suites[driver].append(timed(command, said, driver, n))
    return {
        "name": "calling_sdk",
        "params": {"repeat": repeat, "checks": checks, "statistic": "median"},
        "figures": [
            figure("first TeamsCallAgent offline, virtual page clock", virtual, "s", "the same, real clock", real),
            figure(
                "offline check through the real SDK (join teams.live.com -> 40238)",
                sdk,
                "ms",
                "the same check by the sandbox model over HTTPS",
                model,
            ),
            figure(
                "calling scenarios (-k calling), --calling browser",
                suites["browser"],
                "s",
                "the same scenarios, sandbox driver",
                suites["sandbox"],
            ),
        ],
        "details": {
            "page_and_sdk_load_ms": round(statistics.median(loads) * 1000, 1),
            "verdicts": said.verdicts,
            "failures": said.failures,
        },
    }


def report(result: dict[str, Any]) -> None:
    agent, check, suite = result["figures"]
    print(f"runs per figure: {result['params']['repeat']} (median shown); checks: {result['params']['checks']}")
    print(
        f"first TeamsCallAgent offline: {agent['value']:.2f} s on the virtual clock, "
        f"{agent['baseline_value']:.2f} s on the real clock ({agent['ratio']:.3f}x)"
    )
    print(f"page + SDK load: {result['details']['page_and_sdk_load_ms']:.0f} ms")
    print(
        f"one offline check: {check['value']:.2f} ms through the real SDK, "
        f"{check['baseline_value']:.2f} ms by the sandbox model ({check['ratio']:.2f}x)"
    )
    print(
        f"calling scenarios: {suite['value']:.1f} s with --calling browser, {suite['baseline_value']:.1f} s with "
        f"the sandbox driver ({suite['ratio']:.2f}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checks", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file")
    args = parser.parse_args()
    try:
        result = measure(args.repeat, args.checks)
    except BrowserUnavailable as missing:
        print(f"calling_sdk: not measured: {missing}")
        sys.exit(1)
    report(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
