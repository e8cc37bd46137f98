"""Parity: does the sandbox answer as the recorded service did?

Two recordings of the same exchanges (a partner's live `cte record` and a recording of the same
scenarios against the sandbox; or Microsoft's own SDK test recordings of the real service and the
sandbox's answers to the same requests) are compared answer by answer, after volatile values (ids,
times, tokens, request ids) are set aside:

- the HTTP status, and the Content-Type where both recorded one (media type and parameters);
- for an error body (`{"error": {...}}`): the error's code, message and target, exactly (a GUID, a
  time or a token inside a message is not compared);
- for any JSON body: its key structure (every key path, lists merged over their items) and the
  format of every value (a GUID, a JWT, an ISO 8601 time with its precision and zone style, a Teams
  or ACS identifier, a URL, a string, a number...). A value a recording redacted matches any string.

Answers are paired by request kind (method, host and path with ids replaced by their kind) in
order. A request one side made and the other did not is a divergence of its own: the client took
another path because an earlier answer differed. Throttled answers (429, a 503 asking for a retry)
say how busy the service was, not how it behaves, and are set aside on both sides.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections import defaultdict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core.cassettes import load_yaml

# The sandbox's own calling model is an HTTP API of its own making (docs/contracts/calling.md): no
# live recording has a counterpart, so its requests are not compared.
SANDBOX_ONLY_HOSTS = ("calling.cte-sandbox.invalid",)
SIDE_FILES = (".inbound.yaml", ".calling-sdk.yaml")

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_JWT = r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*"
_TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:Z|[+-]\d\d:?\d\d)?"
_TIME_PARTS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d)?(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)?$")
# Values a recording replaced: our scrubber's <placeholders>, the Azure SDK test proxy's "Sanitized".
_REDACTED = re.compile(r"^(<[a-z0-9_.:-]+>|Sanitized|sanitized|REDACTED|redacted|fake[a-z_-]*)$", re.IGNORECASE)
_VOLATILE = [
    (re.compile(_JWT), "<jwt>"),
    (re.compile(_GUID), "<guid>"),
    (re.compile(_TIME), "<time>"),
    (re.compile(r"\b\d{6,}\b"), "<number>"),
    (re.compile(r"<[a-z0-9_.:-]+>", re.IGNORECASE), "<redacted>"),
    (re.compile(r"\bSanitized\b", re.IGNORECASE), "<redacted>"),
]


@dataclass(frozen=True)
class Exchange:
    """One recorded request and its answer."""

    method: str
    url: str
    status: int
    body: str = ""
    content_type: str = ""

    @property
    def kind(self) -> str:
        return request_kind(self.method, self.url)

    def json(self) -> Any:
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


@dataclass(frozen=True)
class Divergence:
    where: str  # the recording (file) and the request
    aspect: str  # status | error.code | error.message | error.target | key | format | request | body
    recorded: str
    sandbox: str

    def line(self) -> str:
        return f"{self.where}: {self.aspect}: recorded {self.recorded}; sandbox {self.sandbox}"


@dataclass
class ParityReport:
    divergences: list[Divergence] = field(default_factory=list)
    compared: list[str] = field(default_factory=list)  # recordings compared
    exchanges: int = 0  # answers compared
    not_compared: dict[str, str] = field(default_factory=dict)  # recording -> why not

    @property
    def ok(self) -> bool:
        return not self.divergences


# -- request kinds and value formats ----------------------------------------------------------------


def request_kind(method: str, url: str) -> str:
    """`POST graph.microsoft.com/v1.0/chats/{chat}/messages`: what a request did, not to what."""
    parts = urllib.parse.urlsplit(url)
    path = urllib.parse.unquote(parts.path)
    path = re.sub(r"/+", "/", path)
    path = re.sub(r"/19:[^/]+", "/{chat}", path)
    path = re.sub(r"\('[^']*'\)|/[^/]+@[^/]+", "/{user}", path)
    path = re.sub(rf"/{_GUID}", "/{id}", path)
    path = re.sub(r"/(?:8:|4:)[^/]+", "/{mri}", path)
    path = re.sub(r"/\d+(?=/|$)", "/{n}", path)
    return f"{method.upper()} {(parts.hostname or '').lower()}{path.rstrip('/') or '/'}"


def value_format(value: Any) -> str:
    """The format of a JSON value, as specific as the wire contracts make it matter."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    text = str(value)
    if _REDACTED.match(text):
        return "redacted"
    if re.fullmatch(_GUID, text):
        return "guid"
    if re.fullmatch(_JWT, text):
        return "jwt"
    if match := _TIME_PARTS.match(text):
        seconds, fraction, zone = match.groups()
        precision = f".{len(fraction)} digits" if fraction else ("seconds" if seconds else "minutes")
        zone_style = "Z" if zone == "Z" else ("+hh:mm" if zone else "no zone")
        return f"time ({precision}, {zone_style})"
    if match := re.match(r"^(8:[a-z]+:|4:)", text):
        return f"identifier {match.group(1)}"
    if re.fullmatch(r"19:[^\s]+@(thread\.v2|thread\.skype|thread\.tacv2|unq\.gbl\.spaces)", text):
        return "thread id"
    if re.match(r"^https?://", text):
        return "url"
    if re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", text):
        return "email"
    if re.fullmatch(r"\d+", text):
        return "digits"
    return "string"


def shape(document: Any, prefix: str = "$") -> dict[str, set[str]]:
    """Every key path of a JSON document with the formats seen there (list items merged as `[]`)."""
    found: dict[str, set[str]] = defaultdict(set)

    def walk(value: Any, path: str) -> None:
        found[path].add(value_format(value))
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for item in value:
                walk(item, f"{path}[]")

    walk(document, prefix)
    return dict(found)


def without_volatile(text: str) -> str:
    for pattern, placeholder in _VOLATILE:
        text = pattern.sub(placeholder, text)
    return text


# -- comparing one answer ---------------------------------------------------------------------------


def compare(recorded: Exchange, sandbox: Exchange, where: str) -> list[Divergence]:
    """How the sandbox's answer differs from the recorded one (empty: it does not)."""
    found: list[Divergence] = []
    if recorded.status != sandbox.status:
        found.append(Divergence(where, "status", str(recorded.status), str(sandbox.status)))
    their_type, our_type = (re.sub(r"\s+", "", e.content_type.lower()) for e in (recorded, sandbox))
    if their_type and our_type and their_type != our_type:
        found.append(Divergence(where, "content-type", recorded.content_type, sandbox.content_type))
    theirs, ours = recorded.json(), sandbox.json()
    if theirs is None or ours is None:
        if (theirs is None) != (ours is None) and (recorded.body.strip() or sandbox.body.strip()):
            found.append(Divergence(where, "body", _body_kind(recorded, theirs), _body_kind(sandbox, ours)))
        return found
    their_error, our_error = _error(theirs), _error(ours)
    if (their_error is None) != (our_error is None):  # one answered, the other refused: nothing else to weigh
        a, b = (f"error {e.get('code')!r}" if e else "no error" for e in (their_error, our_error))
        return [*found, Divergence(where, "error", a, b)]
    if their_error is not None or our_error is not None:
        for key in ("code", "message", "target"):
            a, b = (without_volatile(str(e.get(key))) if e else "(no error)" for e in (their_error, our_error))
            if a != b:
                found.append(Divergence(where, f"error.{key}", repr(a), repr(b)))
    their_shape, our_shape = shape(theirs), shape(ours)
    for path in sorted(their_shape.keys() - our_shape.keys()):
        if not _under_missing(path, their_shape.keys() - our_shape.keys()):
            found.append(Divergence(where, "key", f"has {path}", "lacks it"))
    for path in sorted(our_shape.keys() - their_shape.keys()):
        if not _under_missing(path, our_shape.keys() - their_shape.keys()):
            found.append(Divergence(where, "key", f"lacks {path}", "has it"))
    for path in sorted(their_shape.keys() & our_shape.keys()):
        a, b = their_shape[path] - {"redacted"}, our_shape[path] - {"redacted"}
        if "redacted" in their_shape[path] or "redacted" in our_shape[path]:
            # a redacted string stands for any string format
            a, b = {f for f in a if not _stringish(f)}, {f for f in b if not _stringish(f)}
        if a and b and a != b:
            found.append(Divergence(where, "format", f"{path} {' | '.join(sorted(a))}", " | ".join(sorted(b))))
    return found


def _stringish(fmt: str) -> bool:
    return fmt not in ("null", "boolean", "integer", "number", "array", "object")


def _under_missing(path: str, missing: set[str]) -> bool:
    """A key under a missing key is not reported again."""
    return any(path != other and path.startswith((other + ".", other + "[]")) for other in missing)


def _error(document: Any) -> dict[str, Any] | None:
    if isinstance(document, dict) and isinstance(document.get("error"), dict):
        return document["error"]
    if isinstance(document, dict) and "error" in document and "error_codes" in document:  # Entra's OAuth errors
        return {"code": document.get("error"), "message": str(document.get("error_codes"))}
    return None


def _body_kind(exchange: Exchange, parsed: Any) -> str:
    if parsed is not None:
        return "JSON"
    if not exchange.body.strip():
        return "empty"
    return f"not JSON ({exchange.content_type or 'no content type'})"


# -- recordings -------------------------------------------------------------------------------------


def _header(headers: dict[str, Any], name: str) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return ""


def _text(body: Any) -> str:
    if isinstance(body, dict):
        body = body.get("string", "")
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return "" if body is None else str(body)


def load_cassette(path: Path) -> list[Exchange]:
    """The exchanges of a cassette `cte record` wrote (vcrpy's YAML)."""
    document = load_yaml(path.read_text(encoding="utf-8")) or {}
    exchanges = []
    for interaction in document.get("interactions", []):
        request, response = interaction["request"], interaction["response"]
        exchanges.append(
            Exchange(
                method=str(request["method"]),
                url=str(request["uri"]),
                status=int(response["status"]["code"]),
                body=_text(response.get("body")),
                content_type=_header(response.get("headers") or {}, "content-type"),
            )
        )
    return exchanges


def load_inbound(path: Path) -> list[dict[str, Any]]:
    """What Graph delivered to the webhook during a recording (decrypted, scrubbed)."""
    return (load_yaml(path.read_text(encoding="utf-8")) or {}).get("inbound", [])


def compare_exchanges(recorded: list[Exchange], sandbox: list[Exchange], where: str) -> tuple[list[Divergence], int]:
    """Answers paired by request kind, in order; a request made on one side only is a divergence."""
    recorded = [e for e in recorded if not _sandbox_only(e) and not transient(e)]
    sandbox = [e for e in sandbox if not _sandbox_only(e) and not transient(e)]
    queues: dict[str, deque[Exchange]] = defaultdict(deque)
    for exchange in sandbox:
        queues[exchange.kind].append(exchange)
    found: list[Divergence] = []
    compared = 0
    for exchange in recorded:
        if queues[exchange.kind]:
            compared += 1
            found += compare(exchange, queues[exchange.kind].popleft(), f"{where} {exchange.kind}")
        else:
            found.append(Divergence(f"{where} {exchange.kind}", "request", "made it", "the sandbox run did not"))
    for kind, left in queues.items():
        for _ in left:
            found.append(Divergence(f"{where} {kind}", "request", "did not make it", "the sandbox run did"))
    return found, compared


def compare_inbound(recorded: list[dict[str, Any]], sandbox: list[dict[str, Any]], where: str) -> list[Divergence]:
    """Notifications Graph delivered: kinds and the shape of each notification and message.

    Notifications are paired by what they announce (kind and change type), in order within each:
    Graph promises no order between notifications (each is its own POST, sent concurrently), so the
    arrival order of a "created" and an "updated" says nothing about the service."""
    found: list[Divergence] = []
    if len(recorded) != len(sandbox):
        found.append(Divergence(where, "notifications", f"{len(recorded)} delivered", f"{len(sandbox)}"))
    queues: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
    for entry in sandbox:
        queues[_announces(entry)].append(entry)
    for index, theirs in enumerate(recorded):
        label = f"{where} notification {index + 1} ({_announces(theirs)})"
        if not queues[_announces(theirs)]:
            found.append(Divergence(label, "notification", "delivered", "the sandbox run delivered none like it"))
            continue
        ours = queues[_announces(theirs)].popleft()
        as_exchange = [Exchange("POST", "webhook", 200, json.dumps(entry)) for entry in (theirs, ours)]
        found += compare(*as_exchange, label)
    return found


def _announces(entry: dict[str, Any]) -> str:
    notification = entry.get("notification") if isinstance(entry.get("notification"), dict) else {}
    return f"{entry.get('kind', '?')} {notification.get('changeType', '')}".strip()


def transient(exchange: Exchange) -> bool:
    """A throttled answer says how busy the service was, not how it behaves: the client waits and
    sends the request again (the next answer of the same kind is compared)."""
    return exchange.status == 429 or (exchange.status == 503 and "retry" in exchange.body.lower())


def _sandbox_only(exchange: Exchange) -> bool:
    return (urllib.parse.urlsplit(exchange.url).hostname or "") in SANDBOX_ONLY_HOSTS


def skipped_scenarios(cassette_dir: Path) -> dict[str, str]:
    """Cassettes (relative paths) whose scenario was skipped in the run that wrote them: the report
    beside the folder (`<report-dir>/conformance.json` for `<report-dir>/cassettes`) says which."""
    for report in (cassette_dir / "conformance.json", cassette_dir.parent / "conformance.json"):
        if report.is_file():
            document = json.loads(report.read_text(encoding="utf-8"))
            break
    else:
        return {}
    skipped = {}
    for scenario in document.get("scenarios", []):
        evidence = scenario.get("evidence") if isinstance(scenario.get("evidence"), dict) else {}
        cassette = str(evidence.get("cassette") or "")
        if scenario.get("verdict") == "SKIP" and cassette:
            relative = cassette.split("/", 1)[1] if "/" in cassette else cassette
            skipped[relative] = str(scenario.get("detail") or "skipped")[:160]
    return skipped


def _cassettes(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*.yaml")):
        if not path.name.endswith(SIDE_FILES):
            yield path


def compare_folders(recorded_dir: Path, sandbox_dir: Path) -> ParityReport:
    """Every cassette of `recorded_dir` against the cassette of the same scenario in `sandbox_dir`."""
    report = ParityReport()
    skipped = {**skipped_scenarios(sandbox_dir), **skipped_scenarios(recorded_dir)}
    for path in _cassettes(recorded_dir):
        relative = path.relative_to(recorded_dir).as_posix()
        ours = sandbox_dir / relative
        if relative in skipped:
            report.not_compared[relative] = f"skipped in one of the runs: {skipped[relative]}"
            continue
        if not ours.is_file():
            report.not_compared[relative] = "the sandbox run recorded no such scenario"
            continue
        found, count = compare_exchanges(load_cassette(path), load_cassette(ours), relative)
        inbound = path.with_name(path.stem + ".inbound.yaml")
        our_inbound = ours.with_name(ours.stem + ".inbound.yaml")
        if inbound.is_file() or our_inbound.is_file():
            found += compare_inbound(
                load_inbound(inbound) if inbound.is_file() else [],
                load_inbound(our_inbound) if our_inbound.is_file() else [],
                relative,
            )
        report.divergences += found
        report.exchanges += count
        report.compared.append(relative)
    return report


def summary_lines(report: ParityReport, *, limit: int | None = None) -> Iterable[str]:
    shown = report.divergences if limit is None else report.divergences[:limit]
    for divergence in shown:
        yield divergence.line()
    if limit is not None and len(report.divergences) > limit:
        yield f"... and {len(report.divergences) - limit} more divergence(s)"
    for relative, why in sorted(report.not_compared.items()):
        yield f"not compared: {relative}: {why}"
    yield (
        f"{len(report.divergences)} divergence(s) in {report.exchanges} answers of {len(report.compared)} recordings "
        f"({len(report.not_compared)} not compared)"
    )
