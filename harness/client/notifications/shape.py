"""What a POST to the receiver must look like before anything else looks at it: UTF-8 JSON with no
lone surrogate, no number Python cannot hold, nesting no deeper than a changeNotificationCollection
needs, and the documented types at every documented key (docs/contracts/graph.md §4.4, §4.7).

Anything else is a `BadInput` whose message is one line naming what is wrong and how to fix it; the
receiver answers it with 400 before queueing anything. Keys Graph may add later are kept, whatever
their type, but never nested deeper than `MAX_DEPTH`.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_DEPTH = 12  # a collection needs 4: {value: [{encryptedContent: {...}}]}; the rest is headroom
MAX_ITEMS = 1000  # notifications in one POST (Graph batches far fewer)
MAX_TOKENS = 100  # validation tokens: one per app and tenant present in the batch
STRING_KEYS = (
    "id",
    "subscriptionId",
    "changeType",
    "clientState",
    "resource",
    "tenantId",
    "lifecycleEvent",
    "subscriptionExpirationDateTime",
)
OBJECT_KEYS = ("resourceData", "encryptedContent")
ENCRYPTED_KEYS = ("data", "dataSignature", "dataKey", "encryptionCertificateId", "encryptionCertificateThumbprint")
# A JSON escape of a UTF-16 surrogate: paired ones decode to one character, lone ones to a str that
# cannot be encoded (and would crash whatever encodes it later).
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


class BadInput(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _reject_constant(name: str) -> None:
    raise ValueError(f"the non-standard constant {name}")


def _type(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def parse(body: bytes) -> dict[str, Any]:
    """The changeNotificationCollection in `body`, or BadInput(400, one line)."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadInput(400, f"the body is not UTF-8 (byte {err.start}): send JSON encoded as UTF-8") from None
    try:
        collection = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadInput(400, f"the body is nested too deeply: a notification needs at most {MAX_DEPTH} levels") from None
    except ValueError as err:  # JSONDecodeError, an integer over sys.get_int_max_str_digits(), NaN
        if "integer string conversion" in str(err) or "digits" in str(err):
            raise BadInput(400, "the body holds an integer with thousands of digits: Graph sends none") from None
        raise BadInput(
            400, f"the body is not JSON ({str(err).splitlines()[0]}): send a changeNotificationCollection"
        ) from None
    _check_depth_and_text(collection, SURROGATE_ESCAPE.search(body) is not None)
    _check_collection(collection)
    return collection


def _check_depth_and_text(root: Any, surrogates_possible: bool) -> None:
    """No deeper than MAX_DEPTH; with `surrogates_possible`, no string that is not valid Unicode."""
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise BadInput(400, f"the body is nested deeper than {MAX_DEPTH} levels: a notification needs at most 4")
        if isinstance(value, dict):
            for key, item in value.items():
                if surrogates_possible:
                    _unicode(key)
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1))
                elif surrogates_possible and isinstance(item, str):
                    _unicode(item)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict | list):
                    stack.append((item, depth + 1))
                elif surrogates_possible and isinstance(item, str):
                    _unicode(item)


def _unicode(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        where = json.dumps(text[max(0, err.start - 10) : err.start])
        raise BadInput(
            400,
            f"a string after {where} holds a lone UTF-16 surrogate (\\u{ord(text[err.start]):04x}): "
            "JSON text must be valid Unicode",
        ) from None


def _check_collection(collection: Any) -> None:
    if not isinstance(collection, dict):
        raise BadInput(400, f"the body is {_type(collection)}, not a changeNotificationCollection object")
    items = collection.get("value")
    if not isinstance(items, list):
        raise BadInput(400, f"value is {_type(items)}: a changeNotificationCollection has an array of notifications")
    if len(items) > MAX_ITEMS:
        raise BadInput(400, f"value holds {len(items)} notifications: at most {MAX_ITEMS} per POST")
    tokens = collection.get("validationTokens")
    if tokens is not None:
        if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
            raise BadInput(400, "validationTokens must be an array of strings (JWTs)")
        if len(tokens) > MAX_TOKENS:
            raise BadInput(400, f"validationTokens holds {len(tokens)} tokens: at most {MAX_TOKENS}")
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadInput(400, f"value[{n}] is {_type(item)}: each notification is an object")
        for key in STRING_KEYS:
            found = item.get(key)
            if found is not None and not isinstance(found, str):
                raise BadInput(400, f"value[{n}].{key} is {_type(found)}: Graph sends a string (or null)")
        for key in OBJECT_KEYS:
            found = item.get(key)
            if found is not None and not isinstance(found, dict):
                raise BadInput(400, f"value[{n}].{key} is {_type(found)}: Graph sends an object (or null)")
        content = item.get("encryptedContent")
        if content is not None:
            for key in ENCRYPTED_KEYS:
                found = content.get(key)
                if found is not None and not isinstance(found, str):
                    raise BadInput(400, f"value[{n}].encryptedContent.{key} is {_type(found)}: Graph sends a string")
