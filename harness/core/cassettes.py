"""vcrpy configuration: one cassette per scenario, scrubbed, canonical hosts, strict matching.

- Record: every request goes to the target (sandbox or live) and is written scrubbed.
- Replay: answered from the cassette; the network is blocked; a request the cassette does not
  hold fails with the request, the cassette and the command that re-records it.
Matching uses method, scheme, host, port, path, query and the scrubbed body, with JWTs compared
as "a JWT" and GUIDs as "a GUID" (an expired token is only a placeholder in replay, and a meeting's
organizer id is whichever placeholder the replay profile carries).

Replay also checks what scrubbing hides from the cassette (`authorization` matcher): a request the
recording shows with an HMAC-SHA256 authorization (the ACS resource) must be signed in the form the
SDK sends, with an `x-ms-content-sha256` that is the hash of the body actually sent; one the
recording shows with a Bearer authorization (Graph, ACS-token/Entra-protected endpoints) must carry a
Bearer token. A violation is a client defect, reported on one line (`explain_mismatch`). When a
replayed cassette closes, the interactions it never played are noted (`take_unused`).
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vcr
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

from harness.core import scrubbing
from harness.core.places import CASSETTE_ROOT
from harness.wire import tokens, transport

# The committed cassettes (what replay reads unless told otherwise; record writes elsewhere unless told).
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "scrubbed_body", "authorization")


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "scenario"


def cassette_path(
    area: str, feature_file: str, scenario: str, example: str | None = None, *, root: Path = CASSETTE_ROOT
) -> Path:
    name = slug(scenario) + (f"--{slug(example)}" if example else "")
    return root / area / slug(Path(feature_file).stem) / f"{name}.yaml"


def _content_type(headers: Any) -> str:
    for name, value in dict(headers or {}).items():
        if name.lower() == "content-type":
            return str(value[0] if isinstance(value, list) else value)
    return ""


def scrub_request(scrubber: scrubbing.Scrubber, request: Request) -> Request:
    # A new request of the same parts (vcrpy asks for each request several times: a deep copy of
    # all of it each time was a twentieth of a replay run); the parts are replaced, never mutated.
    request = Request(request.method, request.uri, request.body, dict(request.headers))
    content_type = _content_type(request.headers)
    request.uri = scrubber.url(request.uri)
    body = scrubber.body(request.body, content_type)
    request.body = body
    request.headers = scrubber.headers(dict(request.headers), scrubbing.REQUEST_HEADERS_KEPT)
    return request


def scrub_response(scrubber: scrubbing.Scrubber, response: dict[str, Any]) -> dict[str, Any]:
    response = copy.deepcopy(response)
    headers = response.get("headers", {})
    content_type = _content_type(headers)
    body = response.get("body", {}).get("string")
    scrubbed = scrubber.body(body, content_type)
    if isinstance(scrubbed, str):
        scrubbed = scrubbed.encode("utf-8")
    response["body"] = {"string": scrubbed}
    response["headers"] = scrubber.headers(headers, scrubbing.RESPONSE_HEADERS_KEPT)
    return response


def _normalised_body(request: Request) -> str:
    """The body with what scrubbing stands in for (tokens, identifiers) reduced to its kind: each
    cassette holds one scenario, so requests differ in what they do, not in whose ids they carry."""
    body = request.body
    return without_identities(body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or ""))


def without_identities(text: str) -> str:
    """Tokens and identifiers reduced to their kind, for matching a replay against a recording."""
    return scrubbing.GUID.sub("<guid>", tokens.JWT_PATTERN.sub("<jwt>", text))


def scrubbed_body_matcher(r1: Request, r2: Request) -> None:
    left, right = _normalised_body(r1), _normalised_body(r2)
    if left != right:
        at = next((i for i, (a, b) in enumerate(zip(left, right, strict=False)) if a != b), min(len(left), len(right)))
        start = max(0, at - 40)
        raise AssertionError(
            f"bodies differ at character {at}: …{left[start : at + 60]!r} != …{right[start : at + 60]!r}"
        )


# -- what a replayed request must carry that its scrubbed recording cannot show ----------------------

HMAC_SCHEME = "HMAC-SHA256"
HMAC_FORM = f"{HMAC_SCHEME} SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=<base64>"
_HMAC = re.compile(
    r"HMAC-SHA256 SignedHeaders=x-ms-date;host;x-ms-content-sha256&Signature=(?P<signature>[A-Za-z0-9+/]+={0,2})"
)
_SENT = "_cte_sent_authorization"  # the attribute a replayed (scrubbed) request carries its raw findings in


@dataclass(frozen=True)
class SentAuthorization:
    """What a request sent in replay carried, judged before scrubbing hid it."""

    scheme: str | None  # the Authorization scheme, as sent; None: no Authorization header
    problem: str | None  # what is wrong with it, if anything


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name:
            value = value[0] if isinstance(value, list) and value else value
            return value.decode("latin-1") if isinstance(value, bytes) else str(value)
    return None


def _body_bytes(request: Request) -> bytes:
    body = getattr(request, "body_bytes", request.body)
    if body is None:
        return b""
    if isinstance(body, str):
        return body.encode("utf-8")
    if isinstance(body, list):  # a body sent as an iterator of chunks
        return b"".join(part.encode("utf-8") if isinstance(part, str) else bytes(part) for part in body)
    return bytes(body)


def content_sha256(body: bytes) -> str:
    """`x-ms-content-sha256` of a body: base64 of its SHA-256 (docs/contracts/identity.md §2)."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def sent_authorization(request: Request) -> SentAuthorization:
    """The Authorization of a request as sent (raw, before scrubbing), and what is wrong with it."""
    value = _header(request.headers, "authorization")
    if value is None:
        return SentAuthorization(None, None)
    scheme, _, credential = value.strip().partition(" ")
    if scheme.lower() == "bearer":
        return SentAuthorization(scheme, None if credential.strip() else "the Bearer authorization carries no token")
    if scheme.upper() != HMAC_SCHEME:
        return SentAuthorization(scheme, None)
    match = _HMAC.fullmatch(value.strip())
    if match is None:
        return SentAuthorization(scheme, f"the authorization is not of the form `{HMAC_FORM}`")
    try:
        signature = base64.b64decode(match["signature"], validate=True)
    except ValueError:
        signature = b""
    if len(signature) != hashlib.sha256().digest_size:
        return SentAuthorization(scheme, "the HMAC-SHA256 signature is not the base64 of 32 bytes")
    if not _header(request.headers, "x-ms-date"):
        return SentAuthorization(scheme, "the signed x-ms-date header is missing")
    sent_hash = _header(request.headers, "x-ms-content-sha256")
    if not sent_hash:
        return SentAuthorization(scheme, "the signed x-ms-content-sha256 header is missing")
    if sent_hash.strip() != content_sha256(_body_bytes(request)):
        return SentAuthorization(scheme, "x-ms-content-sha256 does not match the body sent")
    return SentAuthorization(scheme, None)


def authorization_matcher(r1: Request, r2: Request) -> None:
    """Replay only (r1 carries what it sent, noted before scrubbing): the recorded scheme is sent too,
    and what is sent is well-formed. In record mode r1 carries nothing and this matches anything."""
    sent: SentAuthorization | None = getattr(r1, _SENT, None)
    if sent is None:
        return
    recorded = (_header(r2.headers, "authorization") or "").partition(" ")[0] or None
    if recorded is not None and (sent.scheme or "").lower() != recorded.lower():
        how = f"with {sent.scheme}" if sent.scheme else "without an Authorization header"
        raise AssertionError(f"recorded with {recorded} authorization; sent {how}")
    if sent.problem:
        raise AssertionError(sent.problem)


# -- interactions a replay never played ---------------------------------------------------------------


@dataclass(frozen=True)
class UnusedInteractions:
    """The interactions of a replayed cassette that were never played back."""

    cassette: Path
    count: int
    recorded: int
    requests: tuple[str, ...]  # "METHOD uri" of each (the first few)

    def evidence(self) -> dict[str, Any]:
        return {"count": self.count, "recorded": self.recorded, "requests": list(self.requests)}

    def line(self, shown: str | None = None) -> str:
        """One line naming the cassette and how many of its interactions were never played."""
        first = "; first: " + ", ".join(self.requests[:2]) if self.requests else ""
        return (
            f"replay: cassette {shown or display_path(self.cassette)}: {self.count} of {self.recorded} recorded "
            f"interaction(s) never played{first}"
        )


MAX_UNUSED_SHOWN = 5
_UNUSED: dict[Path, UnusedInteractions] = {}  # by cassette, until the scenario that closed it takes it


def unused_interactions(cassette: Any, path: Path) -> UnusedInteractions | None:
    """The interactions of an open vcrpy cassette not played so far, or None when all were."""
    unused = [index for index in range(len(cassette.data)) if cassette.play_counts[index] == 0]
    if not unused:
        return None
    requests = tuple(
        f"{cassette.data[index][0].method} {cassette.data[index][0].uri}" for index in unused[:MAX_UNUSED_SHOWN]
    )
    return UnusedInteractions(Path(path), len(unused), len(cassette.data), requests)


def take_unused(cassette: Path) -> UnusedInteractions | None:
    """What the replay of `cassette` left unplayed when it closed (once; None if it played them all)."""
    return _UNUSED.pop(Path(cassette), None)


class ScenarioVCR(vcr.VCR):
    """A VCR that, in replay, notes the interactions a cassette never played when it closes."""

    def __init__(self, *args: Any, replay: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replay = replay

    @contextlib.contextmanager
    def use_cassette(self, path: Any = None, **kwargs: Any) -> Iterator[Any]:  # type: ignore[override]
        with super().use_cassette(path, **kwargs) as cassette:
            try:
                yield cassette
            finally:
                if self._replay and path is not None:
                    found = unused_interactions(cassette, Path(path))
                    if found is not None:
                        _UNUSED[Path(path)] = found
                    else:
                        _UNUSED.pop(Path(path), None)


def make_vcr(known_secrets: Callable[[], Mapping[str, str]], *, record: bool) -> tuple[vcr.VCR, scrubbing.Scrubber]:
    """A VCR for one cassette; `known_secrets` is asked again before each request is scrubbed."""
    scrubber = scrubbing.Scrubber()

    def on_request(request: Request) -> Request | None:
        known = known_secrets()
        if transport.is_loopback(request.uri) and transport.origin(request.uri) not in known:
            return None  # our own servers on loopback (the webhook receiver, its push channel): not Microsoft's
        scrubber.learn_all(known)
        # vcrpy runs this on requests it plays back too, some twice (the second time on what it returned
        # the first, already scrubbed, which keeps its judgement): judge what was sent, before scrubbing.
        sent = None if record else getattr(request, _SENT, None) or sent_authorization(request)
        scrubbed = scrub_request(scrubber, request)
        if sent is not None:
            setattr(scrubbed, _SENT, sent)
        return scrubbed

    def on_response(response: dict[str, Any]) -> dict[str, Any]:
        scrubber.learn_all(known_secrets())
        return scrub_response(scrubber, response)

    recorder = ScenarioVCR(
        replay=not record,
        serializer="yaml",
        record_mode="all" if record else "none",
        match_on=MATCH_ON,
        before_record_request=on_request,
        before_record_response=on_response,
        decode_compressed_response=True,
        # Loopback is recorded only where a profile's own endpoints are (a tenant served on loopback);
        # our own servers' inbound side is captured separately (harness.client.notifications.inbound).
    )
    recorder.register_matcher("scrubbed_body", scrubbed_body_matcher)
    recorder.register_matcher("authorization", authorization_matcher)
    return recorder, scrubber


MAX_CASSETTE_BYTES = 64 * 1024 * 1024


class CassetteError(ValueError):
    """A cassette that is not one: one line naming the file and what is wrong with it."""


class CassetteMismatch(CassetteError):
    """A well-formed recording that does not hold what the replay asked for: one line naming both."""


# libyaml's parser with PyYAML's safe constructor: the same documents as yaml.safe_load, about ten
# times faster (loading the cassettes was a third of a replay run). Pure Python where libyaml is absent.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, with libyaml's parser when PyYAML has it."""
    return yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a safe loader)


def check_cassette(path: Path) -> None:
    """Before vcrpy reads a cassette (which may come from anyone): UTF-8, YAML that a safe loader
    accepts, and vcrpy's shape, or a CassetteError. vcrpy itself fails on a malformed one with a bare
    TypeError or KeyError, or treats an undecodable one as empty."""
    where = display_path(path)

    def bad(why: str) -> CassetteError:
        return CassetteError(f"{where}: {why}")

    if path.stat().st_size > MAX_CASSETTE_BYTES:
        raise bad(f"larger than {MAX_CASSETTE_BYTES // 2**20} MiB")
    try:
        data = load_yaml(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise bad(f"not UTF-8 text (byte {err.start})") from None
    except yaml.MarkedYAMLError as err:
        mark = f" at line {err.problem_mark.line + 1}" if err.problem_mark else ""
        raise bad(f"not valid or not safe YAML ({err.problem or err.context}{mark})") from None
    except (yaml.YAMLError, RecursionError) as err:
        raise bad(f"not valid YAML ({type(err).__name__})") from None
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise bad("no `interactions` list at the top")
    if data.get("version") != 1:
        raise bad(f"version {data.get('version')!r}; vcrpy cassettes are version 1")
    for number, interaction in enumerate(data["interactions"], start=1):
        request = interaction.get("request") if isinstance(interaction, dict) else None
        response = interaction.get("response") if isinstance(interaction, dict) else None
        if not (
            isinstance(request, dict)
            and isinstance(request.get("method"), str)
            and isinstance(request.get("uri"), str)
            and _headers_ok(request.get("headers", {}))
            and isinstance(request.get("body"), str | bytes | None)
        ):
            raise bad(f"interaction {number}: `request` needs method, uri, headers (name: [values]) and body")
        status = response.get("status") if isinstance(response, dict) else None
        body = response.get("body") if isinstance(response, dict) else None
        if not (
            isinstance(status, dict)
            and isinstance(status.get("code"), int)
            and 100 <= status["code"] <= 599
            and isinstance(status.get("message"), str | None)
            and _headers_ok(response.get("headers", {}))
            and isinstance(body, dict)
            and isinstance(body.get("string"), str | bytes)
        ):
            raise bad(f"interaction {number}: `response` needs status.code, headers (name: [values]) and body.string")


def _headers_ok(headers: Any) -> bool:
    return isinstance(headers, dict) and all(
        isinstance(name, str)
        and (
            isinstance(values, str) or (isinstance(values, list) and values and all(isinstance(v, str) for v in values))
        )
        for name, values in headers.items()
    )


def display_path(cassette: Path, root: Path = CASSETTE_ROOT) -> str:
    """The cassette's path from its folder's parent (cassettes/area/feature/scenario.yaml)."""
    root = root.resolve()
    return str(cassette.relative_to(root.parent)) if cassette.is_relative_to(root) else str(cassette)


def rerecord_command(test_name: str, cassette: Path | None = None, profile: str = "sandbox") -> str:
    """The command that re-records one scenario's cassette where it was read from, for its profile."""
    folder = cassette.parents[2] if cassette is not None else CASSETTE_ROOT
    if folder.resolve() == CASSETTE_ROOT.resolve() and profile == "sandbox":
        return f"cte record -k {test_name} --cassette-dir cassettes --overwrite  (or: make record)"
    return f"cte record -k {test_name} --profile {profile} --cassette-dir {folder} --overwrite"


def _authorization_defect(similar: list[Any]) -> str | None:
    """What is wrong with a request's authorization, when a recorded request differs from it in that alone."""
    for _request, _succeeded, failed in similar:
        if len(failed) == 1 and failed[0][0] in ("authorization", authorization_matcher.__name__):
            return str(failed[0][1])
    return None


def explain_mismatch(exc: BaseException, cassette: Path, scenario: str, profile: str = "sandbox") -> str | None:
    """One line for a replay that asked for something the cassette does not hold, or a cassette that
    does not load."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, CannotOverwriteExistingCassetteException):
            request = getattr(current, "failed_request", None)
            what = f"{request.method} {request.uri}" if request is not None else "a request"
            where = display_path(cassette, cassette.parents[2])
            defect = _authorization_defect(getattr(current, "similar_requests", None) or [])
            if defect is not None:  # the recording holds this request: the client sent it wrongly
                return f"replay: {what} in cassette {where}: {defect}"
            state = "holds no matching interaction" if cassette.exists() else "does not exist"
            closest = ""
            similar = getattr(current, "similar_requests", None) or []
            if similar and similar[0][2]:
                name, message = similar[0][2][0]
                closest = f"; the closest recorded request differs in {name}: {str(message)[:300]}"
            return (
                f"replay: {what} is not in cassette {where} (it {state}{closest}); "
                f"re-record with: {rerecord_command(scenario, cassette, profile)}"
            )
        if isinstance(current, CassetteMismatch):
            return f"replay: {current}; re-record with: {rerecord_command(scenario, cassette, profile)}"
        if isinstance(current, CassetteError):
            return (
                f"replay: cassette {current} (a cassette is untrusted input); "
                f"re-record with: {rerecord_command(scenario, cassette, profile)}"
            )
        if isinstance(current, ValueError) and "problem loading the cassette" in str(current):
            # vcrpy loads YAML safely: a tag it cannot construct (`!!python/object...`) is refused, never run.
            first = str(current).splitlines()[0].removeprefix("There was a problem loading the cassette: ")
            again = rerecord_command(scenario, cassette, profile)
            return (
                f"replay: cassette {display_path(cassette)} cannot be loaded ({first}); a cassette is untrusted "
                f"input: audit it (cte cassettes audit), or re-record with: {again}"
            )
        current = current.__cause__ or current.__context__
    return None
