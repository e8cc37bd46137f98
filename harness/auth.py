"""Signing a Teams user in to Microsoft Entra ID with unmodified MSAL Python.

Test accounts use the password grant (ROPC), as Microsoft's own SDK live tests do; people use the
device-code flow. Tokens stay in memory: the MSAL cache is never written to disk.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import msal
import requests

from harness import contract, tokens
from harness.config import Secret, Tenant


class ObservingSession(requests.Session):
    """A requests session that keeps the last response's status and headers for evidence.

    MSAL returns an error's JSON body but not its headers; the request id and the sandbox's
    emulator-defined marker live in headers.
    """

    def __init__(self, ca_bundle: str | None) -> None:
        super().__init__()
        self.last_status: int | None = None
        self.last_headers: dict[str, str] = {}
        if ca_bundle:
            # requests lets REQUESTS_CA_BUNDLE override Session.verify unless trust_env is off
            # (contracts/identity.md §5.1 gotcha 1). The sandbox is on loopback: no proxy needed.
            self.verify = ca_bundle
            self.trust_env = False

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        response = super().request(method, url, *args, **kwargs)
        self.last_status = response.status_code
        self.last_headers = dict(response.headers)
        return response


MSAL_DEFAULT_THROTTLE_S = 60.0  # how long MSAL caches a 429/5xx with no Retry-After (public client apps)


MAX_RETRY_WAIT_S = 61.0  # a service asking for a longer pause is not transiently unavailable: give up


def _retry_after(headers: dict[str, str], *, default: float) -> float:
    """Seconds to wait before trying again: the response's Retry-After (whole seconds, as Entra
    sends it) plus a little, so that MSAL's cached copy of the failure has expired."""
    value = {k.lower(): v for k, v in headers.items()}.get("retry-after", "").strip()
    return (int(value) if value.isascii() and value.isdecimal() else default) + 0.05


@dataclass
class SignIn:
    """The outcome of one sign-in, as evidence: never the secrets themselves in a repr."""

    alias: str
    scopes: tuple[str, ...]
    access_token: Secret | None = field(default=None, repr=False)
    claims: dict[str, Any] = field(default_factory=dict, repr=False)
    oid: str | None = None
    status: int | None = None
    error: str | None = None
    aadsts: int | None = None
    suberror: str | None = None
    description: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    retries: list[str] = field(default_factory=list)  # transient failures retried on the way

    @property
    def ok(self) -> bool:
        return self.access_token is not None

    @property
    def expires_at(self) -> int | None:
        exp = self.claims.get("exp")
        return int(exp) if exp is not None else None


# A transient Entra failure (429, 5xx, a dropped connection) is tried again at most this many times.
TRANSIENT_RETRIES = 2


class EntraSignIn:
    """One MSAL public client application for a tenant, with an in-memory token cache.

    Transient failures are retried here, in step with MSAL rather than against it: MSAL raises on a
    5xx, returns a 429 as an error result, and caches both (per URL, client, scope and user) for their
    `Retry-After` (60 s without one, for a public client), answering from that cache until it expires; it does not retry
    itself when given its own HTTP client. So a retry waits out `Retry-After` first, and there are
    at most TRANSIENT_RETRIES of them; each one is listed in `retries`.
    """

    def __init__(self, tenant: Tenant) -> None:
        self.tenant = tenant
        self.session = ObservingSession(tenant.ca_bundle)
        self.app = msal.PublicClientApplication(
            tenant.client_id,
            authority=tenant.authority,
            http_client=self.session,
            token_cache=msal.SerializableTokenCache(),
        )
        self.retries: list[str] = []
        self.sleep: Callable[[float], None] = time.sleep

    def _acquire(self, attempt: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        for tries in range(TRANSIENT_RETRIES + 1):
            last = tries == TRANSIENT_RETRIES
            try:
                result = attempt()
            except msal.exceptions.MsalServiceError as exc:  # how MSAL reports a 5xx
                why, wait = str(exc), _retry_after(self.session.last_headers, default=MSAL_DEFAULT_THROTTLE_S)
                if last or not why.startswith("HTTP Error: 5") or wait > MAX_RETRY_WAIT_S:
                    raise
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                if last:
                    raise
                why, wait = f"connection dropped ({type(exc).__name__})", 0.5  # nothing cached: a short pause
            else:
                if self.session.last_status != 429 or "access_token" in result or last:
                    return result
                why, wait = "HTTP 429", _retry_after(self.session.last_headers, default=MSAL_DEFAULT_THROTTLE_S)
                if wait > MAX_RETRY_WAIT_S:
                    return result
            self.retries.append(f"token request: {why}; retried after {wait:g} s")
            self.sleep(wait)
        raise AssertionError("unreachable")

    def with_password(
        self, alias: str, scopes: Sequence[str] = contract.TEAMS_SCOPES, *, wrong_password: bool = False
    ) -> SignIn:
        user = self.tenant.user(alias)
        password = str(user.password) + ("-not-the-password" if wrong_password else "")
        before = len(self.retries)
        with warnings.catch_warnings():
            # ROPC is deprecated for people; test accounts without MFA are what it is for.
            warnings.simplefilter("ignore", DeprecationWarning)
            result = self._acquire(
                lambda: self.app.acquire_token_by_username_password(user.upn, password, scopes=list(scopes))
            )
        observed = self._observe(alias, scopes, result)
        observed.retries = self.retries[before:]
        return observed

    def with_device_code(
        self, scopes: Sequence[str] = contract.TEAMS_SCOPES, prompt: Callable[[str], None] = print
    ) -> SignIn:
        """For a person: show the code, wait until they have signed in in a browser."""
        flow = self.app.initiate_device_flow(scopes=list(scopes))
        if "user_code" not in flow:
            return self._observe("device-code", scopes, flow)
        prompt(flow["message"])
        result = self.app.acquire_token_by_device_flow(flow)
        return self._observe("device-code", scopes, result)

    def start_device_code(self, scopes: Sequence[str] = contract.TEAMS_SCOPES) -> dict[str, Any]:
        return self.app.initiate_device_flow(scopes=list(scopes))

    def finish_device_code(self, flow: dict[str, Any], scopes: Sequence[str] = contract.TEAMS_SCOPES) -> SignIn:
        return self._observe("device-code", scopes, self.app.acquire_token_by_device_flow(flow))

    def _observe(self, alias: str, scopes: Sequence[str], result: dict[str, Any]) -> SignIn:
        headers = {k.lower(): v for k, v in self.session.last_headers.items()}
        observed = SignIn(
            alias=alias,
            scopes=tuple(scopes),
            status=self.session.last_status,
            request_id=headers.get("x-ms-request-id"),
            emulator_defined=headers.get(contract.EMULATOR_DEFINED_HEADER),
        )
        if "access_token" in result:
            observed.access_token = Secret(result["access_token"])
            try:
                observed.claims = tokens.claims(result["access_token"])
            except ValueError:
                observed.claims = {}
            observed.oid = (result.get("id_token_claims") or {}).get("oid") or observed.claims.get("oid")
            return observed
        observed.error = result.get("error")
        observed.suberror = result.get("suberror")
        observed.description = result.get("error_description")
        codes = result.get("error_codes") or []
        observed.aadsts = int(codes[0]) if codes else None
        return observed
