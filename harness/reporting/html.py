"""conformance.html: one self-contained page (no external assets) a person reads and shares.

It carries everything conformance.md does, section by section: run metadata and what the sandbox
saw, the source table with Documented / Observed / Verdict / Evidence (request ids behind one
expander per row), the Policies section, every scenario (filterable by verdict and area, each with
its evidence as a small definition list), and the emulator-defined behaviour. It is written from the
already-redacted report document, so it holds no tenant identifiers either.
"""

from __future__ import annotations

import hashlib
import html
import re
from typing import Any

from harness.conformance.table import ROWS
from harness.conformance.table import WEBINAR_FOOTNOTE as FOOTNOTE_TEXT
from harness.conformance.verdicts import VERDICT_ORDER
from harness.reporting.wording import (
    EMULATED_INTRO,
    POLICIES_INTRO,
    TITLE,
    WEBINAR_FOOTNOTE,
    codes,
    documented,
    human,
    observed,
    policy_observed,
    row_verdict,
    sandbox_health_text,
    token_requests_text,
)

VERDICT_COLOURS = {"PASS": "#1a7f37", "FAIL": "#cf222e", "WARN": "#9a6700", "SKIP": "#57606a", "ERROR": "#8250df"}
# The Markdown's words, with glyphs every system font has instead of its emoji.
SUPPORTED, NOT_SUPPORTED, CAVEAT = "✔ supported", "✘ not supported", "⚠ caveat"
MARKDOWN_GLYPHS = {"✔️": "✔", "❌": "✘", "⚠️": "⚠"}
# Evidence keys shown first, in this order, and the words a person reads for a key.
FIRST = ("status", "code", "message", "target", "diagnosis", "remedy", "request_id", "states", "emulator_defined")
LABELS = {
    "request_id": "request id",
    "emulator_defined": "emulator-defined",
    "observed_at": "observed at",
    "callEndReason": "call end reason",
    "http_status": "HTTP status",
    "changeType": "change type",
    "expiresOn": "expires on",
    "entra_exp": "Entra token expiry (epoch s)",
}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1200px}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:2rem 0 .5rem}
.meta{color:#57606a;margin-bottom:1rem} .scroll{overflow-x:auto} table{border-collapse:collapse;width:100%}
th,td{border:1px solid #d0d7de;padding:.35rem .5rem;text-align:left;vertical-align:top;overflow-wrap:break-word}
td[data-label="Evidence"]{overflow-wrap:anywhere;min-width:14rem} td[data-label="Documented"]{white-space:nowrap}
th{background:#f6f8fa} .verdict{font-weight:600;color:#fff;border-radius:4px;padding:.05rem .4rem;white-space:nowrap}
.summary span{margin-right:1rem} .filters{margin:.75rem 0} .filters label{margin-right:.75rem;white-space:nowrap}
dl.evidence{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .6rem;margin:.25rem 0;font-size:12px}
dl.evidence dt{color:#57606a} dl.evidence dd{margin:0} ul.plain{margin:.25rem 0;padding-left:1.1rem}
details summary{cursor:pointer} code{font-size:12px}
.muted{color:#57606a} .hidden{display:none}
@media (max-width:700px){
 body{margin:.75rem;font-size:13px} h1{font-size:1.2rem}
 table,thead,tbody,tr,th,td{display:block;width:auto} thead{display:none}
 tr{border:1px solid #d0d7de;border-radius:6px;margin:0 0 .6rem;padding:.25rem .4rem}
 td{border:0;padding:.15rem 0} td[data-label]::before{content:attr(data-label) ": ";font-weight:600;color:#57606a}
 tr.hidden{display:none} dl.evidence{grid-template-columns:1fr} dl.evidence dt{margin-top:.2rem}
}
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


def scenario_anchor(scenario_id: str) -> str:
    """A scenario row's stable anchor in conformance.html (`#s-...`): its id, made safe for a URL
    fragment, with a short digest so two ids that read alike never share one."""
    readable = re.sub(r"[^A-Za-z0-9_-]+", "-", scenario_id).strip("-")[:80]
    return f"s-{readable}-{hashlib.sha256(scenario_id.encode()).hexdigest()[:8]}"


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _badge(verdict: str) -> str:
    colour = VERDICT_COLOURS.get(verdict, "#57606a")
    return f'<span class="verdict" style="background:{colour}">{_e(verdict)}</span>'


def label(key: str) -> str:
    return LABELS.get(key, key.replace("_", " "))


def check_text(check: dict[str, Any]) -> str:
    mark = "✔" if check.get("passed") else "✘"
    return f"{mark} {check['name']}" + (f": {check['detail']}" if check.get("detail") else "")


def evidence_items(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """The evidence as (label, text) pairs: the codes first, then the rest; a value that repeats one
    already shown (a message equal to its code) is left out."""
    keys = [k for k in FIRST if k in evidence] + [k for k in evidence if k not in FIRST]
    items: list[tuple[str, str]] = []
    shown: set[str] = set()
    for key in keys:
        value = evidence[key]
        text = "; ".join(check_text(c) for c in value) if key == "checks" else human(value)
        if not text or (key not in ("status", "code") and text in shown):
            continue
        shown.add(text)
        items.append((label(key), text))
    return items


def _dl(evidence: dict[str, Any]) -> str:
    items = evidence_items(evidence)
    if not items:
        return '<span class="muted">no evidence</span>'
    return '<dl class="evidence">' + "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in items) + "</dl>"


def _requests(covering: list[dict[str, Any]]) -> str:
    """The request ids of a row's scenarios behind one expander (support asks for them; nobody reads them)."""
    ids = [(s["name"], s["evidence"]["request_id"]) for s in covering if s["evidence"].get("request_id")]
    if not ids:
        return ""
    listed = "".join(f"<li>{_e(name)}: <code>{_e(rid)}</code></li>" for name, rid in ids)
    summary = f"<summary>request ids ({len(ids)})</summary>"
    return f'<details class="requests">{summary}<ul class="plain">{listed}</ul></details>'


def _source_row(number: str, text: str, documented_as: str, covering: list[dict[str, Any]]) -> str:
    said = _e("; ".join(s["says"] for s in covering)) or '<span class="muted">not covered in this run</span>'
    evidence = "; ".join(filter(None, (codes(s, request_id=False) for s in covering)))
    verdict = _badge(row_verdict(covering)) if covering else "—"
    return (
        f'<tr><td data-label="Row">{_e(number)}</td><td data-label="Scenario">{_e(text)}</td>'
        f'<td data-label="Documented">{_e(documented_as)}</td><td data-label="Observed">{said}</td>'
        f'<td data-label="Verdict">{verdict}</td>'
        f'<td data-label="Evidence">{_e(evidence)}{_requests(covering)}</td></tr>'
    )


def _policies(scenarios: list[dict[str, Any]]) -> str:
    with_policy = [s for s in scenarios if s.get("policy")]
    if not with_policy:
        return ""
    rows = []
    for s in with_policy:
        p = s["policy"]
        rows.append(
            f'<tr><td data-label="Policy">{_e(p["policy"])}</td><td data-label="Setting">{_e(p["setting"])}</td>'
            f'<td data-label="Applies to">{_e(p["holder"])}</td>'
            f'<td data-label="Expected enforcement">{_e(p["enforcement"])}</td>'
            f'<td data-label="Observed">{_e(policy_observed(s))}</td>'
            f'<td data-label="Verdict">{_badge(s["verdict"])} ({_e(s["says"])})</td></tr>'
        )
    return f"""<h2 id="policies">Policies</h2>
<p>{_e(POLICIES_INTRO)}</p>
<div class="scroll"><table id="policy-table"><thead><tr><th>Policy</th><th>Setting</th><th>Applies to</th>
<th>Expected enforcement</th><th>Observed</th><th>Verdict</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>
"""


def _emulated(scenarios: list[dict[str, Any]]) -> str:
    emulated = [s for s in scenarios if s["evidence"].get("emulator_defined")]
    if not emulated:
        return ""
    items = "".join(f"<li><b>{_e(s['name'])}</b>: {_e(s['evidence']['emulator_defined'])}</li>" for s in emulated)
    return f"""<h2 id="emulator-defined">Emulator-defined behaviour</h2>
<p>{_e(EMULATED_INTRO)}</p>
<ul id="emulated">{items}</ul>
"""


def render(document: dict[str, Any]) -> str:
    run, scenarios = document["run"], document["scenarios"]
    summary = " ".join(f"<span>{n} {_badge(v)}</span>" for v, n in document["summary"].items() if n)
    rows = []
    for row in ROWS:
        covering = [s for s in scenarios if s["row"] == row.number]
        rows.append(_source_row(str(row.number), row.scenario, SUPPORTED if row.supported else NOT_SUPPORTED, covering))
    caveat = [s for s in scenarios if "caveat" in s["tags"]]
    rows.append(_source_row("[1]", WEBINAR_FOOTNOTE, CAVEAT, caveat))
    areas = sorted({s["area"] for s in scenarios})
    filters = "".join(f'<label><input type="checkbox" data-verdict="{v}" checked> {v}</label>' for v in VERDICT_ORDER)
    options = '<option value="">all areas</option>' + "".join(f'<option value="{a}">{a}</option>' for a in areas)
    details = []
    for s in scenarios:
        detail = s["detail"] if s["verdict"] != "PASS" else ""
        details.append(
            f'<tr id="{scenario_anchor(s["id"])}" data-scenario data-verdict="{_e(s["verdict"])}" '
            f'data-area="{_e(s["area"])}">'
            f'<td data-label="Area">{_e(s["area"])}</td>'
            f"<td data-label=\"Scenario\">{_e(s['name'])}<div class='muted'>{_e(s['feature'])}</div></td>"
            f'<td data-label="Documented">{_e(documented(s))}</td><td data-label="Observed">{_e(observed(s))}</td>'
            f'<td data-label="Verdict">{_badge(s["verdict"])} ({_e(s["says"])})'
            f"<div class='muted'>{_e(detail)}</div></td>"
            f'<td data-label="Evidence"><details><summary>{_e(codes(s) or "evidence")}</summary>'
            f"{_dl(s['evidence'])}</details></td></tr>"
        )
    health = sandbox_health_text(run.get("sandbox"))
    token_requests = token_requests_text(run.get("token_requests"))
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(TITLE)}</title>
<style>{STYLE}</style></head><body>
<h1>{_e(TITLE)}</h1>
<div class="meta">Run <code>{_e(run["id"])}</code> · mode <b>{_e(run["mode"])}</b> · profile <b>{_e(run["profile"])}</b>
 · started {_e(run["started"])} · {_e(run["duration_s"])} s · harness {_e(run["harness_version"])}</div>
<div class="summary">{summary or "no scenarios ran"}</div>
{f'<p class="meta" id="sandbox-health">{_e(health)}</p>' if health else ""}
{f'<p class="meta" id="token-requests">{_e(token_requests)}</p>' if token_requests else ""}
<h2 id="source">The source table</h2>
<div class="scroll"><table id="source-table"><thead><tr><th>#</th><th>Scenario</th><th>Documented</th><th>Observed</th>
<th>Verdict</th><th>Evidence</th></tr></thead><tbody>{"".join(rows)}</tbody></table></div>
<p class="muted">[1] {_e(FOOTNOTE_TEXT)}</p>
{_policies(scenarios)}
<h2 id="scenarios-heading">Every scenario</h2>
<div class="filters">{filters}<select id="area">{options}</select></div>
<div class="scroll"><table id="scenarios"><thead><tr><th>Area</th><th>Scenario</th><th>Documented</th><th>Observed</th>
<th>Verdict</th><th>Evidence</th></tr></thead><tbody>{"".join(details)}</tbody></table></div>
{_emulated(scenarios)}
<script>{SCRIPT}</script>
</body></html>
"""
