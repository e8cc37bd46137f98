"""Graph's notificationUrl validation handshake, judged as Graph judges it: what both the doctor's probe
(harness/run/doctor.py) and the sandbox's subscription creation (harness/sandbox/graph/subscriptions.py) apply
to an endpoint's answer, so that an endpoint the doctor passes is one Graph would accept.

Source (docs/contracts/graph.md §4.3), <https://learn.microsoft.com/graph/change-notifications-delivery-webhooks>,
"notificationUrl validation": Graph POSTs `{notificationUrl}?validationToken={opaqueTokenCreatedByMicrosoftGraph}`
with `Content-Type: text/plain; charset=utf-8`; "The client must properly decode the URL to get the plain text
validation token"; "The client must respond with the following characteristics within 10 seconds of step 1:
A status code of `HTTP 200 OK`. A content type of `text/plain`. A body that includes the _URL decoded_ plain
text validation token." and "The validation token must be returned in plain text. If the client returns an
encoded validation token, the validation fails."
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

LIMIT_S = 10.0  # "within 10 seconds of step 1"


@dataclass(frozen=True)
class Problem:
    """Why an answer fails the handshake: what was seen, and the one-line fix."""

    kind: str  # late | status | content-type | encoded | half-decoded | decoded-twice | quoted | other-body
    seen: str
    remedy: str


def query(url: str, token: str) -> str:
    """The URL Graph POSTs to: `token` form-encoded (a space as '+') as `validationToken`, after the URL's own query."""
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode({"validationToken": token})


def judge(
    status: int, content_type: str, body: str, token: str, elapsed_s: float, limit_s: float = LIMIT_S
) -> Problem | None:
    """The answer to a handshake that sent `token`, `elapsed_s` after it was sent; None when Graph accepts it."""
    if elapsed_s > limit_s:
        return Problem(
            "late",
            f"answered after {elapsed_s:.1f} s; Graph waits {limit_s:g} s",
            f"answer the validation request at once (before any other work; keep the endpoint warm): Graph gives "
            f"up after {limit_s:g} s",
        )
    if status != 200:
        return Problem(
            "status",
            f"HTTP {status}",
            "answer a POST that carries ?validationToken= with 200 OK (no authentication on it, no redirect)",
        )
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "text/plain":
        return Problem(
            "content-type",
            f"Content-Type {content_type or '(none)'!r}, not text/plain",
            "answer the validation request with Content-Type: text/plain and the token as the whole body (not JSON)",
        )
    if body == token:
        return None
    if body in {urllib.parse.quote_plus(token), urllib.parse.quote(token, safe="")} or (
        body != token and urllib.parse.unquote_plus(body) == token
    ):
        return Problem(
            "encoded",
            "the body is the token still URL-encoded",
            "URL-decode the validationToken query parameter and echo the decoded text; Graph rejects an encoded token",
        )
    if body == urllib.parse.unquote(urllib.parse.quote_plus(token)):
        return Problem(
            "half-decoded",
            "the body is the token percent-decoded with '+' left for its spaces",
            "decode the query as a form (a '+' is a space): use the framework's query-string parser, not a plain "
            "percent-decode",
        )
    if body == urllib.parse.unquote_plus(token):
        return Problem(
            "decoded-twice",
            "the body is the token decoded twice (its own '+' became a space)",
            "decode the validationToken once: the framework's query parameters are already decoded",
        )
    if body.strip() in {token, f'"{token}"'}:
        return Problem(
            "quoted",
            "the body is the token with quotes or whitespace around it",
            "echo the decoded token as the whole body: no quotes, no JSON string, no trailing newline",
        )
    return Problem(
        "other-body",
        f"the body is not the token ({len(body)} characters)",
        "echo the decoded validationToken as the whole text/plain body",
    )
