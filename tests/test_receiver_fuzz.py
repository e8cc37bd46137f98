"""The receiver's HTTP surface under arbitrary input, through its ASGI app (httpx.ASGITransport): any
body, of any shape, gets 202, 400, 413 or 415 (never a 5xx), no worker faults on it, and nothing
that is not an authentic, new notification reaches a client.

Bodies are generated as JSON *text*, so that they can hold what Python's json module would never
write: integers of thousands of digits, nesting thousands deep, lone UTF-16 surrogates, NaN.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from harness.client.notifications.receiver import Receiver, Registration
from harness.wire import notification_crypto as crypto
from tests.support import CLIENT_STATE, RECEIVER_AUDIENCE, RECEIVER_TENANT, run_async, sealed_notification

AUDIENCE, TENANT = RECEIVER_AUDIENCE, RECEIVER_TENANT
STATE = CLIENT_STATE
ITEM_KEYS = [
    "id",
    "subscriptionId",
    "changeType",
    "clientState",
    "resource",
    "tenantId",
    "lifecycleEvent",
    "subscriptionExpirationDateTime",
    "resourceData",
    "encryptedContent",
]
CONTENT_KEYS = ["data", "dataSignature", "dataKey", "encryptionCertificateId", "encryptionCertificateThumbprint"]
FUZZ = settings(max_examples=500, deadline=None, suppress_health_check=list(HealthCheck))

# -- JSON text, including what the json module refuses to write --------------------------------------

lone_surrogates = st.lists(st.integers(0xD800, 0xDFFF).map(chr), min_size=1, max_size=3).map("".join)
strings = st.one_of(
    st.text(max_size=30),
    st.tuples(st.text(max_size=5), lone_surrogates, st.text(max_size=5)).map("".join),
    st.sampled_from([STATE, "sub-1", TENANT, "created", "reauthorizationRequired", "", "key-1"]),
)
string_text = strings.map(json.dumps)  # ensure_ascii: a lone surrogate becomes its \udXXX escape
scalar_text = st.one_of(
    st.sampled_from(["null", "true", "false", "0", "-0", "1e999", "-1e999", "1.5e-400", "NaN", "-Infinity"]),
    st.integers().map(str),
    st.integers(min_value=4301, max_value=20_000).map(lambda n: "9" * n),  # over Python's int limit
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    string_text,
)
keys_text = st.one_of(st.sampled_from(ITEM_KEYS + CONTENT_KEYS + ["value", "validationTokens"]), strings).map(
    json.dumps
)


def _array(items: list[str]) -> str:
    return "[" + ",".join(items) + "]"


def _object(pairs: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}"


json_text = st.recursive(
    scalar_text,
    lambda kids: st.lists(kids, max_size=4).map(_array) | st.lists(st.tuples(keys_text, kids), max_size=4).map(_object),
    max_leaves=15,
)


def _nested(pair: tuple[int, str]) -> str:
    depth, opening = pair
    closing = {"[": "]", '{"a":': "}", '{"value":[': "]}"}[opening]
    return opening * depth + ("1" if opening == '{"a":' else "") + closing * depth


deep_text = st.tuples(st.integers(1, 5000), st.sampled_from(["[", '{"a":', '{"value":['])).map(_nested)
items_text = st.lists(st.sampled_from(ITEM_KEYS), max_size=6, unique=True).flatmap(
    lambda keys: st.tuples(*[json_text for _ in keys]).map(
        lambda values: _object([(json.dumps(k), v) for k, v in zip(keys, values, strict=True)])
    )
)
collections_text = st.tuples(st.lists(items_text | json_text, max_size=3), json_text | st.just("[]")).map(
    lambda parts: _object([('"value"', _array(parts[0])), ('"validationTokens"', parts[1])])
)
bodies = st.one_of(
    st.binary(max_size=400),
    json_text.map(str.encode),
    deep_text.map(str.encode),
    collections_text.map(str.encode),
    json_text.map(lambda t: t.encode("utf-8", "surrogatepass")),  # raw surrogates: not UTF-8 at all
)


# -- the receiver, in process -------------------------------------------------------------------------


class World:
    def __init__(self) -> None:
        self.signer = crypto.TokenSigner(kid="graph")
        self.captured: list[dict[str, Any]] = []
        self.receiver = Receiver(
            audience=AUDIENCE, trusted_keys={self.signer.kid: self.signer.public_key}, capture=self.captured.append
        )
        self.key = self.receiver.new_key("key-1")
        self.receiver.register(Registration("sub-1", STATE, channel="adele", key_id=self.key.id))
        self.token = self.signer.token(AUDIENCE, TENANT)
        self.loop = asyncio.new_event_loop()
        transport = httpx.ASGITransport(app=self.receiver.app, raise_app_exceptions=False)
        self.client = httpx.AsyncClient(transport=transport, base_url="https://receiver.test")
        self.acknowledged = 0  # notifications (items) in the collections answered 202

    def post(self, path: str, body: bytes, content_type: bytes = b"application/json") -> httpx.Response:
        """POST, then wait until what was acknowledged is decided; no worker may fault on it."""
        faults = len(self.faults())
        answer = run_async(self.client.post(path, content=body, headers={"content-type": content_type}), self.loop)
        if answer.status_code == 202:
            self.acknowledged += len(json.loads(body)["value"])
        deadline = time.monotonic() + 10
        while len(self.receiver.decisions) < self.acknowledged and len(self.faults()) == faults:
            assert time.monotonic() < deadline, "an acknowledged notification was never decided"
            time.sleep(0.001)
        new_faults = self.faults()[faults:]
        self.acknowledged = len(self.receiver.decisions)  # a fault decides a whole collection at once
        assert new_faults == [], f"the body raised inside the receiver: {new_faults[:1]}"
        return answer

    def faults(self) -> list[str]:
        return [d.reason for d in self.receiver.decisions if d.reason.startswith("receiver fault")]

    def pushed(self) -> set[str]:
        """The ids of the change notifications accepted (recorded just before each is pushed)."""
        return {str(entry["notification"].get("id")) for entry in self.captured if entry["kind"] == "change"}

    def close(self) -> None:
        run_async(self.client.aclose(), self.loop)
        self.loop.close()
        self.receiver.close()


@pytest.fixture(scope="module")
def world():
    world = World()
    yield world
    world.close()


def _ok_status(answer: httpx.Response) -> None:
    assert answer.status_code in (202, 400, 413, 415), f"{answer.status_code}: {answer.text[:200]}"
    if answer.status_code != 202:
        message = answer.json()["error"]["message"]
        assert message and "\n" not in message


@FUZZ
@given(body=bodies, path=st.sampled_from(["/notifications", "/lifecycle"]))
@example(body=b"[" * 100_000, path="/notifications")  # RecursionError in json.loads
@example(body=b'{"value": [' * 400 + b"]}" * 400, path="/notifications")  # parses; deeper than any notification
@example(body=b'{"value": [{"id": ' + b"1" * 5000 + b"}]}", path="/notifications")  # ValueError: int limit
@example(body=b'{"value": [{"subscriptionId": "sub-1", "clientState": "\\ud800"}]}', path="/notifications")
@example(body=b'{"value": [{"subscriptionId": "sub-1", "clientState": "\\udfff"}]}', path="/lifecycle")
@example(body=b'{"value": [{"subscriptionId": "sub-1", "clientState": NaN}]}', path="/notifications")
def test_any_body_gets_a_4xx_or_202_and_nothing_reaches_a_client(world: World, body: bytes, path: str) -> None:
    _ok_status(world.post(path, body))
    assert world.captured == [], f"a fuzzed body was accepted: {world.captured[:1]}"


@FUZZ
@given(body=st.binary(max_size=200), content_type=st.binary(max_size=40) | st.just(b"application/json; charset=x"))
def test_any_content_type_but_json_gets_415(world: World, body: bytes, content_type: bytes) -> None:
    answer = world.post("/notifications", body, content_type)
    if not content_type.decode("latin-1").lower().startswith("application/json"):
        assert answer.status_code == 415, answer.text
    else:
        _ok_status(answer)


# -- a real notification with one field replaced by anything --------------------------------------------

# Fields whose change must make the notification unacceptable (it would no longer be what Graph
# sealed for this subscription); any other field may change and the notification still be Graph's.
GUARDED = {
    ("value",),
    ("validationTokens",),
    ("subscriptionId",),
    ("clientState",),
    ("tenantId",),
    ("encryptedContent",),
    ("encryptedContent", "data"),
    ("encryptedContent", "dataSignature"),
    ("encryptedContent", "dataKey"),
    ("encryptedContent", "encryptionCertificateId"),
}
PATHS = sorted(
    {("value",), ("validationTokens",)}
    | {(k,) for k in ITEM_KEYS}
    | {("encryptedContent", k) for k in CONTENT_KEYS}
    | {("resourceData", "id")}
)
HOLE = "cte-fuzz-hole-" + secrets.token_hex(4)


def _sealed(world: World, message_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    body = sealed_notification(world.key, world.token, message_id)
    return body, body["value"][0]


@FUZZ
@given(path=st.sampled_from(PATHS), replacement=json_text | st.none())
def test_a_notification_with_any_field_replaced_is_refused_unless_that_field_may_vary(
    world: World, path: tuple[str, ...], replacement: str | None
) -> None:
    message_id = secrets.token_hex(6)
    body, item = _sealed(world, message_id)
    holder: dict[str, Any] = body if path[0] in ("value", "validationTokens") else item
    for key in path[:-1]:
        holder = holder[key]
    original = holder.get(path[-1])
    if replacement is None:
        holder.pop(path[-1], None)
    else:
        holder[path[-1]] = HOLE
    text = json.dumps(body).replace(json.dumps(HOLE), replacement or "")
    try:
        same = replacement is not None and json.loads(replacement) == original
    except (ValueError, RecursionError):
        same = False
    _ok_status(world.post("/notifications", text.encode("utf-8", "surrogatepass")))
    if path in GUARDED and not same:
        assert item["id"] not in world.pushed(), f"pushed after {'.'.join(path)} became {replacement!r:.80}"
