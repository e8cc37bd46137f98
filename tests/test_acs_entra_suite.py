"""The suite's identity area with a profile that has no ACS access key (harness/profiles/acs-entra.toml: ACS reached
with the sandbox tenant's client secret through azure-identity), in sandbox mode and in replay of a recording
made into a temporary folder; and what replay holds a bearer recording to."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from vcr.request import Request

from harness.core.cassettes import authorization_matcher, sent_authorization
from tests.support import cte

pytestmark = pytest.mark.integration

ACS_URL = "https://acs-resource.communication.azure.com/identities?api-version=2023-10-01"


def verdicts(report_dir: Path) -> tuple[dict[str, str], set[str]]:
    report = json.loads((report_dir / "conformance.json").read_text(encoding="utf-8"))
    outcomes = {s["id"]: s["verdict"] for s in report["scenarios"]}
    auth = {s["evidence"].get("acs_auth") for s in report["scenarios"] if "evidence" in s}
    return outcomes, auth - {None}


def test_the_identity_area_passes_without_an_access_key_in_sandbox_and_replay(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    recorded = cte(
        "record", "--profile", "harness/profiles/acs-entra.toml", "-k", "identity",
        "--cassette-dir", str(cassettes), "--report-dir", str(tmp_path / "record"),
    )  # fmt: skip
    assert recorded.returncode == 0, recorded.stdout[-3000:] + recorded.stderr[-2000:]
    outcomes, auth = verdicts(tmp_path / "record")
    assert outcomes and set(outcomes.values()) == {"PASS"}, outcomes
    assert "entra:client-secret" in auth
    text = "\n".join(p.read_text(encoding="utf-8") for p in cassettes.rglob("*.yaml"))
    assert "grant_type=client_credentials" in text and "%2F%2F.default" in text
    assert "Bearer <scrubbed>" in text
    audit = cte("cassettes", "audit", "--profile", "harness/profiles/acs-entra.toml", str(cassettes))
    assert audit.returncode == 0 and "0 finding(s)" in audit.stdout, audit.stdout + audit.stderr

    replayed = cte(
        "run", "--mode", "replay", "--profile", "harness/profiles/acs-entra.toml", "-k", "identity",
        "--cassette-dir", str(cassettes), "--report-dir", str(tmp_path / "replay"),
    )  # fmt: skip
    assert replayed.returncode == 0, replayed.stdout[-3000:] + replayed.stderr[-2000:]
    assert verdicts(tmp_path / "replay")[0] == outcomes

    # The default (access-key) profile cannot pass off HMAC requests for the bearer ones recorded here.
    crossed = cte(
        "run", "--mode", "replay", "--profile", "sandbox", "-k", "licensed_teams_user_exchanges",
        "--cassette-dir", str(cassettes), "--report-dir", str(tmp_path / "crossed"),
    )  # fmt: skip
    assert crossed.returncode != 0
    assert "recorded with Bearer authorization; sent with HMAC-SHA256" in crossed.stdout + crossed.stderr


def _request(authorization: str | None, body: bytes = b"{}") -> Request:
    headers = {"Authorization": authorization} if authorization else {}
    return Request("POST", ACS_URL, body, headers)


@pytest.mark.parametrize(
    ("recorded", "sent", "error"),
    [
        ("Bearer <scrubbed>", "Bearer eyJ.eyJ.sig", None),
        ("Bearer <scrubbed>", None, "recorded with Bearer authorization; sent without an Authorization header"),
        ("HMAC-SHA256 <scrubbed>", "Bearer eyJ.eyJ.sig", "recorded with HMAC-SHA256 authorization; sent with Bearer"),
        ("Bearer <scrubbed>", "Bearer ", "the Bearer authorization carries no token"),
    ],
)
def test_replay_matches_a_bearer_recording_only_with_a_bearer_request(
    recorded: str, sent: str | None, error: str | None
) -> None:
    replayed = _request(sent)
    replayed._cte_sent_authorization = sent_authorization(replayed)  # type: ignore[attr-defined]
    if error is None:
        authorization_matcher(replayed, _request(recorded))
    else:
        with pytest.raises(AssertionError, match=error):
            authorization_matcher(replayed, _request(recorded))
