"""The modes as objects, and the defects of a first black-box run: each test here failed before its fix.

- a sandbox profile in live mode, a secret not set, a bad cassette folder: one line, exit 2, nothing run;
- record of a live profile never starts or routes to the embedded sandbox, and writes where it is told;
- a sign-in failure before an exchange scenario is reported as such, never as a mismatched exchange
  error, and a setup step's success is never the observation;
- features name roles, which profiles map, so features, profiles and README cannot contradict.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from harness.conformance.flows.identity import IdentityFlow
from harness.conformance.verdicts import Expectation, ExpectedRejection, judge
from harness.core.config import PROFILE_DIR, ROLES, ProfileError, Secret, load_profile
from harness.core.places import FEATURES_DIR
from harness.core.prerequisites import MissingPrerequisite
from harness.run import cli, modes
from tests.support import ROOT, cte

LIVE = """kind = "live"
[tenant]
tenant_id = "11111111-1111-1111-1111-111111111111"
client_id = "22222222-2222-2222-2222-222222222222"
acs_endpoint = "https://localhost:9"
authority_host = "https://localhost:19"
[secrets]
acs_connection_string_env = "CTE_TEST_MODES_ACS"
[users.adele]
upn = "adele@example.test"
password_env = "CTE_TEST_MODES_PASSWORD"
[roles]
licensed = "adele"
[misconfigured]
consent-missing = "consent-missing"
"""
ENV = {"CTE_TEST_MODES_ACS": "endpoint=https://localhost:9/;accesskey=a2V5", "CTE_TEST_MODES_PASSWORD": "pw-123456"}


def test_endpoints_that_share_a_host_and_port_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "partner.toml"
    path.write_text(LIVE.replace("https://localhost:19", "https://localhost:9"), encoding="utf-8")
    with pytest.raises(ProfileError, match="authority_host and acs_endpoint share one host and port"):
        load_profile(str(path))


def test_cte_run_never_records_over_the_committed_cassettes(tmp_path: Path) -> None:
    done = cte("run", "--mode", "record", "--report-dir", str(tmp_path / "r"))
    assert done.returncode == 2 and "use cte record" in done.stderr


def test_replay_of_a_folder_that_does_not_exist_is_one_line(tmp_path: Path) -> None:
    done = cte("run", "--mode", "replay", "--cassette-dir", str(tmp_path / "none"), "--report-dir", str(tmp_path / "r"))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no cassettes at" in done.stderr


@pytest.fixture
def live_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "partner.toml"
    path.write_text(LIVE, encoding="utf-8")
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    return path


# -- validated once, before anything starts -------------------------------------------------------------


def test_a_sandbox_profile_in_live_mode_stops_the_run_in_one_line(tmp_path: Path) -> None:
    done = cte("run", "--mode", "live", "--report-dir", str(tmp_path / "r"))
    assert done.returncode == 2, done.stdout[-2000:]
    assert done.stderr.count("\n") == 1 and "is a sandbox profile" in done.stderr and "--mode live" in done.stderr
    assert not (tmp_path / "r").exists(), "nothing ran"


def test_a_missing_secret_stops_the_run_in_one_line(live_profile: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in __import__("os").environ.items() if k not in ENV}
    done = cte("run", "--mode", "live", "--profile", str(live_profile), "--report-dir", str(tmp_path / "r"), env=env)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "CTE_TEST_MODES_" in done.stderr and "not set" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout


def test_record_refuses_to_write_over_cassettes_without_overwrite(tmp_path: Path) -> None:
    folder = tmp_path / "cassettes" / "identity"
    folder.mkdir(parents=True)
    (folder / "x.yaml").write_text("interactions: []\n", encoding="utf-8")
    done = cte("record", "--cassette-dir", str(tmp_path / "cassettes"), "--report-dir", str(tmp_path / "r"))
    assert done.returncode == 2
    assert "already holds cassettes" in done.stderr and "--overwrite" in done.stderr
    assert (folder / "x.yaml").read_text() == "interactions: []\n", "nothing was lost"


def test_record_defaults_to_a_new_folder_under_the_report(tmp_path: Path) -> None:
    done = cte("record", "-k", "wrong_password", "--report-dir", str(tmp_path / "r"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    written = list((tmp_path / "r" / "cassettes").rglob("*.yaml"))
    assert [p.name for p in written] == ["a-wrong-password-is-rejected-with-aadsts50126.yaml"]


# -- record of a live profile ---------------------------------------------------------------------------


def test_record_of_a_live_profile_targets_the_profile_and_never_the_sandbox(live_profile: Path, tmp_path: Path) -> None:
    mode = modes.mode_for("record", load_profile(str(live_profile)), cassette_dir=tmp_path / "c")
    try:
        assert isinstance(mode, modes.RecordMode) and isinstance(mode.target, modes.LiveMode)
        tenant = mode.tenant()
        assert (tenant.mode, tenant.authority) == (
            "record",
            "https://localhost:19/11111111-1111-1111-1111-111111111111",
        )
        assert tenant.host_routes == {}, "no host is routed anywhere"
        with pytest.raises(MissingPrerequisite, match="is a sandbox profile; a live run reaches only live tenants"):
            mode.misconfigured("consent-missing")  # a sandbox profile named by a live one: skipped, not started
        assert mode.cassette_dir == (tmp_path / "c").resolve()
    finally:
        mode.close()


def test_the_plugin_never_asks_which_mode_it_is() -> None:
    source = (ROOT / "harness" / "pytest_plugin.py").read_text(encoding="utf-8")
    assert not re.search(r"mode(\.name)?\s*(==|!=|in\s*\()|isinstance\([^)]*Mode\)", source), "ask the mode object"
    assert "profile.kind" not in source


# -- a failure is attributed to the stage where it happened ---------------------------------------------


@pytest.fixture(scope="module")
def sandbox_tenant():  # type: ignore[no-untyped-def]
    from harness.sandbox.server import Sandbox
    from harness.wire import transport

    with Sandbox() as sandbox, transport.route_hosts(sandbox.host_routes()):
        profile = load_profile("sandbox")
        yield profile.for_sandbox(sandbox.tenant_info("contoso"), sandbox.host_routes(), "sandbox")


def _wrong_password(tenant):  # type: ignore[no-untyped-def]
    adele = tenant.user("licensed")
    return dataclasses.replace(
        tenant, users={**tenant.users, "adele": dataclasses.replace(adele, password=Secret("not-her-password"))}
    )


def test_a_sign_in_failure_before_an_exchange_scenario_is_reported_as_such(sandbox_tenant) -> None:  # type: ignore[no-untyped-def]
    flow = IdentityFlow(_wrong_password(sandbox_tenant))
    flow.sign_in_with_password("licensed")
    observed = flow.exchange_token("signed-in", "empty", "matching")
    rejection = ExpectedRejection(400, "ValidationError", "AppId: The AppId field is required.", "AppId")
    verdict = judge(Expectation("unsupported", "x", rejection, stage="teamsUser/:exchangeAccessToken"), observed)
    assert observed.stage == "sign-in" and observed.code == "AADSTS50126"
    assert verdict.verdict == "SKIP" and "rejected at sign-in" in verdict.says, verdict
    allowed = judge(Expectation("supported", "x", stage="teamsUser/:exchangeAccessToken"), observed)
    assert allowed.verdict == "FAIL" and allowed.says == "rejected at sign-in, before teamsUser/:exchangeAccessToken"


def test_a_setup_steps_success_is_never_the_observation(sandbox_tenant) -> None:  # type: ignore[no-untyped-def]
    """An ACS-user token scenario with a wrong password: the /identities setup succeeds after the
    sign-in failed; the exchange reports the sign-in failure, not the setup's 201."""
    flow = IdentityFlow(_wrong_password(sandbox_tenant))
    flow.sign_in_with_password("licensed")
    assert flow.create_acs_user().outcome == "allowed"
    observed = flow.exchange_token("acs-user", "matching", "matching")
    assert (observed.outcome, observed.stage) == ("rejected", "sign-in")
    setup = flow.observations[-1]
    assert (setup.outcome, setup.stage) == ("allowed", "identities")
    expectation = Expectation("unsupported", "x", ExpectedRejection(401, "InvalidAccessToken"), stage="x")
    assert judge(expectation, setup).verdict == "ERROR", "a setup's success, judged as the observation, is a fault"


# -- roles: one vocabulary for features, profiles and the README ----------------------------------------


def _feature_names() -> set[str]:
    names: set[str] = set()
    for feature in FEATURES_DIR.rglob("*.feature"):
        for line in feature.read_text(encoding="utf-8").splitlines():
            step = line.strip()
            if step.split(" ", 1)[0] in ("Given", "When", "Then", "And", "But"):
                names |= set(re.findall(r'"([a-z][a-z-]*)"', step))
    return names


def test_features_name_roles_never_accounts() -> None:
    accounts = {a for p in PROFILE_DIR.glob("*.toml") for a in (load_profile(str(p)).data.get("users") or {})}
    accounts |= {"adele", "megan", "lynne", "pradeep", "nestor", "isaiah", "alex"}  # the sandbox's
    named = _feature_names()
    assert not named & accounts, f"features name accounts: {sorted(named & accounts)}"
    users = {n for n in named if n in ROLES or n == "policy-holder"}
    assert users >= {"licensed", "colleague", "offline", "mfa", "unlicensed", "organizer"}


def test_every_role_is_mapped_in_the_sandbox_and_explained_in_the_live_example_and_readme() -> None:
    sandbox = load_profile("sandbox").data["roles"]
    assert set(sandbox) == set(ROLES)
    example = (PROFILE_DIR / "live.example.toml").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for role in ROLES:
        assert re.search(rf"^#? ?{re.escape(role)} = ", example, re.M), f"live.example.toml does not mention {role}"
        assert f"`{role}`" in readme, f"README does not explain the role {role}"


def test_a_scenario_whose_role_is_not_mapped_is_skipped_naming_the_entry(live_profile: Path) -> None:
    tenant = load_profile(str(live_profile)).for_live()
    with pytest.raises(MissingPrerequisite, match=r'add mfa = "<alias>" under \[roles\]'):
        tenant.user("mfa")


def test_a_profile_that_cannot_run_in_a_mode_is_a_profile_error(live_profile: Path) -> None:
    with pytest.raises(ProfileError, match="is a live profile"):
        modes.mode_for("sandbox", load_profile(str(live_profile)))
    with pytest.raises(ProfileError, match="is a sandbox profile"):
        modes.mode_for("live", load_profile("sandbox"))
    assert cli.doctor_users(load_profile(str(live_profile)).for_live()) == ["adele"]


def test_the_served_tenant_declares_what_the_sandbox_profile_declares() -> None:
    """The sandbox states its own facts for `serve --write-profile` (it reads no profile): they must be
    harness/profiles/sandbox.toml's, or the black-box run would judge a different tenant."""
    from harness.sandbox import served

    sandbox = load_profile("sandbox").data
    assert sandbox["roles"] == served.ROLES
    assert set(served.MISCONFIGURED) == set(sandbox["misconfigured"])
    declared = {
        (p["policy"], p["setting"], p["value"], "user" if "user" in p else "meeting", p.get("user") or p.get("meeting"))
        for p in sandbox["policies"]
        if p["policy"] != "External access"
    }
    assert set(served.POLICIES) == declared
    assert (sandbox["external_user"]["sandbox_tenant"], sandbox["external_user"]["alias"]) == served.EXTERNAL
