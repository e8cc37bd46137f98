"""`cte diff OLD.json NEW.json`: what changed between two runs; a regression exits non-zero."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# How good a verdict is; a scenario whose verdict drops has regressed.
RANK = {"PASS": 4, "WARN": 3, "SKIP": 2, "FAIL": 1, "ERROR": 0}
REQUIRED = ("id", "name", "verdict")  # what comparing two runs reads of each scenario


@dataclass(frozen=True)
class Change:
    scenario: str
    old: str | None
    new: str | None

    @property
    def regression(self) -> bool:
        if self.new is None:
            return False
        if self.old is None:
            return self.new in ("FAIL", "ERROR")
        return RANK[self.new] < RANK[self.old] and self.new in ("FAIL", "ERROR", "WARN")


def load(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable conformance.json ({err}); pass the file a run wrote") from None
    if not isinstance(document, dict) or "scenarios" not in document:
        raise ValueError(f"{path}: has no scenarios; pass reports/<run-id>/conformance.json")
    run = document.get("run")
    if not isinstance(run, dict) or "id" not in run:
        raise ValueError(f"{path}: run has no 'id'; pass a conformance.json a run wrote")
    if not isinstance(document["scenarios"], list):
        raise ValueError(f"{path}: 'scenarios' is not a list; pass a conformance.json a run wrote")
    for index, scenario in enumerate(document["scenarios"]):
        if not isinstance(scenario, dict):
            raise ValueError(f"{path}: scenario {index + 1} is not an object; pass a conformance.json a run wrote")
        missing = [key for key in REQUIRED if key not in scenario]
        named = f"scenario {index + 1}" + (f" ({scenario['name']!r})" if isinstance(scenario.get("name"), str) else "")
        if missing:
            keys = ", ".join(repr(k) for k in missing)
            raise ValueError(f"{path}: {named} has no {keys}; pass a conformance.json a run wrote")
        if scenario["verdict"] not in RANK:
            raise ValueError(f"{path}: {named} has verdict {scenario['verdict']!r}, not one of {', '.join(RANK)}")
    return document


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    before = {s["id"]: s for s in old["scenarios"]}
    after = {s["id"]: s for s in new["scenarios"]}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        old_verdict, new_verdict = (was or {}).get("verdict"), (now or {}).get("verdict")
        if old_verdict != new_verdict:
            changes.append(Change((now or was)["name"], old_verdict, new_verdict))
    return changes


def describe(change: Change) -> str:
    if change.old is None:
        return f"new      {change.new:<5}  {change.scenario}"
    if change.new is None:
        return f"removed  {change.old:<5}  {change.scenario}"
    label = "REGRESSED" if change.regression else "changed"
    return f"{label:<9} {change.old} -> {change.new}  {change.scenario}"
