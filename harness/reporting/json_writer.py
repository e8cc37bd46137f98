"""conformance.json: the report document itself (the source of truth; conformance.schema.json)."""

from __future__ import annotations

import json
from typing import Any


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
