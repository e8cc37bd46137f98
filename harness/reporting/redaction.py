"""What the reports hide: the tenant's identifiers (its ids, users, domains, tokens) replaced by the
placeholders recordings use. Request ids are kept: support asks for them.

Each part of a report document is redacted once. A scenario's result is redacted as the scenario ends
(`redact_result`, called by the pytest plugin), because that is where the tenant's secrets are known:
with -n it is the worker that ran the scenario, and the controller that writes the reports has
resolved no tenant. write_reports takes the results as they come, redacted, and redacts only what it
adds itself (the run's metadata and the stale expectations); the writers get the finished document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, TypeVar

from harness.core import scrubbing

T = TypeVar("T")


def _identifying(known_secrets: Mapping[str, str]) -> dict[str, str]:
    """The known values a report hides: all but reserved domains (.invalid, .example: RFC 2606), which
    identify nobody (a profile's blocked example domain is shown as written)."""
    return {
        k: v for k, v in known_secrets.items() if not (scrubbing.is_reserved_domain(k) and re.fullmatch(r"[\w.-]+", k))
    }


# The scrubber that has learnt a run's secrets, by those secrets: each redaction starts from a copy of
# it, as it would from a new scrubber that learnt them (a sandbox tenant's few hundred values and their
# percent-encodings, once a run instead of once a scenario). One entry: a run's secrets only grow.
_LEARNT: dict[tuple[tuple[str, str], ...], scrubbing.Scrubber] = {}


def _scrubber(known_secrets: Mapping[str, str]) -> scrubbing.Scrubber:
    key = tuple(known_secrets.items())
    learnt = _LEARNT.get(key)
    if learnt is None:
        learnt = scrubbing.Scrubber(_identifying(known_secrets), keep=frozenset({"request_id"}))
        _LEARNT.clear()
        _LEARNT[key] = learnt
    return learnt.copy()


def redact(value: T, known_secrets: Mapping[str, str]) -> T:
    """A JSON value written to a report (a scenario's result, the run's metadata), with the tenant's
    identifiers replaced (request ids kept)."""
    redacted: T = _scrubber(known_secrets).json_value(value)
    return redacted


def redact_result(result: dict[str, Any], known_secrets: Mapping[str, str]) -> dict[str, Any]:
    """One scenario's result with the tenant's identifiers replaced (request ids kept): see the module's
    docstring for why here and only here."""
    return redact(result, known_secrets)
