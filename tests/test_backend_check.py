"""`cte backend check` against the reference token service (examples/token-service/) and its three classic
mistakes: each variant gets exactly its verdicts, in sandbox mode (the sandbox served in its own process,
the service started by the check), replayed from a recording, and against a service a partner started
on another port, known to the check only by a profile."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.core.token_service import BackendProfileError, spec_from
from harness.wire.tokens import JWT_PATTERN
from tests.support import ROOT, cte

SERVICE = f"{sys.executable} {ROOT / 'examples' / 'token-service' / 'app.py'}"
OWN = "The service returns the user's own ACS token, expiring with their Entra token"
TWO = "Two users at once each get their own ACS token"
SECOND = "A user of a second tenant is served or refused as the profile expects"
FRESH = "After the Entra token expires, a fresh sign-in yields a fresh ACS token"
REFUSE = "The service refuses a token it must not exchange, and never sends it to ACS"
EXPIRED = f"{REFUSE} [an expired Entra token]"
ALL = {
    OWN,
    TWO,
    SECOND,
    FRESH,
    EXPIRED,
    f"{REFUSE} [a token issued to another app]",
    f"{REFUSE} [a token for Microsoft Graph]",
    f"{REFUSE} [a token without Teams.ManageCalls]",
}
# Each mistake fails exactly these scenarios (scenarios as written: the shared cache is filled by the first).
FAILING = {
    "": set(),
    "server-app-id": {OWN, TWO, SECOND, FRESH},
    "shared-cache": {TWO, SECOND, FRESH},
    "forward-expired": {EXPIRED},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def verdicts(report: Path) -> dict[str, str]:
    """Scenario name (an outline's with its example) -> verdict."""
    document = json.loads((report / "conformance.json").read_text(encoding="utf-8"))
    return {s["name"]: s["verdict"] for s in document["scenarios"]}


def check(tmp: Path, *args: str, mistakes: str = "") -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    env = {**os.environ, "TOKEN_SERVICE_MISTAKES": mistakes}
    env.pop("CTE_MODE", None)
    result = cte("backend", "check", "-q", "--report-dir", str(tmp), *args, env=env, timeout=300)
    return result, verdicts(tmp) if (tmp / "conformance.json").exists() else {}


@pytest.mark.integration
@pytest.mark.parametrize("mistakes", list(FAILING), ids=lambda m: m or "reference")
def test_each_mistake_fails_exactly_its_scenarios_recorded_and_replayed(tmp_path: Path, mistakes: str) -> None:
    """Recorded against the served sandbox (the check starts the service), then replayed with the service
    gone and another URL: the same verdicts, and each variant's are exactly its own."""
    url = f"http://localhost:{free_port()}/api/token/teams"
    cassettes = tmp_path / "cassettes"
    recorded, found = check(
        tmp_path / "record",
        *("--mode", "record", "--cassette-dir", str(cassettes), "--url", url, "--start", SERVICE),
        mistakes=mistakes,
    )
    assert set(found) == ALL, recorded.stdout[-2000:] + recorded.stderr[-2000:]
    failed = {name for name, verdict in found.items() if verdict != "PASS"}
    assert failed == FAILING[mistakes], found
    assert {found[name] for name in failed} <= {"FAIL"}
    assert recorded.returncode == (1 if failed else 0)
    other_url = f"http://localhost:{free_port()}/api/token/teams"  # nothing listens there: replay needs nothing
    replayed, replay_verdicts = check(
        tmp_path / "replay", "--mode", "replay", "--cassette-dir", str(cassettes), "--url", other_url
    )
    assert replay_verdicts == found, replayed.stdout[-2000:]
    audit = cte("cassettes", "audit", "--profile", "sandbox", str(cassettes), str(tmp_path / "record"))
    assert audit.returncode == 0, audit.stdout


@pytest.mark.integration
def test_sandbox_mode_judges_what_reached_acs_and_writes_no_secret(tmp_path: Path) -> None:
    url = f"http://localhost:{free_port()}/api/token/teams"
    result, found = check(tmp_path / "report", "--url", url, "--start", SERVICE, mistakes="forward-expired")
    assert found and {n for n, v in found.items() if v != "PASS"} == {EXPIRED}, result.stdout[-2000:]
    document = json.loads((tmp_path / "report" / "conformance.json").read_text(encoding="utf-8"))
    expired = next(s for s in document["scenarios"] if s["name"] == EXPIRED)
    assert any("expired True; ACS answered 401" in line for line in expired["evidence"]["sent_to_acs"]), expired
    # The served tenant's secrets were passed in the environment only: no report file holds a token.
    report_text = "".join(p.read_text(errors="replace") for p in (tmp_path / "report").rglob("*") if p.is_file())
    assert not JWT_PATTERN.search(report_text)


@pytest.mark.integration
def test_a_service_that_logs_tokens_fails_the_check_and_its_tokens_stay_off_disk(tmp_path: Path) -> None:
    """Every scenario passes (the answers are right), but the service printed each token it handled: the
    check counts them in its output, says so in one line and exits 1; the tokens reach no file."""
    url = f"http://localhost:{free_port()}/api/token/teams"
    result, found = check(tmp_path / "report", "--url", url, "--start", SERVICE, mistakes="log-tokens")
    assert found and set(found.values()) == {"PASS"}, result.stdout[-2000:]
    assert result.returncode == 1
    finding = [line for line in result.stderr.splitlines() if "token(s) to its output" in line]
    assert len(finding) == 1 and re.search(r"wrote [1-9]\d* token\(s\)", finding[0]), result.stderr[-1000:]
    assert "never the token" in finding[0]
    assert not JWT_PATTERN.search(result.stdout + result.stderr)
    for path in (tmp_path / "report").rglob("*"):
        assert not path.is_file() or not JWT_PATTERN.search(path.read_text(encoding="utf-8", errors="replace")), path


@pytest.mark.integration
def test_a_partner_started_service_is_checked_through_a_live_profile_alone(tmp_path: Path) -> None:
    """The sandbox served on its own, the reference service started by hand against it on a port of its
    own, the check given only the profile the sandbox wrote and the service's URL (mode live)."""
    profile = tmp_path / "tenant" / "served.toml"
    serve = subprocess.Popen(
        [sys.executable, "-m", "harness.run.cli", "sandbox", "serve", "--write-profile", str(profile),
         "--token-lifetime", "10"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    service = None
    try:
        assert serve.stdout is not None
        served = json.loads(serve.stdout.readline())
        port = free_port()
        service_env = {
            **os.environ,
            "ACS_CONNECTION_STRING": served["env"]["CTE_SERVED_ACS_CONNECTION_STRING"],
            "ENTRA_AUTHORITY_HOST": served["authority"].rsplit("/", 1)[0],
            "ENTRA_CLIENT_ID": served["client_id"],
            "CA_BUNDLE": served["ca_bundle"],
            "PORT": str(port),
        }
        service = subprocess.Popen(SERVICE.split(), env=service_env, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        env = {**os.environ, **served["env"]}
        url = f"http://localhost:{port}/api/token/teams"
        result = cte(
            "backend", "check", "-q", "--mode", "live", "--profile", str(profile), "--url", url,
            "--report-dir", str(tmp_path / "report"), env=env, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-1000:]
        found = verdicts(tmp_path / "report")
        assert set(found) == ALL and set(found.values()) == {"PASS"}, found
    finally:
        for process in (service, serve):
            if process is not None:
                process.terminate()
                process.wait(timeout=10)


def test_the_sandbox_check_starts_the_service_itself_or_says_how(tmp_path: Path) -> None:
    result = cte("backend", "check", "--url", "http://localhost:9/api/token/teams", "--report-dir", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--start" in lines[0] and "--mode live" in lines[0], result.stderr
    assert not tmp_path.joinpath("conformance.json").exists()


def test_a_service_that_does_not_start_is_named_in_one_line(tmp_path: Path) -> None:
    url = f"http://localhost:{free_port()}/api/token/teams"
    failing = f"{sys.executable} -c \"print('cannot bind'); raise SystemExit(3)\""
    result = cte("backend", "check", "--url", url, "--start", failing, "--report-dir", str(tmp_path), timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "exited with 3" in result.stderr and "cannot bind" in result.stderr


@pytest.mark.parametrize(
    ("table", "url", "wanted"),
    [
        ({}, None, "pass --url URL or set [backend] url"),
        ({}, "ftp://example.com/x", "is not an http(s) URL"),
        ({}, "http://staging.example.com/token", "over plain http to another host"),
        ({"method": "PUT"}, "http://localhost:1/t", "[backend].method = 'PUT' is not valid"),
        ({"token_header": "x", "token_field": "t"}, "http://localhost:1/t", "names both token_header and token_field"),
        ({"token_field": "t", "method": "GET"}, "http://localhost:1/t", "token_field needs method"),
        ({"other_client_id": "nope"}, "http://localhost:1/t", "other_client_id = 'nope' is not a GUID"),
        ({"colour": 1}, "http://localhost:1/t", "unknown key 'colour'"),
        ({"second_tenant": {"tenant_id": "x", "upn": "u", "password_env": "P"}}, "http://localhost:1/t", "not a GUID"),
        (
            {"second_tenant": {"password": "secret"}},
            "http://localhost:1/t",
            "holds a secret in the file; remove it and use password_env",
        ),
    ],
)
def test_a_bad_backend_table_is_one_line_naming_the_fix(table: dict, url: str | None, wanted: str) -> None:
    with pytest.raises(BackendProfileError) as raised:
        spec_from(table, "mine.toml", url=url)
    message = str(raised.value)
    assert wanted in message and "\n" not in message and message.startswith("mine.toml: ")


def test_the_hero_sample_shape_is_the_default_and_a_body_field_is_a_post() -> None:
    spec = spec_from({}, "p", url="http://localhost:8600/api/token/teams")
    assert (spec.method, spec.token_header, spec.token_field) == ("GET", "teams-user-aad-token", None)
    posted = spec_from({"token_field": "entraToken"}, "p", url="https://svc.example/token")
    assert (posted.method, posted.token_header, posted.token_field) == ("POST", None, "entraToken")
