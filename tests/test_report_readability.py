"""Reports and the terminal a partner reads at a glance (issue 18): the HTML carries everything the
Markdown does, no Python repr in any report, evidence said once and in words, policy rows that say
what they test, one run id, a terminal table that fits 100 columns and ends with the harness's count."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.client.graph import GraphResult
from harness.conformance import policies
from harness.conformance.flows.chat import graph_diagnosis
from harness.core import scrubbing
from harness.reporting import html, redact_result, sandbox_health_text
from harness.reporting.html import evidence_items, render
from harness.reporting.markdown import render as markdown
from harness.reporting.terminal import verdict_line, verdict_table

ROOT = Path(__file__).resolve().parent.parent
# What a Python repr of a list, tuple, dict or bool pair looks like inside text.
REPR = re.compile(r"\[\('|\[\{'|\{'|\['|\('[^)]*',|\((True|False|None), |: (True|False|None)[,}]|\b(True|False), '")


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness.run.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One full sandbox run: its report folder and what `cte run -q` printed."""
    directory = tmp_path_factory.mktemp("readable") / "reports"
    result = run_cli("run", "-q", "--mode", "sandbox", "--report-dir", str(directory))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return directory, result


@pytest.fixture(scope="module")
def document(sandbox) -> dict[str, Any]:
    return json.loads((sandbox[0] / "conformance.json").read_text(encoding="utf-8"))


def by_name(document: dict[str, Any], fragment: str) -> dict[str, Any]:
    return next(s for s in document["scenarios"] if fragment in s["name"])


# -- the HTML carries everything the Markdown does ---------------------------------------------------


class Sections(HTMLParser):
    """The visible text of an HTML page, section by section (split at each h2; before the first: the head)."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[str]] = {"": []}
        self.current = ""
        self.skip = 0
        self.in_h2 = False
        self.heading: list[str] = []

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style", "title"):
            self.skip += 1
        elif tag == "h2":
            self.in_h2, self.heading = True, []
        elif tag in ("td", "th", "li", "dt", "dd", "p", "div", "tr", "summary", "span"):
            self.sections[self.current].append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "title"):
            self.skip -= 1
        elif tag == "h2":
            self.in_h2 = False
            self.current = "".join(self.heading).strip()
            self.sections.setdefault(self.current, [])

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.in_h2:
            self.heading.append(data)
        else:
            self.sections[self.current].append(data)

    def text(self, section: str) -> str:
        return normal("".join(self.sections[section]))


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def markdown_sections(text: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {"": []}
    current = ""
    for line in text.splitlines()[1:]:  # the title is the page's h1
        if line.startswith("## "):
            current = line[3:].strip()
            sections[current] = []
        elif line.strip() and not line.startswith("| ---"):
            sections[current].append(line)
    return sections


def fragments(line: str) -> list[str]:
    """What a person reads in one Markdown line: each table cell (or list item), cut at " · " and "; "."""
    line = line.replace("**", "").replace("`", "")
    for emoji, glyph in html.MARKDOWN_GLYPHS.items():
        line = line.replace(emoji, glyph)
    if line.startswith("|"):
        cells = [c.replace("\\|", "|").strip() for c in re.split(r"(?<!\\)\|", line.strip("|"))]
    else:
        cells = [line.removeprefix("- ").strip()]
    return [normal(part) for cell in cells for part in re.split(r" · |; ", cell) if part.strip() not in ("", "—")]


def test_the_html_carries_every_section_and_every_cell_of_the_markdown(sandbox) -> None:
    directory, _ = sandbox
    md = markdown_sections((directory / "conformance.md").read_text(encoding="utf-8"))
    page = Sections()
    page.feed((directory / "conformance.html").read_text(encoding="utf-8"))
    assert {"The source table", "Policies", "Emulator-defined behaviour"} <= set(md), list(md)
    missing = []
    for heading, lines in md.items():
        # The Markdown's "<Area> scenarios" tables are the HTML's one filterable "Every scenario" table.
        target = "Every scenario" if heading.endswith(" scenarios") else heading
        assert target in page.sections, f"the HTML has no section {target!r} (the Markdown has {heading!r})"
        shown = page.text(target)
        for line in lines:
            missing += [(heading, part) for part in fragments(line) if part not in shown]
    assert not missing, missing[:10]


# -- no Python repr anywhere ---------------------------------------------------------------------------


def strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def test_the_pattern_finds_the_reprs_the_issue_quotes() -> None:
    for quoted in (
        "changes seen: [('MeetingOptionOrOrganizerPolicyChanged', {'unmuteMic': (False, 'MeetingRestricted')})]",
        "{'code': 480, 'subCode': 10037}",
        "['created', 'updated']",
        "(True, 'Capable')",
    ):
        assert REPR.search(quoted), quoted
    for fine in (
        "rejected in the meeting: MeetingRestricted",
        "status 403 (documented: 401)",
        "Connecting → Connected",
    ):
        assert not REPR.search(fine), fine


def test_no_report_format_holds_a_python_repr(sandbox, document) -> None:
    directory, _ = sandbox
    found = [s for s in strings(document) if REPR.search(s)]
    md = (directory / "conformance.md").read_text(encoding="utf-8")
    found += [line for line in md.splitlines() if REPR.search(line)]
    page = Sections()
    page.feed((directory / "conformance.html").read_text(encoding="utf-8"))
    found += [m.group(0) for name in page.sections for m in [REPR.search(page.text(name))] if m]
    assert not found, found[:5]


def test_structured_evidence_is_a_definition_list_in_words() -> None:
    evidence = {
        "status": 480,
        "code": 10037,
        "callEndReason": {"code": 480, "subCode": 10037},
        "changes": ["created", "updated"],
        "pushed_to_a_client": False,
        "checks": [{"name": "no client received it", "passed": True, "detail": "not pushed"}],
    }
    items = dict(evidence_items(evidence))
    assert items["call end reason"] == "code 480, subCode 10037"
    assert items["changes"] == "created; updated"
    assert items["pushed to a client"] == "no"
    assert items["checks"] == "✔ no client received it: not pushed"
    scenario = {
        "id": "x",
        "name": "a forged notification",
        "feature": "f",
        "area": "notifications",
        "row": None,
        "tags": [],
        "expectation": None,
        "observed": None,
        "policy": None,
        "verdict": "PASS",
        "says": "correctly rejected",
        "detail": "",
        "evidence": evidence,
    }
    page = render(
        {
            "run": {
                "id": "r",
                "mode": "sandbox",
                "profile": "p",
                "started": "s",
                "duration_s": 1,
                "harness_version": "0",
            },
            "summary": {"PASS": 1},
            "scenarios": [scenario],
            "expectations": {"expected_deviations": 0, "stale": []},
        }
    )
    assert '<dl class="evidence"><dt>status</dt><dd>480</dd>' in page


def test_evidence_says_each_thing_once(document) -> None:
    forged = by_name(document, "expired validation token")
    assert forged["evidence"]["code"] == forged["evidence"]["message"]  # the receiver's code is its message
    assert html.codes(forged).count("validation token expired") == 1
    md_line = next(line for line in markdown(document).splitlines() if line.startswith(f"| {forged['name']}"))
    assert md_line.count("validation token expired") <= 2, md_line  # Observed, then Evidence once
    assert [k for k, _ in evidence_items(forged["evidence"])].count("message") == 0


def test_request_ids_are_collapsed_in_the_source_tables(sandbox, document) -> None:
    directory, _ = sandbox
    md = markdown_sections((directory / "conformance.md").read_text(encoding="utf-8"))
    for line in md["The source table"]:
        assert "request " not in line, line  # each scenario's own row names its request id
    scenario_rows = [line for h, lines in md.items() if h.endswith(" scenarios") for line in lines]
    for s in document["scenarios"]:
        if rid := s["evidence"].get("request_id"):
            assert sum(rid in line for line in scenario_rows) == 1, s["name"]
    text = (directory / "conformance.html").read_text(encoding="utf-8")
    source = text[text.index('id="source-table"') : text.index("</table>", text.index('id="source-table"'))]
    row_5 = source.split("<tr>")[6]  # the header row, then rows 1..5
    assert row_5.count("<details") == 1 and "request ids (3)" in row_5, row_5[:500]


# -- wording -----------------------------------------------------------------------------------------


def test_a_rejection_in_the_meeting_reads_as_english(document) -> None:
    for s in document["scenarios"]:
        assert "at in the" not in json.dumps(s), s["name"]
    mic = by_name(document, 'Allow mic for attendees" off')
    assert mic["observed"]["summary"] == "rejected in the meeting: MeetingRestricted"


def test_a_policy_is_documented_as_its_enforcement(document) -> None:
    with_policy = [s for s in document["scenarios"] if s["policy"]]
    assert len(with_policy) == 10
    for s in with_policy:
        assert s["expectation"]["documented"] == f"enforced: {s['policy']['enforcement']}", s["name"]
    assert all(s["expectation"]["documented"] != "not supported" for s in with_policy)


def test_the_option_changed_during_the_meeting_is_described_as_what_it_tests(document) -> None:
    changed = by_name(document, "A meeting option changed during the meeting")
    assert changed["policy"]["setting"].startswith("Allow mic for attendees = Off"), changed["policy"]
    assert "during the meeting" in changed["policy"]["setting"]
    assert "unmuteMic" in changed["policy"]["enforcement"]
    assert changed["evidence"]["capability_changes"] == [
        "MeetingOptionOrOrganizerPolicyChanged: unmuteMic absent (MeetingRestricted)"
    ]


def test_the_messaging_policy_rejection_carries_the_policy_remedy(document) -> None:
    chat_off = by_name(document, "Messaging policy with chat off")
    assert "policy" in chat_off["evidence"]["message"]
    assert "messaging policy" in chat_off["evidence"]["diagnosis"]
    assert "use a chat the user belongs to" not in chat_off["evidence"]["remedy"]
    member = by_name(document, "not a member of")  # a plain 403 keeps the membership remedy
    assert member["evidence"]["remedy"] == "use a chat the user belongs to"


def test_graph_diagnosis_follows_what_the_error_says() -> None:
    policy = GraphResult(
        "POST",
        "/chats/x/messages",
        403,
        code="Forbidden",
        message="Chat is turned off for this user by the messaging policy.",
    )
    plain = GraphResult("GET", "/chats/x/messages", 403, code="Forbidden", message="Forbidden")
    assert "messaging policy" in (graph_diagnosis(policy)[0] or "")
    assert "messaging policy" in (graph_diagnosis(policy)[1] or "")
    assert graph_diagnosis(plain)[1] == "use a chat the user belongs to"


# -- redaction: the blocked domain -------------------------------------------------------------------


def test_the_external_access_row_never_shows_the_tenants_own_placeholder_domain(document) -> None:
    external = by_name(document, "External access blocked")
    assert scrubbing.UPN_DOMAIN not in external["policy"]["setting"]
    assert external["policy"]["setting"] == f"Blocked domain {scrubbing.EXTERNAL_DOMAIN} (redacted) = Blocked"
    assert external["policy"]["holder"] == "the external user's organisation"


@pytest.mark.parametrize(
    ("domain", "shown"),
    [
        ("fabrikam.com", f"{scrubbing.EXTERNAL_DOMAIN} (redacted)"),  # a real organisation: identifying
        ("fabrikam-sandbox.onmicrosoft.com", f"{scrubbing.EXTERNAL_DOMAIN} (redacted)"),
        ("fabrikam.example", "fabrikam.example"),  # reserved (RFC 2606): identifies nobody
        ("partner.invalid", "partner.invalid"),
    ],
)
def test_a_blocked_domain_is_redacted_only_when_it_identifies_an_organisation(domain: str, shown: str) -> None:
    setting = policies.PolicySetting("External access", domain, "Blocked")
    metadata = policies.report_metadata(setting, "chats and calls with its users are rejected")
    # Where the profile's users share the domain the scrubber knows it as the tenant's own placeholder.
    known = {domain: scrubbing.UPN_DOMAIN, f"alex@{domain}": f"alex@{scrubbing.UPN_DOMAIN}"}
    result = redact_result({"policy": metadata}, known)
    assert result["policy"]["setting"] == f"Blocked domain {shown} = Blocked"
    assert "onmicrosoft" not in json.dumps(result) and "fabrikam.com" not in json.dumps(result)


# -- one run id ----------------------------------------------------------------------------------------


def test_the_report_folder_is_named_by_the_run_id_in_its_reports() -> None:
    result = run_cli("run", "-q", "--mode", "sandbox", "-k", "wrong_password")
    folder = ROOT / next(line for line in result.stdout.splitlines() if line.startswith("reports: "))[9:].strip()
    try:
        assert result.returncode == 0, result.stdout[-2000:]
        document = json.loads((folder / "conformance.json").read_text(encoding="utf-8"))
        assert document["run"]["id"] == folder.name
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# -- the terminal ---------------------------------------------------------------------------------------


def test_the_terminal_table_fits_100_columns_and_its_columns_line_up(sandbox) -> None:
    _, result = sandbox
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "cte-conformance: sandbox mode" in line)
    table = [line for line in lines[start + 1 :] if line.strip()[:5].strip() in ("PASS", "WARN")]
    assert len(table) == 83
    assert max(len(line) for line in lines) <= 100, max(lines, key=len)
    columns = {len(line) - len(line.rstrip().rsplit("  ", 1)[-1]) for line in table}
    assert len(columns) == 1, columns  # what each scenario says starts in the same column
    outline = [line for line in table if "A bad exchange request is rejected" in line]
    assert len(outline) == 9 and all(line.split("[")[-1].split("]")[0] for line in outline)
    assert len({line.split("[")[-1] for line in outline}) == 9, outline  # the examples stay told apart
    notifications = [line for line in table if "reaches the other member's client" in line]
    assert notifications and all(len(line) <= 100 for line in notifications)


def test_the_last_line_is_the_harness_verdict_count_and_exit_status(sandbox) -> None:
    _, result = sandbox
    last = result.stdout.strip().splitlines()[-1]
    assert last == "cte-conformance: 1 WARN, 82 PASS; exit status 0 (no FAIL or ERROR)", last
    assert "passed" not in last


def test_a_skip_says_why_in_a_few_words_in_the_terminal() -> None:
    results = [
        {
            "area": "policies",
            "row": None,
            "name": "Messaging policy with chat off: sending a chat message is rejected",
            "verdict": "SKIP",
            "says": "skipped",
            "detail": "profile 'mine' declares no Messaging policy with Chat = Off; add a [[policies]] entry: "
            'policy = "Messaging policy", setting = "Chat", value = "Off", user = "<alias of a user who has it>"',
            "evidence": {},
        }
    ]
    lines = verdict_table(results)
    assert lines[0] == "policies:"
    assert lines[1].startswith("  SKIP   Messaging policy") and lines[1].endswith("skipped")
    assert "declares no Messaging policy with Chat = Off" in lines[2] and "[[policies]]" not in lines[2]
    assert all(len(line) <= 100 for line in lines)
    assert verdict_line([{**results[0], "verdict": "SKIP"}], 0).startswith("cte-conformance: 1 SKIP;")


def test_a_selection_that_matches_nothing_says_so_and_leaves_no_report(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    result = run_cli("run", "-q", "-k", "nomatch", "--report-dir", str(folder))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "cte: no scenario matched the selection -k 'nomatch': nothing ran and no report was written"
    ]
    assert not folder.exists()


def test_diff_of_a_report_without_an_id_is_one_line_naming_the_file_and_the_key(tmp_path: Path) -> None:
    good = {
        "run": {"id": "a"},
        "scenarios": [{"id": "s1", "name": "one", "verdict": "PASS"}],
    }
    broken = {"run": {"id": "b"}, "scenarios": [{"name": "one", "verdict": "FAIL"}]}
    (tmp_path / "old.json").write_text(json.dumps(good))
    (tmp_path / "new.json").write_text(json.dumps(broken))
    result = run_cli("diff", str(tmp_path / "old.json"), str(tmp_path / "new.json"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert str(tmp_path / "new.json") in lines[0] and "'id'" in lines[0]


def test_record_help_explains_every_option() -> None:
    from harness.run.cli import parser

    sub = next(a for a in parser()._actions if a.dest == "command")
    for command in ("record", "run", "diff"):
        for action in sub.choices[command]._actions:
            assert action.help, f"cte {command} {'/'.join(action.option_strings) or action.dest} has no help"
    assert sub.choices["record"].description


def test_the_sandbox_line_says_what_its_numbers_are() -> None:
    health = {"requests": {"acs": 44, "calling": 90, "other": 3}, "faults": {}, "messages_sent_twice": 0}
    text = sandbox_health_text(health)
    assert "requests acs 44" not in text
    assert "44 ACS token exchanges" in text and "90 calls to the calling model" in text
    assert text.startswith("The sandbox tenant answered 137 requests")
