"""What every report format says in the same words: a row's verdict, a scenario's codes, a value as a
person reads it, what the sandbox saw. The writers (markdown.py, html.py) and the matrix take them from
here, so conformance.md and conformance.html never word the same fact two ways."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.conformance.verdicts import WITNESSES_AGREE, worst

TITLE = "Conformance report: communication as a Teams user"
WEBINAR_FOOTNOTE = "Webinar roles are not honoured for Teams users (footnote)"
POLICIES_INTRO = "Teams policies and meeting options, enforced in the app as in Teams:"
EMULATED_INTRO = "Microsoft documents no behaviour for these; the verdict rests on the sandbox's choice:"
WORKLOADS = {
    "entra": "Entra ID token requests",
    "acs": "ACS token exchanges and identities",
    "graph": "Microsoft Graph calls",
    "calling": "calls to the calling model",
    "other": "others (sign-in discovery and the like)",
}
FAULTS = {"throttle": "throttled (429)", "server_error": "server errors (5xx)", "drop": "dropped connections"}


def row_verdict(results: list[dict[str, Any]]) -> str:
    """The verdict of scenarios shown together (a source-table row): the worst one's; "—" for none."""
    return worst(r["verdict"] for r in results) or "—"


def token_requests_text(by_user: dict[str, dict[str, int]] | None) -> str:
    """The run's token requests to Entra ID, by user and resource (the run section's `token_requests`)."""
    if not by_user:
        return ""
    total = sum(n for by_resource in by_user.values() for n in by_resource.values())
    users = "; ".join(
        f"{user} " + ", ".join(f"{n} for {resource}" for resource, n in by_resource.items())
        for user, by_resource in by_user.items()
    )
    return f"Token requests to Entra ID: {total} ({users})"


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


def once(parts: Iterable[str]) -> list[str]:
    """The parts in order, each said once (a code that is also the message is not repeated)."""
    seen: list[str] = []
    for part in parts:
        if part and part not in seen:
            seen.append(part)
    return seen


def human(value: Any) -> str:
    """A value as a person reads it: never a Python repr."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, dict):
        return ", ".join(f"{k} {human(v)}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return "; ".join(human(v) for v in value)
    return "" if value is None else str(value)


def codes(scenario: dict[str, Any], *, request_id: bool = True) -> str:
    """The codes behind a verdict, compactly: status/subcode (or code), call states, request id (unless
    left out), emulator-defined, whether the real Calling SDK and the sandbox model agreed; for a SKIP, why."""
    evidence = scenario["evidence"]
    parts = []
    status, code = evidence.get("status"), evidence.get("code")
    if status is not None or code is not None:
        parts.append("/".join(once(str(p) for p in (status, code) if p is not None)))
    if evidence.get("states"):
        parts.append(evidence["states"])
    if request_id and evidence.get("request_id"):
        parts.append(f"request {evidence['request_id']}")
    if evidence.get("emulator_defined"):
        parts.append("emulator-defined")
    witnesses = [c for c in evidence.get("checks") or [] if c.get("name") == WITNESSES_AGREE]
    if witnesses:
        parts.append("real SDK and sandbox model " + ("agree" if all(c["passed"] for c in witnesses) else "disagree"))
    if scenario["verdict"] == "SKIP" and scenario.get("detail"):
        parts.append(skip_reason(scenario["detail"]))
    return " · ".join(once(parts))


def skip_reason(detail: str, limit: int = 80) -> str:
    """A SKIP's reason in a few words: its first clause, cut at a word."""
    reason = detail.split(";")[0].strip()
    if len(reason) > limit:
        reason = reason[: limit - 1].rsplit(" ", 1)[0] + "…"
    return reason


def documented(scenario: dict[str, Any]) -> str:
    """What the source documents for a scenario ("—": it stated no expectation)."""
    return scenario["expectation"]["documented"] if scenario["expectation"] else "—"


def observed(scenario: dict[str, Any]) -> str:
    """What the scenario observed, in one phrase ("—": nothing)."""
    return scenario["observed"]["summary"] if scenario["observed"] else "—"


def policy_observed(scenario: dict[str, Any]) -> str:
    said = observed(scenario)
    if scenario["evidence"].get("emulator_defined"):
        said += " (emulator-defined)"
    return said
