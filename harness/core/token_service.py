"""A partner's token service as a profile describes it (`[backend]`): where it listens, how a client hands
it the user's Entra token, where the ACS token comes back, and what the tenant offers to check it with.

    [backend]
    url = "https://staging.contoso.example/api/token/teams"   # or `cte backend check --url`
    method = "GET"                           # GET (default) or POST
    token_header = "teams-user-aad-token"    # the header carrying the Entra token (default, as Microsoft's
                                             # Authentication Hero sample); "Authorization" sends "Bearer <token>"
    # token_field = "token"                  # or: a JSON body field carrying it (POST)
    acs_token_field = "token"                # the answer's JSON field holding the ACS token (default)
    expires_on_field = "expiresOn"           # ... and its expiry (default; ISO 8601)
    other_client_id = "<GUID>"               # another app of the tenant, consented to the Teams scopes
    chats_only_client_id = "<GUID>"          # an app consented to Teams.ManageChats only
    max_expiry_wait_s = 120                  # how long a scenario may wait for an Entra token to expire

    [backend.second_tenant]                  # a user of another organisation that bought the app
    tenant_id = "<GUID>"
    upn = "user@fabrikam.example"
    password_env = "FABRIKAM_USER_PASSWORD"
    oid = "<GUID>"
    expected = "serve"                       # serve | refuse

A profile the sandbox wrote also names `exchange_log_url`: the sandbox's record of every exchange request
its ACS resource received, which no live tenant offers.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.core.config import GUID
from harness.core.prerequisites import MissingPrerequisite

HERO_HEADER = "teams-user-aad-token"  # Microsoft's Authentication Hero sample: GET /api/token/teams
KEYS = {
    "url",
    "method",
    "token_header",
    "token_field",
    "acs_token_field",
    "expires_on_field",
    "other_client_id",
    "chats_only_client_id",
    "exchange_log_url",
    "max_expiry_wait_s",
    "second_tenant",
}
SECOND_TENANT_KEYS = {"tenant_id", "upn", "password_env", "oid", "expected"}
# Where a replayed run's token service is: recordings name it by this origin, whatever port it had.
RECORDED_ORIGIN = {"http": "http://token-service.cte.invalid", "https": "https://token-service.cte.invalid"}


class BackendProfileError(ValueError):
    """A [backend] table (or --url) that cannot work: one line naming the key and the fix."""


@dataclass(frozen=True)
class SecondTenant:
    tenant_id: str
    upn: str
    password_env: str
    oid: str | None
    expected: str  # serve | refuse


@dataclass(frozen=True)
class TokenServiceSpec:
    url: str
    method: str = "GET"
    token_header: str | None = HERO_HEADER
    token_field: str | None = None
    acs_token_field: str = "token"
    expires_on_field: str = "expiresOn"
    other_client_id: str | None = None
    chats_only_client_id: str | None = None
    exchange_log_url: str | None = None
    max_expiry_wait_s: float = 120.0
    second_tenant: SecondTenant | None = None

    @property
    def origin(self) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def handed_as(self) -> str:
        """How the Entra token travels, in words (evidence)."""
        if self.token_field:
            return f"{self.method} {self.url} with the token in the JSON field {self.token_field!r}"
        if (self.token_header or "").lower() == "authorization":
            return f"{self.method} {self.url} with Authorization: Bearer <token>"
        return f"{self.method} {self.url} with the token in the header {self.token_header!r}"

    def client_id(self, purpose: str, profile: str) -> str:
        """other_client_id or chats_only_client_id; a scenario without it SKIPs naming the entry to add."""
        value = getattr(self, purpose)
        if not value:
            what = {
                "other_client_id": "the client id of another app registration of your tenant, consented to "
                "Teams.ManageCalls and Teams.ManageChats (not the app your token service serves)",
                "chats_only_client_id": "the client id of an app registration consented to Teams.ManageChats only",
            }[purpose]
            raise MissingPrerequisite(f"profile {profile!r} names no [backend].{purpose}; set it to {what}")
        return str(value)


def _url(value: Any, where: str, key: str) -> str:
    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendProfileError(
            f"{where}: {key} = {value!r} is not an http(s) URL; give the full URL of the token service's "
            "exchange endpoint, e.g. http://localhost:8600/api/token/teams"
        )
    if parts.scheme == "http" and parts.hostname not in ("localhost", "127.0.0.1", "::1"):
        raise BackendProfileError(
            f"{where}: {key} = {value!r} sends users' Entra tokens over plain http to another host; use https "
            "(plain http is for a service on this machine only)"
        )
    return str(value)


def spec_from(table: Mapping[str, Any] | None, where: str, *, url: str | None = None) -> TokenServiceSpec:
    """The token service a profile's [backend] (and `--url`, which wins) describes; BackendProfileError otherwise."""
    table = dict(table or {})
    unknown = sorted(set(table) - KEYS)
    if unknown:
        raise BackendProfileError(f"{where}: [backend] has unknown key {unknown[0]!r}; use {', '.join(sorted(KEYS))}")
    chosen = url or table.get("url")
    if not chosen:
        raise BackendProfileError(
            f"{where}: no token service to check; pass --url URL or set [backend] url in the profile"
        )
    key = "--url" if url else "[backend].url"
    method = str(table.get("method", "POST" if table.get("token_field") else "GET")).upper()
    if method not in ("GET", "POST"):
        raise BackendProfileError(f"{where}: [backend].method = {method!r} is not valid; use GET or POST")
    if table.get("token_field") and table.get("token_header"):
        raise BackendProfileError(
            f"{where}: [backend] names both token_header and token_field; keep the one your service reads"
        )
    if table.get("token_field") and method != "POST":
        raise BackendProfileError(f'{where}: [backend].token_field needs method = "POST" (a JSON body)')
    for purpose in ("other_client_id", "chats_only_client_id"):
        if purpose in table and not GUID.match(str(table[purpose])):
            raise BackendProfileError(f"{where}: [backend].{purpose} = {table[purpose]!r} is not a GUID (a client id)")
    wait = table.get("max_expiry_wait_s", 120)
    if not isinstance(wait, int | float) or isinstance(wait, bool) or not 0 <= wait <= 7200:
        raise BackendProfileError(
            f"{where}: [backend].max_expiry_wait_s = {wait!r} is not a number of seconds (0-7200)"
        )
    return TokenServiceSpec(
        url=_url(chosen, where, key),
        method=method,
        token_header=None if table.get("token_field") else str(table.get("token_header", HERO_HEADER)),
        token_field=str(table["token_field"]) if table.get("token_field") else None,
        acs_token_field=str(table.get("acs_token_field", "token")),
        expires_on_field=str(table.get("expires_on_field", "expiresOn")),
        other_client_id=table.get("other_client_id"),
        chats_only_client_id=table.get("chats_only_client_id"),
        exchange_log_url=_url(table["exchange_log_url"], where, "[backend].exchange_log_url")
        if table.get("exchange_log_url")
        else None,
        max_expiry_wait_s=float(wait),
        second_tenant=_second_tenant(table.get("second_tenant"), where),
    )


def _second_tenant(table: Any, where: str) -> SecondTenant | None:
    if table is None:
        return None
    if not isinstance(table, dict):
        raise BackendProfileError(f"{where}: [backend.second_tenant] must be a table")
    if "password" in table:
        raise BackendProfileError(
            f"{where}: [backend.second_tenant].password holds a secret in the file; remove it and use password_env"
        )
    unknown = sorted(set(table) - SECOND_TENANT_KEYS)
    if unknown:
        raise BackendProfileError(
            f"{where}: [backend.second_tenant] has unknown key {unknown[0]!r}; "
            f"use {', '.join(sorted(SECOND_TENANT_KEYS))}"
        )
    for key in ("tenant_id", "upn", "password_env"):
        if not isinstance(table.get(key), str) or not table[key]:
            raise BackendProfileError(f"{where}: [backend.second_tenant].{key} is missing")
    if not GUID.match(table["tenant_id"]):
        raise BackendProfileError(f"{where}: [backend.second_tenant].tenant_id = {table['tenant_id']!r} is not a GUID")
    expected = table.get("expected", "serve")
    if expected not in ("serve", "refuse"):
        raise BackendProfileError(
            f"{where}: [backend.second_tenant].expected = {expected!r} is not valid; use serve (your app is "
            "multi-tenant and this tenant bought it) or refuse"
        )
    return SecondTenant(table["tenant_id"], table["upn"], table["password_env"], table.get("oid"), expected)


# What recordings show instead of the second tenant's and the extra apps' identifiers.
SECOND_TENANT_ID = "00000000-0000-0000-0000-0000000a0002"
SECOND_DOMAIN = "second-tenant.example"
SECOND_OID = "00000000-0000-0000-0000-0000000b0f01"
APP_PLACEHOLDERS = {
    "other_client_id": "00000000-0000-0000-0000-0000000a0a01",
    "chats_only_client_id": "00000000-0000-0000-0000-0000000a0a02",
}


def known_secrets(spec: TokenServiceSpec, second_password: str | None) -> dict[str, str]:
    """The token service's identifying values -> their placeholders (recordings, reports): its origin (a
    port that changes every run), the second tenant's ids, user and password, the extra apps' ids."""
    from harness.core import scrubbing

    scheme = spec.origin.split(":", 1)[0]
    known = {spec.origin: RECORDED_ORIGIN[scheme]}
    for purpose, placeholder in APP_PLACEHOLDERS.items():
        if value := getattr(spec, purpose):
            known[value] = placeholder
    second = spec.second_tenant
    if second is not None:
        known[second.tenant_id] = SECOND_TENANT_ID
        known[second.upn] = f"second-tenant@{SECOND_DOMAIN}"
        known[second.upn.rpartition("@")[2]] = SECOND_DOMAIN
        if second.oid:
            known[second.oid] = SECOND_OID
        if second_password:
            known[second_password] = scrubbing.PASSWORD
    return known
