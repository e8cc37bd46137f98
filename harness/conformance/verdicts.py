"""The verdict model (README.md "Verdicts"): one function from expectation + observation.

| expectation | observed | verdict | report says |
| supported   | allowed  | PASS | supported |
| unsupported | rejected | PASS | correctly rejected |
| supported   | rejected | FAIL | unexpectedly rejected (+ diagnosis and remedy) |
| unsupported | allowed  | FAIL | unexpectedly allowed |
| caveat      | allowed  | WARN | caveat confirmed: one restricted action or more succeeded |
| caveat      | allowed  | PASS | caveat not observed: every restricted action was refused |
| any         | skipped  | SKIP | reason |
| any         | fault    | ERROR | traceback |

An expected rejection may name the exact status, code, message and target Microsoft documents; a
rejection that differs from it is a FAIL ("rejected, but not as documented"). Checks made on an
observation (for example "the ACS token expires with the Entra token") must all hold for a PASS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Literal


class Verdict(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    SKIP = "SKIP"
    ERROR = "ERROR"


# Worst first: the order the reports count verdicts in, and by which scenarios together (a source-table
# row, a matrix cell) take the worst one's verdict.
VERDICT_ORDER: tuple[str, ...] = tuple(
    v.value for v in (Verdict.ERROR, Verdict.FAIL, Verdict.WARN, Verdict.SKIP, Verdict.PASS)
)


def worst(verdicts: Iterable[str]) -> str | None:
    """The worst of some verdicts (VERDICT_ORDER); None when there are none."""
    present = set(verdicts)
    return next((v for v in VERDICT_ORDER if v in present), None)


@dataclass(frozen=True)
class ExpectedRejection:
    status: int | None = None
    code: str | int | None = None
    message: str | None = None
    target: str | None = None

    def differences(self, observed: Observation) -> list[str]:
        wanted = {"status": self.status, "code": self.code, "message": self.message, "target": self.target}
        actual = {
            "status": observed.status,
            "code": observed.code,
            "message": observed.message,
            "target": observed.target,
        }
        found = []
        for key, value in wanted.items():
            if value is None:
                continue
            if key == "target" and value == "" and actual[key] in (None, ""):
                continue
            if str(value) != str(actual[key]):
                found.append(f"{key} {actual[key]!r} (documented: {value!r})")
        return found


@dataclass(frozen=True)
class Expectation:
    outcome: Literal["supported", "unsupported", "caveat"]
    source: str
    rejection: ExpectedRejection | None = None
    # For a "not supported" row: where in the chain the rejection must come from. A rejection at an
    # earlier stage (sign-in, token exchange) never reached what the row is about: not a PASS.
    stage: str | None = None
    # What a FAIL for an allowed action says ("not enforced" for a policy), instead of the default.
    allowed_says: str = "unexpectedly allowed"
    rejected_says: str = "correctly rejected"  # what a PASS for a rejection says ("enforced" for a policy)
    # What the source documents, when it is not a row's "supported"/"not supported": a policy's is its
    # enforcement ("enforced: sending a chat message is rejected").
    documented_as: str | None = None

    @property
    def documented(self) -> str:
        if self.documented_as:
            return self.documented_as
        return {"supported": "supported", "unsupported": "not supported", "caveat": "supported, with a caveat"}[
            self.outcome
        ]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


# The check that holds two witnesses of one calling operation to each other (the sandbox model and the
# real Calling SDK, harness.client.calling.cross_check): the calling flow makes it, the reports say
# whether the two agreed.
WITNESSES_AGREE = "the sandbox model and the real Calling SDK agree"


@dataclass
class Observation:
    outcome: Literal["allowed", "rejected"]
    stage: str  # where in the chain it was decided: sign-in, exchange, ...
    status: int | None = None
    code: str | int | None = None
    message: str | None = None
    target: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    diagnosis: str | None = None
    remedy: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    # For a caveat row: True when the caveat showed (any attendee-restricted action succeeded), False
    # when every one was refused; caveat_detail says which (the verdict's detail).
    caveat_confirmed: bool | None = None
    caveat_detail: str | None = None
    at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"))

    def summary(self) -> str:
        if self.outcome == "allowed":
            return f"allowed ({self.stage})"
        parts = [str(p) for p in (self.status, self.code) if p not in (None, "")]
        return f"rejected {at(self.stage)}" + (f": {' '.join(parts)}" if parts else "")


PREPOSITIONS = ("in ", "at ", "on ", "during ", "before ", "after ", "while ", "when ")


def at(stage: str) -> str:
    """Where in the chain, as a phrase: "at sign-in", "at start call"; a stage that already reads as
    a place ("in the meeting") stands as it is."""
    return stage if stage.lower().startswith(PREPOSITIONS) else f"at {stage}"


class ObservationLog:
    """What a flow observed, step by step; a rejected step blocks the ones after it."""

    observations: list[Observation]

    @property
    def last(self) -> Observation:
        return self.observations[-1]

    @property
    def blocked(self) -> bool:
        """True once a step of the chain was rejected: later steps have nothing to work with."""
        return any(o.outcome == "rejected" for o in self.observations)

    @property
    def blocking(self) -> Observation:
        """The rejection that blocked the chain: what a later step reports instead of its own answer
        (never a setup step's success that happened to come last)."""
        return next(o for o in self.observations if o.outcome == "rejected")

    def _record(self, observation: Observation) -> Observation:
        self.observations.append(observation)
        return observation


@dataclass(frozen=True)
class Skipped:
    reason: str


@dataclass(frozen=True)
class Fault:
    error: str
    traceback: str = ""


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    says: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def judge(expectation: Expectation | None, observed: Observation | Skipped | Fault | None) -> Judgement:
    """The verdict for one scenario. Nothing else in the harness decides one."""
    if isinstance(observed, Fault):
        return Judgement(Verdict.ERROR, "harness fault", observed.error)
    if isinstance(observed, Skipped):
        return Judgement(Verdict.SKIP, "skipped", observed.reason)
    if expectation is None:
        return Judgement(Verdict.ERROR, "harness fault", "the scenario stated no expectation")
    if observed is None:
        return Judgement(Verdict.ERROR, "harness fault", "the scenario made no observation")
    failed = [c for c in observed.checks if not c.passed]
    failed_text = "; ".join(f"{c.name}: {c.detail}" if c.detail else c.name for c in failed)
    elsewhere = expectation.stage is not None and observed.stage != expectation.stage
    if observed.outcome == "allowed" and elsewhere:
        # A setup step's success is never the observation of what the scenario is about.
        return Judgement(
            Verdict.ERROR,
            "harness fault",
            f"the observation is from {observed.stage}, not {expectation.stage}: what decides was not observed",
        )
    if observed.outcome == "allowed":
        if expectation.outcome == "unsupported":
            return Judgement(Verdict.FAIL, expectation.allowed_says, observed.summary())
        if failed:
            return Judgement(Verdict.FAIL, "allowed, but a check failed", failed_text)
        if expectation.outcome == "caveat":
            if observed.caveat_confirmed is None:
                return Judgement(Verdict.ERROR, "harness fault", "the caveat's actions were never tried")
            weighed = f"; {observed.caveat_detail}" if observed.caveat_detail else ""
            if observed.caveat_confirmed:
                return Judgement(
                    Verdict.WARN, "caveat confirmed: enforce roles in your UX", observed.summary() + weighed
                )
            return Judgement(Verdict.PASS, "caveat not observed", "the service enforced the restriction" + weighed)
        return Judgement(Verdict.PASS, "supported")
    # rejected
    if expectation.outcome in ("supported", "caveat"):
        detail = observed.summary()
        if observed.message:
            detail += f" ({observed.message})"
        if observed.diagnosis:
            detail += f"; diagnosis: {observed.diagnosis}"
        if observed.remedy:
            detail += f"; remedy: {observed.remedy}"
        says = f"rejected {at(observed.stage)}, before {expectation.stage}" if elsewhere else "unexpectedly rejected"
        return Judgement(Verdict.FAIL, says, detail)
    if expectation.stage and observed.stage != expectation.stage:
        return Judgement(Verdict.SKIP, f"not reached: rejected {at(observed.stage)}", observed.summary())
    differences = expectation.rejection.differences(observed) if expectation.rejection else []
    if differences:
        return Judgement(Verdict.FAIL, "rejected, but not as documented", "; ".join(differences))
    if failed:
        return Judgement(Verdict.FAIL, "rejected, but a check failed", failed_text)
    return Judgement(Verdict.PASS, expectation.rejected_says, observed.summary())
