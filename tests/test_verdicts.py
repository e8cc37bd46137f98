"""harness/conformance/verdicts.py judge(): the README.md verdict table; harness/conformance/scenario.py ScenarioRun."""

from __future__ import annotations

import pytest

from harness.conformance.scenario import ScenarioRun, VerdictFailed
from harness.conformance.verdicts import (
    Check,
    Expectation,
    ExpectedRejection,
    Fault,
    Judgement,
    Observation,
    Skipped,
    Verdict,
    judge,
)

SOURCE = "docs/source-table.md row 1"
DOCUMENTED = ExpectedRejection(status=403, code="Forbidden", message="Not allowed.", target="meeting")


def expect(outcome: str, rejection: ExpectedRejection | None = None) -> Expectation:
    return Expectation(outcome, SOURCE, rejection)  # type: ignore[arg-type]


def allowed(*checks: Check, caveat_confirmed: bool | None = None) -> Observation:
    return Observation("allowed", "exchange", checks=list(checks), caveat_confirmed=caveat_confirmed)


def rejected(
    status: int | None = 403,
    code: str | int | None = "Forbidden",
    message: str | None = "Not allowed.",
    target: str | None = "meeting",
    **extra: object,
) -> Observation:
    return Observation("rejected", "join", status=status, code=code, message=message, target=target, **extra)  # type: ignore[arg-type]


# -- the verdict table --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expectation", "observed", "verdict", "says"),
    [
        pytest.param(expect("supported"), allowed(), Verdict.PASS, "supported", id="supported/allowed"),
        pytest.param(expect("unsupported"), rejected(), Verdict.PASS, "correctly rejected", id="unsupported/rejected"),
        pytest.param(
            expect("unsupported", DOCUMENTED),
            rejected(),
            Verdict.PASS,
            "correctly rejected",
            id="unsupported/rejected-as-documented",
        ),
        pytest.param(expect("supported"), rejected(), Verdict.FAIL, "unexpectedly rejected", id="supported/rejected"),
        pytest.param(expect("caveat"), rejected(), Verdict.FAIL, "unexpectedly rejected", id="caveat/rejected"),
        pytest.param(expect("unsupported"), allowed(), Verdict.FAIL, "unexpectedly allowed", id="unsupported/allowed"),
        pytest.param(
            expect("unsupported", DOCUMENTED),
            allowed(),
            Verdict.FAIL,
            "unexpectedly allowed",
            id="unsupported-documented/allowed",
        ),
        pytest.param(
            expect("caveat"),
            allowed(caveat_confirmed=True),
            Verdict.WARN,
            "caveat confirmed: enforce roles in your UX",
            id="caveat/allowed",
        ),
        pytest.param(
            expect("caveat"),
            allowed(caveat_confirmed=False),
            Verdict.PASS,
            "caveat not observed",
            id="caveat/allowed-but-enforced",
        ),
        pytest.param(
            Expectation("unsupported", SOURCE, stage="join"),
            Observation("rejected", "exchange", status=401, code="InvalidAccessToken"),
            Verdict.SKIP,
            "not reached: rejected at exchange",
            id="unsupported/rejected-before-the-stage-under-test",
        ),
        pytest.param(expect("supported"), Skipped("no meeting in the profile"), Verdict.SKIP, "skipped", id="skip"),
        pytest.param(None, Skipped("no meeting in the profile"), Verdict.SKIP, "skipped", id="skip-no-expectation"),
        pytest.param(
            expect("supported"), Fault("KeyError: 'x'", "Traceback ..."), Verdict.ERROR, "harness fault", id="fault"
        ),
        pytest.param(None, Fault("boom"), Verdict.ERROR, "harness fault", id="fault-no-expectation"),
        pytest.param(None, allowed(), Verdict.ERROR, "harness fault", id="no-expectation"),
        pytest.param(expect("supported"), None, Verdict.ERROR, "harness fault", id="no-observation"),
        pytest.param(None, None, Verdict.ERROR, "harness fault", id="nothing"),
    ],
)
def test_verdict_table(
    expectation: Expectation | None, observed: Observation | Skipped | Fault | None, verdict: Verdict, says: str
) -> None:
    judgement = judge(expectation, observed)
    assert isinstance(judgement, Judgement)
    assert judgement.verdict is verdict
    assert judgement.says == says


def test_skip_carries_the_reason() -> None:
    assert judge(expect("supported"), Skipped("the profile has no webinar")).detail == "the profile has no webinar"


def test_error_carries_the_fault() -> None:
    assert judge(expect("supported"), Fault("ValueError: bad")).detail == "ValueError: bad"
    assert "expectation" in judge(None, allowed()).detail
    assert "observation" in judge(expect("supported"), None).detail


def test_unexpected_rejection_carries_diagnosis_and_remedy() -> None:
    observed = rejected(
        status=400,
        code=65001,
        message="consent missing",
        target=None,
        diagnosis="the app has no consent for Teams.ManageCalls",
        remedy="grant admin consent in the Entra admin center",
    )
    judgement = judge(expect("supported"), observed)
    assert judgement.verdict is Verdict.FAIL
    assert "rejected at join: 400 65001" in judgement.detail
    assert "(consent missing)" in judgement.detail
    assert "diagnosis: the app has no consent for Teams.ManageCalls" in judgement.detail
    assert "remedy: grant admin consent in the Entra admin center" in judgement.detail


def test_unexpected_allowance_says_where() -> None:
    assert judge(expect("unsupported"), allowed()).detail == "allowed (exchange)"


def test_correct_rejection_summarises_the_evidence() -> None:
    assert judge(expect("unsupported"), rejected()).detail == "rejected at join: 403 Forbidden"


# -- expected rejections --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("observed", "field", "actual"),
    [
        pytest.param(rejected(status=400), "status", "400", id="status"),
        pytest.param(rejected(code="BadRequest"), "code", "'BadRequest'", id="code"),
        pytest.param(rejected(message="Something else."), "message", "'Something else.'", id="message"),
        pytest.param(rejected(target="call"), "target", "'call'", id="target"),
        pytest.param(rejected(target=None), "target", "None", id="target-missing"),
        pytest.param(rejected(status=None), "status", "None", id="status-missing"),
    ],
)
def test_rejection_not_as_documented(observed: Observation, field: str, actual: str) -> None:
    judgement = judge(expect("unsupported", DOCUMENTED), observed)
    assert judgement.verdict is Verdict.FAIL
    assert judgement.says == "rejected, but not as documented"
    assert judgement.detail.startswith(f"{field} {actual} (documented: ")
    other_fields = {"status", "code", "message", "target"} - {field}
    assert not any(judgement.detail.startswith(f) or f"; {f} " in judgement.detail for f in other_fields)


def test_every_differing_field_is_named() -> None:
    judgement = judge(expect("unsupported", DOCUMENTED), rejected(status=401, code="Unauthorized"))
    assert judgement.verdict is Verdict.FAIL
    assert judgement.detail == "status 401 (documented: 403); code 'Unauthorized' (documented: 'Forbidden')"


def test_only_the_documented_fields_are_compared() -> None:
    only_status = ExpectedRejection(status=403)
    observed = rejected(code="Whatever", message="Any text", target="anything")
    assert judge(expect("unsupported", only_status), observed).verdict is Verdict.PASS


def test_numeric_code_matches_its_string_form() -> None:
    documented = ExpectedRejection(status=400, code=65001)
    assert judge(expect("unsupported", documented), rejected(status=400, code="65001")).verdict is Verdict.PASS


@pytest.mark.parametrize("observed_target", [None, ""])
def test_empty_expected_target_matches_no_target(observed_target: str | None) -> None:
    documented = ExpectedRejection(status=403, code="Forbidden", target="")
    judgement = judge(expect("unsupported", documented), rejected(target=observed_target))
    assert judgement.verdict is Verdict.PASS


def test_empty_expected_target_does_not_match_a_target() -> None:
    documented = ExpectedRejection(status=403, code="Forbidden", target="")
    judgement = judge(expect("unsupported", documented), rejected(target="appId"))
    assert judgement.verdict is Verdict.FAIL
    assert "target 'appId'" in judgement.detail


# -- checks ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["supported", "caveat"])
def test_a_failed_check_fails_an_allowed_outcome(outcome: str) -> None:
    observed = allowed(
        Check("ACS token expires with the Entra token", False, "59 min vs 75 min"), Check("has an id", True)
    )
    judgement = judge(expect(outcome), observed)
    assert judgement.verdict is Verdict.FAIL
    assert judgement.says == "allowed, but a check failed"
    assert judgement.detail == "ACS token expires with the Entra token: 59 min vs 75 min"


def test_every_failed_check_is_named() -> None:
    observed = allowed(Check("first", False), Check("second", True), Check("third", False, "why"))
    assert judge(expect("supported"), observed).detail == "first; third: why"


def test_passed_checks_keep_a_pass() -> None:
    assert judge(expect("supported"), allowed(Check("a", True), Check("b", True))).verdict is Verdict.PASS


def test_a_failed_check_fails_a_correct_rejection() -> None:
    observed = rejected()
    observed.checks.append(Check("request id present", False))
    judgement = judge(expect("unsupported"), observed)
    assert (judgement.verdict, judgement.says, judgement.detail) == (
        Verdict.FAIL,
        "rejected, but a check failed",
        "request id present",
    )


# -- ScenarioRun ------------------------------------------------------------------------------------------


def run(expectation: Expectation | None = None, observation: Observation | None = None) -> ScenarioRun:
    scenario = ScenarioRun(
        id="identity/sign-in::licensed user",
        name="A licensed Teams user signs in",
        feature="harness/features/identity/sign-in.feature",
        area="identity",
        row=1,
        tags=["row-1", "identity"],
    )
    if expectation:
        scenario.expect(expectation)
    if observation:
        scenario.observe(observation)
    return scenario


def test_require_verdict_raises_on_fail() -> None:
    scenario = run(expect("supported"), rejected(diagnosis="no consent", remedy="grant consent"))
    with pytest.raises(VerdictFailed, match=r"^unexpectedly rejected: .*diagnosis: no consent; remedy: grant consent"):
        scenario.require_verdict()
    assert issubclass(VerdictFailed, AssertionError)


def test_require_verdict_raises_on_a_failed_check() -> None:
    scenario = run(expect("supported"), allowed())
    scenario.check("token lifetime", False, "too short")
    with pytest.raises(VerdictFailed, match="allowed, but a check failed: token lifetime: too short"):
        scenario.require_verdict()


@pytest.mark.parametrize(
    ("expectation", "observation", "verdict"),
    [
        (expect("supported"), allowed(), Verdict.PASS),
        (expect("unsupported"), rejected(), Verdict.PASS),
        (expect("caveat"), allowed(caveat_confirmed=True), Verdict.WARN),
    ],
)
def test_require_verdict_returns_other_verdicts(
    expectation: Expectation, observation: Observation, verdict: Verdict
) -> None:
    assert run(expectation, observation).require_verdict().verdict is verdict


def test_require_verdict_without_an_observation_is_a_harness_error() -> None:
    with pytest.raises(RuntimeError, match="harness fault") as excinfo:
        run(expect("supported")).require_verdict()
    assert not isinstance(excinfo.value, VerdictFailed)


def test_check_before_observation_is_refused() -> None:
    with pytest.raises(RuntimeError, match="before any observation"):
        run(expect("supported")).check("x", True)


REPORT_KEYS = {"id", "name", "area", "row", "tags", "expectation", "observed", "verdict", "evidence"}


def test_report_has_the_documented_keys() -> None:
    observation = rejected(status=400, code=65001, request_id="req-1", emulator_defined="status unverified")
    observation.evidence["aadsts"] = 65001
    scenario = run(expect("supported"), observation)
    scenario.check("has request id", True)
    judgement = scenario.judgement()
    report = scenario.report(judgement, 0.12345)
    assert report.keys() >= REPORT_KEYS
    assert report["id"] == "identity/sign-in::licensed user"
    assert report["name"] == "A licensed Teams user signs in"
    assert report["area"] == "identity"
    assert report["row"] == 1
    assert report["tags"] == ["identity", "row-1"]
    assert report["expectation"] == {"outcome": "supported", "documented": "supported", "source": SOURCE}
    assert report["observed"] == {"outcome": "rejected", "stage": "join", "summary": "rejected at join: 400 65001"}
    assert report["verdict"] == "FAIL"
    assert report["says"] == "unexpectedly rejected"
    assert report["duration_s"] == 0.123
    evidence = report["evidence"]
    assert evidence["status"] == 400
    assert evidence["request_id"] == "req-1"
    assert evidence["emulator_defined"] == "status unverified"
    assert evidence["aadsts"] == 65001
    assert evidence["checks"] == [{"name": "has request id", "passed": True, "detail": ""}]
    assert "diagnosis" not in evidence  # empty values are left out


def test_report_of_a_fault_has_the_traceback_in_evidence() -> None:
    scenario = run(expect("unsupported"))
    judgement = scenario.judgement(Fault("Traceback (most recent call last): ..."))
    report = scenario.report(judgement, 1.0)
    assert report.keys() >= REPORT_KEYS
    assert report["verdict"] == "ERROR"
    assert report["observed"] is None
    assert report["expectation"]["documented"] == "not supported"
    assert report["evidence"] == {"traceback": "Traceback (most recent call last): ..."}


def test_report_of_a_skip() -> None:
    scenario = run(expect("caveat"))
    report = scenario.report(scenario.judgement(Skipped("no webinar in the profile")), 0.0)
    assert report.keys() >= REPORT_KEYS
    assert (report["verdict"], report["detail"]) == ("SKIP", "no webinar in the profile")
    assert report["expectation"]["documented"] == "supported, with a caveat"
    assert report["evidence"] == {}


@pytest.mark.parametrize(
    ("stage", "summary"),
    [
        ("in the meeting", "rejected in the meeting: MeetingRestricted"),
        ("start call", "rejected at start call: MeetingRestricted"),
        ("sign-in", "rejected at sign-in: MeetingRestricted"),
    ],
)
def test_a_rejection_says_where_in_words_for_every_stage(stage: str, summary: str) -> None:
    observed = Observation("rejected", stage, code="MeetingRestricted")
    assert observed.summary() == summary
    assert "at in" not in judge(Expectation("unsupported", SOURCE, stage="join"), observed).says


def test_a_policy_documents_its_enforcement() -> None:
    expectation = Expectation("unsupported", SOURCE, documented_as="enforced: sending a chat message is rejected")
    assert expectation.documented == "enforced: sending a chat message is rejected"
    assert Expectation("unsupported", SOURCE).documented == "not supported"
