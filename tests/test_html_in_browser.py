"""conformance.html opened in headless Chromium (Debian's): the table renders and the filters work."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import allure
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("html") / "reports"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            "-q",
            "--profile",
            "live-events-joinable",
            "-k",
            "Join",
            "--report-dir",
            str(directory),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return directory


def test_the_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed here (apt-get install -y chromium); .ci/run installs it")
    from harness.calling.browser import playwright  # the process's one Playwright (the SDK tests use it too)

    document = json.loads((report / "conformance.json").read_text())
    not_passing = sum(1 for s in document["scenarios"] if s["verdict"] != "PASS")
    browser = playwright().chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        page.goto((report / "conformance.html").as_uri())
        assert page.locator("#source-table tbody tr").count() == 13
        assert page.locator("#source-table tbody tr").nth(7).inner_text().count("FAIL") == 1  # row 8
        visible = page.locator("#scenarios tbody tr:not(.hidden)")
        assert visible.count() == len(document["scenarios"])
        page.locator('input[data-verdict="PASS"]').uncheck()
        assert visible.count() == not_passing >= 1
        page.locator('input[data-verdict="PASS"]').check()
        page.locator("#scenarios details").first.locator("summary").click()
        assert page.locator("#scenarios details pre").first.is_visible()
        screenshot = tmp_path / "conformance.png"
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        browser.close()
    assert screenshot.stat().st_size > 10_000
    allure.attach.file(str(screenshot), name="conformance.html in Chromium", attachment_type=allure.attachment_type.PNG)
