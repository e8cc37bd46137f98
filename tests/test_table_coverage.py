"""The feature files cover the source table (harness/conformance/table.py) with its polarity.

A scenario tagged @row-N carries exactly one polarity tag, @supported, @unsupported or @caveat, and
that tag is its expectation (ScenarioRun.outcome): so every row of the table must be covered by a
scenario whose tag says what the table says. Parsed with pytest-bdd's own parser, so the tags seen
here are the tags the suite runs with.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from pytest_bdd.parser import FeatureParser

from harness.conformance.scenario import POLARITY_TAGS, ScenarioDefinitionError, ScenarioRun, polarity_of
from harness.conformance.table import ROWS
from harness.conformance.verdicts import Expectation
from harness.core.places import FEATURES_DIR

FEATURES = FEATURES_DIR


@dataclass(frozen=True)
class TaggedScenario:
    where: str  # file:line
    name: str
    tags: frozenset[str]

    @property
    def rows(self) -> list[int]:
        return sorted(int(t[4:]) for t in self.tags if t.startswith("row-") and t[4:].isdigit())

    @property
    def polarities(self) -> list[str]:
        return [t for t in POLARITY_TAGS if t in self.tags]


def scenarios_in(features: Path) -> list[TaggedScenario]:
    """Every scenario (outline) under `features`, with its feature's, rule's and own tags."""
    found = []
    for path in sorted(features.rglob("*.feature")):
        feature = FeatureParser(str(path.parent), path.name).parse()
        for scenario in feature.scenarios.values():
            tags = set(feature.tags) | set(scenario.tags) | (set(scenario.rule.tags) if scenario.rule else set())
            rel = path.relative_to(features.parent) if path.is_relative_to(features.parent) else path
            found.append(TaggedScenario(f"{rel}:{scenario.line_number}", scenario.name, frozenset(tags)))
    return found


def allowed_polarities(row: int) -> set[str]:
    """What a scenario of row N may be tagged: the table's polarity (a supported row may be covered
    by its footnote's caveat: only row 7 has one)."""
    table_row = ROWS[row - 1]
    if not table_row.supported:
        return {"unsupported"}
    return {"supported", "caveat"} if table_row.footnote else {"supported"}


def coverage_problems(scenarios: list[TaggedScenario]) -> list[str]:
    """Everything wrong with how `scenarios` cover the table; empty when all twelve rows are covered
    with the table's polarity."""
    problems = []
    numbers = {row.number for row in ROWS}
    for s in scenarios:
        if len(s.polarities) > 1:
            problems.append(f"{s.where} {s.name!r}: two polarity tags ({' '.join('@' + p for p in s.polarities)})")
        for n in s.rows:
            if n not in numbers:
                problems.append(f"{s.where} {s.name!r}: @row-{n} is not a row of the table (1-{len(ROWS)})")
                continue
            if not s.polarities:
                problems.append(f"{s.where} {s.name!r}: @row-{n} without @supported, @unsupported or @caveat")
            elif len(s.polarities) == 1 and s.polarities[0] not in allowed_polarities(n):
                want = " or ".join(f"@{p}" for p in sorted(allowed_polarities(n)))
                problems.append(f"{s.where} {s.name!r}: @row-{n} is tagged @{s.polarities[0]}, the table says {want}")
    for row in ROWS:
        covering = [
            s
            for s in scenarios
            if row.number in s.rows and len(s.polarities) == 1 and s.polarities[0] in allowed_polarities(row.number)
        ]
        if not covering:
            documented = "supported" if row.supported else "not supported"
            problems.append(f"row {row.number} ({row.scenario}, {documented}): no scenario covers it with its polarity")
    return problems


# -- the repository's features ----------------------------------------------------------------------


def test_every_row_of_the_table_is_covered_with_its_polarity() -> None:
    scenarios = scenarios_in(FEATURES)
    assert scenarios, f"no scenarios under {FEATURES}"
    problems = coverage_problems(scenarios)
    assert not problems, "the features do not cover the source table:\n" + "\n".join(problems)


def test_the_table_has_twelve_rows() -> None:
    assert [row.number for row in ROWS] == list(range(1, 13))


def test_each_row_scenario_states_one_expectation_from_its_tags() -> None:
    """What ScenarioRun takes from each scenario's tags at run time is defined for every row scenario."""
    for s in scenarios_in(FEATURES):
        for n in s.rows:
            assert polarity_of(s.tags, n) in allowed_polarities(n), s.where


# -- the check itself, on features written for it ---------------------------------------------------


def _write(tmp_path: Path, text: str) -> Path:
    features = tmp_path / "features"
    features.mkdir(exist_ok=True)
    (features / "rows.feature").write_text(text)
    return features


def _all_rows(override: dict[int, str] | None = None) -> str:
    """A feature with one scenario per row, tagged as the table says unless `override` says otherwise."""
    lines = ["Feature: rows", ""]
    for row in ROWS:
        tags = (override or {}).get(row.number, "@supported" if row.supported else "@unsupported")
        lines += [f"  @row-{row.number} {tags}".rstrip(), f"  Scenario: row {row.number}", "    Given a step", ""]
    return "\n".join(lines)


def test_a_feature_set_tagged_as_the_table_passes(tmp_path: Path) -> None:
    assert coverage_problems(scenarios_in(_write(tmp_path, _all_rows()))) == []


def test_a_flipped_polarity_fails(tmp_path: Path) -> None:
    problems = coverage_problems(scenarios_in(_write(tmp_path, _all_rows({8: "@supported"}))))
    assert any("@row-8 is tagged @supported, the table says @unsupported" in p for p in problems), problems
    assert any(p.startswith("row 8 ") and "no scenario covers it" in p for p in problems), problems


def test_a_row_scenario_without_a_polarity_tag_fails(tmp_path: Path) -> None:
    problems = coverage_problems(scenarios_in(_write(tmp_path, _all_rows({11: ""}))))
    assert any("@row-11 without @supported, @unsupported or @caveat" in p for p in problems), problems
    assert any(p.startswith("row 11 ") for p in problems), problems


def test_two_polarity_tags_fail(tmp_path: Path) -> None:
    problems = coverage_problems(scenarios_in(_write(tmp_path, _all_rows({3: "@supported @unsupported"}))))
    assert any("two polarity tags (@supported @unsupported)" in p for p in problems), problems


def test_an_uncovered_row_fails(tmp_path: Path) -> None:
    text = _all_rows().replace("  @row-12 @supported\n", "  @supported\n")
    problems = coverage_problems(scenarios_in(_write(tmp_path, text)))
    assert problems == [
        "row 12 (Get messages from 1:1 chat, group chat or Teams meeting chat, supported): "
        "no scenario covers it with its polarity"
    ]


def test_the_webinar_row_may_be_covered_by_its_caveat(tmp_path: Path) -> None:
    assert coverage_problems(scenarios_in(_write(tmp_path, _all_rows({7: "@caveat"})))) == []
    problems = coverage_problems(scenarios_in(_write(tmp_path, _all_rows({6: "@caveat"}))))
    assert any("@row-6 is tagged @caveat, the table says @supported" in p for p in problems), problems


def test_feature_tags_count(tmp_path: Path) -> None:
    """A polarity tag on the Feature line applies to its scenarios, as it does when the suite runs."""
    text = _all_rows({1: ""}).replace("Feature: rows", "@supported\nFeature: rows")
    problems = coverage_problems(scenarios_in(_write(tmp_path, text)))
    assert any("'row 8': two polarity tags" in p for p in problems), problems
    assert not any("row 1 " in p for p in problems), problems


# -- the tag is the expectation at run time ---------------------------------------------------------


def _run(*tags: str) -> ScenarioRun:
    row = next((int(t[4:]) for t in tags if t.startswith("row-")), None)
    return ScenarioRun(id="x", name="x", feature="f", area="calling", row=row, tags=sorted(tags))


@pytest.mark.parametrize("polarity", POLARITY_TAGS)
def test_a_row_scenario_takes_its_outcome_from_its_tag(polarity: str) -> None:
    run = _run("row-7", polarity)
    assert run.polarity == polarity
    assert run.outcome(polarity) == polarity  # type: ignore[arg-type]


def test_a_then_step_contradicting_the_tag_is_a_harness_fault() -> None:
    run = _run("row-8", "unsupported")
    with pytest.raises(ScenarioDefinitionError, match=r"expects 'supported' but row 8 is tagged @unsupported"):
        run.outcome("supported")
    with pytest.raises(ScenarioDefinitionError, match="tagged @unsupported"):
        run.expect(Expectation("supported", "a step that built its own expectation"))
    assert run.expectation is None


def test_a_row_scenario_without_a_polarity_tag_is_a_harness_fault() -> None:
    with pytest.raises(ScenarioDefinitionError, match=r"covers row 2 \(@row-2\) but carries no polarity tag"):
        _run("row-2", "calling").outcome("supported")


def test_two_polarity_tags_are_a_harness_fault() -> None:
    with pytest.raises(ScenarioDefinitionError, match="2 polarity tags"):
        _ = _run("row-1", "supported", "caveat").polarity


def test_a_scenario_that_is_no_row_keeps_its_wording() -> None:
    run = _run("calling", "emulator-defined")
    assert run.polarity is None
    assert run.outcome("unsupported") == "unsupported"
    run.expect(Expectation("supported", "wording"))
    assert run.expectation is not None and run.expectation.outcome == "supported"
    caveat = _run("caveat", "emulator-defined")  # the footnote's scenario: no row, but its tag still binds
    assert caveat.outcome("caveat") == "caveat"
    with pytest.raises(ScenarioDefinitionError):
        caveat.outcome("supported")
