"""Reports of a real run: schema-valid conformance.json, the source table in Markdown, no secrets, verdicts
that follow the observation (a tampered recording turns a PASS into a FAIL and the exit status non-zero)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from harness.reporting import SCHEMA_PATH

ROOT = Path(__file__).resolve().parent.parent
GARBAGE = (
    "cassettes/identity/token-exchange/"
    "a-bad-exchange-request-is-rejected-exactly-as-the-real-service-rejects-it--garbage-token.yaml"
)


def cte_run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "run", "-q", "--report-dir", str(tmp_path / "reports"), *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def sandbox_run(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("run")
    result = cte_run(tmp, "--mode", "sandbox")
    assert result.returncode == 0, result.stdout[-3000:]
    return tmp / "reports"


def test_conformance_json_follows_its_schema(sandbox_run: Path) -> None:
    document = json.loads((sandbox_run / "conformance.json").read_text())
    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
    assert document["run"]["mode"] == "sandbox" and document["run"]["profile"] == "sandbox"
    assert sum(document["summary"].values()) == len(document["scenarios"]) >= 21
    verdicts = {s["name"]: s["verdict"] for s in document["scenarios"]}
    assert verdicts.pop("Webinar roles are not honoured for Teams users") == "WARN"
    assert set(verdicts.values()) == {"PASS"}
    emulated = [s for s in document["scenarios"] if "emulator-defined" in s["tags"]]
    assert emulated and all(s["evidence"].get("emulator_defined") for s in emulated)


def test_markdown_shows_the_source_table(sandbox_run: Path) -> None:
    text = (sandbox_run / "conformance.md").read_text()
    assert "| 8 | Join Teams live events | ❌ not supported | correctly rejected | PASS |" in text
    assert (
        "| 9 | Join Teams meeting scheduled in an application for personal use | ❌ not supported | correctly "
        "rejected | PASS | 400/40238" in text
    )
    assert "| [1] | Webinar roles are not honoured for Teams users (footnote) | ⚠️ caveat | caveat confirmed" in text
    assert "## Identity scenarios" in text and "## Emulator-defined behaviour" in text


def test_calling_rows_decided_by_the_sandbox_model_are_marked_emulator_defined(sandbox_run: Path) -> None:
    """In sandbox mode the calling model decides rows 1-10 and the caveat, and for 8, 9 and the caveat
    a tenant flag whose default restates the table: the source table must not present them as facts."""
    document = json.loads((sandbox_run / "conformance.json").read_text())
    calling = [s for s in document["scenarios"] if s["row"] in range(1, 11) or "caveat" in s["tags"]]
    assert {s["row"] for s in calling} >= set(range(1, 11))
    unmarked = [s["name"] for s in calling if not s["evidence"].get("emulator_defined")]
    assert unmarked == []
    reasons = {s["row"] or "caveat": s["evidence"]["emulator_defined"] for s in calling}
    assert "admits_teams_users_to_live_events=False, which restates row 8" in reasons[8]
    assert "refuses_personal_use_links=True (restates row 9)" in reasons[9]
    assert "honours_webinar_roles=False restates it" in reasons["caveat"]
    text = (sandbox_run / "conformance.md").read_text()
    table = text.split("## The source table", 1)[1].split("\n## ", 1)[0]
    for number in [*range(1, 11), "[1]"]:
        line = next(row for row in table.splitlines() if row.startswith(f"| {number} |"))
        assert "emulator-defined" in line, line


def test_allure_results_are_written_for_every_scenario(sandbox_run: Path) -> None:
    results = list((sandbox_run / "allure-results").glob("*-result.json"))
    names = {json.loads(p.read_text())["name"] for p in results}
    assert len(results) >= 21 and any("licensed Teams user" in n for n in names)


def test_reports_hold_no_secret_of_the_sandbox(sandbox_run: Path) -> None:
    text = "".join(p.read_text(errors="replace") for p in sandbox_run.rglob("*") if p.is_file())
    for leak in ("onmicrosoft.com", "Pw!", "accesskey=", "cs~"):
        assert leak not in text, leak


def test_a_tampered_recording_turns_the_verdict_into_fail(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    shutil.copytree(ROOT / "cassettes", cassettes)
    path = tmp_path / GARBAGE
    recording = yaml.safe_load(path.read_text())
    response = recording["interactions"][-1]["response"]["body"]
    response["string"] = response["string"].replace("Provided access token is not valid.", "Token rejected.")
    path.write_text(yaml.safe_dump(recording))
    result = cte_run(tmp_path, "--mode", "replay", "-k", "garbage", env={"CTE_CASSETTE_DIR": str(cassettes)})
    assert result.returncode != 0
    document = json.loads((tmp_path / "reports" / "conformance.json").read_text())
    (scenario,) = document["scenarios"]
    assert scenario["verdict"] == "FAIL" and scenario["says"] == "rejected, but not as documented"
    assert "Token rejected." in scenario["detail"]


def test_a_tenant_without_graph_send_consent_fails_row_11_with_the_permission_to_grant(tmp_path: Path) -> None:
    result = cte_run(tmp_path, "--mode", "sandbox", "--profile", "graph-scope-missing", "-k", "sends_a_message")
    assert result.returncode != 0
    document = json.loads((tmp_path / "reports" / "conformance.json").read_text())
    row_11 = [s for s in document["scenarios"] if s["row"] == 11]
    assert len(row_11) == 3 and all(s["verdict"] == "FAIL" for s in row_11)
    assert all(s["says"] == "unexpectedly rejected" and "ChatMessage.Send" in s["detail"] for s in row_11)
    markdown = (tmp_path / "reports" / "conformance.md").read_text()
    assert "| 11 | Send a message to 1:1 chat, group chat or Teams meeting chat | ✔️ supported |" in markdown


@pytest.mark.parametrize(
    ("profile", "flipped", "says"),
    [
        ("no-enterprise-voice", {2}, "unexpectedly rejected"),
        ("live-events-joinable", {8}, "unexpectedly allowed"),
    ],
)
def test_a_misconfigured_tenant_flips_exactly_its_rows(
    tmp_path: Path, profile: str, flipped: set[int], says: str
) -> None:
    """The verdict follows the observation: change one fact of the tenant and only its row changes."""
    result = cte_run(tmp_path, "--mode", "sandbox", "--profile", profile, "-k", "calling_rows or Join or call")
    assert result.returncode != 0
    document = json.loads((tmp_path / "reports" / "conformance.json").read_text())
    by_row: dict[int, set[str]] = {}
    for scenario in document["scenarios"]:
        if scenario["row"]:
            by_row.setdefault(scenario["row"], set()).add(scenario["verdict"])
    assert set(range(1, 11)) <= by_row.keys()
    assert {row for row, verdicts in by_row.items() if verdicts != {"PASS"}} == flipped
    failed = [s for s in document["scenarios"] if s["row"] in flipped]
    assert all(s["verdict"] == "FAIL" and s["says"] == says for s in failed)


def test_a_service_that_honours_webinar_roles_turns_the_caveat_into_not_observed(tmp_path: Path) -> None:
    result = cte_run(tmp_path, "--mode", "sandbox", "--profile", "webinar-roles-honoured", "-k", "webinar")
    assert result.returncode == 0, result.stdout[-2000:]
    document = json.loads((tmp_path / "reports" / "conformance.json").read_text())
    (caveat,) = [s for s in document["scenarios"] if "caveat" in s["tags"]]
    assert caveat["verdict"] == "PASS" and caveat["says"] == "caveat not observed"
    assert caveat["evidence"]["restricted_actions"]["start_screen_sharing"].startswith("blocked")


def test_a_sandbox_that_does_not_enforce_the_lobby_fails_exactly_that_policy(tmp_path: Path) -> None:
    result = cte_run(tmp_path, "--mode", "sandbox", "--profile", "lobby-not-enforced", "-k", "policies or Meeting")
    assert result.returncode != 0
    document = json.loads((tmp_path / "reports" / "conformance.json").read_text())
    policy_runs = {s["name"]: s for s in document["scenarios"] if s.get("policy")}
    failed = {name for name, s in policy_runs.items() if s["verdict"] != "PASS"}
    assert failed == {
        'Meeting option "Who can bypass the lobby" set to organizers: the Teams user waits until admitted'
    }
    (lobby,) = [policy_runs[name] for name in failed]
    assert lobby["verdict"] == "FAIL" and lobby["says"] == "not enforced"
    assert len(policy_runs) >= 9 and all(s["says"] == "enforced" for n, s in policy_runs.items() if n not in failed)
    assert "## Policies" in (tmp_path / "reports" / "conformance.md").read_text()
