"""A scenario's verdict as its test report gives it, and the report files other plugins wrote, scrubbed.

The pytest plugin hands over what pytest knows (the report's outcome, the exception raised); nothing
here imports pytest.
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.conformance import expectations
from harness.conformance.scenario import ScenarioRun, VerdictFailed
from harness.conformance.verdicts import Fault, Skipped
from harness.core import scrubbing
from harness.core.cassettes import explain_mismatch
from harness.reporting import redact_result


@dataclass
class ReportedScenario:
    """What a scenario's test report becomes: its outcome, what pytest shows for it (None: its own)
    and the scenario's result, redacted."""

    outcome: str  # passed | failed | skipped
    longrepr: Any
    result: dict[str, Any]


def report_scenario(
    run: ScenarioRun,
    *,
    outcome: str,
    skip_reason: str = "",
    error: BaseException | None = None,
    cassette: Path | None = None,
    test_name: str = "",
    profile: str = "sandbox",
    unused: Any = None,
    elapsed: float = 0.0,
    deviations: list[expectations.Deviation] | None = None,
    known_secrets: Mapping[str, str] | None = None,
) -> ReportedScenario:
    """The verdict of `run` from the report's `outcome` ("passed", "failed", "skipped") and `error` (what
    the test raised): a skip is a SKIP, a failed verdict its own, any other exception a harness fault
    (a cassette mismatch explained); a judged FAIL or ERROR fails the report; in replay, `unused`
    recorded interactions fail a passing scenario; a deviation the profile expects does not fail it.
    Redacted here, where the tenant's secrets are known (with -n, in the worker)."""
    longrepr = None
    if outcome == "skipped":
        judgement = run.judgement(Skipped(skip_reason.removeprefix("Skipped: ")))
    elif outcome == "failed" and isinstance(error, VerdictFailed):
        judgement = run.judgement()
    elif outcome == "failed" and error is not None:
        mismatch = explain_mismatch(error, cassette, test_name, profile) if cassette else None
        text = "".join(traceback.format_exception(error))
        judgement = run.judgement(Fault(mismatch or f"{type(error).__name__}: {error}", text))
        if mismatch:
            longrepr = mismatch
    else:
        judgement = run.judgement()
        if judgement.verdict in ("ERROR", "FAIL"):
            outcome = "failed"
            longrepr = f"{judgement.says}: {judgement.detail}"
    if unused is not None and outcome == "passed" and judgement.verdict in ("PASS", "WARN"):
        # A replay that passes without asking for everything the recording holds did less than the client
        # that was recorded (a page not followed, a clean-up not made): the committed cassettes leave none.
        line = unused.line(run.cassette)
        judgement = run.judgement(Fault(line))
        outcome = "failed"
        longrepr = line
    result = run.report(judgement, elapsed)
    if unused is not None:
        result["evidence"]["unused_interactions"] = unused.evidence()
    deviation = expectations.match(deviations or [], result["id"], result["name"], result["verdict"])
    if deviation is not None:
        result["evidence"]["expected_deviation"] = deviation.reason
        if outcome == "failed":  # known and recorded for this profile: reported, but not a failure of the run
            outcome = "passed"
    return ReportedScenario(outcome, longrepr, redact_result(result, known_secrets or {}))


def scrub_report_files(known_secrets: Mapping[str, str], allure_dir: str | None, junit_xml: str | None) -> None:
    """Allure's files and the JUnit XML are written by their own plugins: redact them once they are done
    (tracebacks and step parameters may quote a tenant id or a user)."""
    scrubber = scrubbing.Scrubber(known_secrets, unknown_guids=False)
    files = list(Path(allure_dir).glob("*")) if allure_dir and Path(allure_dir).is_dir() else []
    if junit_xml:
        files.append(Path(junit_xml))
    for path in files:
        if path.suffix in (".json", ".txt", ".xml") and path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            cleaned = scrubber.text(text)
            if cleaned != text:
                path.write_text(cleaned, encoding="utf-8")
