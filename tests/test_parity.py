"""Parity of a recording with the sandbox's answers: the comparison rules, and `cte sandbox parity`
finding what was planted in a copy of the committed cassettes (recorded against the sandbox)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from harness.run.parity import Exchange, compare, compare_exchanges, compare_inbound, request_kind, value_format
from tests.support import ROOT, cte

WRONG_USER = (
    "identity/token-exchange/"
    "a-bad-exchange-request-is-rejected-exactly-as-the-real-service-rejects-it--wrong-user-id.yaml"
)
GROUP_POLL = "chat/chat-messages/a-teams-user-gets-the-messages-of-a-group-chat-by-polling--group.yaml"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0b5a3a49-0b1c-4f4c-8a3e-3c1e8d7a2b11", "guid"),
        ("eyJhbGciOiJSUzI1NiJ9.eyJ4IjoxfQ.c2ln", "jwt"),
        ("2026-01-05T09:00:01.123Z", "time (.3 digits, Z)"),
        ("2023-10-10T21:39:39.3244584+00:00", "time (.7 digits, +hh:mm)"),
        ("8:acs:00000000-0000-0000-0000-00000000a001_0000001a", "identifier 8:acs:"),
        ("19:abc@thread.v2", "thread id"),
        ("<x-ms-request-id>", "redacted"),
        ("Sanitized", "redacted"),
        ("1796108383504", "digits"),
        (None, "null"),
        (True, "boolean"),
        (3, "integer"),
    ],
)
def test_a_value_is_known_by_its_format(value, expected) -> None:
    assert value_format(value) == expected


def test_request_kinds_ignore_ids_and_empty_segments() -> None:
    assert request_kind("post", "https://graph.microsoft.com/v1.0//chats/19%3Aab%40thread.v2/messages?$top=5") == (
        "POST graph.microsoft.com/v1.0/chats/{chat}/messages"
    )
    assert request_kind("GET", "https://graph.microsoft.com/v1.0/users/adele@upn.invalid") == (
        "GET graph.microsoft.com/v1.0/users/{user}"
    )


def error(code: str, message: str, target: str | None = None, status: int = 400) -> Exchange:
    return Exchange(
        "POST", "https://acs/x", status, json.dumps({"error": {"code": code, "message": message, "target": target}})
    )


def test_an_error_is_compared_exactly_but_for_its_volatile_values() -> None:
    same = "Provided AAD token issued for unexpected user 0b5a3a49-0b1c-4f4c-8a3e-3c1e8d7a2b11."
    other_id = same.replace("0b5a3a49", "1c6b4b5a")
    assert compare(error("ValidationError", same, "userId"), error("ValidationError", other_id, "userId"), "w") == []
    found = compare(error("ValidationError", same, "userId"), error("InvalidToken", same, "token", 401), "w")
    assert {d.aspect for d in found} == {"status", "error.code", "error.target"}


def test_the_content_type_is_compared_with_its_parameters() -> None:
    body = '{"token": "x"}'
    recorded = Exchange("POST", "u", 200, body, "application/json; charset=utf-8")
    assert compare(recorded, Exchange("POST", "u", 200, body, "application/json;charset=UTF-8"), "w") == []
    (found,) = compare(recorded, Exchange("POST", "u", 200, body, "application/json"), "w")
    assert (found.aspect, found.recorded, found.sandbox) == ("content-type", recorded.content_type, "application/json")


def test_keys_and_formats_are_compared_and_a_redacted_value_matches_any_string() -> None:
    recorded = Exchange("GET", "u", 200, json.dumps({"id": "Sanitized", "at": "2026-01-05T09:00:01.123Z", "n": [1]}))
    same = Exchange("GET", "u", 200, json.dumps({"id": "8:acs:x", "at": "2026-02-05T10:00:01.999Z", "n": [2, 3]}))
    assert compare(recorded, same, "w") == []
    other = Exchange("GET", "u", 200, json.dumps({"id": "x", "at": "2026-02-05T10:00:01Z", "extra": None}))
    found = {(d.aspect, d.recorded) for d in compare(recorded, other, "w")}
    assert found == {
        ("format", "$.at time (.3 digits, Z)"),
        ("key", "has $.n"),
        ("key", "lacks $.extra"),
    }


def test_throttled_answers_are_set_aside_and_a_request_made_on_one_side_only_is_a_divergence() -> None:
    ok = Exchange("POST", "https://graph.microsoft.com/v1.0/chats", 201, "{}")
    throttled = Exchange("POST", "https://graph.microsoft.com/v1.0/chats", 429, '{"error":{"code":"TooManyRequests"}}')
    found, compared = compare_exchanges([throttled, ok], [ok], "w")
    assert (found, compared) == ([], 1)
    extra = Exchange("GET", "https://graph.microsoft.com/v1.0/me", 200, "{}")
    found, _ = compare_exchanges([ok], [ok, extra], "w")
    assert [(d.aspect, d.recorded) for d in found] == [("request", "did not make it")]


@pytest.fixture(scope="module")
def sandbox_recording(tmp_path_factory):
    """`cte sandbox parity` on the committed cassettes, recording the sandbox itself (once)."""
    out = tmp_path_factory.mktemp("parity")
    done = cte("sandbox", "parity", str(ROOT / "cassettes"), "--report-dir", str(out))
    return out, done


@pytest.mark.integration
def _inbound(change: str, edited: str | None) -> dict:
    return {
        "kind": "change",
        "notification": {"changeType": change, "id": "00000000-0000-0000-0000-000000000001"},
        "message": {"id": "1", "lastEditedDateTime": edited},
    }


def test_notifications_are_paired_by_what_they_announce_not_by_arrival_order() -> None:
    created, updated = _inbound("created", None), _inbound("updated", "2026-01-05T09:00:03.300Z")
    assert compare_inbound([updated, created], [created, updated], "x") == []
    # a real difference in a notification of the same kind is still found
    wrong = _inbound("updated", None)
    found = compare_inbound([updated, created], [created, wrong], "x")
    assert [(d.where, d.aspect) for d in found] == [("x notification 1 (change updated)", "format")]
    # a kind delivered on one side only is named
    found = compare_inbound([created, updated], [created, created], "x")
    assert any("none like it" in d.sandbox for d in found)


def test_the_committed_cassettes_agree_with_the_sandbox(sandbox_recording) -> None:
    out, done = sandbox_recording
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    report = json.loads((out / "parity.json").read_text())
    assert report["divergences"] == [] and report["exchanges_compared"] > 300
    assert len(report["compared"]) > 40


@pytest.mark.integration
def test_planted_divergences_are_each_found_and_named(sandbox_recording, tmp_path) -> None:
    out, _ = sandbox_recording
    planted = tmp_path / "recording"
    shutil.copytree(ROOT / "cassettes", planted)
    # 1. the exchange refuses with another error code
    path = planted / WRONG_USER
    path.write_text(path.read_text().replace('"code":"ValidationError"', '"code":"InvalidUser"'))
    # 2. a message in a listing lacks a key Graph sends
    path = planted / GROUP_POLL
    document = yaml.safe_load(path.read_text())
    for interaction in document["interactions"]:
        if interaction["request"]["method"] == "GET" and "/messages" in interaction["request"]["uri"]:
            body = json.loads(interaction["response"]["body"]["string"])
            for message in body["value"]:
                message.pop("etag", None)
            interaction["response"]["body"]["string"] = json.dumps(body)
            break
    path.write_text(yaml.safe_dump(document))

    done = cte(
        "sandbox", "parity", str(planted), "--report-dir", str(tmp_path / "report"),
        "--sandbox-cassettes", str(out / "sandbox-cassettes"),
    )  # fmt: skip
    assert done.returncode == 1, done.stdout[-3000:]
    divergences = json.loads((tmp_path / "report" / "parity.json").read_text())["divergences"]
    found = {(d["where"].split(" ")[0], d["aspect"], d["recorded"]) for d in divergences}
    assert found == {
        (WRONG_USER, "error.code", "'InvalidUser'"),
        (GROUP_POLL, "key", "lacks $.value[].etag"),
    }
    assert "error.code: recorded 'InvalidUser'; sandbox 'ValidationError'" in done.stdout


def test_a_folder_without_cassettes_is_one_line(tmp_path) -> None:
    done = cte("sandbox", "parity", str(tmp_path))
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "holds no cassettes" in done.stderr
