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
import functools
import hashlib
import re
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from harness.core import scrubbing
from harness.core.places import CASSETTE_ROOT
from harness.wire import tokens, transport

if TYPE_CHECKING:
    import vcr
    from vcr.request import Request

# vcrpy is imported where a cassette is first opened, not with this module: it imports every HTTP
# library it patches (aiohttp, ...), half of the pytest plugin's import, paid by every pytest process
# (a sandbox run, each -n worker, a collect-only) though only record and replay use it.

# The committed cassettes (what replay reads unless told otherwise; record writes elsewhere unless told).
MATCH_ON = ("method", "scheme", "host", "port", "path", "query", "scrubbed_body", "authorization", "caller")


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
    from vcr.request import Request

    request = Request(request.method, request.uri, request.body, dict(request.headers))
    content_type = _content_type(request.headers)
    request.uri = scrubber.url(request.uri)
    body = scrubber.body(request.body, content_type)
    request.body = body
    request.headers = scrubber.headers(dict(request.headers), scrubbing.REQUEST_HEADERS_KEPT)
    return request


def scrub_response(scrubber: scrubbing.Scrubber, response: dict[str, Any]) -> dict[str, Any]:
    # A new response of the same parts: the body and headers are built anew below, the rest (the
    # status) copied; nothing of `response` is mutated (vcrpy has deep-copied it already).
    response = {key: dict(value) if isinstance(value, dict) else value for key, value in response.items()}
    headers = response.get("headers", {})
    content_type = _content_type(headers)
    body = response.get("body", {}).get("string")
    scrubbed = scrubber.body(body, content_type)
    if isinstance(scrubbed, str):
        scrubbed = scrubbed.encode("utf-8")
    response["body"] = {"string": scrubbed}
    response["headers"] = scrubber.headers(headers, scrubbing.RESPONSE_HEADERS_KEPT)
    return response


_NORMALISED = "_cte_normalised_body"  # (the body it was worked out from, the normalised text)


def _normalised_body(request: Request) -> str:
    """The body with what scrubbing stands in for (tokens, identifiers) reduced to its kind: each
    cassette holds one scenario, so requests differ in what they do, not in whose ids they carry.
    Worked out once per request and body (a recorded request is compared with every request sent)."""
    body = request.body
    known = getattr(request, _NORMALISED, None)
    if known is not None and known[0] is body:
        return str(known[1])
    text = without_identities(body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or ""))
    if isinstance(body, bytes | str | None):  # immutable: the same object is the same body
        setattr(request, _NORMALISED, (body, text))
    return text


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


def caller_matcher(r1: Request, r2: Request) -> None:
    """Requests sent for different test users (scrubbing.CALLER_HEADER) are different requests."""
    left, right = r1.headers.get(scrubbing.CALLER_HEADER), r2.headers.get(scrubbing.CALLER_HEADER)
    if left != right:
        raise AssertionError(f"sent for {left!r}, recorded for {right!r}")


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


# -- vcrpy, doing each piece of work once ----------------------------------------------------------------


class _ParsedOnce:
    """vcrpy's YAML serializer, but a cassette `check_cassette` has just parsed (the same text) is not
    parsed again: check_cassette's safe loader accepts a subset of what vcrpy's accepts (no python/
    tags) and builds the same values from it."""

    def __init__(self) -> None:
        self._text: str | None = None
        self._data: Any = None

    def keep(self, text: str, data: Any) -> None:
        self._text, self._data = text, data

    def deserialize(self, text: str) -> Any:
        from vcr.serializers import yamlserializer

        kept, data = self._text, self._data
        self._text = self._data = None  # used once: vcrpy may change what it is handed
        if kept is not None and kept == text:
            return data
        return yamlserializer.deserialize(text)

    @staticmethod
    def serialize(cassette: Any) -> str:
        from vcr.serializers import yamlserializer

        return str(yamlserializer.serialize(cassette))


_PARSED = _ParsedOnce()
SERIALIZER = "cte-yaml"


@functools.cache
def _scenario_vcr() -> type[vcr.VCR]:
    """ScenarioVCR (and its ScenarioCassette), made on first use: see the imports."""
    import vcr
    from vcr import matchers as vcr_matchers
    from vcr.cassette import Cassette
    from vcr.matchers import requests_match

    # vcrpy's matchers that compare one attribute of each request for equality, and that attribute (for
    # the path, a coarser one where vcrpy compares normalised paths: it only narrows the candidates).
    keyed_matchers: dict[Any, Callable[[Request], Any]] = {
        vcr_matchers.method: lambda r: r.method,
        vcr_matchers.scheme: lambda r: r.scheme,
        vcr_matchers.host: lambda r: r.host,
        vcr_matchers.port: lambda r: r.port,
        vcr_matchers.path: lambda r: r.path or "/",
        vcr_matchers.query: lambda r: tuple(r.query),
    }

    class ScenarioCassette(Cassette):
        """vcrpy's cassette, finding a request's recorded interactions by an index: each recorded
        request's method, scheme, host, port, path and query are worked out once per cassette, and the
        full matchers (the scrubbed body, the authorization, and these again) run only on the recorded
        requests that agree on them. vcrpy's own loop runs every matcher on every recorded request, for
        every lookup (three a request sent): the same answers, in the same order, at a cost that grew
        with the cassette."""

        def _match_key(self, request: Request) -> tuple[Any, ...]:
            return tuple(keyed_matchers[m](request) for m in self._match_on if m in keyed_matchers)

        def _candidates(self, key: tuple[Any, ...]) -> list[int]:
            index: dict[tuple[Any, ...], list[int]] = self.__dict__.setdefault("_cte_index", {})
            indexed: list[Request] = self.__dict__.setdefault("_cte_indexed", [])
            if len(indexed) > len(self.data) or any(
                indexed[i] is not self.data[i][0] for i in range(len(indexed))
            ):  # data replaced, not appended to: index it again
                index.clear()
                indexed.clear()
            for position in range(len(indexed), len(self.data)):
                stored = self.data[position][0]
                index.setdefault(self._match_key(stored), []).append(position)
                indexed.append(stored)
            return index.get(key, [])

        def append(self, request: Request, response: Any) -> None:
            """vcrpy's append without its deep copy of `response` (with vcrpy's own decoding, each recorded
            response was deep-copied twice as a cassette loaded): `make_vcr`'s response hook builds a new
            response and never changes the one it is handed, which vcrpy goes on to answer the client
            with when recording."""
            request = self._before_record_request(request)
            if not request:
                return
            response = self._before_record_response(response)
            if response is None:
                return
            self.data.append((request, response))
            self.dirty = True

        def _responses(self, request: Request) -> Iterator[tuple[int, Any]]:
            request = self._before_record_request(request)
            positions = self._candidates(self._match_key(request)) if request else range(len(self.data))
            for position in positions:
                stored_request, response = self.data[position]
                if requests_match(request, stored_request, self._match_on):
                    yield position, response

    class ScenarioVCR(vcr.VCR):
        """A VCR that, in replay, notes the interactions a cassette never played when it closes; its
        cassettes are `ScenarioCassette`s; and its request hook gets the request itself, not a deep
        copy of it (vcrpy copies each request it hands a hook, four times a request sent: a hook that
        never changes its argument, as `make_vcr`'s, needs no copy)."""

        _REQUEST_FILTERS = (
            "filter_headers",
            "filter_query_parameters",
            "filter_post_data_parameters",
            "ignore_hosts",
            "ignore_localhost",
        )

        def __init__(self, *args: Any, replay: bool, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._replay = replay
            self.register_serializer(SERIALIZER, _PARSED)

        def _use_cassette(self, with_current_defaults: bool = False, **kwargs: Any) -> Any:
            if with_current_defaults:
                return ScenarioCassette.use(**self.get_merged_config(**kwargs))
            return ScenarioCassette.use_arg_getter(functools.partial(self.get_merged_config, **kwargs))

        def _build_before_record_request(self, options: dict[str, Any]) -> Any:
            hook = options.get("before_record_request", options.get("before_record", self.before_record_request))
            filters = any(options.get(name, getattr(self, name, None)) for name in self._REQUEST_FILTERS)
            if callable(hook) and not filters:
                return hook
            return super()._build_before_record_request(options)  # vcrpy's filters: its own copy and order

        @contextlib.contextmanager
        def use_cassette(self, path: Any = None, **kwargs: Any) -> Iterator[Any]:
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

    return ScenarioVCR


def make_vcr(known_secrets: Callable[[], Mapping[str, str]], *, record: bool) -> tuple[vcr.VCR, scrubbing.Scrubber]:
    """A VCR for one cassette; `known_secrets` is asked again before each request is scrubbed."""
    scrubber = scrubbing.Scrubber()
    # What a request scrubbed to, by what it is (its parts and what it carries of an earlier judgement),
    # with the scrubber's version it was scrubbed at: vcrpy hands each request over more than once.
    done: dict[tuple[Any, ...], tuple[int, Request]] = {}

    def on_request(request: Request) -> Request | None:
        """Never changes `request` (ScenarioVCR hands it over uncopied)."""
        known = known_secrets()
        if transport.is_loopback(request.uri) and transport.origin(request.uri) not in known:
            return None  # our own servers on loopback (the webhook receiver, its push channel): not Microsoft's
        scrubber.learn_all(known)
        carried = getattr(request, _SENT, None)
        key = _request_key(request, carried)
        if key is not None and (found := done.get(key)) is not None and found[0] == scrubber.version:
            return found[1]  # the same request, scrubbed by a scrubber that has learnt nothing since
        version = scrubber.version
        # vcrpy runs this on requests it plays back too, some twice (the second time on what it returned
        # the first, already scrubbed, which keeps its judgement): judge what was sent, before scrubbing.
        sent = None if record else carried or sent_authorization(request)
        scrubbed = scrub_request(scrubber, request)
        if sent is not None:
            setattr(scrubbed, _SENT, sent)
        if key is not None and scrubber.version == version:  # scrubbing learnt nothing: it would again give this
            if len(done) >= 256:
                done.clear()
            done[key] = (version, scrubbed)
        return scrubbed

    def on_response(response: dict[str, Any]) -> dict[str, Any]:
        """Never changes `response` (ScenarioCassette.append hands it over uncopied)."""
        scrubber.learn_all(known_secrets())
        return scrub_response(scrubber, _decoded(response))

    recorder = _scenario_vcr()(
        replay=not record,
        serializer=SERIALIZER,
        record_mode="all" if record else "none",
        match_on=MATCH_ON,
        before_record_request=on_request,
        before_record_response=on_response,
        decode_compressed_response=False,  # on_response decodes (vcrpy's way would deep-copy every response)
        # Loopback is recorded only where a profile's own endpoints are (a tenant served on loopback);
        # our own servers' inbound side is captured separately (harness.client.notifications.inbound).
    )
    recorder.register_matcher("scrubbed_body", scrubbed_body_matcher)
    recorder.register_matcher("authorization", authorization_matcher)
    recorder.register_matcher("caller", caller_matcher)
    return recorder, scrubber


def _decoded(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy's decode_compressed_response: a compressed body decompressed (in a copy of `response`); a
    response without a content-encoding header as it is."""
    if not any(str(name).lower() == "content-encoding" for name in response.get("headers") or {}):
        return response
    from vcr.filters import decode_response

    return decode_response(response)  # type: ignore[no-any-return]


def _request_key(request: Request, carried: Any) -> tuple[Any, ...] | None:
    """What a request is, as far as scrubbing it goes (None: a body that is not plain bytes or text)."""
    body = request.body
    if not isinstance(body, bytes | str | None):
        return None
    headers = tuple(
        (name, tuple(value) if isinstance(value, list) else value) for name, value in dict(request.headers).items()
    )
    key = (request.method, request.uri, body, headers, carried)
    try:
        hash(key)
    except TypeError:  # a header value that is not a string or a list of them
        return None
    return key


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
        text = path.read_bytes().decode("utf-8")
        data = load_yaml(text)
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
    _PARSED.keep(text, data)  # vcrpy, about to read this cassette, need not parse it again


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


def _cannot_overwrite() -> type[BaseException] | tuple[()]:
    """vcrpy's exception for a request a cassette does not hold; none if vcrpy was never imported."""
    errors = sys.modules.get("vcr.errors")
    return errors.CannotOverwriteExistingCassetteException if errors is not None else ()


def explain_mismatch(exc: BaseException, cassette: Path, scenario: str, profile: str = "sandbox") -> str | None:
    """One line for a replay that asked for something the cassette does not hold, or a cassette that
    does not load."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _cannot_overwrite()):
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
