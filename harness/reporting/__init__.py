"""Reports of one run: one document (conformance.json's structure, a versioned schema), built once from
the scenarios' results, and one writer per format that takes it: json_writer.py (conformance.json, the
source of truth), markdown.py (conformance.md), html.py (conformance.html).

The document holds no tenant identifiers: each result is redacted where the scenario ends, the rest as
the document is built (redaction.py says why there). JUnit XML and Allure's files are written by
their own pytest plugins and scrubbed once those are done (harness.reporting.session).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.conformance.verdicts import VERDICT_ORDER
from harness.reporting import html, json_writer, markdown
from harness.reporting.redaction import redact, redact_result
from harness.reporting.wording import row_verdict, sandbox_health_text

__all__ = [
    "SCHEMA_PATH",
    "SCHEMA_VERSION",
    "VERDICT_ORDER",
    "build",
    "redact_result",
    "row_verdict",
    "sandbox_health_text",
    "write_reports",
]

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("conformance.schema.json")
# Each format: its file, and the writer that turns the document into its text.
WRITERS: dict[str, tuple[str, Callable[[dict[str, Any]], str]]] = {
    "json": ("conformance.json", json_writer.render),
    "md": ("conformance.md", markdown.render),
    "html": ("conformance.html", html.render),
}


def build(
    results: list[dict[str, Any]], run: Mapping[str, Any], stale: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    summary = dict.fromkeys(VERDICT_ORDER, 0)
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


def write_reports(
    results: list[dict[str, Any]],
    *,
    report_dir: Path,
    run: Mapping[str, Any],
    known_secrets: Mapping[str, str],
    stale: list[dict[str, str]] | None = None,
) -> dict[str, Path]:
    """Every format's report of the run. `results` come redacted (`redact_result`, as each scenario
    ended); what is added here, the run's metadata and the stale expectations, is redacted here."""
    document = build(results, redact(dict(run), known_secrets), redact(stale, known_secrets))
    report_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, (name, render) in WRITERS.items():
        paths[kind] = report_dir / name
        paths[kind].write_text(render(document), encoding="utf-8")
    return paths
