"""Profiles that reach ACS with an Entra ID credential ([acs]) instead of the connection string: validation
with one-line errors, what each mode builds, and that the secret reaches the scrubber, never the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.core import scrubbing
from harness.core.config import ProfileError, load_profile
from tests.test_config import ENV, live, one_line, write

SECRET_ENV = {"CTE_TEST_ACS_SECRET": "sp~secret-value-0123456789"}
CLIENT = "11111111-2222-3333-4444-555555555555"


def entra_live(tmp_path: Path, acs: dict[str, Any], **changes: Any) -> Path:
    data = live(**changes)
    data["acs"] = acs
    data.pop("secrets", None)
    return write(tmp_path, data)


def test_a_live_profile_with_a_client_secret_needs_no_connection_string(tmp_path: Path) -> None:
    path = entra_live(
        tmp_path, {"credential": "client-secret", "client_id": CLIENT, "client_secret_env": "CTE_TEST_ACS_SECRET"}
    )
    env = {k: v for k, v in ENV.items() if k != "CTE_TEST_ACS"} | SECRET_ENV
    tenant = load_profile(str(path)).for_live(env=env)
    assert tenant.acs_auth == "entra:client-secret" and str(tenant.acs_access_key) == ""
    assert tenant.acs_credential is not None and tenant.acs_credential.client_id == CLIENT
    assert tenant.acs_credential.authority_host == "https://login.microsoftonline.com"
    known = tenant.known_secrets()
    assert known[SECRET_ENV["CTE_TEST_ACS_SECRET"]] == scrubbing.CLIENT_SECRET
    assert "" not in known, "an empty access key must never become a secret to scrub"
    assert SECRET_ENV["CTE_TEST_ACS_SECRET"] not in repr(tenant)


@pytest.mark.parametrize(
    ("acs", "needles"),
    [
        ({"credential": "password"}, ["[acs].credential = 'password'", "client-secret, certificate, managed-identity"]),
        ({"credential": "client-secret", "client_id": CLIENT}, ["[acs].client_secret_env is missing"]),
        ({"credential": "certificate", "client_id": CLIENT}, ["[acs].certificate_path_env is missing"]),
        ({"credential": "client-secret", "client_secret_env": "X"}, ["[acs].client_id is missing"]),
        (
            {"credential": "client-secret", "client_id": "not-a-guid", "client_secret_env": "X"},
            ["[acs].client_id = 'not-a-guid' is not a GUID"],
        ),
        (
            {"credential": "client-secret", "client_id": CLIENT, "client_secret": "s3cret"},
            ["[acs].client_secret holds a secret in the file", "client_secret_env"],
        ),
        ({"credential": "client-secret", "tenant": "x"}, ["[acs] has unknown key 'tenant'"]),
    ],
)
def test_a_bad_acs_table_is_one_line(tmp_path: Path, acs: dict[str, Any], needles: list[str]) -> None:
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(entra_live(tmp_path, acs)))
    one_line(excinfo, *needles)


def test_an_unset_secret_variable_names_it(tmp_path: Path) -> None:
    path = entra_live(
        tmp_path, {"credential": "client-secret", "client_id": CLIENT, "client_secret_env": "CTE_TEST_ACS_SECRET"}
    )
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path)).for_live(env=ENV)
    one_line(excinfo, "[acs.client_secret_env]", "CTE_TEST_ACS_SECRET", "export")


def test_a_certificate_that_is_not_a_file_is_one_line(tmp_path: Path) -> None:
    path = entra_live(tmp_path, {"credential": "certificate", "client_id": CLIENT, "certificate_path_env": "CTE_C"})
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path)).for_live(env={**ENV, "CTE_C": str(tmp_path / "nope.pem")})
    one_line(excinfo, "[acs].certificate_path_env", "is not a file", "PEM")


def test_a_managed_identity_is_live_only(tmp_path: Path) -> None:
    profile = load_profile(str(entra_live(tmp_path, {"credential": "managed-identity"})))
    tenant = profile.for_live(env=ENV)
    assert tenant.acs_auth == "entra:managed-identity"
    with pytest.raises(ProfileError) as excinfo:
        profile.for_replay()
    one_line(excinfo, "live mode only", "--mode live")


def test_a_sandbox_acs_table_takes_only_the_client_secret(tmp_path: Path) -> None:
    path = write(tmp_path, {"kind": "sandbox", "acs": {"credential": "certificate"}}, "mine.toml")
    with pytest.raises(ProfileError) as excinfo:
        load_profile(str(path))
    one_line(excinfo, "sandbox profile's [acs]", 'credential = "client-secret"')


def test_the_acs_entra_profile_replays_with_placeholders() -> None:
    tenant = load_profile("acs-entra").for_replay()
    assert tenant.acs_auth == "entra:client-secret" and str(tenant.acs_access_key) == ""
    assert tenant.acs_credential is not None
    assert str(tenant.acs_credential.client_secret) == scrubbing.CLIENT_SECRET
    assert tenant.acs_credential.tenant_id == scrubbing.TENANT_ID
    assert load_profile("sandbox").for_replay().acs_auth == "hmac"


def test_cassettes_audit_looks_for_a_credential_profiles_client_secret(tmp_path: Path) -> None:
    """`cte cassettes audit --profile` searches for the profile's own secrets: with [acs], its client secret
    (and never the empty access key such a profile has, which would match everything)."""
    import os

    from tests.support import cte

    path = entra_live(
        tmp_path, {"credential": "client-secret", "client_id": CLIENT, "client_secret_env": "CTE_TEST_ACS_SECRET"}
    )
    env = {k: v for k, v in os.environ.items() if k != "CTE_TEST_ACS"} | ENV | SECRET_ENV
    env.pop("CTE_TEST_ACS", None)
    leaked, clean = tmp_path / "leaked", tmp_path / "clean"
    leaked.mkdir(), clean.mkdir()
    (leaked / "note.txt").write_text(f"client_secret={SECRET_ENV['CTE_TEST_ACS_SECRET']}\n")
    (clean / "note.txt").write_text("nothing to see\n")
    found = cte("cassettes", "audit", "--profile", str(path), str(leaked), env=env)
    assert found.returncode == 1 and "1 finding(s)" in found.stdout, found.stdout + found.stderr
    quiet = cte("cassettes", "audit", "--profile", str(path), str(clean), env=env)
    assert quiet.returncode == 0 and "0 finding(s)" in quiet.stdout, quiet.stdout + quiet.stderr
