"""Exchanging a Teams user's Entra token for an ACS token with unmodified azure-communication-identity."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from azure.communication.identity import CommunicationIdentityClient, CommunicationTokenScope
from azure.core.exceptions import HttpResponseError

from harness.client.auth import is_well_known_authority
from harness.core.config import AcsCredential, Secret, Tenant
from harness.wire import contract, tokens

# The resource the credential gets a token for; the SDK asks for "https://communication.azure.com//.default".
ACS_DATA_PLANE = "https://communication.azure.com"


@dataclass
class Exchange:
    """What the ACS Identity service answered to one request, as evidence."""

    operation: str
    status: int | None = None
    code: str | None = None
    message: str | None = None
    target: str | None = None
    request_id: str | None = None
    emulator_defined: str | None = None
    token: Secret | None = field(default=None, repr=False)
    expires_on: str | None = None
    identity: str | None = None
    retries: list[str] = field(default_factory=list)  # transient failures the harness retried
    auth: str = "hmac"  # how the request authenticated to ACS: "hmac" (access key) or "entra:<credential kind>"
    date: str | None = None  # the answer's Date header: the service's time of the request

    @property
    def ok(self) -> bool:
        return self.token is not None or (self.status is not None and 200 <= self.status < 300)

    @property
    def claims(self) -> dict[str, Any]:
        return tokens.claims(self.token) if self.token else {}

    @property
    def expires_epoch(self) -> int | None:
        return int(datetime.fromisoformat(self.expires_on).timestamp()) if self.expires_on else None


THROTTLE_RETRIES = 2
BARE_429_PAUSE_S = 1.0  # a 429 that names no Retry-After: pause this long before the harness retries


def entra_credential(tenant: Tenant, spec: AcsCredential | None = None) -> Any:
    """The azure-identity credential a profile's [acs] names (or `spec`: the app's own, [app]), reaching the
    tenant's Entra ID (the canonical host, routed to the sandbox there, with the profile's CA bundle)."""
    spec = spec or tenant.acs_credential
    assert spec is not None, "the profile names no Entra ID credential for ACS"
    from azure.identity import CertificateCredential, ClientSecretCredential, DefaultAzureCredential

    options: dict[str, Any] = {"authority": spec.authority_host}
    if tenant.ca_bundle:
        options["connection_verify"] = tenant.ca_bundle
    if tenant.mode != "live" or not is_well_known_authority(spec.authority_host):
        # The sandbox (and its recordings) answer for their own tenants only; an authority that is not one of
        # Microsoft's hosts (a tenant served elsewhere) is trusted as the profile gives it, as MSAL's own is.
        options["disable_instance_discovery"] = True
    if spec.kind == "client-secret":
        return ClientSecretCredential(spec.tenant_id, spec.client_id, str(spec.client_secret), **options)
    if spec.kind == "certificate":
        password = str(spec.certificate_password).encode() if spec.certificate_password else None
        return CertificateCredential(
            spec.tenant_id, spec.client_id, spec.certificate_path, password=password, **options
        )
    # A managed identity (or whatever DefaultAzureCredential finds on this machine): live mode only.
    return DefaultAzureCredential(
        **options,
        managed_identity_client_id=spec.client_id or None,
        exclude_interactive_browser_credential=True,
    )


class AcsIdentity:
    def __init__(self, tenant: Tenant, *, credential: Any = None) -> None:
        """`credential`: the Entra ID credential to reach ACS with, when the profile names one (default: a new one)."""
        self.tenant = tenant
        self.auth = tenant.acs_auth
        verify = tenant.ca_bundle or True
        if tenant.acs_credential is None:
            self.client = CommunicationIdentityClient.from_connection_string(
                str(tenant.acs_connection_string), connection_verify=verify
            )
        else:
            self.client = CommunicationIdentityClient(
                tenant.acs_endpoint, credential or entra_credential(tenant), connection_verify=verify
            )
        self.retries: list[str] = []
        self.sleep: Callable[[float], None] = time.sleep

    def _call(self, operation: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[Exchange, Any]:
        """One SDK call. azure-core's RetryPolicy already retries any error answer that carries
        Retry-After (waiting it out), and a POST answered 500, 503 or 504 without one; it leaves a POST
        answered 429 without Retry-After to the caller. So the harness retries only that, after a
        pause, at most THROTTLE_RETRIES times, each listed in `retries`: never on top of azure-core."""
        retries: list[str] = []
        for tries in range(THROTTLE_RETRIES + 1):
            try:
                observed, value = self._call_once(operation, fn, *args, **kwargs)
            except HttpResponseError as err:
                raw = err.response.headers if err.response is not None else {}
                headers = {k.lower(): v for k, v in dict(raw).items()}
                if err.status_code != 429 or "retry-after" in headers or tries == THROTTLE_RETRIES:
                    # A 429 with Retry-After has already been retried by azure-core, as often as it will.
                    observed, value = self._failed(Exchange(operation=operation), err)
                    break
                retries.append(f"{operation}: HTTP 429 without Retry-After; retried after {BARE_429_PAUSE_S:g} s")
                self.sleep(BARE_429_PAUSE_S)
            else:
                break
        observed.retries = retries
        self.retries += retries
        return observed, value

    def _failed(self, observed: Exchange, err: HttpResponseError) -> tuple[Exchange, Any]:
        observed.auth = self.auth
        observed.status = err.status_code
        if err.status_code is None and (aadsts := re.search(r"AADSTS(\d+)", str(err))):
            # The Entra ID credential was refused before ACS was asked (azure-identity's ClientAuthenticationError).
            observed.code = f"AADSTS{aadsts.group(1)}"
            observed.message = next((line for line in str(err).splitlines() if "AADSTS" in line), str(err))
        if err.error is not None:
            observed.code, observed.message = err.error.code, err.error.message
            observed.target = getattr(err.error, "target", None)
        self._headers(observed, err.response.headers if err.response is not None else {})
        return observed, None

    def _call_once(self, operation: str, fn: Any, *args: Any, **kwargs: Any) -> tuple[Exchange, Any]:
        observed = Exchange(operation=operation, auth=self.auth)
        responses: list[Any] = []
        value = fn(*args, raw_response_hook=responses.append, **kwargs)
        if responses:
            observed.status = responses[-1].http_response.status_code
            self._headers(observed, responses[-1].http_response.headers)
        return observed, value

    @staticmethod
    def _headers(observed: Exchange, headers: Any) -> None:
        lowered = {k.lower(): v for k, v in dict(headers).items()}
        observed.request_id = lowered.get("ms-cv") or lowered.get("x-ms-client-request-id")
        observed.emulator_defined = lowered.get(contract.EMULATOR_DEFINED_HEADER)
        observed.date = lowered.get("date")

    def exchange(self, entra_token: str, app_id: str, user_id: str) -> Exchange:
        """POST /teamsUser/:exchangeAccessToken through `get_token_for_teams_user`."""
        observed, token = self._call(
            "teamsUser/:exchangeAccessToken", self.client.get_token_for_teams_user, entra_token, app_id, user_id
        )
        if token is not None:
            observed.token = Secret(token.token)
            observed.expires_on = str(token.expires_on)  # the SDK hands back the service's string
        return observed

    def create_user_with_token(self, scopes: tuple[str, ...] = ("voip",)) -> Exchange:
        """An ACS identity (not a Teams user) and a token for it."""
        observed, value = self._call(
            "identities", self.client.create_user_and_token, [CommunicationTokenScope(s) for s in scopes]
        )
        if value is not None:
            user, token = value
            observed.identity = user.properties["id"]
            observed.token = Secret(token.token)
            observed.expires_on = str(token.expires_on)
        return observed
