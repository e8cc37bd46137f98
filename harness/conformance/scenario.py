"""One scenario's record: what the source says (expectation), what happened (observation), checks.

Steps fill it; `judge` turns it into a verdict; the pytest plugin reports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from harness.conformance.verdicts import Check, Expectation, Fault, Judgement, Observation, Skipped, judge
from harness.core.prerequisites import MissingPrerequisite

AREAS = ("identity", "chat", "notifications", "calling", "policies", "backend", "tenant")
Outcome = Literal["supported", "unsupported", "caveat"]
# The tags that state what the source table documents for a row: its expectation's outcome.
POLARITY_TAGS: tuple[Outcome, ...] = ("supported", "unsupported", "caveat")


class VerdictFailed(AssertionError):
    """Raised by a Then step when the scenario's verdict is FAIL: the test fails with the verdict's words."""


class ScenarioDefinitionError(Exception):
    """The scenario contradicts itself (its tags, or its tags and a Then step's wording): a harness
    fault, reported as ERROR, never a verdict about the tenant."""


def polarity_of(tags: set[str] | list[str], row: int | None = None) -> Outcome | None:
    """The expectation a scenario's tags state: @supported, @unsupported or @caveat. A table row
    (@row-N) must carry exactly one; any other scenario at most one (None: its Then steps decide)."""
    found = [tag for tag in POLARITY_TAGS if tag in tags]
    if len(found) > 1:
        raise ScenarioDefinitionError(
            f"the scenario carries {len(found)} polarity tags ({', '.join('@' + t for t in found)}): keep one"
        )
    if not found:
        if row is not None:
            raise ScenarioDefinitionError(
                f"the scenario covers row {row} (@row-{row}) but carries no polarity tag: "
                "tag it @supported, @unsupported or @caveat as the source table documents the row"
            )
        return None
    return found[0]


@dataclass
class ScenarioRun:
    id: str
    name: str
    feature: str
    area: str
    row: int | None = None
    tags: list[str] = field(default_factory=list)
    expectation: Expectation | None = None
    observation: Observation | None = None
    cassette: str | None = None
    emulated: list[str] = field(default_factory=list)  # emulator-defined answers met on the way
    policy: dict[str, str] | None = None  # policy, setting, expected enforcement (policy scenarios)

    @property
    def polarity(self) -> Outcome | None:
        """What the scenario's tags say the source documents (@supported, @unsupported, @caveat): for a
        table row (@row-N) the only source of its expectation's outcome. None for a scenario that is
        not a row and carries no such tag. A contradiction in the tags raises ScenarioDefinitionError."""
        return polarity_of(self.tags, self.row)

    def outcome(self, worded: Outcome) -> Outcome:
        """The outcome of the expectation a Then step states. `worded` is what the step's wording
        implies; a scenario with a polarity tag (every table row) takes the tag's, and a wording that
        contradicts it is a harness fault, not a verdict."""
        polarity = self.polarity
        if polarity is None:
            return worded
        if worded != polarity:
            where = f"row {self.row}" if self.row is not None else "the scenario"
            raise ScenarioDefinitionError(
                f"the Then step expects {worded!r} but {where} is tagged @{polarity}: "
                "the step's wording contradicts the scenario's tag (fix the tag or the step)"
            )
        return polarity

    def expect(self, expectation: Expectation) -> None:
        """State the expectation. Then steps take its outcome from `outcome`; one that did not is still
        held to the scenario's polarity tag, if it has one."""
        tagged = polarity_of(self.tags)
        if tagged is not None and expectation.outcome != tagged:
            self.outcome(expectation.outcome)  # raises, naming the contradiction
        self.expectation = expectation

    def observe(self, observation: Observation) -> None:
        self.observation = observation
        if observation.emulator_defined and observation.emulator_defined not in self.emulated:
            self.emulated.append(observation.emulator_defined)

    def check(self, name: str, passed: bool, detail: str = "") -> None:
        if self.observation is None:
            raise RuntimeError(f"check {name!r} made before any observation")
        self.observation.checks.append(Check(name, passed, detail))

    def judgement(self, outcome: Skipped | Fault | None = None) -> Judgement:
        return judge(self.expectation, outcome or self.observation)

    def require_verdict(self) -> Judgement:
        """Judge now; a FAIL fails the test with the verdict's words."""
        judgement = self.judgement()
        if judgement.verdict == "FAIL":
            raise VerdictFailed(f"{judgement.says}: {judgement.detail}")
        if judgement.verdict == "ERROR":
            raise RuntimeError(f"{judgement.says}: {judgement.detail}")
        if judgement.verdict == "SKIP":
            raise MissingPrerequisite(f"{judgement.says} ({judgement.detail})")
        return judgement

    def report(self, judgement: Judgement, duration_s: float) -> dict[str, Any]:
        observed: dict[str, Any] | None = None
        evidence: dict[str, Any] = {}
        if self.observation is not None:
            o = self.observation
            observed = {"outcome": o.outcome, "stage": o.stage, "summary": o.summary()}
            evidence = {
                "status": o.status,
                "code": o.code,
                "message": o.message,
                "target": o.target,
                "request_id": o.request_id,
                "observed_at": o.at,
                "emulator_defined": o.emulator_defined,
                "diagnosis": o.diagnosis,
                "remedy": o.remedy,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in o.checks],
                **o.evidence,
            }
            if self.emulated:
                evidence["emulator_defined"] = "; ".join(self.emulated)
            evidence = {k: v for k, v in evidence.items() if v not in (None, "", [])}
        if self.cassette:
            evidence["cassette"] = self.cassette
        if judgement.verdict == "ERROR" and judgement.detail:
            evidence["traceback"] = judgement.detail
        return {
            "id": self.id,
            "name": self.name,
            "feature": self.feature,
            "area": self.area,
            "row": self.row,
            "tags": sorted(self.tags),
            "expectation": None
            if self.expectation is None
            else {
                "outcome": self.expectation.outcome,
                "documented": self.expectation.documented,
                "source": self.expectation.source,
            },
            "observed": observed,
            "policy": self.policy,
            "verdict": judgement.verdict.value,
            "says": judgement.says,
            "detail": judgement.detail,
            "evidence": evidence,
            "duration_s": round(duration_s, 3),
        }
