"""Known deviations per profile (`NAME.expectations.toml` beside the profile), as conformance suites keep them.

    [[deviation]]
    scenario = "Join Teams live events"      # the scenario's name as reported (or its id)
    verdict = "FAIL"                          # the verdict this tenant is known to give
    reason = "live events are enabled for this tenant by a support case"

A run whose scenario deviates as recorded still reports the FAIL, marked expected, and does not fail;
a deviation not recorded fails the run; a recorded deviation that did not happen is reported stale.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from harness.core.config import ProfileError


@dataclass(frozen=True)
class Deviation:
    scenario: str
    verdict: str
    reason: str


def expectations_path(profile_path: Path | None, profile_name: str) -> Path | None:
    if profile_path is None:
        return None
    candidate = profile_path.with_name(f"{profile_name}.expectations.toml")
    return candidate if candidate.is_file() else None


def load(path: Path | None) -> list[Deviation]:
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ProfileError(f"{path}: not valid TOML ({err}); fix the syntax") from None
    deviations = []
    for index, entry in enumerate(data.get("deviation", []), start=1):
        missing = [k for k in ("scenario", "verdict", "reason") if not isinstance(entry.get(k), str) or not entry[k]]
        if missing:
            raise ProfileError(
                f"{path}: [[deviation]] #{index} lacks {', '.join(missing)}; give scenario, verdict and reason"
            )
        if entry["verdict"] not in ("FAIL", "ERROR", "WARN", "SKIP"):
            raise ProfileError(
                f"{path}: [[deviation]] #{index} verdict {entry['verdict']!r} is not a deviation; "
                "use FAIL, ERROR, WARN or SKIP"
            )
        deviations.append(Deviation(entry["scenario"], entry["verdict"], entry["reason"]))
    return deviations


def match(deviations: list[Deviation], scenario_id: str, name: str, verdict: str) -> Deviation | None:
    return next((d for d in deviations if d.scenario in (scenario_id, name) and d.verdict == verdict), None)


def stale(deviations: list[Deviation], results: list[dict]) -> list[Deviation]:
    """Recorded deviations that no longer happen (the scenario ran and did not give that verdict)."""
    out = []
    for deviation in deviations:
        ran = [r for r in results if deviation.scenario in (r["id"], r["name"])]
        if ran and not any(r["verdict"] == deviation.verdict for r in ran):
            out.append(deviation)
    return out
