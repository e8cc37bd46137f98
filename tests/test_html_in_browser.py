"""conformance.html opened in headless Chromium (Debian's): the table renders and the filters work; the
Policies and emulator-defined sections are there; it reads at desktop and phone widths (screenshots
attached to Allure)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import allure
import pytest

from tests.support import cte

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
    cte("run", "-q", "--profile", "live-events-joinable", "--report-dir", str(directory), timeout=300)
    return directory


def test_the_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed here (apt-get install -y chromium); .ci/run installs it")
    from harness.client.calling.browser import playwright  # the process's one Playwright (the SDK tests use it too)

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
        assert page.locator("#scenarios details dl.evidence").first.is_visible()
        screenshot = tmp_path / "conformance.png"
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        browser.close()
    assert screenshot.stat().st_size > 10_000
    allure.attach.file(str(screenshot), name="conformance.html in Chromium", attachment_type=allure.attachment_type.PNG)


def _open(report: Path, width: int, height: int):  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed here (apt-get install -y chromium); .ci/run installs it")
    from harness.client.calling.browser import playwright

    browser = playwright().chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.goto((report / "conformance.html").as_uri())
    return browser, page


def test_the_policies_and_emulator_defined_sections_render(report: Path, tmp_path: Path) -> None:
    document = json.loads((report / "conformance.json").read_text())
    with_policy = [s for s in document["scenarios"] if s["policy"]]
    emulated = [s for s in document["scenarios"] if s["evidence"].get("emulator_defined")]
    browser, page = _open(report, 1280, 900)
    try:
        assert page.locator("h2#policies").is_visible()
        assert page.locator("#policy-table tbody tr").count() == len(with_policy) == 10
        assert page.locator("h2#emulator-defined").is_visible()
        assert page.locator("#emulated li").count() == len(emulated) > 0
        assert page.locator("#sandbox-health").inner_text().startswith("The sandbox tenant answered")
        # Row 5's three request ids sit behind one expander, closed until asked for.
        row_5 = page.locator("#source-table tbody tr").nth(4)
        assert row_5.locator("details").count() == 1
        assert not row_5.locator("details li").first.is_visible()
        row_5.locator("details summary").click()
        assert row_5.locator("details li").count() == 3 and row_5.locator("details li").first.is_visible()
        # A scenario's evidence is a definition list once opened.
        first = page.locator("#scenarios details").first
        first.locator("summary").click()
        assert first.locator("dl.evidence dt").count() >= 1
        shot = tmp_path / "desktop.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        browser.close()
    allure.attach.file(str(shot), name="conformance.html at 1280 px", attachment_type=allure.attachment_type.PNG)


def test_the_report_reads_on_a_phone(report: Path, tmp_path: Path) -> None:
    browser, page = _open(report, 390, 844)
    try:
        # Nothing wider than the screen: the tables turn into one card per row.
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        card = page.locator("#source-table tbody tr").first
        before = card.locator("td").nth(4).evaluate("td => getComputedStyle(td, '::before').content")
        assert before == '"Verdict: "', before  # each cell says what it is
        assert page.locator("#policy-table tbody tr").first.is_visible()
        shot = tmp_path / "phone.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        browser.close()
    allure.attach.file(str(shot), name="conformance.html at 390 px", attachment_type=allure.attachment_type.PNG)
