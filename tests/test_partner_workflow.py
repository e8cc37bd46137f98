"""What a partner or QA engineer does with runs: HTML and JUnit reports, diff, expectations, reruns, bundles."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.core.places import PROFILE_DIR
from harness.run.audit import scan

ROOT = Path(__file__).resolve().parent.parent
LIVE_EVENT = "Join a Teams live event"


def cte(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.run.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def wrong_sandbox_run(tmp_path_factory) -> Path:
    """A run where row 8 FAILs (the deliberately wrong sandbox), calling rows only."""
    report = tmp_path_factory.mktemp("wrong") / "reports"
    result = cte("run", "-q", "--profile", "live-events-joinable", "-k", "Join", "--report-dir", str(report))
    assert result.returncode != 0
    return report


class _Rows(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.table: str | None = None
        self.rows: dict[str, int] = {}

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        if tag == "table":
            self.table = dict(attrs).get("id")
        elif tag == "tr" and self.table:
            self.rows[self.table] = self.rows.get(self.table, 0) + 1


def test_html_and_junit_are_written_beside_the_json(wrong_sandbox_run: Path) -> None:
    page = (wrong_sandbox_run / "conformance.html").read_text()
    parser = _Rows()
    parser.feed(page)
    assert parser.rows["source-table"] == 1 + 12 + 1  # header, twelve rows, the caveat
    document = json.loads((wrong_sandbox_run / "conformance.json").read_text())
    assert parser.rows["scenarios"] == 1 + len(document["scenarios"])
    assert "<script" in page and "http" not in page.split("<script>")[1]  # self-contained: no external assets
    junit = (wrong_sandbox_run / "junit.xml").read_text()
    assert 'name="cte-conformance"' in junit and 'failures="1"' in junit


def test_diff_names_the_regression_and_exits_non_zero(wrong_sandbox_run: Path, tmp_path: Path) -> None:
    good = json.loads((wrong_sandbox_run / "conformance.json").read_text())
    for scenario in good["scenarios"]:
        scenario["verdict"] = "PASS"
    old = tmp_path / "old.json"
    old.write_text(json.dumps(good))
    result = cte("diff", str(old), str(wrong_sandbox_run / "conformance.json"))
    assert result.returncode == 1
    assert f"REGRESSED PASS -> FAIL  {LIVE_EVENT}" in result.stdout
    same = cte("diff", str(old), str(old))
    assert same.returncode == 0 and "0 change(s), 0 regression(s)" in same.stdout
    bad = cte("diff", str(tmp_path / "missing.json"), str(old))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_rerun_failed_runs_only_what_failed(wrong_sandbox_run: Path, tmp_path: Path) -> None:
    result = cte(
        "run",
        "-q",
        "--profile",
        "live-events-joinable",
        "--rerun-failed",
        str(wrong_sandbox_run / "conformance.json"),
        "--report-dir",
        str(tmp_path / "again"),
    )
    document = json.loads((tmp_path / "again" / "conformance.json").read_text())
    assert [s["name"] for s in document["scenarios"]] == [LIVE_EVENT]
    assert result.returncode != 0


STALE = "Join a Teams 1:1 call by the id its ring carried"  # passes: a deviation saying FAIL is stale


def test_expectations_turn_a_known_deviation_into_no_failure_and_flag_stale_ones(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(PROFILE_DIR / "live-events-joinable.toml", profiles / "le.toml")
    (profiles / "le.toml").write_text(
        (profiles / "le.toml").read_text().replace('name = "live-events-joinable"', 'name = "le"')
    )
    (profiles / "le.expectations.toml").write_text(
        f'[[deviation]]\nscenario = "{LIVE_EVENT}"\nverdict = "FAIL"\nreason = "this tenant admits Teams users"\n\n'
        f'[[deviation]]\nscenario = "{STALE}"\nverdict = "FAIL"\nreason = "an old bug"\n'
    )
    result = cte("run", "-q", "--profile", str(profiles / "le.toml"), "-k", "Join", "--report-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stdout[-2000:]
    document = json.loads((tmp_path / "r" / "conformance.json").read_text())
    (live,) = [s for s in document["scenarios"] if s["name"] == LIVE_EVENT]
    assert live["verdict"] == "FAIL" and live["evidence"]["expected_deviation"] == "this tenant admits Teams users"
    assert [d["scenario"] for d in document["expectations"]["stale"]] == [STALE]
    assert f"stale expectation: '{STALE}'" in result.stdout


def test_a_bundle_holds_reports_profile_and_digests_and_no_secret(tmp_path: Path) -> None:
    result = cte("run", "-q", "-k", "licensed", "--bundle", "--report-dir", str(tmp_path / "run"))
    assert result.returncode == 0
    bundle = tmp_path / "run.zip"
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "unpacked")
    assert {"reports/conformance.json", "reports/conformance.html", "profile.toml", "harness.json"} <= names
    digests = json.loads((tmp_path / "unpacked" / "harness.json").read_text())["cassettes"]
    assert digests and all(len(d) == 64 for d in digests.values())
    assert scan([tmp_path / "unpacked"]) == []


def test_allure_rendering_says_what_to_install_without_node(wrong_sandbox_run: Path) -> None:
    import os

    result = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "report", "allure", str(wrong_sandbox_run / "allure-results")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": str(Path(sys.executable).parent)},
    )
    assert result.returncode == 2 and "install Node.js" in result.stderr
    empty = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "report", "allure", str(wrong_sandbox_run)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert empty.returncode == 2 and "holds no Allure results" in empty.stderr
