"""What a run prints at its end: the verdict table, one line per stale expectation or unused recording,
and the last line (the harness's own count of verdicts and the exit status it ends with)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.conformance.expectations import Deviation
from harness.reporting import VERDICT_ORDER
from harness.reporting.wording import skip_reason

TERMINAL_WIDTH = 100
SAYS_WIDTH = 20  # "correctly rejected", "caveat confirmed", "not enforced", "skipped"


def summary(results: list[dict[str, Any]], stale: list[Deviation], report_folder: Path) -> list[str]:
    """The terminal summary's lines, under its heading: the verdict table, each stale expectation, each
    cassette with interactions never played, the count of known deviations, where the reports are."""
    lines = verdict_table(results)
    for deviation in stale:
        lines.append(
            f"stale expectation: {deviation.scenario!r} no longer gives {deviation.verdict} "
            f"({deviation.reason}); remove it from the expectations file"
        )
    for result in sorted(results, key=lambda r: r["evidence"].get("cassette") or ""):
        if unused := result["evidence"].get("unused_interactions"):
            lines.append(
                f"unused interactions: cassette {result['evidence'].get('cassette', result['name'])}: "
                f"{unused['count']} of {unused['recorded']} recorded never played ({result['verdict']})"
            )
    expected = sum(1 for r in results if r["evidence"].get("expected_deviation"))
    if expected:
        lines.append(f"{expected} known deviation(s) recorded in the profile's expectations file")
    lines.append(f"reports: {report_folder}")
    return lines


def verdict_table(results: list[dict[str, Any]], width: int = TERMINAL_WIDTH) -> list[str]:
    """The terminal's table: one heading per area, a line per scenario in aligned columns (verdict,
    name, what it says), no line longer than `width` (a long name is cut, never the verdict); what a
    verdict says after its first words (a caveat's advice, a SKIP's reason in a few words) on a line below."""
    rows = []
    for result in sorted(results, key=lambda r: (r["area"], r["row"] or 0, r["name"])):
        says, more = result["says"], ""
        if result["verdict"] == "SKIP" and result.get("detail"):
            says, more = "skipped", skip_reason(result["detail"], 60)
        elif len(says) > SAYS_WIDTH and ": " in says:
            says, more = says.split(": ", 1)
        rows.append((result["area"], result["verdict"], result["name"], _cut(says, SAYS_WIDTH), more))
    column = max((len(r[3]) for r in rows), default=0)
    room = width - 11 - column  # "  VERDICT  " before the name, two spaces after it
    lines: list[str] = []
    current = None
    for area, verdict, name, says, more in rows:
        if area != current:
            lines.append(f"{area}:")
            current = area
        lines.append(f"  {verdict:<5}  {_cut_name(name, room):<{room}}  {says}".rstrip())
        if more:
            lines.append(_cut(f"         ↳ {more}", width))
    return lines


def _cut_name(name: str, width: int) -> str:
    """A scenario name within `width`: an outline example's label ("[empty app id]") is kept whole,
    the words before it are cut, so the examples stay told apart."""
    base, bracket, label = name.rpartition(" [")
    if len(name) <= width or not bracket or not label.endswith("]") or len(label) + 6 > width:
        return _cut(name, width)
    return f"{_cut(base, width - len(label) - 2)} [{label}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def verdict_line(results: list[dict[str, Any]], exitstatus: int) -> str:
    """The run's last line: the harness's own count of verdicts, and the exit status it ends with."""
    counts = {v: sum(1 for r in results if r["verdict"] == v) for v in VERDICT_ORDER}
    said = ", ".join(f"{n} {v}" for v, n in counts.items() if n) or "no scenario ran"
    expected = sum(1 for r in results if r["evidence"].get("expected_deviation"))
    if expected:
        said += f" ({expected} known deviation(s))"
    meaning = "no FAIL or ERROR" if exitstatus == 0 else "a FAIL or ERROR" if exitstatus == 1 else "see above"
    return f"cte-conformance: {said}; exit status {int(exitstatus)} ({meaning})"


def last_line(results: list[dict[str, Any]], exitstatus: int, nothing_collected: bool) -> str | None:
    """What the run prints after pytest's own summary line ("70 passed", which counts a WARN as passed)."""
    if nothing_collected:
        return "cte-conformance: no scenario matched the selection; nothing ran, no report written"
    return verdict_line(results, exitstatus) if results else None
