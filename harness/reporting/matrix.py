"""`cte matrix REPORT...`: many runs on one page, for an ISV whose app many tenants bought.

Two views, written as one self-contained HTML page (inline CSS and SVG, no script, no external asset)
and as Markdown:

- the matrix: scenarios as rows (the source table's 12 rows and the webinar caveat first, then every
  other scenario by area), one column per run (ordered by profile, then by when it started; one run per
  profile gives one column per tenant), each cell the verdict, coloured, linked to that run's
  conformance.html at the scenario's anchor;
- over time: per profile, a small SVG chart of the PASS/FAIL/WARN/SKIP (and ERROR, when any) counts
  with one point per run, and one line per run.

Reports are read as written (already redacted); links are relative to the output folder, so the
folder and the reports move together.
"""

from __future__ import annotations

import html as htmllib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.conformance.table import ROWS
from harness.conformance.verdicts import VERDICT_ORDER
from harness.reporting import SCHEMA_VERSION
from harness.reporting.diff import load as load_document
from harness.reporting.html import VERDICT_COLOURS, scenario_anchor
from harness.reporting.wording import WEBINAR_FOOTNOTE, row_verdict

# The Markdown cannot colour text: a coloured mark says the verdict's colour.
MARKS = {"PASS": "🟢", "FAIL": "🔴", "WARN": "🟡", "SKIP": "⚪", "ERROR": "🟣"}
CHART_SERIES = ("PASS", "FAIL", "WARN", "SKIP")  # ERROR too, when a run has one
CAVEAT_KEY = "caveat"
NOT_RUN = "—"


class MatrixError(ValueError):
    """Bad input, said in one line naming the file and what to do."""


@dataclass(frozen=True)
class Run:
    path: Path  # the conformance.json
    document: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.document["run"]["id"])

    @property
    def profile(self) -> str:
        return str(self.document["run"]["profile"])

    @property
    def started(self) -> str:
        return str(self.document["run"]["started"])

    @property
    def scenarios(self) -> list[dict[str, Any]]:
        return self.document["scenarios"]

    def summary(self) -> dict[str, int]:
        counts = dict.fromkeys(VERDICT_ORDER, 0)
        for scenario in self.scenarios:
            counts[scenario["verdict"]] += 1
        return counts


@dataclass(frozen=True)
class Line:
    """One row of the matrix: a source-table row (its scenarios) or one scenario."""

    key: str
    label: str
    group: str
    number: str = ""

    def covering(self, run: Run) -> list[dict[str, Any]]:
        if self.key == CAVEAT_KEY:
            return [s for s in run.scenarios if "caveat" in s["tags"]]
        if self.key.startswith("row-"):
            return [s for s in run.scenarios if s["row"] == int(self.key[4:])]
        return [s for s in run.scenarios if s["id"] == self.key]


def resolve(argument: str | Path) -> Path:
    path = Path(argument)
    if path.is_dir():
        if not (path / "conformance.json").is_file():
            raise MatrixError(f"{path}: holds no conformance.json; pass a report folder a run wrote (reports/<run-id>)")
        return path / "conformance.json"
    if not path.exists():
        raise MatrixError(f"{path}: no such file or folder; pass a conformance.json or the report folder holding one")
    return path


def load_runs(arguments: list[str | Path]) -> list[Run]:
    """Each report read and checked; a run passed twice (same run id, profile and start) is refused. Ordered by
    profile, then by start. (A run id names its profile unless that is the default one; reports written before
    that share `<stamp>-<mode>` across profiles started in the same second: they are different runs.)"""
    if not arguments:
        raise MatrixError("no report given; pass one or more conformance.json files or report folders")
    runs: list[Run] = []
    seen: dict[tuple[str, str, str], Path] = {}
    for argument in arguments:
        path = resolve(argument)
        try:
            document = load_document(path)
        except ValueError as err:
            raise MatrixError(str(err)) from None
        version = document.get("schema_version")
        if version != SCHEMA_VERSION:
            raise MatrixError(
                f"{path}: a report of schema version {version!r}, this harness reads {SCHEMA_VERSION!r}; "
                "pass reports written by this harness version (or rerun that profile)"
            )
        for key in ("profile", "started"):
            if not isinstance(document["run"].get(key), str):
                raise MatrixError(f"{path}: run has no {key!r}; pass a conformance.json a run wrote")
        for index, scenario in enumerate(document["scenarios"]):
            if missing := [key for key in ("area", "row", "tags") if key not in scenario]:
                raise MatrixError(
                    f"{path}: scenario {index + 1} ({scenario['name']!r}) has no {', '.join(map(repr, missing))}; "
                    "pass a conformance.json a run wrote"
                )
        run = Run(path, document)
        identity = (run.id, run.profile, run.started)
        if identity in seen:
            raise MatrixError(
                f"{path}: the same run as {seen[identity]} (run {run.id}, profile {run.profile}, started "
                f"{run.started}); pass each run once"
            )
        seen[identity] = path
        runs.append(run)
    return sorted(runs, key=lambda r: (r.profile, r.started, r.id))


def lines(runs: list[Run]) -> list[Line]:
    """The source table's rows and the caveat, then every other scenario any run has, by area."""
    found = [Line(f"row-{row.number}", row.scenario, "The source table", str(row.number)) for row in ROWS]
    found.append(Line(CAVEAT_KEY, WEBINAR_FOOTNOTE, "The source table", "[1]"))
    others: dict[str, dict[str, Any]] = {}
    for run in runs:
        for scenario in run.scenarios:
            if scenario["row"] is None and "caveat" not in scenario["tags"]:
                others.setdefault(scenario["id"], scenario)
    for scenario in sorted(others.values(), key=lambda s: (s["area"], s["name"], s["id"])):
        found.append(Line(scenario["id"], scenario["name"], f"{scenario['area'].title()} scenarios"))
    return found


@dataclass(frozen=True)
class Cell:
    verdict: str  # NOT_RUN when the run has no scenario for the line
    href: str
    title: str


def link(run: Run, out_dir: Path, scenario: dict[str, Any] | None) -> str:
    """The run's conformance.html relative to the output folder, at the scenario's anchor."""
    target = os.path.relpath(run.path.parent.resolve() / "conformance.html", out_dir.resolve())
    href = quote(Path(target).as_posix())
    return f"{href}#{scenario_anchor(scenario['id'])}" if scenario else href


def cell(line: Line, run: Run, out_dir: Path) -> Cell:
    covering = line.covering(run)
    if not covering:
        return Cell(NOT_RUN, link(run, out_dir, None), "not run in this run")
    verdict = row_verdict(covering)
    worst = next(s for s in covering if s["verdict"] == verdict)  # the link goes to what decided the cell
    title = "; ".join(f"{s['verdict']}: {s['name']} ({s.get('says', '')})" for s in covering)
    return Cell(verdict, link(run, out_dir, worst), title)


def _e(value: Any) -> str:
    return htmllib.escape("" if value is None else str(value))


def short_time(started: str) -> str:
    """2026-12-01T10:19:57.566Z -> 2026-12-01 10:19:57 (UTC)."""
    return started.replace("T", " ")[:19]


def _badge(verdict: str) -> str:
    if verdict == NOT_RUN:
        return '<span class="notrun">not run</span>'
    return f'<span class="verdict v-{verdict}">{_e(verdict)}</span>'


STYLE = (
    """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem;color:#1f2328;max-width:1400px}
h1{font-size:1.5rem;margin:0 0 .25rem} h2{font-size:1.15rem;margin:2rem 0 .5rem}
h3{font-size:1rem;margin:1.5rem 0 .4rem}
.meta,.muted{color:#57606a} .scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse} th,td{border:1px solid #d0d7de;padding:.3rem .45rem;text-align:left;vertical-align:top}
th{background:#f6f8fa} #matrix th.col{font-weight:normal;white-space:nowrap} #matrix th.col b{display:block}
#matrix td.name{min-width:16rem;max-width:30rem} #matrix td.name .num{color:#57606a;margin-right:.35rem}
#matrix tr.group th{background:#eaeef2;text-align:left}
#matrix td.name,#matrix thead th:first-child{position:sticky;left:0;background:#fff;z-index:1}
#matrix thead th:first-child{background:#f6f8fa}
#matrix tr.group th span{position:sticky;left:.45rem;display:inline-block}
#matrix td.v{text-align:center;white-space:nowrap}
.verdict{font-weight:600;color:#fff;border-radius:4px;padding:.05rem .4rem;white-space:nowrap;text-decoration:none}
a .verdict{text-decoration:underline} .notrun{color:#8c959f}
.legend span{margin-right:.8rem;white-space:nowrap} .legend i{display:inline-block;width:.8rem;height:.8rem;
border-radius:2px;margin-right:.25rem;vertical-align:-1px}
.tenant{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start} svg.trend{max-width:100%;height:auto}
svg.trend text{font:11px system-ui,sans-serif;fill:#57606a}
@media (max-width:700px){
 body{margin:.75rem;font-size:13px} h1{font-size:1.2rem} #matrix td.name{min-width:9rem;max-width:12rem}
}
"""
    + "".join(f".v-{v}{{background:{c}}}" for v, c in VERDICT_COLOURS.items())
    + "\n"
)


def _columns_html(runs: list[Run]) -> str:
    return "".join(
        f'<th class="col" data-run="{_e(r.id)}" data-profile="{_e(r.profile)}"><b>{_e(r.profile)}</b>'
        f"{_e(short_time(r.started)[:10])}<br>{_e(short_time(r.started)[11:])}</th>"
        for r in runs
    )


def matrix_table(runs: list[Run], out_dir: Path) -> str:
    body = []
    group = None
    for line in lines(runs):
        if line.group != group:
            group = line.group
            body.append(f'<tr class="group"><th colspan="{len(runs) + 1}"><span>{_e(group)}</span></th></tr>')
        cells = []
        for run in runs:
            c = cell(line, run, out_dir)
            badge = _badge(c.verdict)
            inner = f'<a href="{_e(c.href)}">{badge}</a>' if c.verdict != NOT_RUN else badge
            cells.append(
                f'<td class="v" data-run="{_e(run.id)}" data-profile="{_e(run.profile)}" '
                f'data-verdict="{_e(c.verdict)}" title="{_e(c.title)}">{inner}</td>'
            )
        number = f'<span class="num">{_e(line.number)}</span>' if line.number else ""
        body.append(
            f'<tr data-line="{_e(line.key)}"><td class="name">{number}{_e(line.label)}</td>{"".join(cells)}</tr>'
        )
    return (
        '<div class="scroll"><table id="matrix"><thead><tr><th>Scenario</th>'
        f"{_columns_html(runs)}</tr></thead><tbody>{''.join(body)}</tbody></table></div>"
    )


def by_profile(runs: list[Run]) -> dict[str, list[Run]]:
    grouped: dict[str, list[Run]] = {}
    for run in runs:
        grouped.setdefault(run.profile, []).append(run)
    return grouped


def series(runs: list[Run]) -> tuple[str, ...]:
    """The verdicts a chart draws: PASS, FAIL, WARN, SKIP, and ERROR when any run has one."""
    return CHART_SERIES + (("ERROR",) if any(r.summary()["ERROR"] for r in runs) else ())


WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 420, 150, 34, 12, 10, 34


def chart(profile: str, runs: list[Run]) -> str:
    """Counts per verdict over the profile's runs: one polyline per verdict, one point per run (evenly
    spaced in start order; the first and last start labelled). Linear scale from 0 to the largest count."""
    counts = [r.summary() for r in runs]
    top = max([1, *(c[v] for c in counts for v in VERDICT_ORDER)])
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (inner_w / 2 if len(runs) == 1 else inner_w * i / (len(runs) - 1))

    def y(n: int) -> float:
        return TOP + inner_h * (1 - n / top)

    parts = [
        f'<line x1="{LEFT}" y1="{y(0):.1f}" x2="{WIDTH - RIGHT}" y2="{y(0):.1f}" stroke="#d0d7de"/>',
        f'<line x1="{LEFT}" y1="{TOP}" x2="{WIDTH - RIGHT}" y2="{TOP}" stroke="#eaeef2"/>',
        f'<text x="{LEFT - 4}" y="{y(0) + 4:.1f}" text-anchor="end">0</text>',
        f'<text x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{top}</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 8}">{_e(short_time(runs[0].started))}</text>',
    ]
    if len(runs) > 1:
        parts.append(
            f'<text x="{WIDTH - RIGHT}" y="{HEIGHT - 8}" text-anchor="end">{_e(short_time(runs[-1].started))}</text>'
        )
    # Drawn good-first so a bad verdict's line lies on top where lines meet (at 0, mostly).
    for verdict in reversed(series(runs)):
        colour = VERDICT_COLOURS[verdict]
        points = " ".join(f"{x(i):.1f},{y(c[verdict]):.1f}" for i, c in enumerate(counts))
        parts.append(
            f'<polyline class="series" data-verdict="{verdict}" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{points}"/>'
        )
        for i, (run, c) in enumerate(zip(runs, counts, strict=True)):
            parts.append(
                f'<circle data-verdict="{verdict}" data-run="{_e(run.id)}" data-count="{c[verdict]}" '
                f'cx="{x(i):.1f}" cy="{y(c[verdict]):.1f}" r="3" fill="{colour}">'
                f"<title>{_e(run.id)} ({_e(short_time(run.started))}): {c[verdict]} {verdict}</title></circle>"
            )
    label = f"{profile}: verdict counts over {len(runs)} run(s)"
    return (
        f'<svg class="trend" data-profile="{_e(profile)}" role="img" aria-label="{_e(label)}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}"><title>{_e(label)}</title>'
        f"{''.join(parts)}</svg>"
    )


def legend(runs: list[Run]) -> str:
    swatches = (f'<span><i style="background:{VERDICT_COLOURS[v]}"></i>{v}</span>' for v in series(runs))
    return f'<p class="legend">{"".join(swatches)}</p>'


def over_time(runs: list[Run], out_dir: Path) -> str:
    """Per profile: its legend, its chart, and one line per run (start, run id linked to its report, counts)."""
    sections = []
    for profile, theirs in by_profile(runs).items():
        rows = "".join(
            f'<tr data-run="{_e(r.id)}"><td>{_e(short_time(r.started))}</td>'
            f'<td><a href="{_e(link(r, out_dir, None))}"><code>{_e(r.id)}</code></a></td>'
            f"<td>{' '.join(f'{n} {_badge(v)}' for v, n in r.summary().items() if n) or 'no scenarios'}</td></tr>"
            for r in theirs
        )
        sections.append(
            f'<section class="profile" data-profile="{_e(profile)}"><h3>{_e(profile)}</h3>{legend(theirs)}'
            f'<div class="tenant">{chart(profile, theirs)}'
            f'<div class="scroll"><table class="runs"><thead><tr><th>Started (UTC)</th><th>Run</th><th>Verdicts</th>'
            f"</tr></thead><tbody>{rows}</tbody></table></div></div></section>"
        )
    return "".join(sections)


def render_html(runs: list[Run], out_dir: Path) -> str:
    profiles = by_profile(runs)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Conformance matrix: communication as a Teams user</title>
<style>{STYLE}</style></head><body>
<h1>Conformance matrix: communication as a Teams user</h1>
<p class="meta">{len(runs)} run(s) of {len(profiles)} profile(s): {_e(", ".join(profiles))}. Each cell is the run's
verdict (for a source-table row, its worst scenario's), linked to that run's report; "not run": the run had no
such scenario.</p>
<h2 id="by-tenant">Every scenario, every run</h2>
{matrix_table(runs, out_dir)}
<h2 id="over-time">Over time, per profile</h2>
{over_time(runs, out_dir)}
</body></html>
"""


def _md(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(runs: list[Run], out_dir: Path) -> str:
    profiles = by_profile(runs)
    out = [
        "# Conformance matrix: communication as a Teams user",
        "",
        f"{len(runs)} run(s) of {len(profiles)} profile(s): {', '.join(profiles)}. Each cell is the run's verdict "
        "(for a source-table row, its worst scenario's), linked to that run's report; — : not run.",
        "",
        "| # | Scenario | " + " | ".join(f"{_md(r.profile)} {_md(short_time(r.started))}" for r in runs) + " |",
        "| --- | --- | " + " | ".join("---" for _ in runs) + " |",
    ]
    group = None
    for line in lines(runs):
        if line.group != group:
            group = line.group
            out.append(f"| | **{_md(group)}** | " + " | ".join("" for _ in runs) + " |")
        cells = []
        for run in runs:
            c = cell(line, run, out_dir)
            cells.append(NOT_RUN if c.verdict == NOT_RUN else f"[{MARKS[c.verdict]} {c.verdict}]({c.href})")
        out.append(f"| {_md(line.number)} | {_md(line.label)} | " + " | ".join(cells) + " |")
    out += ["", "## Over time, per profile", ""]
    for profile, theirs in profiles.items():
        out += [f"### {profile}", "", "| Started (UTC) | Run | " + " | ".join(VERDICT_ORDER) + " |"]
        out.append("| --- | --- | " + " | ".join("---" for _ in VERDICT_ORDER) + " |")
        for r in theirs:
            counts = r.summary()
            out.append(
                f"| {short_time(r.started)} | [{_md(r.id)}]({link(r, out_dir, None)}) | "
                + " | ".join(str(counts[v]) for v in VERDICT_ORDER)
                + " |"
            )
        out.append("")
    return "\n".join(out)


def write(arguments: list[str | Path], out_dir: Path) -> dict[str, Path]:
    runs = load_runs(arguments)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise MatrixError(f"{out_dir}: cannot write there ({err.strerror}); pass another -o folder") from None
    paths = {"html": out_dir / "matrix.html", "md": out_dir / "matrix.md"}
    paths["html"].write_text(render_html(runs, out_dir), encoding="utf-8")
    paths["md"].write_text(render_markdown(runs, out_dir), encoding="utf-8")
    return paths
