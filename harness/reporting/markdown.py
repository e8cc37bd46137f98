"""conformance.md: the report document as Markdown (the source table, Policies, each area's scenarios,
the emulator-defined behaviour). Written from the already-redacted document."""

from __future__ import annotations

from typing import Any

from harness.conformance.table import ROWS
from harness.reporting import wording


def _cell(text: Any) -> str:
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def _sandbox_health(health: dict[str, Any] | None) -> list[str]:
    text = wording.sandbox_health_text(health)
    return [text, ""] if text else []


def _token_requests(by_user: dict[str, dict[str, int]] | None) -> list[str]:
    text = wording.token_requests_text(by_user)
    return [_cell(text), ""] if text else []


def render(document: dict[str, Any]) -> str:
    run, scenarios = document["run"], document["scenarios"]
    lines = [
        f"# {wording.TITLE}",
        "",
        f"Run `{run['id']}` · mode **{run['mode']}** · profile **{run['profile']}** · started {run['started']} · "
        f"{run['duration_s']} s · harness {run['harness_version']}",
        "",
        " · ".join(f"{n} {v}" for v, n in document["summary"].items() if n) or "no scenarios ran",
        "",
        *_sandbox_health(run.get("sandbox")),
        *_token_requests(run.get("token_requests")),
        "## The source table",
        "",
        "| # | Scenario | Documented | Observed | Verdict | Evidence |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in ROWS:
        covering = [s for s in scenarios if s["row"] == row.number]
        supported = "✔️ supported" if row.supported else "❌ not supported"
        lines.append(_table_row(str(row.number), row.scenario, supported, covering))
    caveat = [s for s in scenarios if "caveat" in s["tags"]]
    lines.append(_table_row("[1]", wording.WEBINAR_FOOTNOTE, "⚠️ caveat", caveat))
    with_policy = [s for s in scenarios if s.get("policy")]
    if with_policy:
        lines += [
            "",
            "## Policies",
            "",
            wording.POLICIES_INTRO,
            "",
            "| Policy | Setting | Applies to | Expected enforcement | Observed | Verdict |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for s in with_policy:
            p = s["policy"]
            lines.append(
                f"| {_cell(p['policy'])} | {_cell(p['setting'])} | {_cell(p['holder'])} | {_cell(p['enforcement'])} | "
                f"{_cell(wording.policy_observed(s))} | {s['verdict']} ({_cell(s['says'])}) |"
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
            lines.append(
                f"| {_cell(s['name'])} | {_cell(wording.documented(s))} | {_cell(wording.observed(s))} | "
                f"{s['verdict']} ({_cell(s['says'])}) | {_cell(_evidence_text(s))} |"
            )
    emulated = [s for s in scenarios if s["evidence"].get("emulator_defined")]
    if emulated:
        lines += [
            "",
            "## Emulator-defined behaviour",
            "",
            wording.EMULATED_INTRO,
            "",
        ]
        lines += [f"- {s['name']}: {s['evidence']['emulator_defined']}" for s in emulated]
    return "\n".join(lines) + "\n"


def _table_row(number: str, text: str, documented_as: str, covering: list[dict[str, Any]]) -> str:
    said = "; ".join(s["says"] for s in covering) or "not covered in this run"
    # Request ids are in each scenario's own row below; here they would drown the wording.codes.
    evidence = "; ".join(filter(None, (wording.codes(s, request_id=False) for s in covering)))
    return (
        f"| {number} | {_cell(text)} | {documented_as} | {_cell(said)} | {wording.row_verdict(covering)} | "
        f"{_cell(evidence)} |"
    )


def _evidence_text(scenario: dict[str, Any]) -> str:
    """One scenario's evidence in a table cell: its wording.codes, message, target, request id, and for a
    verdict other than PASS the verdict's detail; each said wording.once."""
    evidence = scenario["evidence"]
    parts = [wording.human(evidence[k]) for k in ("status", "code", "message", "target") if evidence.get(k) is not None]
    if evidence.get("request_id"):
        parts.append(f"request {evidence['request_id']}")
    if evidence.get("emulator_defined"):
        parts.append("emulator-defined")
    if scenario["detail"] and scenario["verdict"] != "PASS":
        parts.append(scenario["detail"])
    return " · ".join(wording.once(parts))
