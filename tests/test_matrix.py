"""`cte matrix` over real runs: three profiles run side by side (sandbox, fabrikam, flaky) and five
sandbox runs over time. The cells are each run's verdicts, every link lands on an existing anchor of
that run's conformance.html (the scenario the cell is about), the chart has one point per run at its
counts, bad input is one line and exit 2, and the page renders in Chromium at desktop and phone widths
(screenshots attached to Allure). Also `cte run --allure-history-from`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import allure
import pytest

from harness.reporting.html import scenario_anchor

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-sync"]
WORST_FIRST = ("ERROR", "FAIL", "WARN", "SKIP", "PASS")
PROFILES = ("sandbox", "fabrikam", "flaky")
# Five sandbox runs over time, each a different selection (as a partner runs a subset), so the counts move.
OVER_TIME = ("identity", "identity or chat", "chat", "notifications or policies", "policies")


def cte(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.run.cli", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def run_command(report_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "harness.run.cli", "run", "-q", "--report-dir", str(report_dir), *args]


@pytest.fixture(scope="module")
def side_by_side(tmp_path_factory) -> Path:
    """The three profiles run at once, each in its own process and report folder, then the matrix."""
    tmp = tmp_path_factory.mktemp("side-by-side")
    processes = {
        p: subprocess.Popen(
            run_command(tmp / p, "--profile", p), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        for p in PROFILES
    }
    outputs = {p: proc.communicate(timeout=300)[0] for p, proc in processes.items()}
    for p in PROFILES:
        assert (tmp / p / "conformance.json").is_file(), outputs[p][-2000:]
    result = cte("matrix", *(str(tmp / p) for p in PROFILES), "-o", str(tmp / "matrix"))
    assert result.returncode == 0, result.stderr
    return tmp


@pytest.fixture(scope="module")
def over_time(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("over-time")
    for i, selection in enumerate(OVER_TIME):
        result = subprocess.run(
            run_command(tmp / f"run-{i}", "-k", selection), cwd=ROOT, capture_output=True, text=True
        )
        assert (tmp / f"run-{i}" / "conformance.json").is_file(), result.stdout[-2000:]
    result = cte("matrix", *(str(tmp / f"run-{i}" / "conformance.json") for i in range(5)), "-o", str(tmp / "m"))
    assert result.returncode == 0, result.stderr
    return tmp


class Page(HTMLParser):
    """What the tests read of matrix.html: the matrix's lines and cells, the charts' points."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.cells: list[dict[str, str]] = []  # line, profile, run, verdict, href
        self.points: list[dict[str, str]] = []
        self.charts: list[str] = []
        self.tags: set[str] = set()
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        if tag == "tr" and "data-line" in a:
            self.lines.append(a["data-line"])
        elif tag == "td" and "data-verdict" in a:
            self.cells.append({"line": self.lines[-1], "profile": a["data-profile"], "run": a["data-run"],
                               "verdict": a["data-verdict"], "href": ""})  # fmt: skip
            self.in_cell = True
        elif tag == "a" and self.in_cell:
            self.cells[-1]["href"] = a.get("href", "")
        elif tag == "svg":
            self.charts.append(a["data-profile"])
        elif tag == "circle":
            self.points.append({**a, "profile": self.charts[-1]})

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self.in_cell = False


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def worst(verdicts: list[str]) -> str:
    return next(v for v in WORST_FIRST if v in verdicts)


def expected_cell(document: dict, line: str) -> str:
    """A line's verdict in a run, worked out here from the run's conformance.json."""
    if line == "caveat":
        covering = [s for s in document["scenarios"] if "caveat" in s["tags"]]
    elif line.startswith("row-"):
        covering = [s for s in document["scenarios"] if s["row"] == int(line[4:])]
    else:
        covering = [s for s in document["scenarios"] if s["id"] == line]
    return worst([s["verdict"] for s in covering]) if covering else "—"


def test_the_matrix_of_three_profiles_holds_each_runs_verdicts(side_by_side: Path) -> None:
    page = read_page(side_by_side / "matrix" / "matrix.html")
    documents = {p: json.loads((side_by_side / p / "conformance.json").read_text()) for p in PROFILES}
    assert page.lines[:13] == [*(f"row-{n}" for n in range(1, 13)), "caveat"]
    others = {
        s["id"] for d in documents.values() for s in d["scenarios"] if s["row"] is None and "caveat" not in s["tags"]
    }
    assert set(page.lines[13:]) == others and len(page.lines) == 13 + len(others)
    assert len(page.cells) == len(page.lines) * 3
    assert sorted({c["profile"] for c in page.cells}) == sorted(PROFILES)
    for c in page.cells:
        assert c["verdict"] == expected_cell(documents[c["profile"]], c["line"]), c
    # What is not PASS or WARN in the matrix is exactly what is not in the runs' own reports (a scenario the
    # flaky profile's faults beat under load shows as the FAIL its report says; test_faults judges that).
    differing = {(c["profile"], c["line"]) for c in page.cells if c["verdict"] not in ("PASS", "WARN")}
    bad = {(p, s["id"]) for p, d in documents.items() for s in d["scenarios"] if s["verdict"] not in ("PASS", "WARN")}
    assert {(p, line) for p, line in differing if not line.startswith("row-")} == bad
    # The one real difference between the two clean tenants: fabrikam's own external access is not contoso's.
    external = next(s["id"] for s in documents["fabrikam"]["scenarios"] if s["name"].startswith("External access"))
    row = {c["profile"]: c["verdict"] for c in page.cells if c["line"] == external}
    assert (row["sandbox"], row["fabrikam"]) == ("PASS", "FAIL")
    assert not [c for c in page.cells if c["profile"] == "sandbox" and c["verdict"] not in ("PASS", "WARN")]
    assert [c["verdict"] for c in page.cells if c["line"] == "caveat" and c["profile"] != "flaky"] == ["WARN"] * 2
    # Self-contained: no script, no stylesheet or image fetched, nothing but relative links.
    text = (side_by_side / "matrix" / "matrix.html").read_text()
    assert not page.tags & {"script", "link", "img", "iframe"} and "http://" not in text and "https://" not in text


def test_every_link_lands_on_the_scenario_it_is_about(side_by_side: Path, over_time: Path) -> None:
    checked = 0
    for folder in (side_by_side / "matrix", over_time / "m"):
        page = read_page(folder / "matrix.html")
        markdown = (folder / "matrix.md").read_text()
        for c in page.cells:
            if c["verdict"] == "—":
                assert not c["href"]
                continue
            path, _, anchor = c["href"].partition("#")
            target = (folder / unquote(path)).resolve()
            assert target.name == "conformance.html" and target.is_file(), c
            report = target.read_text()
            assert f'<tr id="{anchor}" data-scenario data-verdict="{c["verdict"]}"' in report, c
            document = json.loads(target.with_name("conformance.json").read_text())
            assert document["run"]["profile"] == c["profile"] and document["run"]["id"] == c["run"]
            if not c["line"].startswith("row-") and c["line"] != "caveat":
                assert anchor == scenario_anchor(c["line"])
            assert f"]({c['href']})" in markdown, c  # the Markdown links to the same place
            checked += 1
    assert checked > 200


def test_the_markdown_matrix_has_the_same_cells(side_by_side: Path) -> None:
    page = read_page(side_by_side / "matrix" / "matrix.html")
    markdown = (side_by_side / "matrix" / "matrix.md").read_text()
    table = [line for line in markdown.split("## Over time")[0].splitlines() if line.startswith("| ")]
    header, rows = table[0], [r for r in table[2:] if "**" not in r]
    assert header.startswith("| # | Scenario | fabrikam ") and "| flaky " in header and "| sandbox " in header
    assert len(rows) == len(page.lines)
    for row, line in zip(rows, page.lines, strict=True):
        verdicts = [c["verdict"] for c in page.cells if c["line"] == line]
        cells = [cell.strip() for cell in row.strip("|").split(" | ")[2:]]
        assert [next((v for v in WORST_FIRST if f" {v}]" in cell), "—") for cell in cells] == verdicts, row
    assert "| 8 | Join Teams live events | [🟢 PASS](" in markdown


def test_five_runs_over_time_give_one_point_per_run_at_its_counts(over_time: Path) -> None:
    page = read_page(over_time / "m" / "matrix.html")
    documents = [json.loads((over_time / f"run-{i}" / "conformance.json").read_text()) for i in range(5)]
    assert len({d["run"]["id"] for d in documents}) == 5
    assert page.charts == ["sandbox"]
    ids = [d["run"]["id"] for d in sorted(documents, key=lambda d: d["run"]["started"])]
    for verdict in ("PASS", "FAIL", "WARN", "SKIP"):
        points = [p for p in page.points if p["data-verdict"] == verdict]
        assert [p["data-run"] for p in points] == ids  # one point per run, in start order
        by_id = {d["run"]["id"]: d["summary"][verdict] for d in documents}
        assert [int(p["data-count"]) for p in points] == [by_id[i] for i in ids]
        xs = [float(p["cx"]) for p in points]
        assert xs == sorted(xs) and len(set(xs)) == 5
    assert not [p for p in page.points if p["data-verdict"] == "ERROR"]  # no ERROR in any run: no ERROR line
    # Higher on the chart is more: the PASS points' heights follow the PASS counts.
    passes = [p for p in page.points if p["data-verdict"] == "PASS"]
    ranked = sorted(passes, key=lambda p: int(p["data-count"]))
    assert [float(p["cy"]) for p in ranked] == sorted((float(p["cy"]) for p in ranked), reverse=True)
    assert len({int(p["data-count"]) for p in passes}) >= 3  # the selections really differ
    # A scenario a run did not select is "not run" there, not a verdict.
    cells = {(c["line"], c["run"]): c["verdict"] for c in page.cells}
    for document in documents:
        ran = {s["id"] for s in document["scenarios"]}
        for line in {c["line"] for c in page.cells if not c["line"].startswith("row-") and c["line"] != "caveat"}:
            assert (cells[(line, document["run"]["id"])] == "—") == (line not in ran)
    markdown = (over_time / "m" / "matrix.md").read_text()
    assert markdown.split("### sandbox", 1)[1].count("conformance.html)") == 5


@pytest.fixture
def a_report(side_by_side: Path) -> dict:
    return json.loads((side_by_side / "sandbox" / "conformance.json").read_text())


@pytest.mark.parametrize(
    "case", ["missing", "not json", "not a report", "other schema", "a scenario without tags", "same run twice"]
)
def test_bad_input_is_one_line_naming_the_file_and_exit_2(case: str, tmp_path: Path, a_report: dict) -> None:
    bad = tmp_path / "bad" / "conformance.json"
    bad.parent.mkdir()
    arguments = [str(bad)]
    if case == "not json":
        bad.write_text("<html>not a report</html>")
    elif case == "not a report":
        bad.write_text(json.dumps({"checks": []}))
    elif case == "other schema":
        bad.write_text(json.dumps({**a_report, "schema_version": "2.0"}))
    elif case == "a scenario without tags":
        scenarios = [{k: v for k, v in s.items() if k != "tags"} for s in a_report["scenarios"]]
        bad.write_text(json.dumps({**a_report, "scenarios": scenarios}))
    elif case == "same run twice":
        bad.write_text(json.dumps(a_report))
        copy = tmp_path / "copy"
        copy.mkdir()
        (copy / "conformance.json").write_text(json.dumps(a_report))
        arguments = [str(bad), str(copy)]
    result = cte("matrix", *arguments, "-o", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stdout == ""
    line = result.stderr.strip()
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr, result.stderr
    assert line.startswith("cte: ") and "pass" in line
    named = str(copy / "conformance.json") if case == "same run twice" else str(bad)
    assert named in line, line
    expected = {"other schema": "'2.0'", "a scenario without tags": "has no 'tags'", "same run twice": "each run once"}
    assert expected.get(case, "") in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("which", "width", "height"), [("side_by_side", 1280, 900), ("over_time", 390, 844)])
def test_the_matrix_renders_in_chromium(which: str, width: int, height: int, request, tmp_path: Path) -> None:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed here (apt-get install -y chromium); .ci/run installs it")
    from harness.client.calling.browser import playwright  # the process's one Playwright

    folder = request.getfixturevalue(which) / ("matrix" if which == "side_by_side" else "m")
    parsed = read_page(folder / "matrix.html")
    browser = playwright().chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    try:
        page = browser.new_page(viewport={"width": width, "height": height})
        page.goto((folder / "matrix.html").as_uri())
        assert page.locator("#matrix tbody tr[data-line]").count() == len(parsed.lines)
        assert page.locator("#matrix thead th.col").count() == (3 if which == "side_by_side" else 5)
        assert page.evaluate("document.documentElement.scrollWidth") <= width  # the table scrolls in its box
        chart = page.locator("svg.trend").first
        chart.scroll_into_view_if_needed()
        assert chart.is_visible() and chart.bounding_box()["width"] <= width
        runs = 1 if which == "side_by_side" else 5
        assert page.locator('svg.trend[data-profile="sandbox"] circle[data-verdict="PASS"]').count() == runs
        # A cell's colour is its verdict's.
        a_pass = page.locator('#matrix td.v[data-verdict="PASS"] .verdict').first
        assert a_pass.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(26, 127, 55)"  # PASS
        page.evaluate("window.scrollTo(0, 0)")
        shot = tmp_path / f"matrix-{width}.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        browser.close()
    assert shot.stat().st_size > 10_000
    allure.attach.file(str(shot), name=f"matrix.html at {width} px", attachment_type=allure.attachment_type.PNG)


def test_allure_history_is_carried_from_an_earlier_report(tmp_path: Path) -> None:
    """Allure 3's history file (historyPath) and Allure 2's history/ of a rendered report are copied in,
    byte for byte, where the next rendering reads them. (Allure itself is not run here: it is an npm
    package this machine cannot fetch.)"""
    previous = tmp_path / "previous"
    (previous / "allure-report" / "history").mkdir(parents=True)
    line = json.dumps({"uuid": "u1", "name": "cte-conformance", "timestamp": 1, "testResults": {}}) + "\n"
    (previous / "allure-history.jsonl").write_text(line)
    trend = json.dumps([{"buildOrder": 1, "data": {"passed": 3, "failed": 1, "total": 4}}])
    (previous / "allure-report" / "history" / "history-trend.json").write_text(trend)
    new = tmp_path / "new"
    result = cte("run", "-q", "--report-dir", str(new), "-k", "wrong_password", "--allure-history-from", str(previous))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert (new / "allure-history.jsonl").read_text() == line
    assert (new / "allure-results" / "history" / "history-trend.json").read_text() == trend
    assert list((new / "allure-results").glob("*-result.json"))


def test_allure_history_from_a_report_without_one_is_one_line_and_runs_nothing(tmp_path: Path) -> None:
    previous = tmp_path / "previous"
    previous.mkdir()
    result = cte("run", "-q", "--report-dir", str(tmp_path / "new"), "--allure-history-from", str(previous))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert str(previous) in result.stderr and "cte report allure" in result.stderr
    assert not (tmp_path / "new").exists()


def test_the_allure_report_keeps_its_history_beside_the_results(tmp_path: Path) -> None:
    """`cte report allure` gives Allure 3 a historyPath in the report folder (what --allure-history-from
    carries). npx is replaced by a script that keeps the config it was given: Allure cannot be fetched here."""
    results = tmp_path / "report" / "allure-results"
    results.mkdir(parents=True)
    (results / "x-result.json").write_text("{}")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kept = tmp_path / "allurerc.mjs"
    npx = bin_dir / "npx"
    npx.write_text(f'#!/bin/sh\nwhile [ "$1" != "--config" ]; do shift; done\ncp "$2" {kept}\n')
    npx.chmod(0o755)
    result = cte("report", "allure", str(results), env={"PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert result.returncode == 0, result.stderr
    expected = json.dumps(str((tmp_path / "report" / "allure-history.jsonl").resolve()))
    assert f"historyPath: {expected}," in kept.read_text()


def test_runs_of_several_profiles_started_together_get_their_own_ids() -> None:
    """A partner's CI starts one run per tenant in the same second: their ids (and report folders) differ."""
    from harness.run.cli import new_run_id

    ids = {new_run_id("sandbox", p) for p in ("sandbox", "fabrikam", "flaky", "harness/profiles/acs-entra.toml")}
    assert len(ids) == 4
    assert {i.split("Z-", 1)[1] for i in ids} == {"sandbox", "sandbox-fabrikam", "sandbox-flaky", "sandbox-acs-entra"}
