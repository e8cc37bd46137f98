"""Scrubbing secrets and identities out of recorded traffic, keeping what verdicts need.

Layers (docs/contracts/recording-and-reporting.md §3): request headers, request bodies (JSON and
forms), response headers and bodies. Known values (from the profile) become named placeholders;
JWTs become unsigned placeholder JWTs that keep `exp`, `scp`, `aud`, `appid`, `acsScope` and
replace identities; anything that looks like an identity but was not known is replaced too. The
output is deterministic for a given input sequence, so re-recording gives byte-identical files.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from harness.wire import tokens

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
TENANT_ID = "00000000-0000-0000-0000-00000000a001"
CLIENT_ID = "00000000-0000-0000-0000-00000000c001"
ACS_HOST = "acs-resource.communication.azure.com"
ACS_ACCESS_KEY = base64.b64encode(b"placeholder-acs-access-key").decode()
PASSWORD = "<password>"
CLIENT_SECRET = "<client-secret>"
OPAQUE_TOKEN = "<opaque-token>"
UPN_DOMAIN = "upn.invalid"
EXTERNAL_DOMAIN = "external.invalid"  # another organisation's domain (external access)
# Domains reserved never to resolve (RFC 2606, RFC 6761): they identify no organisation, so a report
# may show them as written; the placeholders above are among them.
RESERVED_TLDS = (".invalid", ".example", ".test", ".localhost")
RESERVED_DOMAINS = ("example.com", "example.net", "example.org")


def is_reserved_domain(domain: str) -> bool:
    domain = domain.strip().lower().rstrip(".")
    return domain.endswith(RESERVED_TLDS) or any(domain == d or domain.endswith("." + d) for d in RESERVED_DOMAINS)


PLACEHOLDER_GUID = re.compile(r"^00000000-0000-0000-0000-[0-9a-f]{12}$")
# Public, well-known ids that identify Microsoft's own apps and permissions, not a tenant or a person.
PUBLIC_GUIDS = frozenset(
    {
        "1fd5118e-2576-4263-8130-9503064c837a",  # Azure Communication Services (first-party app)
        "00000003-0000-0000-c000-000000000000",  # Microsoft Graph
        "de8ec1df-066a-4817-bc5d-9a985b986262",  # Teams.ManageCalls
        "6290af7f-b407-49f9-92d5-bf584fdc4019",  # Teams.ManageChats
        "0bf30f3b-4a52-48df-9a82-234910c4a086",  # Graph's change-notification app
    }
)

# Not \b: an underscore is a word character, and ACS ids join GUIDs with one (8:acs:<guid>_<guid>).
# A percent-escape may end in a hex digit right before one (a meeting link's context: %22Oid%22%3a%22<guid>).
GUID = re.compile(
    r"(?:(?<=%[0-9A-Fa-f]{2})|(?<![0-9A-Fa-f-]))"
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}(?![0-9A-Fa-f-])"
)
# Teams conversation ids (chats, meetings, channels), plain or percent-encoded.
CONVERSATION = re.compile(
    r"19(?::|%3[Aa])([A-Za-z0-9_\-=+.]+?)(@|%40)(thread\.v2|thread\.tacv2|thread\.skype|unq\.gbl\.spaces|"
    r"fed\.unq\.gbl\.spaces)"
)
CONVERSATION_PLACEHOLDER = re.compile(
    r"^(cte-conversation-\d+|meeting_[a-z-]+|00000000-0000-0000-0000-[0-9a-f]{12}(_00000000-0000-0000-0000-[0-9a-f]{12})*)$"
)
# Names Entra puts in error texts: the tenant's display name, the app's display name.
ENTRA_NAMES = re.compile(r"(in the directory|in the tenant named|named) '([^']+)'")
# Bounded repetitions keep these linear on long bodies (an unbounded local part is quadratic).
# Not a conversation id's "@thread.v2" or "@unq.gbl.spaces", which look like addresses.
NOT_TEAMS = r"(?!thread\.|unq\.gbl\.|fed\.unq\.)"
EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@" + NOT_TEAMS + r"[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}")
ENCODED_EMAIL = re.compile(r"[A-Za-z0-9._+-]{1,64}%40" + NOT_TEAMS + r"[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,24}")
TRACE_LABELS = re.compile(r"(Trace ID|Correlation ID): [0-9a-fA-F-]{36}")
HMAC_SIGNATURE = re.compile(r"(Signature=)[A-Za-z0-9+/=]+")
ACCESS_KEY = re.compile(r"(?i)(accesskey=)[^;\s\"&]+")
BEARER = re.compile(r"(?i)(Bearer )[A-Za-z0-9._~+/=-]+")

# JSON keys (case-insensitive) whose string values are secrets whatever they look like.
SECRET_KEYS = {
    "password": PASSWORD,
    "client_secret": CLIENT_SECRET,
    "clientsecret": CLIENT_SECRET,
    "clientstate": "<client-state>",
    "encryptioncertificate": "<certificate>",
    "refresh_token": OPAQUE_TOKEN,
    "device_code": OPAQUE_TOKEN,
    "code_verifier": OPAQUE_TOKEN,  # PKCE: whoever holds it with the code redeems the code
    "user_code": OPAQUE_TOKEN,
    "client_assertion": OPAQUE_TOKEN,
    "assertion": OPAQUE_TOKEN,
    "accesskey": ACS_ACCESS_KEY,
    "connectionstring": "<connection-string>",
    "acs_connection_string": "<connection-string>",
    "acs_access_key": ACS_ACCESS_KEY,
}
# People's (and their teams') names: identifying, and no verdict reads them. Replaced where they
# stand, never learnt: a first name is too short and common to hunt for elsewhere.
# Where our webhook receiver listens (a loopback port, or a partner's tunnel): not part of any verdict.
URL_KEYS = {"notificationurl", "lifecyclenotificationurl"}
RECEIVER_HOST = "receiver.cte.invalid"
NAME_KEYS = {"displayname": "<display-name>", "givenname": "<given-name>", "surname": "<surname>"}
# Keys whose GUID values are volatile per request, not identities.
VOLATILE_ID_KEYS = {"trace_id", "correlation_id", "uti", "request-id", "client-request-id"}
# JWT claims a verdict (or a client replaying the recording) reads; everything else in a scrubbed JWT is dropped.
KEPT_CLAIMS = (
    "aud",
    "exp",
    "iat",
    "nbf",
    "scp",
    "appid",
    "acsScope",
    "ver",
    "iss",
    "tid",
    "oid",
    "upn",
    "preferred_username",
    "skypeid",
    "resourceId",
    "roles",
    "amr",
    "idtyp",
    # An ID token's nonce: a per-request random the client made (no identity, no secret), which MSAL.js checks
    # against the one it sent; a replayed sign-in must find it (the page's randomness is seeded there).
    "nonce",
)

# Who a request is sent for, by test-user alias (a role, never an identity): a token service handed two
# users' tokens at once gets two requests that differ only there; recordings keep it to tell them apart.
CALLER_HEADER = "x-cte-caller"
REQUEST_HEADERS_KEPT = {"content-type", "accept", "x-ms-return-client-request-id", CALLER_HEADER}
RESPONSE_HEADERS_KEPT = {
    "date",  # the service's clock: expiry times are computed from it
    "content-type",
    "cache-control",
    "api-supported-versions",
    "retry-after",
    "location",
    "www-authenticate",
    "x-cte-emulator-defined",
    "strict-transport-security",
    "x-cache",
}
VOLATILE_HEADERS = {
    "client-request-id",
    "x-ms-client-request-id",
    "x-ms-request-id",
    "request-id",
    "ms-cv",
    "x-azure-ref",
    "x-ms-date",
    "x-ms-content-sha256",
}


@functools.lru_cache(maxsize=8192)
def _percent_encoded(text: str) -> tuple[str, str]:
    """`text` percent-encoded as a path or query value (quote) and as a form value (quote_plus).
    Cached: a run learns the same few hundred secrets for each cassette and each report."""
    return urllib.parse.quote(text, safe=""), urllib.parse.quote_plus(text, safe="")


@functools.lru_cache(maxsize=8192)
def _known_pattern(secret: str) -> re.Pattern[str]:
    """What `Scrubber.text` replaces for a known value: the value, case-insensitively (an endpoint's
    origin only where it is not the start of a longer port number). Compiled once per value: re's own
    cache holds 512 patterns, fewer than a sandbox run knows values."""
    return re.compile(re.escape(secret) + (r"(?![0-9])" if secret.startswith("https://") else ""), re.I)


# Scrubber.text memoises the texts it scrubbed while what it knows stays the same (header values,
# path segments and JSON strings recur in every request of a cassette); at most this many at a time.
TEXT_MEMO_SIZE = 4096


def _base64_text(value: str) -> str | None:
    """The text a base64 value encodes, if it encodes readable text; else None."""
    try:
        raw = base64.b64decode(value, validate=True)
        text = raw.decode("ascii")
    except (ValueError, UnicodeDecodeError):
        return None
    return text if text.isprintable() else None


class Scrubber:
    """Replaces secrets by placeholders; one instance per cassette so numbering is stable.

    The output is a function of the input and of what the scrubber knows (`_known`, `_counters`),
    which only grows; `_version` counts its changes. What is worked out from that state (the known
    values longest first, the texts already scrubbed) is kept while `_version` stays the same, so a
    request that vcrpy hands over several times is worked out once, with the same result."""

    def __init__(
        self, known: Mapping[str, str] | None = None, *, unknown_guids: bool = True, keep: frozenset[str] = frozenset()
    ) -> None:
        """`unknown_guids=False` keeps GUIDs nobody declared an identity; `keep` names JSON keys whose
        values stay as they are (a report's request ids: support asks for them)."""
        self._unknown_guids = unknown_guids
        self._keep = keep
        self._known: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._version = 0  # bumped on every change to _known or _counters
        self._learnt: set[tuple[str, str]] = set()  # (value, replacement) pairs `learn` has taken in full
        self._by_length: tuple[int, list[str]] = (-1, [])  # (version, the known values longest first)
        self._texts: dict[str, tuple[int, str]] = {}  # text -> (the version it was scrubbed at, scrubbed)
        self.learn_all(known or {})

    def copy(self) -> Scrubber:
        """A scrubber in the same state (what it knows, its numbering) that goes on independently."""
        twin = Scrubber(unknown_guids=self._unknown_guids, keep=self._keep)
        twin._known = dict(self._known)
        twin._counters = dict(self._counters)
        twin._version = self._version
        twin._learnt = set(self._learnt)
        twin._by_length = self._by_length  # never mutated: replaced when the version moves
        return twin

    @property
    def version(self) -> int:
        """How many times what this scrubber knows has changed: equal versions, equal outputs."""
        return self._version

    def learn_all(self, known: Mapping[str, str]) -> None:
        learnt = self._learnt
        for pair in known.items():
            if pair not in learnt:  # a pair learnt before left nothing to add
                self.learn(*pair)

    # -- what is known ---------------------------------------------------------------------------

    def _remember(self, key: str, replacement: str) -> None:
        """`_known.setdefault(key, replacement)`, counting a change."""
        if key not in self._known:
            self._known[key] = replacement
            self._version += 1

    def _next(self, kind: str) -> int:
        n = self._counters[kind] = self._counters.get(kind, 0) + 1
        self._version += 1
        return n

    def learn(self, value: str, replacement: str) -> str:
        if value and value != replacement and len(value) >= 3:
            lowered = value.lower()
            self._remember(lowered, replacement)
            # The same secret percent-encoded (a query string, a form body echoed elsewhere).
            encodings = _percent_encoded(value)
            if encodings[0] != value or encodings[1] != value:
                learnt_as = _percent_encoded(self._known[lowered])
                for encoded, encoded_replacement in zip(encodings, learnt_as, strict=True):
                    if encoded != value:
                        self._remember(encoded.lower(), encoded_replacement)
        self._learnt.add((value, replacement))
        return self._known.get(value.lower(), replacement)

    def _identity(self, value: str, kind: str) -> str:
        """The placeholder for an identity value, minting one on first sight."""
        if not value or PLACEHOLDER_GUID.match(value) or value.endswith("@" + UPN_DOMAIN) or value in PUBLIC_GUIDS:
            return value
        if value.lower() in self._known:
            return self._known[value.lower()]
        n = self._next(kind)
        if kind == "upn":
            return self.learn(value, f"user{n}@{UPN_DOMAIN}")
        prefix = {"oid": "0000000b", "tid": "0000000a", "guid": "0000000f", "app": "0000000c"}[kind]
        return self.learn(value, f"00000000-0000-0000-0000-{prefix}{n:04x}")

    @property
    def known_values(self) -> Iterable[str]:
        return self._known.keys()

    # -- text ------------------------------------------------------------------------------------

    def text(self, value: str) -> str:
        version = self._version
        done = self._texts.get(value)
        if done is not None and done[0] == version:
            return done[1]
        scrubbed = self._text(value)
        if self._version == version:  # learnt nothing on the way: the same text scrubs the same again
            if len(self._texts) >= TEXT_MEMO_SIZE:
                self._texts.clear()
            self._texts[value] = (version, scrubbed)  # a scrubber shared with a thread: kept with its version
        return scrubbed

    def _known_longest_first(self) -> list[str]:
        version, secrets = self._by_length
        if version != self._version:
            secrets = sorted(self._known, key=len, reverse=True)
            self._by_length = (self._version, secrets)
        return secrets

    def _text(self, value: str) -> str:
        # Each pattern is tried only where the text holds a literal the pattern cannot match without
        # (or, for the case-insensitive ones, where the text is ASCII and its lower case holds it).
        if "eyJ" in value:
            value = tokens.JWT_PATTERN.sub(lambda m: self.jwt(m.group(0)), value)
        if "ID: " in value:
            value = TRACE_LABELS.sub(lambda m: f"{m.group(1)}: {ZERO_GUID}", value)
        if "Signature=" in value:
            value = HMAC_SIGNATURE.sub(r"\1<signature>", value)
        ascii_text = value.isascii()
        lowered = value.lower()
        if not ascii_text or "accesskey=" in lowered:
            value = ACCESS_KEY.sub(lambda m: m.group(1) + ACS_ACCESS_KEY, value)
            lowered = value.lower()
        if not ascii_text or "bearer " in lowered:
            value = BEARER.sub(lambda m: m.group(1) + "<token>", value)
            lowered = value.lower()
        for secret in self._known_longest_first():
            if secret in lowered:
                value = _known_pattern(secret).sub(self._known[secret].replace("\\", r"\\"), value)
                lowered = value.lower()
        if "19" in value:
            value = CONVERSATION.sub(self._conversation, value)
        if " '" in value:
            value = ENTRA_NAMES.sub(lambda m: f"{m.group(1)} '{self._entra_name(m.group(2))}'", value)
        if "@" in value:
            value = EMAIL.sub(lambda m: self._identity(m.group(0), "upn"), value)
        # Any other GUID: an id of something in the tenant (a call, an agent, a chat member, ...).
        # The same GUID gets the same placeholder everywhere in a recording, request and response.
        if self._unknown_guids and "-" in value:
            value = GUID.sub(lambda m: self._identity(m.group(0).lower(), "guid"), value)
        if "%40" in value:
            value = ENCODED_EMAIL.sub(
                lambda m: urllib.parse.quote(self._identity(urllib.parse.unquote(m.group(0)), "upn")), value
            )
        return value

    def _conversation(self, match: re.Match[str]) -> str:
        """A conversation id with its identities replaced: GUIDs inside by their placeholders, opaque
        thread ids by a numbered placeholder (the same one wherever the id appears)."""
        body, at, suffix = match.group(1), match.group(2), match.group(3)
        separator = ":" if match.group(0)[2] == ":" else "%3A"
        inner = GUID.sub(lambda m: self._identity(m.group(0).lower(), "guid"), body)
        if not CONVERSATION_PLACEHOLDER.match(inner):
            key = f"19:{body}@{suffix}".lower()
            if key not in self._known:
                self._remember(key, f"19:cte-conversation-{self._next('conversation'):04d}@{suffix}")
            inner = self._known[key][3:].split("@", 1)[0]
        return f"19{separator}{inner}{at}{suffix}"

    def _entra_name(self, name: str) -> str:
        return name if GUID.fullmatch(name) or name.startswith("<") else "<display-name>"

    def jwt(self, token: str) -> str:
        if tokens.is_placeholder(token):
            return token
        try:
            payload = tokens.claims(token)
        except ValueError:
            return OPAQUE_TOKEN
        return tokens.placeholder(self.claims(payload))

    def claims(self, payload: dict[str, Any]) -> dict[str, Any]:
        kept = {k: payload[k] for k in KEPT_CLAIMS if k in payload}
        if "tid" in kept:
            kept["tid"] = self._identity(str(kept["tid"]), "tid")
        if "oid" in kept:
            kept["oid"] = self._identity(str(kept["oid"]), "oid")
        for key in ("upn", "preferred_username"):
            if key in kept:
                kept[key] = self._identity(str(kept[key]), "upn")
        if "appid" in kept:
            kept["appid"] = self._identity(str(kept["appid"]), "app")
        if "resourceId" in kept:
            kept["resourceId"] = self._identity(str(kept["resourceId"]), "guid")
        if isinstance(kept.get("skypeid"), str):
            kind, _, ident = kept["skypeid"].partition(":")
            kept["skypeid"] = f"{kind}:{GUID.sub(lambda m: self._identity(m.group(0), 'oid'), ident)}"
        for key in ("iss", "aud"):
            if isinstance(kept.get(key), str):
                kept[key] = GUID.sub(lambda m: self._identity(m.group(0), "guid"), self.text(kept[key]))
        return kept

    # -- structured bodies -----------------------------------------------------------------------

    def json_value(self, value: Any, key: str = "") -> Any:
        lowered = key.lower()
        if lowered in self._keep:
            return value
        if isinstance(value, dict):
            return {k: self.json_value(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.json_value(v, key) for v in value]
        if not isinstance(value, str):
            return value
        if lowered in URL_KEYS and value:
            parts = urllib.parse.urlsplit(value)
            return urllib.parse.urlunsplit(("https", RECEIVER_HOST, parts.path, parts.query, ""))
        if lowered in NAME_KEYS and value:
            return NAME_KEYS[lowered]
        if lowered in SECRET_KEYS and value:
            # Learnt, so that the same value is scrubbed wherever it turns up later.
            return self.learn(value, SECRET_KEYS[lowered])
        if lowered in VOLATILE_ID_KEYS:
            return ZERO_GUID if GUID.fullmatch(value) else value
        if lowered == "client_info":
            return self._client_info(value)
        if lowered in ("access_token", "id_token", "token"):
            return self.jwt(value) if value.count(".") == 2 else (OPAQUE_TOKEN if value else value)
        if lowered == "id" and not GUID.fullmatch(value) and len(value) >= 16 and (inner := _base64_text(value)):
            # Some ids are base64 of text with identities inside (an onlineMeeting id holds its organizer's).
            scrubbed = self.text(inner)
            return value if scrubbed == inner else base64.b64encode(scrubbed.encode()).decode()
        if lowered in ("userid", "oid", "uid", "objectid", "id") and GUID.fullmatch(value):
            return self._identity(value, "oid")
        if lowered in ("tenantid", "tid", "utid") and GUID.fullmatch(value):
            return self._identity(value, "tid")
        if lowered in ("appid", "clientid", "client_id") and GUID.fullmatch(value):
            return self._identity(value, "app")
        return self.text(value)

    def _client_info(self, value: str) -> str:
        if value == "1":  # the request flag asking for client_info, not client_info itself
            return value
        try:
            info = json.loads(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)))
        except ValueError:
            return OPAQUE_TOKEN
        if not isinstance(info, dict):
            return OPAQUE_TOKEN
        scrubbed = self.json_value(info)
        return base64.urlsafe_b64encode(json.dumps(scrubbed, sort_keys=True).encode()).decode().rstrip("=")

    def body(self, raw: bytes | str | None, content_type: str = "") -> bytes | str | None:
        """A request or response body, scrubbed by its shape (JSON, form, or text)."""
        if raw is None or raw == b"" or raw == "":
            return raw
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return b"<binary body removed>"
        else:
            text = raw
        content_type = content_type.lower()
        stripped = text.lstrip()
        if "json" in content_type or stripped.startswith(("{", "[")):
            try:
                parsed = json.loads(text)
            except ValueError:
                return self.text(text)
            # Keep the producer's separators: the SDK's HMAC hash covers the exact bytes.
            compact = '": ' not in text and '", ' not in text
            separators = (",", ":") if compact else (", ", ": ")
            return json.dumps(self.json_value(parsed), separators=separators, ensure_ascii=False)
        if "x-www-form-urlencoded" in content_type or ("=" in text and " " not in text and "\n" not in text):
            pairs = urllib.parse.parse_qsl(text, keep_blank_values=True)
            if pairs:
                return urllib.parse.urlencode(
                    [(k, self.learn(v, OPAQUE_TOKEN) if k == "code" else self.json_value(v, k)) for k, v in pairs]
                )
        return self.text(text)

    def url(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        scheme, host = parts.scheme, parts.netloc
        known_origin = self._known.get(f"{scheme}://{host}".lower())
        if known_origin and "://" in known_origin:  # a profile's own endpoint, shown as Microsoft's
            scheme, host = known_origin.split("://", 1)
        if host.lower().endswith(".communication.azure.com"):
            host = ACS_HOST
        path = "/".join(self._path_segment(seg) for seg in parts.path.split("/"))
        query = urllib.parse.urlencode(
            [(k, self.json_value(v, k)) for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True)]
        )
        return urllib.parse.urlunsplit((scheme, host, path, query, parts.fragment))

    def _path_segment(self, segment: str) -> str:
        decoded = urllib.parse.unquote(segment)
        if GUID.fullmatch(decoded):
            return self._identity(decoded, "guid")
        scrubbed = self.text(decoded)
        scrubbed = GUID.sub(lambda m: self._identity(m.group(0), "guid"), scrubbed)
        return urllib.parse.quote(scrubbed, safe=":@")

    def headers(self, headers: dict[str, Any], kept: set[str]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for name, value in headers.items():
            lowered = name.lower()
            values = value if isinstance(value, list) else [value]
            if lowered == "authorization":
                scheme = str(values[0]).split(" ", 1)[0]
                result[name] = [f"{scheme} <scrubbed>"]
            elif lowered in VOLATILE_HEADERS:
                result[name] = [f"<{lowered}>"]
            elif lowered in kept:
                if lowered == "location":
                    for v in values:
                        self._learn_codes(str(v))
                result[name] = [self.text(str(v)) for v in values]
        return result

    def _learn_codes(self, location: str) -> None:
        """An authorization code in a redirect (its query or its fragment, response_mode=fragment) is a
        secret before the token request that redeems it is ever seen: learnt here."""
        parts = urllib.parse.urlsplit(location)
        for part in (parts.query, parts.fragment):
            for key, value in urllib.parse.parse_qsl(part, keep_blank_values=True):
                if key == "code" and value:
                    self.learn(value, OPAQUE_TOKEN)
