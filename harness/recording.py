"""vcrpy configuration: one cassette per scenario, scrubbed, canonical hosts, strict matching.

- Record: every request goes to the target (sandbox or live) and is written scrubbed.
- Replay: answered from the cassette; the network is blocked; a request the cassette does not
  hold fails with the request, the cassette and the command that re-records it.
Matching uses method, scheme, host, port, path, query and the scrubbed body, with JWTs compared
as "a JWT" and GUIDs as "a GUID" (an expired token is only a placeholder in replay, and a meeting's
organizer id is whichever placeholder the replay profile carries).
"""

from __future__ import annotations

import copy
import re
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import vcr
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request

from harness import scrubbing, tokens

# The committed cassettes (what replay reads unless told otherwise; record writes elsewhere unless told).
CASSETTE_ROOT = Path(__file__).resolve().parent.parent / "cassettes"
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "scrubbed_body")


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
    request = copy.deepcopy(request)
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


def _origin(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _loopback(uri: str) -> bool:
    return urllib.parse.urlsplit(uri).hostname in ("localhost", "127.0.0.1", "::1", "0.0.0.0")


def make_vcr(known_secrets: Callable[[], Mapping[str, str]], *, record: bool) -> tuple[vcr.VCR, scrubbing.Scrubber]:
    """A VCR for one cassette; `known_secrets` is asked again before each request is scrubbed."""
    scrubber = scrubbing.Scrubber()

    def on_request(request: Request) -> Request | None:
        known = known_secrets()
        if _loopback(request.uri) and _origin(request.uri) not in known:
            return None  # our own servers on loopback (the webhook receiver, its push channel): not Microsoft's
        scrubber.learn_all(known)
        return scrub_request(scrubber, request)

    def on_response(response: dict[str, Any]) -> dict[str, Any]:
        scrubber.learn_all(known_secrets())
        return scrub_response(scrubber, response)

    recorder = vcr.VCR(
        serializer="yaml",
        record_mode="all" if record else "none",
        match_on=MATCH_ON,
        before_record_request=on_request,
        before_record_response=on_response,
        decode_compressed_response=True,
        # Loopback is recorded only where a profile's own endpoints are (a tenant served on loopback);
        # our own servers' inbound side is captured separately (harness.notifications.inbound).
    )
    recorder.register_matcher("scrubbed_body", scrubbed_body_matcher)
    return recorder, scrubber


MAX_CASSETTE_BYTES = 64 * 1024 * 1024


class CassetteError(ValueError):
    """A cassette that is not one: one line naming the file and what is wrong with it."""


class CassetteMismatch(CassetteError):
    """A well-formed recording that does not hold what the replay asked for: one line naming both."""


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
        data = yaml.safe_load(path.read_bytes().decode("utf-8"))
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
