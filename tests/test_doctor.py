"""`cte doctor` names the problem and its remedy for each misconfigured sandbox, and passes on the clean one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def doctor(profile: str, tmp_path: Path) -> tuple[int, dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "doctor", "--profile", profile, "--report-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return result.returncode, json.loads((tmp_path / "doctor.json").read_text()), result.stdout


def test_the_clean_sandbox_is_ready(tmp_path: Path) -> None:
    status, report, output = doctor("sandbox", tmp_path)
    assert status == 0 and not report["blocked"], output
    names = [c["name"] for c in report["checks"]]
    assert names[:4] == ["profile complete", "authority reachable", "cloud", "sign-in of adele"]
    assert {
        "Teams scopes consented",
        "ACS resource and access key",
        "exchange for megan",
        "Graph scopes for chat and meetings",
        "redirect URI",
        "calling driver",
    } <= set(names)
    redirect = next(c for c in report["checks"] if c["name"] == "redirect URI")
    assert redirect["status"] == "ok" and "http://localhost:3000/spa (spa)" in redirect["detail"], redirect
    calling = next(c for c in report["checks"] if c["name"] == "calling driver")
    assert (calling["status"], calling["detail"]) == ("ok", "sandbox (the sandbox's calling model)")


def test_the_sandbox_with_an_entra_credential_for_acs_is_ready(tmp_path: Path) -> None:
    status, report, output = doctor("acs-entra", tmp_path)
    assert status == 0 and not report["blocked"], output
    checks = {c["name"]: c for c in report["checks"]}
    assert checks["ACS credential"]["status"] == "ok"
    assert "a token for https://communication.azure.com" in checks["ACS credential"]["detail"]
    assert checks["ACS resource and role assignment"]["status"] == "ok"
    assert "ACS resource and access key" not in checks


@pytest.mark.parametrize(
    ("profile", "check", "detail", "remedy"),
    [
        ("consent-missing", "sign-in of adele", "AADSTS65001", "adminconsent"),
        ("calls-scope-missing", "sign-in of adele", "AADSTS65001", "Teams.ManageCalls"),
        ("public-client-disabled", "sign-in of adele", "AADSTS7000218", "Allow public client flows"),
        ("acs-sp-missing", "sign-in of adele", "AADSTS650052", "1fd5118e-2576-4263-8130-9503064c837a"),
        ("app-not-registered", "sign-in of adele", "AADSTS700016", "client id"),
        ("no-teams-license", "exchange for adele", "403 Forbidden", "Teams licence"),
        ("graph-scope-missing", "Graph scopes for chat and meetings", "ChatMessage.Send", "ChatMessage.Send"),
        ("acs-role-missing", "ACS resource and role assignment", "403 AuthorizationFailed", "Contributor role"),
        ("client-secret-expired", "ACS credential", "AADSTS7000222", "create a new one"),
        ("redirect-uri-wrong-platform", "redirect URI", "AADSTS9002326", "under 'Single-page application', not"),
        ("redirect-uri-unregistered", "redirect URI", "AADSTS50011", "register http://localhost:3000/spa under"),
    ],
)
def test_each_misconfiguration_gets_its_diagnosis(
    tmp_path: Path, profile: str, check: str, detail: str, remedy: str
) -> None:
    status, report, output = doctor(profile, tmp_path)
    assert status == 1 and report["blocked"]
    failed = [c for c in report["checks"] if c["status"] == "fail"]
    assert failed[0]["name"] == check, output
    assert detail in failed[0]["detail"] and remedy in failed[0]["remedy"]
    assert f"remedy: {failed[0]['remedy']}" in output


def test_a_bad_profile_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "doctor", "--profile", "no-such-profile"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no profile named 'no-such-profile'" in result.stderr


def test_a_government_cloud_tenant_stops_at_the_cloud_check_naming_the_document(tmp_path: Path) -> None:
    """The gcc-high sandbox tenant's OpenID configuration names the US Government cloud: the doctor stops there,
    before any sign-in, and names the ACS page that says Teams interoperability is not offered in it."""
    status, report, output = doctor("gcc-high", tmp_path)
    assert status == 1 and report["blocked"], output
    names = [c["name"] for c in report["checks"]]
    assert names[-1] == "cloud" and not any(n.startswith("sign-in") for n in names), output
    failed = report["checks"][-1]
    assert failed["status"] == "fail" and "microsoftonline.us" in failed["detail"] and "DODCON" in failed["detail"]
    assert "teams-interop#teams-in-government-clouds-gcc" in failed["remedy"]


def test_the_public_cloud_passes_the_cloud_check(tmp_path: Path) -> None:
    _, report, output = doctor("sandbox", tmp_path)
    cloud = next(c for c in report["checks"] if c["name"] == "cloud")
    assert cloud["status"] == "ok" and "microsoftonline.com" in cloud["detail"], output
