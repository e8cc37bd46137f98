"""Reports of one run: conformance.json (the source of truth, versioned schema) and conformance.md.

Everything written passes through the scrubber with the run's known secrets first, so tenant
identifiers, users and tokens are redacted even if evidence picked one up.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.conformance.table import ROWS
from harness.core import scrubbing
from harness.reporting import html

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("conformance.schema.json")
VERDICT_ORDER = ("ERROR", "FAIL", "WARN", "SKIP", "PASS")


def build(
    results: list[dict[str, Any]], run: Mapping[str, Any], stale: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    summary = {verdict: 0 for verdict in VERDICT_ORDER}
    for result in results:
        summary[result["verdict"]] += 1
    ordered = sorted(results, key=lambda r: (r["area"], r["row"] or 0, r["feature"], r["name"]))
    expected = sum(1 for r in results if r["evidence"].get("expected_deviation"))
    return {
        "schema_version": SCHEMA_VERSION,
        "run": dict(run),
        "summary": summary,
        "scenarios": ordered,
        "expectations": {"expected_deviations": expected, "stale": stale or []},
    }


def _identifying(known_secrets: Mapping[str, str]) -> dict[str, str]:
    """The known values a report hides: all but reserved domains (.invalid, .example: RFC 2606), which
    identify nobody (a profile's blocked example domain is shown as written)."""
    return {
        k: v for k, v in known_secrets.items() if not (scrubbing.is_reserved_domain(k) and re.fullmatch(r"[\w.-]+", k))
    }


def redact_result(result: dict[str, Any], known_secrets: Mapping[str, str]) -> dict[str, Any]:
    """One scenario's result with the tenant's identifiers replaced (request ids kept)."""
    return scrubbing.Scrubber(_identifying(known_secrets), keep=frozenset({"request_id"})).json_value(result)


def redact(document: dict[str, Any], known_secrets: Mapping[str, str]) -> dict[str, Any]:
    # Request ids kept: support asks for them.
    scrubber = scrubbing.Scrubber(_identifying(known_secrets), keep=frozenset({"request_id"}))
    return scrubber.json_value(document)


def row_verdict(results: list[dict[str, Any]]) -> str:
    verdicts = {r["verdict"] for r in results}
    return next((v for v in VERDICT_ORDER if v in verdicts), "—")


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


WORKLOADS = {
    "entra": "Entra ID token requests",
    "acs": "ACS token exchanges and identities",
    "graph": "Microsoft Graph calls",
    "calling": "calls to the calling model",
    "other": "others (sign-in discovery and the like)",
}
FAULTS = {"throttle": "throttled (429)", "server_error": "server errors (5xx)", "drop": "dropped connections"}


def sandbox_health_text(health: dict[str, Any] | None) -> str:
    """What the sandbox saw, in words a partner reads: requests per service, faults it injected on
    purpose, chat messages stored twice (a retry that sent a message again; must be none)."""
    if not health:
        return ""
    counts = {w: n for w, n in health["requests"].items() if n}
    named = [f"{n} {WORKLOADS.get(w, w)}" for w, n in counts.items() if w != "other"]
    if counts.get("other"):
        named.append(f"{counts['other']} {WORKLOADS['other']}")
    line = f"The sandbox tenant answered {sum(counts.values())} requests"
    line += f": {', '.join(named)}" if named else ""
    twice = health["messages_sent_twice"]
    line += "; " + (
        "no chat message was stored twice."
        if not twice
        else f"{twice} chat message(s) were stored twice (a retry sent them again)."
    )
    faults = [
        f"{WORKLOADS.get(w, w)}: "
        + ", ".join(f"{n} {FAULTS.get(k, k.replace('_', ' '))}" for k, n in c.items() if k != "requests")
        for w, c in health["faults"].items()
        if any(k != "requests" for k in c)
    ]
    if faults:
        line += f" Faults it injected on purpose (emulator-defined): {'; '.join(faults)}."
    return line


def _sandbox_health(health: dict[str, Any] | None) -> list[str]:
    text = sandbox_health_text(health)
    return [text, ""] if text else []


def markdown(document: dict[str, Any]) -> str:
    run, scenarios = document["run"], document["scenarios"]
    lines = [
        "# Conformance report: communication as a Teams user",
        "",
        f"Run `{run['id']}` · mode **{run['mode']}** · profile **{run['profile']}** · started {run['started']} · "
        f"{run['duration_s']} s · harness {run['harness_version']}",
        "",
        " · ".join(f"{n} {v}" for v, n in document["summary"].items() if n) or "no scenarios ran",
        "",
        *_sandbox_health(run.get("sandbox")),
        "## The source table",
        "",
        "| # | Scenario | Documented | Observed | Verdict | Evidence |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in ROWS:
        covering = [s for s in scenarios if s["row"] == row.number]
        documented = "✔️ supported" if row.supported else "❌ not supported"
        lines.append(_table_row(str(row.number), row.scenario, documented, covering))
    caveat = [s for s in scenarios if "caveat" in s["tags"]]
    lines.append(_table_row("[1]", html.WEBINAR_FOOTNOTE, "⚠️ caveat", caveat))
    with_policy = [s for s in scenarios if s.get("policy")]
    if with_policy:
        lines += [
            "",
            "## Policies",
            "",
            "Teams policies and meeting options, enforced in the app as in Teams:",
            "",
            "| Policy | Setting | Applies to | Expected enforcement | Observed | Verdict |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for s in with_policy:
            p = s["policy"]
            observed = html.policy_observed(s)
            lines.append(
                f"| {_cell(p['policy'])} | {_cell(p['setting'])} | {_cell(p['holder'])} | "
                f"{_cell(p['enforcement'])} | {_cell(observed)} | {s['verdict']} ({_cell(s['says'])}) |"
            )
    for area in sorted({s["area"] for s in scenarios}):
        lines += [
            "",
            f"## {area.title()} scenarios",
            "",
            "| Scenario | Documented | Observed | Verdict | Evidence |",
            "| --- | --- | --- | --- | --- |",
        ]
        for s in (s for s in scenarios if s["area"] == area):
            documented = s["expectation"]["documented"] if s["expectation"] else "—"
            observed = s["observed"]["summary"] if s["observed"] else "—"
            evidence = _evidence_text(s)
            lines.append(
                f"| {_cell(s['name'])} | {_cell(documented)} | {_cell(observed)} | {s['verdict']} ({_cell(s['says'])}) "
                f"| {_cell(evidence)} |"
            )
    emulated = [s for s in scenarios if s["evidence"].get("emulator_defined")]
    if emulated:
        lines += [
            "",
            "## Emulator-defined behaviour",
            "",
            "Microsoft documents no behaviour for these; the verdict rests on the sandbox's choice:",
            "",
        ]
        lines += [f"- {s['name']}: {s['evidence']['emulator_defined']}" for s in emulated]
    return "\n".join(lines) + "\n"


def _table_row(number: str, text: str, documented: str, covering: list[dict[str, Any]]) -> str:
    observed = "; ".join(s["says"] for s in covering) or "not covered in this run"
    # Request ids are in each scenario's own row below; here they would drown the codes.
    evidence = "; ".join(filter(None, (html.codes(s, request_id=False) for s in covering)))
    return (
        f"| {number} | {_cell(text)} | {documented} | {_cell(observed)} | {row_verdict(covering)} | {_cell(evidence)} |"
    )


def _evidence_text(scenario: dict[str, Any]) -> str:
    """One scenario's evidence in a table cell: its codes, message, target, request id, and for a
    verdict other than PASS the verdict's detail; each said once."""
    evidence = scenario["evidence"]
    parts = [html.human(evidence[k]) for k in ("status", "code", "message", "target") if evidence.get(k) is not None]
    if evidence.get("request_id"):
        parts.append(f"request {evidence['request_id']}")
    if evidence.get("emulator_defined"):
        parts.append("emulator-defined")
    if scenario["detail"] and scenario["verdict"] != "PASS":
        parts.append(scenario["detail"])
    return " · ".join(html.once(parts))


def write_reports(
    results: list[dict[str, Any]],
    *,
    report_dir: Path,
    run: Mapping[str, Any],
    known_secrets: Mapping[str, str],
    stale: list[dict[str, str]] | None = None,
) -> dict[str, Path]:
    document = redact(build(results, run, stale), known_secrets)
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": report_dir / "conformance.json",
        "md": report_dir / "conformance.md",
        "html": report_dir / "conformance.html",
    }
    paths["json"].write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    paths["md"].write_text(markdown(document), encoding="utf-8")
    paths["html"].write_text(html.render(document), encoding="utf-8")
    return paths
