"""A reference token service for Teams users: the backend a client app hands its user's Entra token to,
which exchanges it for an ACS token (the pattern of Microsoft's Authentication Hero sample).

    GET /api/token/teams   header teams-user-aad-token: <the user's Entra access token>
    -> 200 {"token": "<ACS token>", "expiresOn": "<ISO 8601>"}   or 4xx/502 {"error": {"code", "message"}}

It validates the token before anything reaches ACS: signature (the authority's published keys), issuer
(the token's own tenant, which must be one the app serves), audience (ACS's Teams resource), expiry,
the app it was issued to (this service's client app) and both Teams scopes. Then it asks ACS with the
client app's id and the user's object id, and returns exactly what ACS returned. It never logs a token.

Settings (environment):
    ACS_CONNECTION_STRING   the ACS resource's connection string
    ENTRA_AUTHORITY_HOST    https://login.microsoftonline.com (default), or a test tenant's
    ENTRA_CLIENT_ID         the client app whose users' tokens this service exchanges
    ALLOWED_TENANTS         comma-separated tenant ids the app serves; * (default) for any tenant
    CA_BUNDLE               a PEM file of CAs to trust besides the system's (a test tenant's)
    HOST, PORT              where to listen (default 127.0.0.1:8600)

`TOKEN_SERVICE_MISTAKES` switches on classic mistakes, comma-separated, so that a checker can be seen to
catch them: server-app-id (passes its own app id, SERVER_APP_ID, as appId), shared-cache (one ACS token
cached for every user, never refreshed), forward-expired (does not check expiry; ACS is asked anyway),
log-tokens (prints each exchange with the tokens in it, as a debugging line left in would).

    python examples/token-service/app.py
"""

from __future__ import annotations

import os
import ssl
import threading

import jwt
import uvicorn
from azure.communication.identity import CommunicationIdentityClient
from azure.core.exceptions import HttpResponseError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

TEAMS_RESOURCE = "https://auth.msft.communication.azure.com"
TEAMS_SCOPES = {"Teams.ManageCalls", "Teams.ManageChats"}
TOKEN_HEADER = "teams-user-aad-token"
MISTAKES = {"server-app-id", "shared-cache", "forward-expired", "log-tokens"}


class Settings:
    def __init__(self, env: dict[str, str]) -> None:
        self.connection_string = env["ACS_CONNECTION_STRING"]
        self.authority_host = env.get("ENTRA_AUTHORITY_HOST", "https://login.microsoftonline.com").rstrip("/")
        self.client_id = env["ENTRA_CLIENT_ID"].lower()
        self.server_app_id = env.get("SERVER_APP_ID", "00000000-0000-0000-0000-00000000beef")
        tenants = env.get("ALLOWED_TENANTS", "*")
        self.allowed_tenants = None if tenants.strip() == "*" else {t.strip().lower() for t in tenants.split(",")}
        self.ca_bundle = env.get("CA_BUNDLE") or None
        self.mistakes = {m.strip() for m in env.get("TOKEN_SERVICE_MISTAKES", "").split(",") if m.strip()}
        unknown = self.mistakes - MISTAKES
        if unknown:
            known = ", ".join(sorted(MISTAKES))
            raise SystemExit(f"TOKEN_SERVICE_MISTAKES: unknown {sorted(unknown)[0]!r}; use {known}")


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class TokenService:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        context = ssl.create_default_context()
        if settings.ca_bundle:
            context.load_verify_locations(settings.ca_bundle)
        self.keys = jwt.PyJWKClient(f"{settings.authority_host}/common/discovery/v2.0/keys", ssl_context=context)
        self.acs = CommunicationIdentityClient.from_connection_string(
            settings.connection_string, connection_verify=settings.ca_bundle or True
        )
        self.shared: tuple[str, str] | None = None  # the shared-cache mistake's one token
        self.lock = threading.Lock()

    def validate(self, token: str) -> dict:
        """The user's Entra token, verified; Refused(401/403) with the reason otherwise."""
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            key = self.keys.get_signing_key_from_jwt(token)
        except (jwt.InvalidTokenError, jwt.PyJWKClientError) as err:
            raise Refused(401, "InvalidToken", f"not an Entra access token: {err}") from None
        tenant = str(unverified.get("tid", "")).lower()
        if self.settings.allowed_tenants is not None and tenant not in self.settings.allowed_tenants:
            raise Refused(403, "TenantNotServed", "this app does not serve the user's organisation")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=["RS256"],
                audience=TEAMS_RESOURCE,
                issuer=f"https://sts.windows.net/{tenant}/",
                options={"verify_exp": "forward-expired" not in self.settings.mistakes, "require": ["exp", "oid"]},
            )
        except jwt.ExpiredSignatureError:
            raise Refused(401, "TokenExpired", "the Entra token has expired; sign in again") from None
        except jwt.InvalidTokenError as err:
            raise Refused(401, "InvalidToken", f"the Entra token is not valid here: {err}") from None
        if str(claims.get("appid") or claims.get("azp") or "").lower() != self.settings.client_id:
            raise Refused(403, "WrongApp", "the Entra token was issued to another app")
        if not set(str(claims.get("scp", "")).split()) >= TEAMS_SCOPES:
            raise Refused(403, "MissingScopes", "the Entra token lacks Teams.ManageCalls and Teams.ManageChats")
        return claims

    def exchange(self, token: str, claims: dict) -> tuple[str, str]:
        app_id = self.settings.server_app_id if "server-app-id" in self.settings.mistakes else claims["appid"]
        if "shared-cache" in self.settings.mistakes:
            with self.lock:
                if self.shared is None:
                    self.shared = self._ask_acs(token, app_id, claims["oid"])
                return self.shared
        return self._ask_acs(token, app_id, claims["oid"])

    def _ask_acs(self, token: str, app_id: str, oid: str) -> tuple[str, str]:
        try:
            answer = self.acs.get_token_for_teams_user(token, app_id, oid)
        except HttpResponseError as err:
            error = err.error
            raise Refused(
                502 if (err.status_code or 500) >= 500 or err.status_code == 400 else 401,
                getattr(error, "code", None) or "ExchangeFailed",
                f"ACS refused the exchange: {getattr(error, 'message', None) or err.reason}",
            ) from None
        return answer.token, str(answer.expires_on)

    async def teams_token(self, request: Request) -> JSONResponse:
        token = request.headers.get(TOKEN_HEADER, "")
        if not token:
            return JSONResponse({"error": {"code": "NoToken", "message": f"send the {TOKEN_HEADER} header"}}, 401)
        try:
            claims = self.validate(token)
            acs_token, expires_on = self.exchange(token, claims)
            if "log-tokens" in self.settings.mistakes:
                print(f"exchanged {token} for {acs_token}", flush=True)
        except Refused as refused:
            return JSONResponse({"error": {"code": refused.code, "message": refused.message}}, refused.status)
        return JSONResponse({"token": acs_token, "expiresOn": expires_on})


def app(settings: Settings) -> Starlette:
    service = TokenService(settings)
    return Starlette(routes=[Route("/api/token/teams", service.teams_token, methods=["GET"])])


if __name__ == "__main__":
    settings = Settings(dict(os.environ))
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8600"))
    uvicorn.run(app(settings), host=host, port=port, log_level="warning", access_log=False)
