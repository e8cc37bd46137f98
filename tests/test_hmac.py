"""HMAC-SHA256 as the ACS SDK signs and as the sandbox verifies (docs/contracts/identity.md §2)."""

from __future__ import annotations

import base64
from datetime import timedelta
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import pytest
from azure.communication.identity._shared.policy import HMACCredentialsPolicy
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.pipeline.transport import HttpRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.sandbox.acs import AcsError, signature, string_to_sign, verify_hmac

VECTOR_KEY = "pw=="
VECTOR_DATE = "Wed, 13 Apr 2022 18:09:12 GMT"
VECTOR_HOST = "contoso.communicationservices.azure.com"
EMPTY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
KEY = base64.b64encode(b"an access key of the sandbox's kind, 64 bytes long for realism..").decode()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", "88MDmJhUR3m5QhFxb8ztShsSwlGrg7g/6XPnWf7QEO4="),
        ("/testPath", "RoCrHjw7fb9fpHSbqvRUY2xa8RBS0YvI1cxI1x8AS38="),
        ("/testPath?testQuery=yes", "il99+rd6V5O136roX/zVePCNle78HmvC4B7tu9zRH3I="),
    ],
)
def test_official_vectors_for_requests(path: str, expected: str) -> None:
    """The SDK's own test vectors (tests/test_hmac.py): GET, empty body."""
    to_sign = string_to_sign("GET", path, VECTOR_DATE, VECTOR_HOST, EMPTY_HASH)
    assert signature(VECTOR_KEY, to_sign) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("banana", "88EC05aAS9iXnaimtNO78JLjiPtfWryQB/5QYEzEsu8="),
        ("😀", "1rudJKjn2Zi+3hRrBG29wIF6pD6YyAeQR1ZcFtXoKAU="),
    ],
)
def test_official_vectors_for_raw_values(value: str, expected: str) -> None:
    assert signature(VECTOR_KEY, value) == expected


def sign_with_sdk(method: str, endpoint: str, path_and_query: str, body: str) -> HttpRequest:
    """Let the SDK's own HMAC policy sign a request, exactly as CommunicationIdentityClient does."""
    request = HttpRequest(method, endpoint + path_and_query)
    request.body = body
    HMACCredentialsPolicy(endpoint, KEY).on_request(PipelineRequest(request, PipelineContext(None)))
    return request


def verify(request: HttpRequest, *, host: str, body: bytes | None = None, path: str | None = None, headers=None):
    parts = urlsplit(request.url)
    target = path if path is not None else parts.path + (f"?{parts.query}" if parts.query else "")
    lowered = {k.lower(): v for k, v in (headers or request.headers).items()}
    verify_hmac(
        method=request.method,
        path_and_query=target,
        host=host,
        headers=lowered,
        body=request.body.encode("utf-8") if body is None else body,
        access_key=KEY,
        now=parsedate_to_datetime(lowered["x-ms-date"]),
    )


segment = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:~", min_size=1, max_size=12
)
paths = st.lists(segment, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
queries = st.dictionaries(segment, segment, max_size=3).map(
    lambda q: ("?" + "&".join(f"{k}={v}" for k, v in q.items())) if q else ""
)
bodies = st.text(max_size=200)
hosts = st.sampled_from(["cte-sandbox.communication.azure.com", "localhost:8443", "127.0.0.1:50123"])


@settings(max_examples=150, deadline=None)
@given(path=paths, query=queries, body=bodies, host=hosts, method=st.sampled_from(["GET", "POST", "DELETE"]))
def test_every_request_the_sdk_signs_verifies_in_the_sandbox(path, query, body, host, method) -> None:
    request = sign_with_sdk(method, f"https://{host}", path + query, body)
    verify(request, host=host)


@settings(max_examples=150, deadline=None)
@given(
    path=paths,
    query=queries,
    body=bodies,
    where=st.sampled_from(["path", "query", "body", "date"]),
    position=st.integers(min_value=0, max_value=10_000),
    replacement=st.characters(min_codepoint=33, max_codepoint=126),
)
def test_any_single_changed_byte_fails(path, query, body, where, position, replacement) -> None:
    host = "cte-sandbox.communication.azure.com"
    query = query or "?api-version=2023-10-01"
    body = body or "{}"
    request = sign_with_sdk("POST", f"https://{host}", path + query, body)
    headers = {k.lower(): v for k, v in request.headers.items()}
    target = path + query
    raw_body = body.encode("utf-8")

    def change(data: str) -> str:
        i = position % len(data)
        new = replacement if data[i] != replacement else ("a" if replacement != "a" else "b")
        return data[:i] + new + data[i + 1 :]

    if where == "path":
        i = 1 + position % (len(path) - 1) if len(path) > 1 else 0
        changed = path[:i] + ("Z" if path[i] != "Z" else "Y") + path[i + 1 :]
        target = changed + query
    elif where == "query":
        target = path + change(query[1:]).join(["?", ""])
    elif where == "body":
        i = position % len(raw_body)
        raw_body = raw_body[:i] + bytes([(raw_body[i] + 1) % 256]) + raw_body[i + 1 :]
    else:
        date = parsedate_to_datetime(headers["x-ms-date"]) + timedelta(seconds=1 + position % 60)
        headers["x-ms-date"] = date.strftime("%a, %d %b %Y %H:%M:%S GMT")
    with pytest.raises(AcsError) as raised:
        verify_hmac(
            method="POST",
            path_and_query=target,
            host=host,
            headers=headers,
            body=raw_body,
            access_key=KEY,
            now=parsedate_to_datetime(headers["x-ms-date"]),
        )
    assert raised.value.status == 401 and raised.value.code == "Denied"


def test_a_stale_date_is_rejected_with_the_skew_message() -> None:
    request = sign_with_sdk("POST", "https://h.communication.azure.com", "/identities?api-version=2023-10-01", "{}")
    headers = {k.lower(): v for k, v in request.headers.items()}
    with pytest.raises(AcsError) as raised:
        verify_hmac(
            method="POST",
            path_and_query="/identities?api-version=2023-10-01",
            host="h.communication.azure.com",
            headers=headers,
            body=b"{}",
            access_key=KEY,
            now=parsedate_to_datetime(headers["x-ms-date"]) + timedelta(minutes=6),
        )
    assert "allowed margin of 5 minutes" in raised.value.message


def test_the_trailing_slash_quirk_of_direct_constructor_clients() -> None:
    """`CommunicationIdentityClient("https://x/", key)` signs host "x/": a server using Host rejects it."""
    request = sign_with_sdk("GET", "https://x.communication.azure.com/", "identities?api-version=2023-10-01", "")
    with pytest.raises(AcsError):
        verify(request, host="x.communication.azure.com")
    verify(request, host="x.communication.azure.com/")  # what the SDK actually signed
