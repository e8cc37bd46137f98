"""Azure Communication Services Identity: the Teams-user token exchange and `/identities`.

Wire contract: docs/contracts/identity.md §1-4 and the 2023-10-01 API description (§1.1). The error bodies of
the exchange are the ones recorded from the real service (§1.3), in the precedence observed there, with the
headers those recordings show (an error's Content-Type has no charset; api-supported-versions only on the
answers the service's versioned action gave). tests/test_parity_corpus.py replays every public SDK recording
of the exchange (tests/parity_corpus/) against this module. Answers for cases no public source shows carry
the emulator-defined header. Every route accepts either an HMAC signature (the access key, §2) or an Entra ID
bearer token for https://communication.azure.com authorized by Azure RBAC on the resource (§8, `verify_bearer`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import jwt
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from harness.sandbox.context import SandboxContext
from harness.sandbox.http import Service, ServiceError, json_object
from harness.sandbox.state import (
    ACS_DATA_PLANE_URI,
    ACS_DATA_ROLES,
    ACS_RESOURCE_URI,
    TEAMS_SCOPES,
    AcsResource,
    Tenant,
)
from harness.wire import contract

# api-versions that carry this route: 2021-10-31-preview takes {token} only; the others take all three.
# 2025-03-02-preview: recorded from the real service in 2025 (JS and .NET SDK recordings, identity.md §1.3).
PREVIEW_VERSION = "2021-10-31-preview"
GA_VERSIONS = ("2022-06-01", "2022-10-01", "2023-08-01", "2023-10-01", "2025-03-02-preview", "2025-06-30")
SUPPORTED_VERSIONS = (PREVIEW_VERSION, *GA_VERSIONS)
# Recorded: a body without a token (no `token` key, or null) is refused before anything else is looked at.
TOKEN_MISSING = (400, "ValidationError", "The body is either missing or doesn't contain any token.", None)
# Recorded: these answers come before the service's versioned action runs (authentication, model validation)
# and carry no api-supported-versions header; the format and claim checks and a success carry it.
UNVERSIONED = frozenset(
    {contract.INVALID_ACCESS_TOKEN, contract.APP_ID_REQUIRED, contract.USER_ID_REQUIRED, TOKEN_MISSING}
)
# Recorded: the exchange answers an error as `application/json` (no charset), a success with the charset.
ERROR_MEDIA_TYPE = "application/json"
JSON_MEDIA_TYPE = "application/json; charset=utf-8"
HMAC_MAX_SKEW = timedelta(minutes=5)  # third-party reports; unverified for ACS Identity
SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
TOKEN_SCOPES = frozenset({"chat", "voip", "chat.join", "chat.join.limited", "voip.join"})
# The sandbox's exchange log (emulator-defined: a diagnostics route of the sandbox only, never Microsoft's).
EXCHANGE_LOG_PATH = contract.SANDBOX_EXCHANGE_LOG_PATH
EXCHANGE_LOG_NOTE = "the exchange log is the sandbox's own diagnostics; no Microsoft service offers it"
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class AcsError(ServiceError):
    """An Azure REST error (`{"error": {"code", "message", "target"}}`) with ACS's headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        target: str | None = None,
        *,
        emulated: str = "",
        versioned: bool = True,
    ) -> None:
        super().__init__(status, message, emulated=emulated)
        self.code, self.target = code, target
        self.versioned = versioned  # whether the answer carries api-supported-versions

    @classmethod
    def of(cls, spec: tuple[int, str, str, str | None], emulated: str = "") -> AcsError:
        return cls(*spec, emulated=emulated, versioned=spec not in UNVERSIONED)

    def render(self, request: Request, service: Any, media_type: str = JSON_MEDIA_TYPE, **options: Any) -> Response:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        acs: Acs = service
        return self.marked(
            acs.json(request, {"error": error}, self.status, versioned=self.versioned, media_type=media_type)
        )


def expires_on(epoch: int) -> str:
    """ACS's timestamp format (.NET round-trip): up to 7 fractional digits, trailing zeros dropped, +00:00.

    Every recorded `expiresOn` carries sub-second digits (the service does not derive it from a whole-second
    claim in any documented way), so the second is `epoch` and the fraction a stable function of it (not
    of ids or keys a sandbox process generates: recordings under the fixed clock stay byte-identical);
    its last digit is never 0, so it always has 7 digits, the length most recordings show."""
    ticks = int.from_bytes(hashlib.sha256(str(epoch).encode()).digest()[:8], "big") % 10**7
    ticks += 1 if ticks % 10 == 0 else 0
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ticks:07d}".rstrip("0") + "+00:00"


def string_to_sign(method: str, path_and_query: str, date: str, host: str, content_hash: str) -> str:
    return f"{method.upper()}\n{path_and_query}\n{date};{host};{content_hash}"


def signature(access_key: str, to_sign: str) -> str:
    digest = hmac.new(base64.b64decode(access_key), to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def verify_hmac(
    *, method: str, path_and_query: str, host: str, headers: Any, body: bytes, access_key: str, now: datetime
) -> None:
    """HMAC-SHA256 exactly as the SDK signs (docs/contracts/identity.md §2); raises AcsError(401) otherwise.

    `host` is the Host header: the SDK signs the endpoint's host (with its port), which is what a
    client connected to. `path_and_query` is the raw request target.
    """
    denied = "bad or missing HMAC signature; Denied is what third parties report for ACS"
    match = re.fullmatch(r"HMAC-SHA256 SignedHeaders=([^&]+)&Signature=(\S+)", headers.get("authorization", ""))
    if not match or match.group(1).lower() != SIGNED_HEADERS:
        raise AcsError(401, "Denied", "Denied by the resource provider.", emulated=denied)
    date = headers.get("x-ms-date", "")
    try:
        signed_at = parsedate_to_datetime(date)
    except (TypeError, ValueError):
        raise AcsError(401, "Denied", "Denied by the resource provider.", emulated=denied) from None
    if signed_at.tzinfo is None or abs(now - signed_at) > HMAC_MAX_SKEW:
        raise AcsError(
            401,
            "Denied",
            "The given request could not be resolved.\nThe time difference between the originating client "
            "and the server is greater than the allowed margin of 5 minutes.",
            emulated="clock-skew window and text reported by third parties only",
        )
    content_hash = base64.b64encode(hashlib.sha256(body).digest()).decode()
    if not hmac.compare_digest(headers.get("x-ms-content-sha256", ""), content_hash):
        raise AcsError(401, "Denied", "Denied by the resource provider.", emulated=denied)
    # Clients built with decode_url=True (and the aiohttp transport) sign the unquoted form.
    for candidate in dict.fromkeys((path_and_query, urllib.parse.unquote(path_and_query))):
        expected = signature(access_key, string_to_sign(method, candidate, date, host, content_hash))
        if hmac.compare_digest(expected, match.group(2)):
            return
    raise AcsError(401, "Denied", "Denied by the resource provider.", emulated=denied)


BEARER_DENIED = "a bearer token that is not valid for this resource; ACS's answer is not documented (emulator-defined)"
BEARER_AUDIENCES = (ACS_DATA_PLANE_URI, f"{ACS_DATA_PLANE_URI}/")


def verify_bearer(token: str, *, verify: Any, acs: AcsResource, now: int, action: str) -> dict[str, Any]:
    """An Entra ID access token for the ACS data plane (docs/contracts/identity.md §7): signature (`verify`,
    the sandbox Entra's signer), audience (with or without its trailing slash), issuer and tenant (the
    resource's home tenant), expiry; then Azure RBAC: the principal (`oid`) needs a role in ACS_DATA_ROLES
    on the resource. Raises AcsError: 401 for the token, 403 for the missing role assignment."""
    try:
        claims = verify(token)
    except jwt.InvalidTokenError:
        raise AcsError(401, "Denied", "Denied by the resource provider.", emulated=BEARER_DENIED) from None
    tid = str(claims.get("tid", ""))
    if (
        claims.get("aud") not in BEARER_AUDIENCES
        or tid not in acs.home_tenants
        or claims.get("iss") != f"https://sts.windows.net/{tid}/"
        or int(claims.get("exp", 0)) <= now
    ):
        raise AcsError(401, "Denied", "Denied by the resource provider.", emulated=BEARER_DENIED)
    oid = str(claims.get("oid", ""))
    if acs.role_assignments.get(oid) not in ACS_DATA_ROLES:
        resource = (
            f"/subscriptions/.../resourceGroups/.../providers/Microsoft.Communication/communicationServices/{acs.name}"
        )
        raise AcsError(
            403,
            "AuthorizationFailed",
            f"The client '{claims.get('appid', oid)}' with object id '{oid}' does not have authorization to perform "
            f"action '{action}' over scope '{resource}' or the scope is invalid. If access was recently granted, "
            "please refresh your credentials.",
            emulated="ACS's 403 for a principal without a role assignment is not documented; this body follows "
            "Azure Resource Manager's AuthorizationFailed",
            versioned=False,
        )
    return claims


class Acs(Service):
    workload = "acs"
    hosts = (f"*{contract.ACS_HOST_SUFFIX}",)
    prefixes = ("/teamsUser/", "/identities", EXCHANGE_LOG_PATH)

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.identities: dict[str, dict[str, Any]] = {}  # ACS users of the resource: deleted, revoked_before
        self.exchange_log: list[dict[str, Any]] = []  # every exchange request, as EXCHANGE_LOG_PATH shows it

    def reset(self) -> None:
        with self.ctx.lock:
            self.identities.clear()
            self.exchange_log.clear()

    def routes(self) -> list[Route]:
        return [
            # Recorded: the exchange answers an error as `application/json`, without the charset.
            self.route("/teamsUser/:exchangeAccessToken", self.exchange, ["POST"], media_type=ERROR_MEDIA_TYPE),
            self.route("/identities", self.create_identity, ["POST"]),
            self.route("/identities/{id}/:issueAccessToken", self.issue_token, ["POST"]),
            self.route("/identities/{id}/:revokeAccessTokens", self.revoke_tokens, ["POST"]),
            self.route("/identities/{id}", self.delete_identity, ["DELETE"]),
            self.route(EXCHANGE_LOG_PATH, self.read_exchange_log, ["GET"]),
        ]

    # -- plumbing --------------------------------------------------------------------------------

    def _headers(self, request: Request, *, versioned: bool = True) -> dict[str, str]:
        headers = {
            "MS-CV": self.ctx.ids.next("ms-cv"),
            "X-Azure-Ref": self.ctx.ids.next("azure-ref"),
            "X-Cache": "CONFIG_NOCACHE",
            "Request-Context": "appId=",
            "Strict-Transport-Security": "max-age=2592000",
        }
        if versioned:
            headers["api-supported-versions"] = ", ".join(SUPPORTED_VERSIONS)
        if cid := request.headers.get("x-ms-client-request-id"):
            headers["x-ms-client-request-id"] = cid
        return headers

    def json(
        self,
        request: Request,
        body: Any,
        status: int = 200,
        *,
        versioned: bool = True,
        media_type: str = JSON_MEDIA_TYPE,
    ) -> JSONResponse:
        return JSONResponse(
            body, status_code=status, headers=self._headers(request, versioned=versioned), media_type=media_type
        )

    async def _authenticated_body(self, request: Request) -> bytes:
        body = await request.body()
        authorization = request.headers.get("authorization", "")
        if authorization[:7].lower() == "bearer ":
            verify_bearer(
                authorization[7:].strip(),
                verify=self.ctx.entra_signer.verify,
                acs=self.ctx.directory.acs,
                now=self.ctx.epoch(),
                action=f"{request.method} {request.url.path}",
            )
        else:
            self._verify_hmac(request, body)
        version = request.query_params.get("api-version")
        if version not in SUPPORTED_VERSIONS:
            raise AcsError(
                400,
                "UnsupportedApiVersion",
                f"The HTTP resource that matches the request URI '{request.url.path}' does not support the API "
                f"version '{version}'.",
                emulated="the error for an unsupported api-version is not documented",
            )
        return body

    def _verify_hmac(self, request: Request, body: bytes) -> None:
        raw_path = (request.scope.get("raw_path") or request.url.path.encode()).decode("latin-1")
        query = request.scope.get("query_string", b"").decode("latin-1")
        verify_hmac(
            method=request.method,
            path_and_query=raw_path + (f"?{query}" if query else ""),
            host=request.headers.get("host", ""),
            headers=request.headers,
            body=body,
            access_key=self.ctx.directory.acs.access_key,
            now=self.ctx.wall_clock.now(),
        )

    @staticmethod
    def _object(body: bytes) -> dict[str, Any]:
        data = json_object(body) if body else {}
        if data is None:
            raise AcsError(
                400,
                "ValidationError",
                "The request body is not a valid JSON object.",
                emulated="the error for a body that is not a JSON object is not documented",
            )
        return data

    # -- the Teams-user exchange -----------------------------------------------------------------

    async def exchange(self, request: Request) -> Response:
        entry: dict[str, Any] = {"at": self.ctx.now().isoformat(timespec="seconds").replace("+00:00", "Z")}
        try:
            body = self._object(await self._authenticated_body(request))
            entry.update(exchange_facts(body, self.ctx.epoch()))
            preview = request.query_params.get("api-version") == PREVIEW_VERSION
            token, expires = self._exchange(body, preview=preview)
        except AcsError as err:
            self._log_exchange(entry, err.status, err.code)
            raise
        self._log_exchange(entry, 200, None)
        return self.json(request, {"token": token, "expiresOn": expires_on(expires)})

    def _log_exchange(self, entry: dict[str, Any], status: int, code: str | None) -> None:
        with self.ctx.lock:
            self.exchange_log.append({"seq": len(self.exchange_log) + 1, **entry, "status": status, "code": code})

    async def read_exchange_log(self, request: Request) -> Response:
        """The sandbox's own diagnostics (no Microsoft service has it): every exchange request the
        resource received since `since` (a sequence number), what it named and carried, and the answer."""
        try:
            since = int(request.query_params.get("since", "0"))
        except ValueError:
            raise AcsError(
                400, "ValidationError", "since must be a whole number.", "since", emulated=EXCHANGE_LOG_NOTE
            ) from None
        with self.ctx.lock:
            entries = [dict(e) for e in self.exchange_log if e["seq"] > since]
            last = len(self.exchange_log)
        return self.marked_json(request, {"entries": entries, "last": last})

    def marked_json(self, request: Request, body: Any) -> JSONResponse:
        response = self.json(request, body, versioned=False)
        response.headers[contract.EMULATOR_DEFINED_HEADER] = EXCHANGE_LOG_NOTE
        return response

    def _exchange(self, body: dict[str, Any], *, preview: bool) -> tuple[str, int]:
        token, app_id, user_id = (body.get(k) for k in ("token", "appId", "userId"))
        if token is None:  # absent or null; an empty string is a token that is not valid (401)
            raise AcsError.of(TOKEN_MISSING)
        if not preview and not _text(app_id):
            raise AcsError.of(contract.APP_ID_REQUIRED)
        claims, tenant = self._validate_entra_token(token)
        if not preview:
            if not _text(user_id):
                raise AcsError.of(contract.USER_ID_REQUIRED)
            if not GUID.match(str(app_id)):
                raise AcsError.of(contract.APP_ID_INVALID_FORMAT)
            if not GUID.match(str(user_id)):
                raise AcsError.of(contract.USER_ID_INVALID_FORMAT)
            if str(app_id).lower() != str(claims.get("appid", "")).lower():
                raise AcsError.of(contract.APP_ID_NOT_EXPECTED)
            if str(user_id).lower() != str(claims.get("oid", "")).lower():
                raise AcsError.of(contract.USER_ID_NOT_EXPECTED)
        user = tenant.user_by_oid(claims["oid"])
        if user is None or not user.teams_license:
            raise AcsError(
                403,
                "Forbidden",
                "The user is not licensed for Microsoft Teams.",
                emulated="no public source shows the exchange for a user without a Teams license",
            )
        return self._mint_teams_user_token(claims), int(claims["exp"])

    def _validate_entra_token(self, token: Any) -> tuple[dict[str, Any], Tenant]:
        """Token validation; every failure is the recorded 401, the undocumented ones marked."""
        if not _text(token):
            raise AcsError.of(contract.INVALID_ACCESS_TOKEN)
        try:
            jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AcsError.of(contract.INVALID_ACCESS_TOKEN) from None
        try:
            claims = self.ctx.entra_signer.verify(token)
        except jwt.InvalidTokenError:
            raise AcsError.of(
                contract.INVALID_ACCESS_TOKEN,
                emulated="a JWT not signed by Entra ID (for example an ACS token) is rejected as an invalid token",
            ) from None
        if int(claims.get("exp", 0)) <= self.ctx.epoch():
            raise AcsError.of(contract.INVALID_ACCESS_TOKEN)
        if claims.get("aud") != ACS_RESOURCE_URI:
            raise AcsError.of(
                contract.INVALID_ACCESS_TOKEN,
                emulated=f"a token for another audience ({claims.get('aud')}) is rejected as an invalid token",
            )
        granted = set(str(claims.get("scp", "")).split())
        missing = [s for s in TEAMS_SCOPES if s not in granted]
        if missing:
            raise AcsError.of(
                contract.INVALID_ACCESS_TOKEN,
                emulated=f"a token without {', '.join(missing)} is rejected as an invalid token",
            )
        tenant = self.ctx.directory.tenant(str(claims.get("tid", "")))
        if tenant is None:
            raise AcsError.of(contract.INVALID_ACCESS_TOKEN, emulated="token of a tenant the sandbox does not host")
        return claims, tenant

    def _mint_teams_user_token(self, entra: dict[str, Any]) -> str:
        """An ACS token for a Teams user. Claims are not part of ACS's contract (emulator-defined);
        the ones the Calling SDK reads are present: skypeid, tid, acsScope, resourceId, exp."""
        iat = self.ctx.epoch()
        acs = self.ctx.directory.acs
        return self.ctx.acs_signer.sign(
            {
                "skypeid": f"orgid:{entra['oid']}",
                "scp": 1024,
                "csi": str(iat),
                "exp": int(entra["exp"]),
                "rgn": "amer",
                "tid": entra["tid"],
                "acsScope": "voip",
                "resourceId": acs.immutable_id,
                "resourceLocation": acs.location,
                "iat": iat,
            }
        )

    # -- ACS identities (users of the ACS resource itself, not Teams users) ----------------------

    def _mint_acs_user_token(self, identity: str, scopes: list[str], minutes: int) -> tuple[str, int]:
        iat = self.ctx.epoch()
        exp = iat + minutes * 60
        acs = self.ctx.directory.acs
        token = self.ctx.acs_signer.sign(
            {
                "skypeid": identity.removeprefix("8:"),
                "scp": 1792,
                "csi": str(iat),
                "exp": exp,
                "rgn": "amer",
                "acsScope": ",".join(scopes),
                "resourceId": acs.immutable_id,
                "resourceLocation": acs.location,
                "iat": iat,
            }
        )
        return token, exp

    @staticmethod
    def _token_request(body: dict[str, Any], scopes_key: str) -> tuple[list[str], int]:
        scopes = body.get(scopes_key)
        if (
            not isinstance(scopes, list)
            or not scopes
            or not all(isinstance(s, str) and s in TOKEN_SCOPES for s in scopes)
        ):
            raise AcsError(
                400,
                "ValidationError",
                f"Scopes must be a non-empty list of: {', '.join(sorted(TOKEN_SCOPES))}.",
                scopes_key,
                emulated="the message for invalid scopes is not documented",
            )
        minutes = body.get("expiresInMinutes", 1440)
        if minutes is None:
            minutes = 1440
        if not isinstance(minutes, int) or isinstance(minutes, bool) or not 60 <= minutes <= 1440:
            raise AcsError(
                400,
                "ValidationError",
                "ExpiresInMinutes must be between 60 and 1440.",
                "expiresInMinutes",
                emulated="the 400 is recorded; its message is not",
            )
        return list(scopes), minutes

    def _identity_or_404(self, identity: str) -> dict[str, Any]:
        record = self.identities.get(identity)
        if record is None or record["deleted"]:
            raise AcsError(
                404, "IdentityNotFound", "Identity not found.", emulated="the 404 body for an unknown identity"
            )
        return record

    async def create_identity(self, request: Request) -> Response:
        body = self._object(await self._authenticated_body(request))
        identity = f"8:acs:{self.ctx.directory.acs.immutable_id}_{self.ctx.ids.next('acs-user')}"
        result: dict[str, Any] = {"identity": {"id": identity}}
        if "createTokenWithScopes" in body:
            scopes, minutes = self._token_request(body, "createTokenWithScopes")
            token, exp = self._mint_acs_user_token(identity, scopes, minutes)
            result["accessToken"] = {"token": token, "expiresOn": expires_on(exp)}
        with self.ctx.lock:
            self.identities[identity] = {"deleted": False, "revoked_before": None}
        return self.json(request, result, 201)

    async def issue_token(self, request: Request) -> Response:
        body = self._object(await self._authenticated_body(request))
        identity = request.path_params["id"]
        self._identity_or_404(identity)
        scopes, minutes = self._token_request(body, "scopes")
        token, exp = self._mint_acs_user_token(identity, scopes, minutes)
        return self.json(request, {"token": token, "expiresOn": expires_on(exp)})

    async def revoke_tokens(self, request: Request) -> Response:
        return await self._change_identity(request, "revoked_before", self.ctx.epoch())

    async def delete_identity(self, request: Request) -> Response:
        return await self._change_identity(request, "deleted", True)

    async def _change_identity(self, request: Request, key: str, value: Any) -> Response:
        await self._authenticated_body(request)
        record = self._identity_or_404(request.path_params["id"])
        with self.ctx.lock:
            record[key] = value
        return Response(status_code=204, headers=self._headers(request))


def exchange_facts(body: dict[str, Any], now: int) -> dict[str, Any]:
    """What an exchange request named and what its Entra token says, without the token: the ids sent,
    and the token's audience, app, user, tenant, scopes and whether it had expired (read unverified:
    the log says what was sent, whatever the service made of it)."""
    facts: dict[str, Any] = {"app_id": body.get("appId"), "user_id": body.get("userId")}
    token = body.get("token")
    try:
        claims = jwt.decode(token, options={"verify_signature": False}) if isinstance(token, str) else None
    except jwt.InvalidTokenError:
        claims = None
    if claims is None:
        facts["token"] = None if token is None else "not a JWT"
        return facts
    facts["token"] = {
        "aud": claims.get("aud"),
        "appid": claims.get("appid") or claims.get("azp"),
        "oid": claims.get("oid"),
        "tid": claims.get("tid"),
        "scp": claims.get("scp"),
        "expired": int(claims.get("exp", 0)) <= now,
    }
    return facts


def _text(value: Any) -> bool:
    return isinstance(value, str) and value.strip() != ""
