"""conformance.html: one self-contained page (no external assets) a person reads and shares.

The source table with Documented / Observed / Verdict / Evidence, then every scenario, filterable
by verdict and area, each with its evidence expandable; run metadata at the top. It is written
from the already-redacted report document, so it holds no tenant identifiers either.
"""

from __future__ import annotations

import html
import json
from typing import Any

from harness.calling.protocol import WITNESSES_AGREE
from harness.seed_table import ROWS, WEBINAR_FOOTNOTE

VERDICT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "WARN": "#9a6700", "SKIP": "#57606a", "ERROR": "#8250df"}
ORDER = ("ERROR", "FAIL", "WARN", "SKIP", "PASS")

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:2rem 0 .5rem}
.meta{color:#57606a;margin-bottom:1rem} table{border-collapse:collapse;width:100%}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} .verdict{font-weight:600;color:#fff;border-radius:4px;padding:.05rem .4rem;white-space:nowrap}
.summary span{margin-right:1rem} .filters{margin:.75rem 0} .filters label{margin-right:.75rem}
details pre{white-space:pre-wrap;background:#f6f8fa;padding:.5rem;margin:.25rem 0;font-size:12px}
.muted{color:#57606a} .hidden{display:none}
"""

SCRIPT = """
function applyFilters(){
  const verdicts=[...document.querySelectorAll('input[data-verdict]')].filter(i=>i.checked).map(i=>i.dataset.verdict);
  const area=document.getElementById('area').value;
  for(const row of document.querySelectorAll('tr[data-scenario]')){
    const show=verdicts.includes(row.dataset.verdict)&&(area===''||row.dataset.area===area);
    row.classList.toggle('hidden',!show);
  }
}
document.addEventListener('change',applyFilters);
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#57606a")
    return f'<span class="verdict" style="background:{colour}">{_e(verdict)}</span>'


def _worst(scenarios: list[dict[str, Any]]) -> str:
    verdicts = {s["verdict"] for s in scenarios}
    return next((v for v in ORDER if v in verdicts), "")


def codes(scenario: dict[str, Any]) -> str:
    """The codes behind a verdict, compactly: status/subcode (or code), call states, request id,
    emulator-defined, whether the real Calling SDK and the sandbox model agreed; for a SKIP, why."""
    evidence = scenario["evidence"]
    parts = []
    status, code = evidence.get("status"), evidence.get("code")
    if status is not None or code is not None:
        parts.append("/".join(str(p) for p in (status, code) if p is not None))
    if evidence.get("states"):
        parts.append(evidence["states"])
    if evidence.get("request_id"):
        parts.append(f"request {evidence['request_id']}")
    if evidence.get("emulator_defined"):
        parts.append("emulator-defined")
    witnesses = [c for c in evidence.get("checks") or [] if c.get("name") == WITNESSES_AGREE]
    if witnesses:
        parts.append("real SDK and sandbox model " + ("agree" if all(c["passed"] for c in witnesses) else "disagree"))
    if scenario["verdict"] == "SKIP" and scenario.get("detail"):
        parts.append(scenario["detail"].split(":")[0][:80])
    return " · ".join(parts)


def render(document: dict[str, Any]) -> str:
    run, scenarios = document["run"], document["scenarios"]
    summary = "".join(f"<span>{_badge(v)} {n}</span>" for v, n in document["summary"].items() if n)
    rows = []
    for row in ROWS:
        covering = [s for s in scenarios if s["row"] == row.number]
        documented = "✔ supported" if row.supported else "✘ not supported"  # glyphs every system font has
        observed = "; ".join(s["says"] for s in covering) or '<span class="muted">not covered in this run</span>'
        evidence = "; ".join(filter(None, (codes(s) for s in covering)))
        verdict = _badge(_worst(covering)) if covering else "—"
        rows.append(
            f"<tr><td>{row.number}</td><td>{_e(row.scenario)}</td><td>{documented}</td>"
            f"<td>{observed if not covering else _e(observed)}</td><td>{verdict}</td><td>{_e(evidence)}</td></tr>"
        )
    caveat = [s for s in scenarios if "caveat" in s["tags"]]
    rows.append(
        f"<tr><td>[1]</td><td>{_e(WEBINAR_FOOTNOTE)}</td><td>⚠ caveat</td>"
        f"<td>{_e('; '.join(s['says'] for s in caveat)) or 'not covered in this run'}</td>"
        f"<td>{_badge(_worst(caveat)) if caveat else '—'}</td><td>{_e('; '.join(codes(s) for s in caveat))}</td></tr>"
    )
    areas = sorted({s["area"] for s in scenarios})
    filters = "".join(f'<label><input type="checkbox" data-verdict="{v}" checked> {v}</label>' for v in ORDER)
    options = '<option value="">all areas</option>' + "".join(f'<option value="{a}">{a}</option>' for a in areas)
    details = []
    for s in scenarios:
        documented = s["expectation"]["documented"] if s["expectation"] else "—"
        observed = s["observed"]["summary"] if s["observed"] else "—"
        evidence = json.dumps(s["evidence"], indent=2, ensure_ascii=False, sort_keys=True)
        details.append(
            f'<tr data-scenario data-verdict="{_e(s["verdict"])}" data-area="{_e(s["area"])}">'
            f"<td>{_e(s['area'])}</td><td>{_e(s['name'])}<div class='muted'>{_e(s['feature'])}</div></td>"
            f"<td>{_e(documented)}</td><td>{_e(observed)}</td><td>{_badge(s['verdict'])} {_e(s['says'])}"
            f"<div class='muted'>{_e(s['detail'] if s['verdict'] != 'PASS' else '')}</div></td>"
            f"<td><details><summary>{_e(codes(s) or 'evidence')}</summary>"
            f"<pre>{_e(evidence)}</pre></details></td></tr>"
        )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Conformance report: communication as a Teams user</title>
<style>{STYLE}</style></head><body>
<h1>Conformance report: communication as a Teams user</h1>
<div class="meta">run <code>{_e(run["id"])}</code> · mode <b>{_e(run["mode"])}</b> · profile <b>{_e(run["profile"])}</b>
 · started {_e(run["started"])} · {_e(run["duration_s"])} s · harness {_e(run["harness_version"])}</div>
<div class="summary">{summary}</div>
<h2>The source table</h2>
<table id="source-table"><thead><tr><th>#</th><th>Scenario</th><th>Documented</th><th>Observed</th><th>Verdict</th>
<th>Evidence</th></tr></thead><tbody>{"".join(rows)}</tbody></table>
<h2>Every scenario</h2>
<div class="filters">{filters}<select id="area">{options}</select></div>
<table id="scenarios"><thead><tr><th>Area</th><th>Scenario</th><th>Documented</th><th>Observed</th><th>Verdict</th>
<th>Evidence</th></tr></thead><tbody>{"".join(details)}</tbody></table>
<script>{SCRIPT}</script>
</body></html>
"""
