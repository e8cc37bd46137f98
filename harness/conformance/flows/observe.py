"""A client call's answer as an Observation: the one adapter every flow's results go through (a sign-in,
a token exchange, a Graph call, a call's end or a Calling SDK error)."""

from __future__ import annotations

from typing import Protocol

from harness.conformance.diagnosis import Diagnosis
from harness.conformance.verdicts import Check, Observation


class Answer(Protocol):
    """What every client answer carries: the request that identifies it, and whether the sandbox
    defined the behaviour (no Microsoft document does)."""

    @property
    def request_id(self) -> str | None: ...

    @property
    def emulator_defined(self) -> str | None: ...


def answer(
    answer: Answer,
    stage: str,
    evidence: dict[str, object],
    *,
    allowed: bool,
    status: int | None = None,
    code: str | int | None = None,
    message: str | None = None,
    target: str | None = None,
    found: Diagnosis | tuple[str | None, str | None] | None = None,
    retries: list[str] | None = None,
    checks: list[Check] | None = None,
) -> Observation:
    """`answer` observed at `stage`. Allowed: its status, request id and evidence. Rejected: also what
    the service said (code, message, target), what that means and its remedy (`found`), and the checks
    made on it. The transient failures retried on the way follow the flow's own evidence."""
    if retries:
        evidence = {**evidence, "retries": retries}
    if allowed:
        return Observation(
            "allowed",
            stage,
            status=status,
            request_id=answer.request_id,
            emulator_defined=answer.emulator_defined,
            evidence=evidence,
        )
    meaning, remedy = (found.meaning, found.remedy) if isinstance(found, Diagnosis) else (found or (None, None))
    return Observation(
        "rejected",
        stage,
        status=status,
        code=code,
        message=message,
        target=target,
        request_id=answer.request_id,
        emulator_defined=answer.emulator_defined,
        diagnosis=meaning,
        remedy=remedy or None,
        evidence=evidence,
        checks=checks or [],
    )
