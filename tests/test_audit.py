"""The secret audit: the repository is clean, and every kind of planted secret is caught (hypothesis)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.run.audit import scan

ROOT = Path(__file__).resolve().parent.parent
words = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789", min_size=12, max_size=24)


def signed_jwt(payload: str) -> str:
    part = base64.urlsafe_b64encode(json.dumps({"oid": payload}).encode()).rstrip(b"=").decode()
    return f"eyJhbGciOiJSUzI1NiJ9.{part}.c2lnbmF0dXJlc2lnbmF0dXJl"


KINDS = {
    "jwt": lambda v: (f'access_token: "{signed_jwt(v)}"', "JWT with a signature"),
    "bearer": lambda v: (f"Authorization: Bearer {v}{v}", "bearer token"),
    "hmac": lambda v: (f"HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature={v}==", "HMAC signature"),
    "key": lambda v: (f"endpoint=https://x.communication.azure.com/;accesskey={v}==", "ACS access key"),
    "email": lambda v: (f"userPrincipalName: {v.lower()}@contoso.com", "e-mail address or UPN"),
    "guid": lambda v: ("id: 3f2b8e2a-9c1d-4b7e-a2f0-5d6c7b8a9e01", "object, tenant or resource id"),
    "phone": lambda v: ("to: +14255550123", "phone number"),
    "password": lambda v: (f"password={v}", "a secret of the active profile"),
}


@settings(max_examples=80, deadline=None)
@given(kind=st.sampled_from(sorted(KINDS)), value=words, noise=st.text(max_size=40))
def test_every_kind_of_planted_secret_is_found(tmp_path_factory, kind: str, value: str, noise: str) -> None:
    folder = tmp_path_factory.mktemp("planted") / "cassettes"
    folder.mkdir()
    line, expected = KINDS[kind](value)
    (folder / "c.yaml").write_text(f"interactions:\n- {noise.replace(chr(10), ' ')!r}\n- {line}\n", encoding="utf-8")
    findings = scan([folder], secrets=[value] if kind == "password" else [])
    assert any(expected in f.kind for f in findings), f"{kind} not found in {line!r}"


def test_placeholders_are_not_findings(tmp_path: Path) -> None:
    folder = tmp_path / "cassettes"
    folder.mkdir()
    (folder / "c.yaml").write_text(
        "token: eyJhbGciOiJub25lIn0.eyJvaWQiOiIwIn0.\nupn: adele@upn.invalid\n"
        "id: 00000000-0000-0000-0000-0000000b0100\nkey: accesskey=cGxhY2Vob2xkZXItYWNzLWFjY2Vzcy1rZXk=\n"
        "phone: +15550100001\napp: 1fd5118e-2576-4263-8130-9503064c837a\n",
        encoding="utf-8",
    )
    assert scan([folder]) == []


def test_the_repository_cassettes_are_clean_and_the_command_fails_on_a_finding(tmp_path: Path) -> None:
    clean = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "cassettes", "audit", "--profile", "sandbox"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert clean.returncode == 0, clean.stdout[-2000:]
    planted = tmp_path / "cassettes"
    planted.mkdir()
    (planted / "x.yaml").write_text("upn: megan@fabrikam.example.com\n")
    dirty = subprocess.run(
        [sys.executable, "-m", "harness.run.cli", "cassettes", "audit", str(planted)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dirty.returncode == 1 and "x.yaml:1: e-mail address or UPN" in dirty.stdout
