"""Microsoft Entra ID v2 endpoints, as unmodified MSAL Python uses them.

Error bodies follow the real format (docs/contracts/identity.md §5.3): `error`, `error_description`
starting `AADSTSnnnnn:` and ending with trace id, correlation id and timestamp, `error_codes`,
`timestamp`, `trace_id`, `correlation_id`, `error_uri`. Texts, `error` values and statuses are the
ones seen in real responses; where a source could not be found the answer carries the
emulator-defined header saying so.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import json
import urllib.parse
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from harness.sandbox.context import SandboxContext
from harness.sandbox.http import Service, ServiceError, base_url, form_fields
from harness.sandbox.state import RESOURCES, AppRegistration, Tenant, User, service_principal_oid
from harness.wire.contract import EMULATOR_DEFINED_HEADER, ENTRA_HOST

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
ACCESS_TOKEN_LIFETIME_S = 4500  # 75 minutes: emulator-defined (real tokens last 60-90 minutes)
DEVICE_CODE_LIFETIME_S = 900
PASSWORD_GRANT = "password"
DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
AUTHORIZATION_CODE_GRANT = "authorization_code"
AUTHORIZATION_CODE_LIFETIME_S = 600  # "Authorization codes are short lived, typically expiring after about 10 minutes"
PLATFORM_NAMES = {  # how the Entra admin center names each platform (Authentication > Platform configurations)
    "spa": "Single-page application",
    "publicClient": "Mobile and desktop applications",
    "web": "Web",
}
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
TOKEN_PATH_SUFFIX = "/oauth2/v2.0/token"


class EntraError(ServiceError):
    """An OAuth error as Entra ID answers it: `error`, an AADSTS code and text, and `extra` fields."""

    def __init__(
        self,
        status: int,
        error: str,
        code: int,
        message: str,
        *,
        emulator_defined: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(status, message, emulated=emulator_defined or "")
        self.error, self.code, self.extra = error, code, extra

    def render(self, request: Request, service: Any, **options: Any) -> Response:
        entra: Entra = service
        timestamp = entra.ctx.now().strftime("%Y-%m-%d %H:%M:%SZ")
        trace_id = entra.ctx.ids.next("trace")
        correlation_id = request.headers.get("client-request-id") or entra.ctx.ids.next("correlation")
        body = {
            "error": self.error,
            "error_description": (
                f"AADSTS{self.code}: {self.message} Trace ID: {trace_id} "
                f"Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [self.code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": f"https://login.microsoftonline.com/error?code={self.code}",
            **self.extra,
        }
        return self.marked(entra.json(request, body, self.status))


def _invalid_scope(scope: str) -> EntraError:
    """AADSTS70011 as Entra words it, naming the whole scope as sent."""
    return EntraError(
        400,
        "invalid_scope",
        70011,
        "The provided request must include a 'scope' input parameter. The provided value for the input "
        f"parameter 'scope' is not valid. The scope {scope} is not valid.",
    )


def _wrong_credentials() -> EntraError:
    return EntraError(400, "invalid_grant", 50126, "Error validating credentials due to invalid username or password.")


@dataclass
class Grant:
    """What a token request asks for, after its scopes are resolved to one resource."""

    resource: str
    resource_app_id: str
    resource_name: str
    permissions: frozenset[str]
    default: bool
    wants_refresh: bool
    wants_id_token: bool


class Entra(Service):
    workload = "entra"
    hosts = (ENTRA_HOST,)

    def __init__(self, ctx: SandboxContext) -> None:
        super().__init__(ctx)
        self.refresh_tokens: dict[str, dict[str, Any]] = {}
        self.device_codes: dict[str, dict[str, Any]] = {}
        self.authorization_codes: dict[str, dict[str, Any]] = {}

    @classmethod
    def faultable(cls, method: str, path: str) -> bool | None:
        """The token endpoint only: MSAL's discovery GETs run while the client is built, and Microsoft
        documents throttling of token requests, not of discovery."""
        return method == "POST" if path.endswith(TOKEN_PATH_SUFFIX) else None

    def reset(self) -> None:
        """Codes in flight go with the world; refresh tokens stay where sessions outlive scenarios (a
        renewal later in the run redeems one, as against a live tenant)."""
        with self.ctx.lock:
            if not self.ctx.sessions_outlive_scenarios:
                self.refresh_tokens.clear()
            self.device_codes.clear()
            self.authorization_codes.clear()

    def routes(self) -> list[Route]:
        return [
            self.route("/common/discovery/instance", self.instance_discovery, ["GET"]),
            self.route("/common/userrealm/{username}", self.user_realm, ["GET"]),
            self.route("/common/oauth2/deviceauth", self.device_auth_page, ["GET"]),
            self.route("/common/oauth2/deviceauth", self.device_auth_approve, ["POST"]),
            self.route("/{tenant}/v2.0/.well-known/openid-configuration", self.openid_configuration, ["GET"]),
            self.route("/{tenant}/discovery/v2.0/keys", self.keys, ["GET"]),
            self.route("/{tenant}" + TOKEN_PATH_SUFFIX, self.token, ["POST"]),
            self.route("/{tenant}" + TOKEN_PATH_SUFFIX, self.token_preflight, ["OPTIONS"]),
            self.route("/{tenant}/oauth2/v2.0/authorize", self.authorize_page, ["GET"]),
            self.route("/{tenant}/oauth2/v2.0/authorize", self.authorize_sign_in, ["POST"]),
            self.route("/{tenant}/oauth2/v2.0/devicecode", self.device_code, ["POST"]),
        ]

    # -- responses ---------------------------------------------------------------------------

    def json(self, request: Request, body: dict[str, Any], status: int = 200) -> JSONResponse:
        response = JSONResponse(body, status_code=status)
        response.headers["cache-control"] = "no-store, no-cache"
        response.headers["x-ms-request-id"] = self.ctx.ids.next("request")
        if cid := request.headers.get("client-request-id"):
            response.headers["client-request-id"] = cid
        if request.headers.get("origin"):
            # A browser's cross-origin request (a SPA's discovery and code redemption): the answer is readable
            # by the page, errors included (MSAL.js reports AADSTS9002326's body); docs/contracts/identity.md §11.
            response.headers["access-control-allow-origin"] = "*"
        return response

    # -- discovery -----------------------------------------------------------------------------

    def _tenant_or_error(self, key: str) -> Tenant:
        tenant = self.ctx.directory.tenant(key)
        if tenant is None:
            raise EntraError(
                400,
                "invalid_tenant",
                90002,
                f"Tenant '{key}' not found. Check to make sure you have the correct tenant ID and are signing "
                "into the correct cloud. Check with your subscription administrator, this may happen if "
                "there are no active subscriptions for the tenant.",
            )
        return tenant

    async def openid_configuration(self, request: Request) -> Response:
        key = request.path_params["tenant"]
        tenant = None if key in ("common", "organizations") else self._tenant_or_error(key)
        tid = tenant.tenant_id if tenant else "{tenantid}"
        base = base_url(request)
        cloud: dict[str, Any] = {"tenant_region_scope": tenant.tenant_region_scope if tenant else "NA"}
        if tenant is not None and tenant.tenant_region_sub_scope:
            cloud["tenant_region_sub_scope"] = tenant.tenant_region_sub_scope
        cloud["cloud_instance_name"] = tenant.cloud_instance_name if tenant else "microsoftonline.com"
        response = self.json(
            request,
            {
                "token_endpoint": f"{base}/{key}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{base}/{key}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/{tid}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
                "authorization_endpoint": f"{base}/{key}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/{key}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{base}/{key}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "nonce",
                    "name",
                    "oid",
                    "tid",
                    "preferred_username",
                ],
                **cloud,
                "cloud_graph_host_name": "graph.windows.net",
                "msgraph_host": "graph.microsoft.com",
            },
        )
        if tenant is not None and tenant.cloud_instance_name != "microsoftonline.com":
            # Served at the public authority's host (the sandbox has one Entra); a sovereign tenant's own
            # endpoints would be at login.microsoftonline.us. Values as third-party tools read them.
            response.headers[EMULATOR_DEFINED_HEADER] = (
                "a sovereign-cloud tenant's OpenID configuration (3rd-party values)"
            )
        return response

    async def keys(self, request: Request) -> Response:
        return self.json(request, self.ctx.entra_signer.jwks())

    async def instance_discovery(self, request: Request) -> Response:
        host = request.url.hostname or "login.microsoftonline.com"
        return self.json(
            request,
            {
                "tenant_discovery_endpoint": f"{base_url(request)}/common/v2.0/.well-known/openid-configuration",
                "api-version": "1.1",
                "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
            },
        )

    async def user_realm(self, request: Request) -> Response:
        username = request.path_params["username"]
        tenant = self.ctx.directory.tenant_of_upn(username)
        # Managed (cloud-only) accounts: MSAL then uses the plain password grant.
        body = {
            "ver": "1.0",
            "account_type": "Managed" if tenant else "Unknown",
            "domain_name": username.rpartition("@")[2],
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
        return self.json(request, body)

    # -- token endpoint ------------------------------------------------------------------------

    async def token(self, request: Request) -> Response:
        fields = await form_fields(request)
        tenant = self._tenant_or_error(request.path_params["tenant"])
        return self.json(request, self._token_for(tenant, fields, origin=request.headers.get("origin")))

    async def token_preflight(self, request: Request) -> Response:
        """A browser's CORS preflight of a token request (a SPA sending headers beyond the simple ones)."""
        response = Response(status_code=204)
        response.headers["access-control-allow-origin"] = "*"
        response.headers["access-control-allow-methods"] = "POST, OPTIONS"
        if wanted := request.headers.get("access-control-request-headers"):
            response.headers["access-control-allow-headers"] = wanted
        return response

    def _token_for(self, tenant: Tenant, form: dict[str, str], *, origin: str | None = None) -> dict[str, Any]:
        grant_type = form.get("grant_type", "")
        if not grant_type:
            raise EntraError(
                400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."
            )
        app = self._app(tenant, form)
        if grant_type == "client_credentials":
            return self._client_credentials(tenant, app, form)
        if grant_type == "refresh_token":
            return self._refresh(tenant, app, form)
        if grant_type == AUTHORIZATION_CODE_GRANT:
            return self._redeem_authorization_code(tenant, app, form, origin)
        if grant_type not in (PASSWORD_GRANT, DEVICE_CODE_GRANT):
            raise EntraError(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
                emulator_defined="grant types other than password, device code, authorization code, refresh token "
                "and client credentials are not emulated",
            )
        self._require_public_client(app, form)
        if grant_type == PASSWORD_GRANT:
            grant = self._resolve_scopes(tenant, form.get("scope", ""))
            user = self._authenticate(tenant, form.get("username", ""), form.get("password", ""), grant, app.client_id)
        else:
            grant, user = self._redeem_device_code(tenant, app, form)
        self._authorize(tenant, app, user, grant)
        return self._issue(tenant, app, user, grant, amr=["pwd"])

    def _app(self, tenant: Tenant, form: dict[str, str]) -> AppRegistration:
        client_id = form.get("client_id", "")
        app = tenant.apps.get(client_id)
        if app is None:
            raise EntraError(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant.display_name}'. "
                "This can happen if the application has not been installed by the administrator of the tenant "
                "or consented to by any user in the tenant. You may have sent your authentication request to "
                "the wrong tenant.",
            )
        secret = form.get("client_secret")
        if secret is not None and not (
            app.client_secret and hmac.compare_digest(secret.encode(), app.client_secret.encode())
        ):
            raise EntraError(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the client "
                f"secret value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            )
        if "client_assertion" in form:
            self._verify_client_assertion(app, form)
        expires = app.client_secret_expires
        if secret is not None and expires is not None and self.ctx.now() >= expires:
            # Text as real answers show it (identity.md §7); error and status as for AADSTS7000215.
            raise EntraError(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{app.client_id}' are expired. Visit the Azure portal to "
                "create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate "
                "credentials for added security: https://aka.ms/certCreds.",
                emulator_defined="the HTTP status of AADSTS7000222 is inferred (invalid_client, as AADSTS7000215)",
            )
        return app

    def _verify_client_assertion(self, app: AppRegistration, form: dict[str, str]) -> None:
        """A certificate credential (private_key_jwt): the assertion is signed by a certificate registered on
        the app (found by its x5t#S256 or x5t thumbprint), issued and subjected by the app, not expired.
        The answers' texts are emulator-defined (the codes are Entra's for these cases)."""
        assertion = form.get("client_assertion", "")
        if form.get("client_assertion_type") != JWT_BEARER_ASSERTION:
            raise EntraError(
                400,
                "invalid_request",
                50027,
                "JWT token is invalid or malformed.",
                emulator_defined="the answer to a client_assertion without the jwt-bearer assertion type",
            )
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            raise EntraError(
                400, "invalid_request", 50027, "JWT token is invalid or malformed.", emulator_defined="text unverified"
            ) from None
        wanted = {str(header[k]).rstrip("=") for k in ("x5t#S256", "x5t") if header.get(k)}
        key = None
        for pem in app.certificates:
            cert = x509.load_pem_x509_certificate(pem)
            prints = {
                base64.urlsafe_b64encode(cert.fingerprint(algorithm)).decode().rstrip("=")
                for algorithm in (hashes.SHA256(), hashes.SHA1())  # noqa: S303 (x5t is SHA-1 by definition)
            }
            if prints & wanted:
                key = cert.public_key()
                break
        if key is None:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "The certificate with identifier used to sign the client assertion is not registered on "
                "application. [Reason - The key was not found., Please visit the Azure Portal, Graph Explorer or "
                f"directly use MS Graph to see configured keys for app Id '{app.client_id}'.]",
                emulator_defined="the text of AADSTS700027 for an unregistered certificate is unverified",
            )
        try:
            claims = jwt.decode(
                assertion, key, algorithms=["RS256", "PS256"], options={"verify_aud": False, "verify_exp": False}
            )
        except jwt.InvalidTokenError:
            raise EntraError(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation.",
                emulator_defined="the text of AADSTS700027 for a bad signature is unverified",
            ) from None
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            raise EntraError(
                401,
                "invalid_client",
                700021,
                "Client assertion application identifier doesn't match 'client_id' parameter.",
                emulator_defined="the code and text for an assertion of another app are unverified",
            )
        if int(claims.get("exp", 0)) <= self.ctx.epoch():
            raise EntraError(
                401,
                "invalid_client",
                700024,
                "Client assertion is not within its valid time range.",
                emulator_defined="the text of AADSTS700024 is abridged (the real one names the times)",
            )

    @staticmethod
    def _require_public_client(app: AppRegistration, form: dict[str, str]) -> None:
        if not app.public_client_flows and "client_secret" not in form and "client_assertion" not in form:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )

    def _resolve_scopes(self, tenant: Tenant, scope: str) -> Grant:
        requested = scope.split()
        wants_refresh = "offline_access" in requested
        wants_id_token = "openid" in requested
        resource_scopes = [s for s in requested if s not in OIDC_SCOPES]
        if not resource_scopes:
            resource_scopes = ["https://graph.microsoft.com/User.Read"]
        by_resource: dict[str, set[str]] = {}
        for item in resource_scopes:
            resource, _, permission = item.rpartition("/")
            if not resource:  # a bare permission name means Microsoft Graph
                resource = "https://graph.microsoft.com"
            resource = self._resource_uri(resource)
            if resource is None:
                raise EntraError(
                    400,
                    "invalid_resource",
                    500011,
                    f"The resource principal named {item} was not found in the tenant named {tenant.display_name}. "
                    "This can happen if the application has not been installed by the administrator of the "
                    "tenant or consented to by any user in the tenant. You might have sent your authentication "
                    "request to the wrong tenant.",
                )
            by_resource.setdefault(resource, set()).add(permission)
        if len(by_resource) > 1:  # a user's token request (client credentials are refused earlier)
            raise EntraError(
                400,
                "invalid_scope",
                28000,
                "Provided value for the input parameter scope is not valid because it contains more than one "
                f"resource. Scope {scope} is not valid.",
                emulator_defined="AADSTS28000's code and text are reported (docs/contracts/identity.md §5.3); "
                "its OAuth error name is not",
            )
        ((resource, permissions),) = by_resource.items()
        app_id, name, known = RESOURCES[resource]
        default = permissions == {".default"}
        unknown = sorted(p for p in permissions if p not in known and p != ".default")
        if unknown:
            raise _invalid_scope(scope)
        return Grant(resource, app_id, name, frozenset(permissions), default, wants_refresh, wants_id_token)

    @staticmethod
    def _resource_uri(resource: str) -> str | None:
        resource = resource.rstrip("/")
        for uri, (app_id, _, _) in RESOURCES.items():
            if resource in (uri, app_id):
                return uri
        return None

    def _not_in_directory(self, tenant: Tenant, username: str, client_id: str) -> EntraError:
        """A UPN this tenant does not have: a user of another tenant (AADSTS50020), or nobody's (50034).
        Entra hides the account in the message ({EmailHidden}); docs/contracts/identity.md §5.3."""
        home = next((t for t in self.ctx.directory.tenants.values() if t.user_by_upn(username)), None)
        app_name = app.display_name if (app := tenant.apps.get(client_id)) else ""
        if home is None:
            return EntraError(
                400,
                "invalid_grant",
                50034,
                f"The user account {{EmailHidden}} does not exist in the {tenant.tenant_id} directory. To sign into "
                "this application, the account must be added to the directory.",
            )
        return EntraError(
            400,
            "invalid_grant",
            50020,
            f"User account '{{EmailHidden}}' from identity provider 'https://sts.windows.net/{home.tenant_id}/' does "
            f"not exist in tenant '{tenant.display_name}' and cannot access the application '{client_id}'"
            f"({app_name}) in that tenant. The account needs to be added as an external user in the tenant first. "
            "Sign out and sign in again with a different Azure Active Directory user account.",
            emulator_defined="AADSTS50020's text is as reported for interactive sign-in; for the password grant "
            "its status and OAuth error name are unverified",
        )

    def _authenticate(self, tenant: Tenant, username: str, password: str, grant: Grant, client_id: str) -> User:
        user = tenant.user_by_upn(username)
        if user is None:
            raise self._not_in_directory(tenant, username, client_id)
        if not hmac.compare_digest(password.encode(), user.password.encode()):
            raise _wrong_credentials()
        if user.mfa_required:
            raise EntraError(
                400,
                "invalid_grant",
                50076,
                "Due to a configuration change made by your administrator, or because you moved to a new "
                f"location, you must use multi-factor authentication to access '{grant.resource_app_id}'.",
                suberror="basic_action",
                emulator_defined="the v2 password grant's error value for MFA is unverified (invalid_grant "
                "seen on other v2 flows, interaction_required on v1)",
            )
        return user

    @staticmethod
    def _authorize(tenant: Tenant, app: AppRegistration, user: User | None, grant: Grant) -> None:
        if grant.resource_app_id not in tenant.service_principals:
            raise EntraError(
                400,
                "invalid_client",
                650052,
                f"The app is trying to access a service '{grant.resource_app_id}'({grant.resource_name}) that "
                f"your organization '{tenant.tenant_id}' lacks a service principal for. Contact your IT Admin "
                "to review the configuration of your service subscriptions or consent to the application in "
                "order to create the required service principal.",
                emulator_defined="the HTTP status of AADSTS650052 on the token endpoint is unverified",
            )
        if user is None:
            return
        consented = app.consented.get(grant.resource, frozenset())
        missing = consented == frozenset() if grant.default else not grant.permissions <= consented
        if missing:
            raise EntraError(
                400,
                "invalid_grant",
                65001,
                f"The user or administrator has not consented to use the application with ID '{app.client_id}' "
                f"named '{app.display_name}'. Send an interactive authorization request for this user and resource.",
                suberror="consent_required",
            )

    def _issue(
        self,
        tenant: Tenant,
        app: AppRegistration,
        user: User,
        grant: Grant,
        *,
        amr: list[str],
        nonce: str | None = None,
    ) -> dict[str, Any]:
        ctx = self.ctx
        iat = ctx.epoch()
        lifetime = ctx.access_token_lifetime_s or ACCESS_TOKEN_LIFETIME_S
        exp = iat + lifetime
        consented = app.consented.get(grant.resource, frozenset())
        permissions = sorted(consented if grant.default else grant.permissions | consented)
        access_claims = {
            "aud": grant.resource,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": iat,
            "nbf": iat,
            "exp": exp,
            "acr": "1",
            "amr": amr,
            "appid": app.client_id,
            "appidacr": "0",
            "name": user.display_name,
            "oid": user.oid,
            "scp": " ".join(permissions),
            "sub": ctx.ids.stable(f"sub/{user.oid}/{app.client_id}"),
            "tid": tenant.tenant_id,
            "unique_name": user.upn,
            "upn": user.upn,
            "uti": ctx.ids.next("uti"),
            "ver": "1.0",
        }
        body: dict[str, Any] = {
            "token_type": "Bearer",
            "scope": " ".join(f"{grant.resource}/{p}" for p in permissions),
            "expires_in": lifetime,
            "ext_expires_in": lifetime,
            "access_token": ctx.entra_signer.sign(access_claims),
        }
        if grant.wants_refresh:
            refresh = base64.urlsafe_b64encode(ctx.ids.secret(ctx.ids.next("refresh"), 48)).decode().rstrip("=")
            with ctx.lock:
                self.refresh_tokens[refresh] = {"tenant": tenant.name, "user": user.alias, "client_id": app.client_id}
            body["refresh_token"] = refresh
        if grant.wants_id_token:
            id_claims = {
                "aud": app.client_id,
                "iss": f"https://login.microsoftonline.com/{tenant.tenant_id}/v2.0",
                "iat": iat,
                "nbf": iat,
                "exp": iat + 3600,
                "name": user.display_name,
                "oid": user.oid,
                "preferred_username": user.upn,
                "sub": access_claims["sub"],
                "tid": tenant.tenant_id,
                "ver": "2.0",
            }
            if nonce:  # the authorize request's nonce, which MSAL.js checks (OpenID Connect Core 1.0 §3.1.2.1)
                id_claims["nonce"] = nonce
            body["id_token"] = ctx.entra_signer.sign(id_claims)
            client_info = json.dumps({"uid": user.oid, "utid": tenant.tenant_id}).encode()
            body["client_info"] = base64.urlsafe_b64encode(client_info).decode().rstrip("=")
        return body

    def _refresh(self, tenant: Tenant, app: AppRegistration, form: dict[str, str]) -> dict[str, Any]:
        with self.ctx.lock:
            record = self.refresh_tokens.pop(form.get("refresh_token", ""), None)
        if record is None or record["tenant"] != tenant.name or record["client_id"] != app.client_id:
            raise EntraError(
                400,
                "invalid_grant",
                9002313,
                "Invalid request. Request is malformed or invalid.",
                emulator_defined="the exact code for an unknown refresh token varies in the real service",
            )
        user = tenant.users[record["user"]]
        grant = self._resolve_scopes(tenant, form.get("scope", ""))
        self._authorize(tenant, app, user, grant)
        return self._issue(tenant, app, user, grant, amr=["pwd"])

    def _client_credentials(self, tenant: Tenant, app: AppRegistration, form: dict[str, str]) -> dict[str, Any]:
        if "client_secret" not in form and "client_assertion" not in form:
            raise EntraError(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            )
        scope = form.get("scope", "")
        if len(scope.split()) > 1 and all(s.endswith("/.default") for s in scope.split()):
            # what Entra answered an app asking for two resources' .default at once (azure-sdk-for-net#9076)
            raise _invalid_scope(scope)
        if not scope.endswith("/.default") or len(scope.split()) != 1:
            raise EntraError(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows must have a scope "
                "value with /.default suffixed to the resource identifier (application ID URI).",
            )
        grant = self._resolve_scopes(tenant, scope)
        if grant.resource_app_id not in tenant.service_principals:
            # The resource exists, but the tenant has no service principal for it: the resource principal is
            # not found in this tenant, which is what AADSTS500011's text says.
            raise EntraError(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {grant.resource} was not found in the tenant named "
                f"{tenant.display_name}. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant. You might have sent your "
                "authentication request to the wrong tenant.",
                emulator_defined="AADSTS500011 (not 650052) for a client-credentials request whose resource has no "
                "service principal in the tenant is inferred from the code's text",
            )
        self._authorize(tenant, app, None, grant)
        # The audience is the resource as requested, v1 style: the SDKs' double-slash spelling
        # (https://communication.azure.com//.default) gives the resource with its trailing slash, as for
        # ARM (inferred: identity.md §7, emulator-defined).
        requested = scope.removesuffix("/.default")
        aud = requested if requested.rstrip("/") == grant.resource else grant.resource
        iat = self.ctx.epoch()
        claims = {
            "aud": aud,
            "iss": f"https://sts.windows.net/{tenant.tenant_id}/",
            "iat": iat,
            "nbf": iat,
            "exp": iat + ACCESS_TOKEN_LIFETIME_S,
            "appid": app.client_id,
            "appidacr": "1",
            "idtyp": "app",
            "oid": service_principal_oid(self.ctx.ids, tenant.name, app.client_id),
            "roles": [],  # app roles granted on the resource: the sandbox grants none (ACS authorizes by Azure RBAC)
            "tid": tenant.tenant_id,
            "ver": "1.0",
        }
        return {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME_S,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME_S,
            "access_token": self.ctx.entra_signer.sign(claims),
        }

    # -- authorization code + PKCE (a browser sign-in) ---------------------------------------------
    # docs/contracts/identity.md §11: the authorize request, its login page, the code's redemption, and what
    # Entra answers a redirect URI registered under no platform or the wrong one.

    def _authorize_request(self, request: Request) -> tuple[Tenant, AppRegistration, dict[str, str], str]:
        """The tenant, app, query and the redirect URI's platform of an authorize request whose redirect URI
        can be trusted; an error page (raised) otherwise: Entra never redirects to a URI it does not know."""
        query = dict(request.query_params)
        tenant = self._tenant_or_error(request.path_params["tenant"])
        client_id = query.get("client_id", "")
        app = tenant.apps.get(client_id)
        if app is None:
            self._app(tenant, {"client_id": client_id})  # raises AADSTS700016
        assert app is not None
        redirect_uri = query.get("redirect_uri", "")
        platform = app.redirect_platform(redirect_uri)
        if platform is None:
            # The code and its meaning: the Entra error-code reference (AADSTS50011 InvalidReplyTo); the text as
            # the sign-in page shows it (third-party reports, docs/contracts/identity.md §11).
            raise EntraError(
                400,
                "invalid_request",
                50011,
                f"The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs "
                f"configured for the application '{app.client_id}'. Make sure the redirect URI sent in the request "
                "matches one added to your application in the Azure portal. Navigate to "
                "https://aka.ms/redirectUriMismatchError to learn more about how to fix this.",
                emulator_defined="AADSTS50011's page text is as third parties quote it; its HTTP status (400) and "
                "its JSON form (Entra shows an HTML error page) are the sandbox's",
            )
        return tenant, app, query, platform

    async def authorize_page(self, request: Request) -> Response:
        """The authorize endpoint: checks the request, then the sign-in page (a minimal form)."""
        try:
            self._authorize_request(request)
        except EntraError as err:
            return self._error_page(err)
        return HTMLResponse(_SIGN_IN_PAGE.format(message=""))

    async def authorize_sign_in(self, request: Request) -> Response:
        """The sign-in page posted: the user authenticated (the password check and its AADSTS errors), then a
        redirect to the redirect URI with `code` and `state` (or with `error`), as `response_mode` says."""
        try:
            tenant, app, query, platform = self._authorize_request(request)
        except EntraError as err:
            return self._error_page(err)
        form = await form_fields(request)
        response_type = query.get("response_type", "")
        method = query.get("code_challenge_method", "plain" if query.get("code_challenge") else "")
        try:
            if response_type != "code":
                raise EntraError(
                    400,
                    "unsupported_response_type",
                    700054,
                    f"response_type '{response_type}' is not enabled for the application.",
                    emulator_defined="only response_type=code is emulated",
                )
            if method not in ("", "plain", "S256"):
                raise EntraError(
                    400,
                    "invalid_request",
                    501491,
                    "Invalid size of Code_Challenge parameter.",
                    emulator_defined="the answer to a code_challenge_method other than S256 or plain",
                )
            grant = self._resolve_scopes(tenant, query.get("scope", ""))
        except EntraError as err:
            return self._redirect_error(query, err)
        try:
            user = self._authenticate(tenant, form.get("username", ""), form.get("password", ""), grant, app.client_id)
        except EntraError as err:  # the sign-in page says why, as it does for a wrong password
            page = _SIGN_IN_PAGE.format(message=html.escape(f"AADSTS{err.code}: {err.message}", quote=False))
            return err.marked(HTMLResponse(page, status_code=400))
        try:
            self._authorize(tenant, app, user, grant)
        except EntraError as err:
            return self._redirect_error(query, err)
        ctx = self.ctx
        code = base64.urlsafe_b64encode(ctx.ids.secret(ctx.ids.next("authorization-code"), 48)).decode().rstrip("=")
        with ctx.lock:
            self.authorization_codes[code] = {
                "tenant": tenant.name,
                "client_id": app.client_id,
                "redirect_uri": query.get("redirect_uri", ""),
                "scope": query.get("scope", ""),
                "user": user.alias,
                "challenge": query.get("code_challenge", ""),
                "method": method,
                "nonce": query.get("nonce"),
                "expires": ctx.epoch() + AUTHORIZATION_CODE_LIFETIME_S,
            }
        return self._redirect(query, {"code": code, "state": query.get("state")})

    @staticmethod
    def _redirect(query: dict[str, str], params: dict[str, str | None]) -> Response:
        kept = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        separator = "#" if query.get("response_mode") == "fragment" else ("&" if "?" in query["redirect_uri"] else "?")
        return RedirectResponse(f"{query['redirect_uri']}{separator}{kept}", status_code=302)

    def _redirect_error(self, query: dict[str, str], err: EntraError) -> Response:
        timestamp = self.ctx.now().strftime("%Y-%m-%d %H:%M:%SZ")
        params = {
            "error": err.error,
            "error_description": f"AADSTS{err.code}: {err.message} Timestamp: {timestamp}",
            "error_codes": str(err.code),
            "state": query.get("state"),
        }
        return err.marked(self._redirect(query, params))

    @staticmethod
    def _error_page(err: EntraError) -> Response:
        """The sign-in page's error screen: what Entra shows when it cannot redirect (an unknown redirect URI)."""
        page = _ERROR_PAGE.format(
            code=err.code, message=html.escape(err.message, quote=False), error=html.escape(err.error)
        )
        return err.marked(HTMLResponse(page, status_code=err.status))

    def _redeem_authorization_code(
        self, tenant: Tenant, app: AppRegistration, form: dict[str, str], origin: str | None
    ) -> dict[str, Any]:
        """grant_type=authorization_code: the code, the redirect URI it was issued for, the PKCE verifier, and
        who may redeem it: a browser (an Origin header) only a spa redirect URI's code, a non-browser only the
        others' (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow, "Redirect URIs
        for single-page apps (SPAs)")."""
        with self.ctx.lock:
            record = self.authorization_codes.pop(form.get("code", ""), None)
        if record is None or record["tenant"] != tenant.name or record["client_id"] != app.client_id:
            raise EntraError(
                400,
                "invalid_grant",
                70000,
                "The provided value for the 'code' parameter is not valid.",
                emulator_defined="the code and text for an unknown or reused authorization code",
            )
        if self.ctx.epoch() > record["expires"]:
            raise EntraError(
                400,
                "invalid_grant",
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new "
                "interactive authorization request for this user and resource.",
            )
        if form.get("redirect_uri", "") != record["redirect_uri"]:
            raise EntraError(
                400,
                "invalid_grant",
                70000,
                "The provided value for the 'redirect_uri' is not valid. The value must exactly match the redirect "
                "URI used to obtain the authorization code.",
                emulator_defined="the text for a redemption naming another redirect URI is as third parties quote it",
            )
        platform = app.redirect_platform(record["redirect_uri"])
        if origin and platform != "spa":
            raise EntraError(
                400,
                "invalid_request",
                9002326,
                "Cross-origin token redemption is permitted only for the 'Single-Page Application' client-type. "
                f"Request origin: '{origin}'.",
                emulator_defined="AADSTS9002326's code and text as real answers quoted by third parties show them "
                "(Microsoft documents the refusal, not its body)",
            )
        if not origin and platform == "spa":
            raise EntraError(
                400,
                "invalid_request",
                9002327,
                "Tokens issued for the 'Single-Page Application' client-type may only be redeemed via cross-origin "
                "requests.",
                emulator_defined="AADSTS9002327's code and text as real answers quoted by third parties show them "
                "(Microsoft documents the refusal, not its body)",
            )
        if origin and platform == "spa" and not (record["challenge"] and form.get("code_verifier")):
            raise EntraError(
                400,
                "invalid_request",
                9002325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
                emulator_defined="AADSTS9002325's code and text as third parties quote them (Microsoft's page "
                "recommends PKCE for every app type and gives no such answer); that it follows AADSTS9002326 and "
                "comes for a code requested without a code_challenge too is the sandbox's choice",
            )
        if platform == "web":
            self._require_public_client(app, form)
        if record["challenge"]:
            verifier = form.get("code_verifier", "")
            if record["method"] == "S256":
                computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
            else:
                computed = verifier
            if not verifier or not hmac.compare_digest(computed, record["challenge"]):
                raise EntraError(
                    400,
                    "invalid_grant",
                    50148,
                    "The code_verifier does not match the code_challenge supplied in the authorization request "
                    "for PKCE.",
                    emulator_defined="AADSTS50148's text as third parties quote it",
                )
        grant = self._resolve_scopes(tenant, record["scope"])
        user = tenant.users[record["user"]]
        self._authorize(tenant, app, user, grant)
        return self._issue(tenant, app, user, grant, amr=["pwd"], nonce=record.get("nonce"))

    # -- device code -----------------------------------------------------------------------------

    async def device_code(self, request: Request) -> Response:
        form = await form_fields(request)
        tenant = self._tenant_or_error(request.path_params["tenant"])
        app = self._app(tenant, form)
        self._require_public_client(app, form)
        self._resolve_scopes(tenant, form.get("scope", ""))
        ctx = self.ctx
        device_code = base64.urlsafe_b64encode(ctx.ids.secret(ctx.ids.next("device"), 36)).decode().rstrip("=")
        user_code = base64.b32encode(ctx.ids.secret(device_code, 5)).decode()[:9]
        with ctx.lock:
            self.device_codes[device_code] = {
                "tenant": tenant.name,
                "client_id": app.client_id,
                "scope": form.get("scope", ""),
                "user_code": user_code,
                "expires": ctx.epoch() + DEVICE_CODE_LIFETIME_S,
                "user": None,
            }
        uri = f"{base_url(request)}/common/oauth2/deviceauth"
        return self.json(
            request,
            {
                "user_code": user_code,
                "device_code": device_code,
                "verification_uri": uri,
                "expires_in": DEVICE_CODE_LIFETIME_S,
                "interval": 5,
                "message": f"To sign in, use a web browser to open the page {uri} and enter the code {user_code} "
                "to authenticate.",
            },
        )

    def _redeem_device_code(self, tenant: Tenant, app: AppRegistration, form: dict[str, str]) -> tuple[Grant, User]:
        code = form.get("device_code") or form.get("code") or ""
        with self.ctx.lock:
            record = self.device_codes.get(code)
        if record is None or record["tenant"] != tenant.name or record["client_id"] != app.client_id:
            raise EntraError(400, "invalid_grant", 70000, "The provided value for the 'device_code' is not valid.")
        if self.ctx.epoch() > record["expires"]:
            raise EntraError(400, "expired_token", 70019, "Verification code expired.")
        if record["user"] is None:
            raise EntraError(
                400,
                "authorization_pending",
                70016,
                "OAuth 2.0 device flow error. Authorization is pending. Continue polling.",
            )
        with self.ctx.lock:
            self.device_codes.pop(code, None)
        return self._resolve_scopes(tenant, record["scope"]), tenant.users[record["user"]]

    async def device_auth_page(self, request: Request) -> Response:
        return HTMLResponse(_DEVICE_PAGE.format(message=""))

    async def device_auth_approve(self, request: Request) -> Response:
        """The person's side of the device-code flow: enter the code, then sign in."""
        form = await form_fields(request)
        user_code = form.get("user_code", "").strip().upper()
        with self.ctx.lock:
            record = next((r for r in self.device_codes.values() if r["user_code"] == user_code), None)
        if record is None:
            page = _DEVICE_PAGE.format(message="That code didn't work. Check the code and try again.")
            return HTMLResponse(page, status_code=400)
        tenant = self.ctx.directory.tenants[record["tenant"]]
        try:
            grant = self._resolve_scopes(tenant, record["scope"])
            user = self._authenticate(
                tenant, form.get("username", ""), form.get("password", ""), grant, record["client_id"]
            )
            self._authorize(tenant, tenant.apps[record["client_id"]], user, grant)
        except EntraError as err:
            message = html.escape(f"AADSTS{err.code}: {err.message}")
            return HTMLResponse(_DEVICE_PAGE.format(message=message), status_code=400)
        with self.ctx.lock:
            record["user"] = user.alias
        return HTMLResponse(
            "<!doctype html><title>Signed in</title><p>You have signed in. You may now close this window.</p>"
        )


_DEVICE_PAGE = """<!doctype html><html><head><title>Enter code</title></head><body>
<h1>Enter code</h1><p role="alert">{message}</p>
<form method="post"><label>Code <input name="user_code" autocomplete="off"></label>
<label>Email <input name="username" type="email"></label>
<label>Password <input name="password" type="password"></label>
<button type="submit">Sign in</button></form></body></html>"""


_SIGN_IN_PAGE = """<!doctype html><html><head><title>Sign in to your account</title></head><body>
<h1>Sign in</h1><p role="alert">{message}</p>
<form method="post"><label>Email <input name="username" type="email" autocomplete="username"></label>
<label>Password <input name="password" type="password" autocomplete="current-password"></label>
<button type="submit">Sign in</button></form></body></html>"""

_ERROR_PAGE = """<!doctype html><html><head><title>Sign in to your account</title></head><body>
<h1>Sorry, but we're having trouble signing you in.</h1>
<p id="error" data-error="{error}">AADSTS{code}: {message}</p></body></html>"""
