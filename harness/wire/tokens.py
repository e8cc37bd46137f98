"""Reading JWT claims (never trusting them) and making unsigned placeholder JWTs for evidence."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from typing import Any

JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
PLACEHOLDER_HEADER = {"alg": "none", "typ": "JWT", "cte": "placeholder"}


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified. Raises ValueError for anything that is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT: expected three dot-separated parts")
    try:
        payload = json.loads(_b64url_decode(parts[1]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"not a JWT: {exc}") from None
    if not isinstance(payload, dict):
        raise ValueError("not a JWT: the payload is not a JSON object")
    return payload


def time_claim(token: str, name: str = "exp") -> int | None:
    """A JWT's time claim (`exp`, `iat`: epoch seconds), unverified; None for a token that is not a JWT or
    lacks it."""
    try:
        value = claims(token).get(name)
    except ValueError:
        return None
    return int(value) if isinstance(value, int | float) else None


def utc(epoch: float | None) -> str:
    """An epoch second as evidence shows it (`2026-12-01T16:58:07Z`); "unknown" for None."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if epoch is not None else "unknown"


def header(token: str) -> dict[str, Any]:
    try:
        value = json.loads(_b64url_decode(token.split(".")[0]))
    except (ValueError, UnicodeDecodeError, IndexError):
        return {}
    return value if isinstance(value, dict) else {}


def is_placeholder(token: str) -> bool:
    return header(token).get("cte") == "placeholder"


def placeholder(payload: dict[str, Any]) -> str:
    """A structurally valid, unsigned JWT (alg none, empty signature) carrying `payload`."""
    head = _b64url_encode(json.dumps(PLACEHOLDER_HEADER, sort_keys=True, separators=(",", ":")).encode())
    body = _b64url_encode(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode())
    return f"{head}.{body}."
