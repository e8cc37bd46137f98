"""Secrets planted anywhere in recorded traffic never reach a written cassette (hypothesis property).

Real HTTP through vcrpy in record mode against a loopback echo server that repeats the request in
its response headers and body, then the cassette file's text is searched for every secret,
including inside the (decoded) payloads of any JWT left in it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.core import scrubbing
from harness.core.cassettes import make_vcr
from harness.wire import tokens, transport


class Echo(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        echo = {"path": self.path, "headers": dict(self.headers), "body": body}
        data = json.dumps(echo).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-ms-request-id", self.headers.get("x-echo", "none"))
        self.send_header("set-cookie", f"session={self.headers.get('x-echo', 'none')}")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def echo_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    # A non-loopback name: recordings skip loopback hosts (the harness's own servers live there).
    with transport.route_hosts({"echo.cte.invalid": ("127.0.0.1", server.server_address[1])}):
        yield f"http://echo.cte.invalid:{server.server_address[1]}"
    server.shutdown()


token_text = st.text(alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789", min_size=14, max_size=24)
guids = st.uuids().map(str)


def jwt_for(oid: str, upn: str, tid: str) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    payload = {"oid": oid, "upn": upn, "tid": tid, "exp": 1767600000, "scp": "Teams.ManageCalls"}
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(payload)}.c2lnbmF0dXJlLW9mLWEtcmVhbC10b2tlbg"


@st.composite
def planted(draw):
    password = "Pw!" + draw(token_text)
    upn = f"{draw(token_text).lower()}@{draw(token_text).lower()}.example.com"
    oid, tid = draw(guids), draw(guids)
    access_key = base64.b64encode(draw(token_text).encode()).decode()
    refresh = draw(token_text)
    where = draw(st.lists(st.sampled_from(["header", "query", "form", "json", "path"]), min_size=1, max_size=5))
    return {
        "password": password,
        "upn": upn,
        "oid": oid,
        "tid": tid,
        "access_key": access_key,
        "refresh": refresh,
        "where": where,
        "key": draw(st.sampled_from(["value", "note", "x", "payload"])),
    }


def secrets_in(text: str) -> str:
    """The file's text plus the decoded payload of every JWT in it."""
    decoded = []
    for match in tokens.JWT_PATTERN.finditer(text):
        with contextlib.suppress(ValueError):
            decoded.append(json.dumps(tokens.claims(match.group(0))))
    return text + "\n".join(decoded)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=planted())
def test_planted_secrets_never_reach_the_cassette(echo_url: str, tmp_path_factory, case) -> None:
    known = {
        case["password"]: scrubbing.PASSWORD,
        case["upn"]: "adele@" + scrubbing.UPN_DOMAIN,
        case["tid"]: scrubbing.TENANT_ID,
        case["access_key"]: scrubbing.ACS_ACCESS_KEY,
    }
    jwt = jwt_for(case["oid"], case["upn"], case["tid"])
    values = [case["password"], case["upn"], case["oid"], jwt, f"endpoint=https://x/;accesskey={case['access_key']}"]
    cassette = Path(tmp_path_factory.mktemp("cassette")) / "c.yaml"
    recorder, _ = make_vcr(lambda: known, record=True)
    with recorder.use_cassette(str(cassette)):
        for place in case["where"]:
            headers = {"Authorization": f"Bearer {jwt}", "x-echo": case["password"], "x-custom": case["upn"]}
            if place == "header":
                requests.get(f"{echo_url}/h", headers={**headers, "x-other": case["oid"]}, timeout=5)
            elif place == "query":
                query = urllib.parse.urlencode({case["key"]: case["password"], "u": case["upn"], "t": jwt})
                requests.get(f"{echo_url}/q?{query}", headers=headers, timeout=5)
            elif place == "path":
                requests.get(f"{echo_url}/common/userrealm/{case['upn']}/{case['tid']}", headers=headers, timeout=5)
            elif place == "form":
                form = {
                    "password": case["password"],
                    "username": case["upn"],
                    "refresh_token": case["refresh"],
                    case["key"]: " ".join(values),
                }
                requests.post(f"{echo_url}/f", data=form, headers=headers, timeout=5)
            else:
                body = {
                    "token": jwt,
                    "userId": case["oid"],
                    "nested": {case["key"]: values},
                    "refresh_token": case["refresh"],
                    "access_token": jwt,
                }
                requests.post(f"{echo_url}/j", json=body, headers=headers, timeout=5)
    text = secrets_in(cassette.read_text(encoding="utf-8"))
    for name in ("password", "upn", "oid", "tid", "access_key", "refresh"):
        assert case[name] not in text, f"{name} survived in the cassette"
        assert urllib.parse.quote(case[name], safe="") not in text, f"{name} survived url-encoded"
    assert jwt not in text
    assert "c2lnbmF0dXJl" not in text, "a JWT signature survived"


def test_a_scrubbed_jwt_keeps_the_claims_verdicts_need() -> None:
    scrubber = scrubbing.Scrubber()
    original = jwt_for(
        "0e0c2f2a-1d0b-4b0e-9a43-5d6a1c2b3e4f", "megan@fabrikam.example.com", "7d9f1a52-2b1c-4e0a-8f4b-9c1d2e3f4a5b"
    )
    placeholder = scrubber.jwt(original)
    claims = tokens.claims(placeholder)
    assert claims["exp"] == 1767600000 and claims["scp"] == "Teams.ManageCalls"
    assert claims["oid"].startswith("00000000-0000-0000-0000-") and claims["upn"].endswith("@" + scrubbing.UPN_DOMAIN)
    assert placeholder.endswith(".") and tokens.is_placeholder(placeholder)
    assert scrubber.jwt(placeholder) == placeholder, "scrubbing is idempotent on placeholders"


def test_a_scrubbed_id_token_keeps_its_nonce_for_msal_js() -> None:
    """MSAL.js checks the ID token's nonce against the one it sent: a replayed sign-in needs it. The nonce is a
    per-request random (no identity, no secret); the subject, a pairwise identifier, is still dropped."""
    scrubber = scrubbing.Scrubber()
    nonce = "019b8d62-7a80-7619-972b-bd37e7ffdbff"
    header = base64.urlsafe_b64encode(b'{"alg":"RS256","typ":"JWT"}').decode().rstrip("=")
    payload = {"aud": "c", "nonce": nonce, "sub": "pairwise-subject", "oid": "0e0c2f2a-1d0b-4b0e-9a43-5d6a1c2b3e4f"}
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    claims = tokens.claims(scrubber.jwt(f"{header}.{body}.c2lnbmF0dXJl"))
    assert claims["nonce"] == nonce and "sub" not in claims
    assert claims["oid"].startswith("00000000-0000-0000-0000-")


@pytest.mark.parametrize(
    ("domain", "reserved"),
    [
        ("external.invalid", True),
        ("upn.invalid", True),
        ("fabrikam.example", True),
        ("partner.example.com", True),
        ("lab.test", True),
        ("fabrikam.com", False),
        ("fabrikam-sandbox.onmicrosoft.com", False),
        ("example.com.evil.org", False),
    ],
)
def test_only_reserved_domains_count_as_identifying_nobody(domain: str, reserved: bool) -> None:
    assert scrubbing.is_reserved_domain(domain) is reserved


def test_a_scrubber_scrubs_a_text_again_as_it_would_anew() -> None:
    """Scrubbed texts are remembered only while the scrubber learns nothing: a secret learnt later is
    scrubbed from a text seen before, and a copy numbers on exactly as the original would."""
    known = {"Fabrikam.example.com": "tenant.invalid", "P@ss word!": scrubbing.PASSWORD}
    text = "login P@ss word! for 7d9f1a52-2b1c-4e0a-8f4b-9c1d2e3f4a5b at fabrikam.EXAMPLE.com by megan"
    scrubber = scrubbing.Scrubber(known)
    first = scrubber.text(text)
    assert (
        first
        == scrubber.text(text)
        == ("login <password> for 00000000-0000-0000-0000-0000000f0001 at tenant.invalid by megan")
    )
    scrubber.learn("megan", "<display-name>")
    assert scrubber.text(text) == first.replace("megan", "<display-name>")
    twin, fresh = scrubber.copy(), scrubbing.Scrubber(known)
    fresh.text(text)
    fresh.learn("megan", "<display-name>")
    other = "id 0e0c2f2a-1d0b-4b0e-9a43-5d6a1c2b3e4f, then 19:meeting_abcdef@thread.v2 and 19:xYz9@thread.v2"
    assert (
        twin.text(other)
        == fresh.text(other)
        == (
            "id 00000000-0000-0000-0000-0000000f0002, then 19:meeting_abcdef@thread.v2"
            " and 19:cte-conversation-0001@thread.v2"
        )
    )
    assert scrubber.text(other) == twin.text(other)  # the original goes on alike, apart from its copy
    assert scrubber.version == twin.version == fresh.version


def test_a_report_redaction_starts_from_what_the_run_learnt_not_from_the_last_report() -> None:
    """redact() copies a scrubber that learnt the run's secrets: the same as a new one each time."""
    from harness.reporting.redaction import _identifying, redact

    def anew(value: object, known: dict[str, str]) -> object:
        return scrubbing.Scrubber(_identifying(known), keep=frozenset({"request_id"})).json_value(value)

    known = {"fabrikam.com": "tenant.invalid", "adele@fabrikam.com": "adele@upn.invalid", "lab.example": "x.invalid"}
    first = {"a": "0e0c2f2a-1d0b-4b0e-9a43-5d6a1c2b3e4f", "b": "adele@fabrikam.com at lab.example", "request_id": "x"}
    second = {"a": ["7d9f1a52-2b1c-4e0a-8f4b-9c1d2e3f4a5b", "megan@fabrikam.com"]}
    more = {**known, "adele": "<alias>"}
    for value, secrets in [(first, known), (second, known), (first, known), (first, more), (second, more)]:
        assert redact(value, secrets) == anew(value, secrets)
    assert redact(second, known) == {"a": ["00000000-0000-0000-0000-0000000f0001", "user1@upn.invalid"]}
    assert redact(first, more)["b"] == "<alias>@upn.invalid at lab.example"
