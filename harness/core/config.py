"""Profiles (TOML) + secrets from environment variables -> a validated Tenant.

A profile describes a tenant; it never holds a secret, only the names of the environment
variables that do. Two kinds:

    kind = "sandbox"            # the embedded sandbox; `sandbox_tenant` picks one of its tenants
    kind = "live"               # a real tenant: [tenant], [secrets] and [users.<alias>] tables

A bad profile fails before anything runs with one line naming the file, the field and the fix.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.core import scrubbing
from harness.core.places import PROFILE_DIR
from harness.core.prerequisites import MissingPrerequisite
from harness.wire import calling as wire_calling
from harness.wire import contract, tokens, transport
from harness.wire.tenant import HOME_TENANT, REDIRECT_PLATFORMS, SANDBOX_SPA_REDIRECT_URI, SANDBOX_TENANTS, TenantInfo

MODES = ("sandbox", "replay", "record", "live")
CALLING_DRIVERS = ("sandbox", "browser")  # the sandbox's calling model; the real Calling SDK in Chromium
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# The users scenarios act as, by what the account must be. Features name roles, never accounts; a
# profile maps each role it can fill to one of its users ([roles]). A scenario whose role the
# profile does not map is skipped, naming the entry to add.
ROLES = {
    "licensed": "a Teams-licensed user without MFA (signs in with a password); most scenarios act as this user",
    "colleague": "a second Teams-licensed user without MFA: the other side of chats and calls",
    "offline": "a Teams-licensed user signed in nowhere during the run (a call to them ends 480/10037)",
    "mfa": "a user who must use multi-factor authentication (the password grant is refused, AADSTS50076)",
    "unlicensed": "a user without a Teams licence who can sign in without MFA (the exchange is refused)",
    "phone": "a user with Teams Phone and a calling plan (calls the outbound number, rings the inbound one)",
    "no-voice": "a Teams-licensed user without Enterprise Voice (a phone call fails 412/41056)",
    "organizer": "the organizer of the profile's [meetings.*] (admits from the lobby)",
}
# Tenants set up wrong on purpose, by what is wrong: a profile names one per misconfiguration it can
# offer ([misconfigured] NAME = "profile name or path"); scenarios on the others are skipped.
MISCONFIGURATIONS = {
    "consent-missing": "a tenant where the app's Teams scopes were never consented",
    "public-client-disabled": "a tenant whose app registration has public client flows off",
    "acs-sp-missing": "a tenant without the Azure Communication Services service principal",
    "app-not-registered": "a tenant where the app's client id is not registered",
    "calls-scope-missing": "a tenant where Teams.ManageChats is consented but Teams.ManageCalls is not",
    "graph-scope-missing": "a tenant where the app lacks Microsoft Graph's ChatMessage.Send and Chat.ReadWrite",
    "redirect-uri-wrong-platform": "a tenant whose app has the SPA's redirect URI under 'Mobile and desktop "
    "applications', not 'Single-page application'",
    "redirect-uri-unregistered": "a tenant whose app does not have the SPA's redirect URI registered",
}


class ProfileError(ValueError):
    """A profile that cannot be used; the message is one line: where, what, and the fix."""


class Secret(str):
    """A string that never shows itself in a repr, a log line or a traceback's locals."""

    def __repr__(self) -> str:
        return "Secret('***')"


@dataclass(frozen=True)
class UserCredentials:
    alias: str
    upn: str
    password: Secret = field(repr=False)
    oid: str | None = None


@dataclass(frozen=True)
class MeetingLocators:
    """The three ways the Calling SDK can name a Teams meeting."""

    join_url: str
    meeting_id: str | None = None
    passcode: str | None = None
    thread_id: str | None = None
    organizer_id: str | None = None
    tenant_id: str | None = None
    message_id: str = "0"

    def placeholders(self, kind: str, number: int) -> dict[str, str]:
        """This meeting's identifying values -> what recordings show instead."""
        shown = shown_meeting(kind, number)
        pairs = [
            (self.join_url, shown.join_url),
            (self.thread_id, shown.thread_id),
            (self.meeting_id, shown.meeting_id),
            (self.passcode, shown.passcode),
        ]
        return {real: placeholder for real, placeholder in pairs if real and placeholder}


MEETING_KINDS = (
    "regular",
    "channel",
    "webinar",
    "live-event",
    "lobby",
    "attendee-mic-off",
    "attendee-camera-off",
    "organizer-presents",
)
ACS_CLIENT_ID_PLACEHOLDER = "00000000-0000-0000-0000-00000000acc5"  # a live [acs].client_id in recordings
PHONE_PLACEHOLDERS = {"outbound": "+15550100001", "inbound_caller": "+15550100002"}


# How a profile may authenticate to ACS instead of the access key ([acs] credential = ...): an Entra ID
# credential for the resource https://communication.azure.com, authorized by an Azure role on the resource.
ACS_CREDENTIALS = {
    "client-secret": "a confidential app's client secret (azure-identity ClientSecretCredential)",
    "certificate": "a confidential app's certificate (azure-identity CertificateCredential)",
    "managed-identity": "DefaultAzureCredential: a managed identity, or the AZURE_* environment (live only)",
}
ACS_KEYS = {"credential", "client_id", "client_secret_env", "certificate_path_env", "certificate_password_env"}


@dataclass(frozen=True)
class AcsCredential:
    """An Entra ID credential for ACS ([acs] in a profile): what azure-identity needs to build it."""

    kind: str  # ACS_CREDENTIALS
    authority_host: str  # https://login.microsoftonline.com (canonical; routed to the sandbox there)
    tenant_id: str = field(repr=False)
    client_id: str = field(repr=False)
    client_secret: Secret | None = field(default=None, repr=False)
    certificate_path: str | None = field(default=None, repr=False)
    certificate_password: Secret | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Tenant:
    """Everything the client side needs to reach one tenant, in any mode."""

    profile: str
    mode: str
    authority: str = field(repr=False)
    tenant_id: str = field(repr=False)
    client_id: str = field(repr=False)
    acs_endpoint: str = field(repr=False)
    acs_access_key: Secret = field(repr=False)
    graph_base_url: str
    users: Mapping[str, UserCredentials] = field(repr=False)
    ca_bundle: str | None = None
    host_routes: Mapping[str, tuple[str, int]] = field(default_factory=dict)
    expired_teams_token: Secret | None = field(default=None, repr=False)
    misconfiguration: str | None = None
    calling_base_url: str | None = None
    calling_driver: str = "sandbox"
    # True when this machine cannot reach Microsoft's calling services ([calling] offline = true): the
    # real Calling SDK then runs offline; only what it decides on the client is judged, the rest SKIPs.
    calling_offline: bool = False
    phone_dialer: str | None = None  # live: a user with Teams Phone who dials the inbound number
    meetings: Mapping[str, MeetingLocators] = field(default_factory=dict, repr=False)
    phone_numbers: Mapping[str, str] = field(default_factory=dict, repr=False)
    roles: Mapping[str, str] = field(default_factory=dict)  # role -> alias (ROLES)
    policies: tuple[Mapping[str, str], ...] = ()  # the profile's [[policies]]
    misconfigured: Mapping[str, str] = field(default_factory=dict)  # MISCONFIGURATIONS name -> profile
    external_user: UserCredentials | None = field(default=None, repr=False)
    # The profile's own endpoints -> the canonical Microsoft origin recordings show instead.
    canonical_origins: Mapping[str, str] = field(default_factory=dict, repr=False)
    notification_url: str | None = field(
        default=None, repr=False
    )  # live: the public HTTPS URL Graph calls (a tunnel to the receiver)
    notification_port: int = 0  # live: the loopback port the receiver listens on behind that URL
    lifecycle_wait_s: float = 0  # live: how long to wait for Graph's own lifecycle notification (0: skip)
    # An Entra ID credential for ACS ([acs]); None: the access key (HMAC). With it, acs_access_key is empty.
    acs_credential: AcsCredential | None = field(default=None, repr=False)
    # The redirect URI a browser sign-in (authorization code + PKCE) returns to, and the platform the app is
    # (spa, publicClient, web): [app] redirect_uri and platform. None: the profile names none.
    redirect_uri: str | None = None
    redirect_platform: str | None = None
    # The app's own confidential credential ([app] client_secret_env; a sandbox tenant's generated secret):
    # what an app-only Graph token is requested with (a scenario about what Graph refuses an app). None: none.
    app_credential: AcsCredential | None = field(default=None, repr=False)

    @property
    def acs_auth(self) -> str:
        """How requests to ACS are authenticated: "hmac" (the access key) or "entra:<credential kind>"."""
        return f"entra:{self.acs_credential.kind}" if self.acs_credential else "hmac"

    def meeting(self, kind: str) -> MeetingLocators:
        if kind not in self.meetings:
            raise MissingPrerequisite(
                f"profile {self.profile!r} names no {kind} meeting; add a [meetings.{kind}] table with join_url"
            )
        return self.meetings[kind]

    def phone_number(self, role: str) -> str:
        if role not in self.phone_numbers:
            raise MissingPrerequisite(
                f"profile {self.profile!r} names no {role} phone number; add it under [phone_numbers]"
            )
        return self.phone_numbers[role]

    @property
    def acs_connection_string(self) -> Secret:
        return Secret(f"endpoint={self.acs_endpoint}/;accesskey={self.acs_access_key}")

    def user(self, name: str) -> UserCredentials:
        """The account playing a role (`licensed`, `colleague`, ...: ROLES), or a user by alias."""
        alias = self.roles.get(name, name)  # a role the profile maps, or one a scenario bound (policy-holder)
        if name in ROLES and name not in self.roles:
            raise MissingPrerequisite(
                f'profile {self.profile!r} maps no user to the role {name!r}; add {name} = "<alias>" under '
                f"[roles], naming {ROLES[name]}"
            )
        try:
            return self.users[alias]
        except KeyError:
            known = ", ".join(sorted(self.users)) or "none"
            raise MissingPrerequisite(
                f"profile {self.profile!r} has no test user {alias!r} (it has: {known}); "
                f"add a [users.{alias}] table to the profile"
            ) from None

    def with_client(self, client_id: str) -> Tenant:
        """This tenant as another of its app registrations signs users in (a token issued to another app)."""
        return dataclasses.replace(self, client_id=client_id)

    def for_tenant(self, authority: str, tenant_id: str, users: Mapping[str, UserCredentials]) -> Tenant:
        """Another tenant reached through the same app and endpoints (a customer of a multi-tenant app):
        its own authority, id and users, no roles of this one's."""
        return dataclasses.replace(self, authority=authority, tenant_id=tenant_id, users=dict(users), roles={})

    def with_role(self, role: str, alias: str) -> Tenant:
        """This tenant with one more role bound for a scenario (the holder of a policy, say)."""
        return dataclasses.replace(self, roles={**self.roles, role: alias})

    def external(self) -> UserCredentials:
        """A user of another organisation whose domain this tenant's external access blocks."""
        if self.external_user is None:
            raise MissingPrerequisite(
                f"profile {self.profile!r} names no external user; add [external_user] with upn and oid of a "
                "user in a domain your external access blocks (and the matching [[policies]] entry)"
            )
        return self.external_user

    def misconfigured_profile(self, name: str) -> str:
        """The profile (name or path) of this profile's tenant with misconfiguration `name`."""
        if name not in self.misconfigured:
            raise MissingPrerequisite(
                f'profile {self.profile!r} names no {name} tenant; add {name} = "<profile>" under '
                f"[misconfigured], naming a profile of {MISCONFIGURATIONS.get(name, name)}"
            )
        return self.misconfigured[name]

    def known_secrets(self) -> dict[str, str]:
        """Secret or identifying value -> the placeholder a recording shows instead."""
        known: dict[str, str] = {
            self.tenant_id: scrubbing.TENANT_ID,
            self.client_id: scrubbing.CLIENT_ID,
        }
        if str(self.acs_access_key):
            known[str(self.acs_access_key)] = scrubbing.ACS_ACCESS_KEY
        if self.app_credential is not None and self.app_credential.client_secret:
            known[str(self.app_credential.client_secret)] = scrubbing.CLIENT_SECRET
        credential = self.acs_credential
        if credential is not None:
            if credential.client_secret:
                known[str(credential.client_secret)] = scrubbing.CLIENT_SECRET
            if credential.certificate_password:
                known[str(credential.certificate_password)] = scrubbing.CLIENT_SECRET
            if credential.client_id and credential.client_id != self.client_id:
                known[credential.client_id] = ACS_CLIENT_ID_PLACEHOLDER
        for index, alias in enumerate(sorted(self.users)):
            user = self.users[alias]
            known[user.upn] = f"{alias}@{scrubbing.UPN_DOMAIN}"
            known[user.upn.rpartition("@")[2]] = scrubbing.UPN_DOMAIN
            known[str(user.password)] = scrubbing.PASSWORD
            if user.oid:
                known[user.oid] = oid_placeholder(index)
        for kind, meeting in self.meetings.items():
            known.update(meeting.placeholders(kind, meeting_number(kind)))
        for role, value in self.phone_numbers.items():
            known[value] = PHONE_PLACEHOLDERS.get(role, "+15550100099")
        if self.external_user is not None:
            known[self.external_user.upn] = f"external@{scrubbing.EXTERNAL_DOMAIN}"
            known[self.external_user.upn.rpartition("@")[2]] = scrubbing.EXTERNAL_DOMAIN
            if self.external_user.oid:
                known[self.external_user.oid] = EXTERNAL_OID_PLACEHOLDER
        known.update(self.canonical_origins)
        return known


@dataclass(frozen=True)
class Profile:
    name: str
    path: Path | None
    kind: str
    sandbox_tenant: str = HOME_TENANT
    data: Mapping[str, Any] = field(default_factory=dict, repr=False)

    # -- to a Tenant -------------------------------------------------------------------------------

    def declared(self) -> dict[str, Any]:
        """What the profile declares the same way in every mode: roles, policies, misconfigured
        tenants (their profiles found beside this one), the calling and notification settings."""
        calling = self.data.get("calling", {})
        notifications = self.data.get("notifications", {})
        base = self.path.parent if self.path else Path.cwd()
        misconfigured = {}
        for name, ref in self.data.get("misconfigured", {}).items():
            ref = str(ref)
            relative = ref.endswith(".toml") or "/" in ref
            misconfigured[name] = str(base / ref) if relative and not Path(ref).is_absolute() else ref
        return {
            "roles": {str(k): str(v) for k, v in self.data.get("roles", {}).items()},
            "policies": tuple(dict(e) for e in self.data.get("policies", []) if isinstance(e, dict)),
            "misconfigured": misconfigured,
            "calling_offline": bool(calling.get("offline", False)),
            "notification_url": notifications.get("public_url"),
            "notification_port": int(notifications.get("listen_port", 0)),
            "lifecycle_wait_s": float(notifications.get("lifecycle_wait_s", 0)),
            **dict(zip(("redirect_uri", "redirect_platform"), self.app_redirect() or (None, None), strict=True)),
        }

    def app_redirect(self) -> tuple[str, str] | None:
        """The redirect URI the app signs users in with in a browser, and the platform it is (spa, publicClient,
        web): [app] redirect_uri and platform; a sandbox tenant's app's SPA URI. None: the profile names none."""
        if self.kind == "sandbox":
            return SANDBOX_SPA_REDIRECT_URI, "spa"
        table = self.data.get("app")
        if isinstance(table, dict) and table.get("redirect_uri"):
            return str(table["redirect_uri"]), str(table.get("platform", "spa"))
        return None

    def external_sandbox_user(self) -> tuple[str, str] | None:
        """A sandbox profile's external user: (sandbox tenant, alias)."""
        table = self.data.get("external_user")
        if not isinstance(table, dict) or "sandbox_tenant" not in table:
            return None
        return str(table["sandbox_tenant"]), str(table["alias"])

    def for_sandbox(
        self,
        info: TenantInfo,
        routes: Mapping[str, tuple[str, int]],
        mode: str,
        *,
        external: UserCredentials | None = None,
    ) -> Tenant:
        """The tenant as the running sandbox describes it (`Sandbox.tenant_info`)."""
        users = {u.alias: UserCredentials(u.alias, u.upn, Secret(u.password), u.oid) for u in info.users}
        credential = None
        if self.acs_credential_kind():  # the sandbox tenant's confidential app (its client secret)
            credential = AcsCredential(
                "client-secret",
                authority_host=info.authority.rsplit("/", 1)[0],
                tenant_id=info.tenant_id,
                client_id=info.client_id,
                client_secret=Secret(info.client_secret or ""),
            )
        app = None
        if info.client_secret:  # the sandbox tenant's app has a client secret: app-only tokens come with it
            app = AcsCredential(
                "client-secret",
                authority_host=info.authority.rsplit("/", 1)[0],
                tenant_id=info.tenant_id,
                client_id=info.client_id,
                client_secret=Secret(info.client_secret),
            )
        return Tenant(
            acs_credential=credential,
            app_credential=app,
            **self.declared(),
            external_user=external,
            profile=self.name,
            mode=mode,
            authority=info.authority,
            tenant_id=info.tenant_id,
            client_id=info.client_id,
            acs_endpoint=info.acs_endpoint,
            acs_access_key=Secret("" if credential else info.acs_access_key),
            graph_base_url=info.graph_base_url,
            users=users,
            ca_bundle=info.ca_bundle,
            host_routes=dict(routes),
            expired_teams_token=Secret(info.expired_teams_token),
            misconfiguration=info.misconfiguration,
            calling_base_url=info.calling_base_url,
            meetings={kind: MeetingLocators(**dataclasses.asdict(m)) for kind, m in info.meetings.items()},
            phone_numbers=dataclasses.asdict(info.phone_numbers),
        )

    def for_replay(self) -> Tenant:
        """The tenant as cassettes show it: every identifier and secret is its placeholder."""
        aliases = self._aliases()
        users = {
            alias: UserCredentials(
                alias, f"{alias}@{scrubbing.UPN_DOMAIN}", Secret(scrubbing.PASSWORD), oid_placeholder(index)
            )
            for index, alias in enumerate(sorted(aliases))
        }
        expired = tokens.placeholder({"exp": 0, "aud": "https://auth.msft.communication.azure.com"})
        declared = self.declared()
        external = None
        if self.external_sandbox_user() or isinstance(self.data.get("external_user"), dict):
            external = UserCredentials(
                "external", f"external@{scrubbing.EXTERNAL_DOMAIN}", Secret(""), EXTERNAL_OID_PLACEHOLDER
            )
            # The blocked domain is the external user's: recordings show its placeholder.
            declared["policies"] = tuple(
                {**p, "setting": scrubbing.EXTERNAL_DOMAIN} if p.get("policy") == "External access" else p
                for p in declared["policies"]
            )
        kind = self.acs_credential_kind()
        credential = None
        if kind == "managed-identity":
            raise ProfileError(
                f'{self._where()}: [acs] credential = "managed-identity" works in live mode only (its token comes '
                "from the machine it runs on); run with --mode live, or use client-secret or certificate to record"
            )
        if kind:
            credential = AcsCredential(
                kind,
                authority_host="https://login.microsoftonline.com",
                tenant_id=scrubbing.TENANT_ID,
                client_id=scrubbing.CLIENT_ID if self.kind == "sandbox" else ACS_CLIENT_ID_PLACEHOLDER,
                client_secret=Secret(scrubbing.CLIENT_SECRET) if kind == "client-secret" else None,
            )
        app = None
        if self.kind == "sandbox" or self._app_secret_env():
            app = AcsCredential(
                "client-secret",
                authority_host="https://login.microsoftonline.com",
                tenant_id=scrubbing.TENANT_ID,
                client_id=scrubbing.CLIENT_ID,
                client_secret=Secret(scrubbing.CLIENT_SECRET),
            )
        return Tenant(
            **declared,
            acs_credential=credential,
            app_credential=app,
            external_user=external,
            profile=self.name,
            mode="replay",
            authority=f"https://login.microsoftonline.com/{scrubbing.TENANT_ID}",
            tenant_id=scrubbing.TENANT_ID,
            client_id=scrubbing.CLIENT_ID,
            acs_endpoint=f"https://{scrubbing.ACS_HOST}",
            acs_access_key=Secret("" if credential else scrubbing.ACS_ACCESS_KEY),
            graph_base_url="https://graph.microsoft.com/v1.0",
            users=users,
            expired_teams_token=Secret(expired),
            misconfiguration=self.sandbox_tenant
            if self.kind == "sandbox" and self.sandbox_tenant != "contoso"
            else None,
            # A live recording holds what the real Calling SDK answered; a sandbox one, the model's API.
            calling_driver=self._calling_table()["driver"] if self.kind == "live" else "sandbox",
            calling_base_url=None
            if self.kind == "live"
            else f"https://{contract.SANDBOX_CALLING_HOST}{wire_calling.VERSION}",
            meetings={
                kind: shown_meeting(kind, meeting_number(kind), oid_placeholder(self._organizer_index()))
                for kind in MEETING_KINDS
            },
            phone_numbers=dict(PHONE_PLACEHOLDERS),
        )

    def for_live(self, env: Mapping[str, str] | None = None) -> Tenant:
        """The real tenant; secrets come from the environment variables the profile names."""
        env = os.environ if env is None else env
        if self.kind != "live":
            raise ProfileError(
                f"{self._where()}: profile {self.name!r} is a sandbox profile; run it with --mode sandbox, "
                "replay or record, or write a live profile (see harness/profiles/live.example.toml)"
            )
        tenant = self.data["tenant"]
        secrets = self.data.get("secrets", {})
        users = {}
        for alias, table in self.data.get("users", {}).items():
            password = Secret(self._env(env, table["password_env"], f"users.{alias}.password_env"))
            users[alias] = UserCredentials(alias, table["upn"], password, table.get("oid"))
        credential = self._live_acs_credential(env)
        access_key = ""
        if credential is None:
            access_key = _access_key(
                self._env(env, secrets["acs_connection_string_env"], "secrets.acs_connection_string_env"), self
            )
        expired_env = secrets.get("expired_teams_token_env")
        expired = env.get(expired_env) if expired_env else None
        calling = self._calling_table()
        declared = self.declared()
        authority_host, graph_base_url, acs_endpoint = endpoints(tenant).values()
        external = self.data.get("external_user")
        app = None
        if secret_env := self._app_secret_env():
            app = AcsCredential(
                "client-secret",
                authority_host,
                str(tenant["tenant_id"]),
                str(tenant["client_id"]),
                client_secret=Secret(self._env(env, secret_env, "app.client_secret_env")),
            )
        return Tenant(
            **declared,
            acs_credential=credential,
            app_credential=app,
            profile=self.name,
            mode="live",
            authority=f"{authority_host}/{tenant['tenant_id']}",
            tenant_id=tenant["tenant_id"],
            client_id=tenant["client_id"],
            acs_endpoint=acs_endpoint,
            acs_access_key=Secret(access_key),
            graph_base_url=graph_base_url,
            users=users,
            ca_bundle=self._ca_bundle(),
            expired_teams_token=Secret(expired) if expired else None,
            calling_driver=calling.get("driver", "browser"),
            phone_dialer=declared["roles"].get("phone"),
            meetings=self._meetings(),
            phone_numbers={k: str(v) for k, v in self.data.get("phone_numbers", {}).items()},
            external_user=UserCredentials("external", str(external["upn"]), Secret(""), external.get("oid"))
            if isinstance(external, dict)
            else None,
            canonical_origins=canonical_origins(authority_host, graph_base_url, acs_endpoint),
        )

    def max_token_wait_s(self) -> float:
        """[tokens].max_expiry_wait_s: how long a scenario may wait for a live tenant's token to expire (0)."""
        table = self.data.get("tokens")
        return float(table.get("max_expiry_wait_s", 0)) if isinstance(table, dict) else 0.0

    def _app_secret_env(self) -> str | None:
        """[app].client_secret_env: the variable holding the app's own client secret (app-only Graph tokens)."""
        table = self.data.get("app")
        return str(table["client_secret_env"]) if isinstance(table, dict) and table.get("client_secret_env") else None

    def acs_credential_kind(self) -> str | None:
        """[acs].credential: the kind of Entra ID credential for ACS (ACS_CREDENTIALS), or None: the access key."""
        table = self.data.get("acs")
        return str(table["credential"]) if isinstance(table, dict) and "credential" in table else None

    def _live_acs_credential(self, env: Mapping[str, str]) -> AcsCredential | None:
        kind = self.acs_credential_kind()
        if kind is None:
            return None
        table = self.data["acs"]
        authority_host = endpoints(self.data["tenant"])["authority_host"]
        tenant_id = str(self.data["tenant"]["tenant_id"])
        if kind == "managed-identity":
            return AcsCredential(kind, authority_host, tenant_id, str(table.get("client_id", "")))
        client_id = str(table["client_id"])
        if kind == "client-secret":
            secret = self._env(env, table["client_secret_env"], "acs.client_secret_env")
            return AcsCredential(kind, authority_host, tenant_id, client_id, client_secret=Secret(secret))
        path = Path(self._env(env, table["certificate_path_env"], "acs.certificate_path_env")).expanduser()
        if not path.is_file():
            raise ProfileError(
                f"{self._where()}: [acs].certificate_path_env names {table['certificate_path_env']}, whose value "
                f"{str(path)!r} is not a file; set it to the PEM (private key and certificate) or PFX file of "
                "the app's certificate"
            )
        password_env = table.get("certificate_password_env")
        password = self._env(env, password_env, "acs.certificate_password_env") if password_env else None
        return AcsCredential(
            kind,
            authority_host,
            tenant_id,
            client_id,
            certificate_path=str(path),
            certificate_password=Secret(password) if password else None,
        )

    def _ca_bundle(self) -> str | None:
        """[tenant].ca_bundle: a PEM file of the CA(s) to trust for this tenant's endpoints, relative to
        the profile (a TLS-inspecting proxy's CA, or a test tenant's own)."""
        value = self.data.get("tenant", {}).get("ca_bundle")
        if not value:
            return None
        path = Path(str(value)).expanduser()
        if not path.is_absolute() and self.path is not None:
            path = self.path.parent / path
        if not path.is_file():
            raise ProfileError(
                f"{self._where()}: [tenant].ca_bundle = {value!r} is not a file (looked at {path}); set it to the "
                "PEM file of the CA that issued your endpoints' certificates, or remove it to trust the system's CAs"
            )
        return str(path)

    def _calling_table(self) -> dict[str, str]:
        """[calling]: driver (sandbox | browser) and offline (this machine cannot reach Microsoft's
        calling services), checked here."""
        calling = self.data.get("calling", {})
        unknown = sorted(set(calling) - {"driver", "offline"})
        if unknown:
            hint = " (the phone dialer is now the role phone under [roles])" if "phone_dialer" in unknown else ""
            raise ProfileError(
                f"{self._where()}: [calling] has unknown key {unknown[0]!r}; use driver or offline{hint}"
            )
        driver = str(calling.get("driver", "browser"))
        if driver not in CALLING_DRIVERS:
            raise ProfileError(f"{self._where()}: [calling] driver {driver!r} is not valid; use browser or sandbox")
        if not isinstance(calling.get("offline", False), bool):
            raise ProfileError(f"{self._where()}: [calling] offline must be true or false")
        return {"driver": driver}

    def _meetings(self) -> dict[str, MeetingLocators]:
        fields = set(MeetingLocators.__dataclass_fields__)
        meetings = {}
        for kind, table in self.data.get("meetings", {}).items():
            unknown = sorted(set(table) - fields)
            if unknown or "join_url" not in table:
                problem = f"unknown key {unknown[0]!r}" if unknown else "no join_url"
                raise ProfileError(f"{self._where()}: [meetings.{kind}] has {problem}; use {', '.join(sorted(fields))}")
            meetings[kind] = MeetingLocators(**{k: str(v) for k, v in table.items()})
        return meetings

    def _env(self, env: Mapping[str, str], name: str, field_name: str) -> str:
        value = env.get(name, "")
        if not value:
            raise ProfileError(
                f"{self._where()}: [{field_name}] names environment variable {name}, which is not set; "
                f"export {name}=... before running (secrets are never written in profiles)"
            )
        return value

    def _aliases(self) -> list[str]:
        if self.kind == "sandbox":
            return ["adele", "megan", "lynne", "pradeep", "nestor", "isaiah", "alex"]
        return sorted(self.data.get("users", {}))

    def _organizer_index(self) -> int:
        """Which user's object-id placeholder a replayed meeting's organizer id is (the organizer role's)."""
        aliases = sorted(self._aliases())
        organizer = self.declared()["roles"].get("organizer")
        return aliases.index(organizer) if organizer in aliases else 0

    def _where(self) -> str:
        return str(self.path) if self.path else f"profile {self.name!r}"


EXTERNAL_OID_PLACEHOLDER = "00000000-0000-0000-0000-0000000e0001"


def meeting_number(kind: str) -> int:
    """A meeting kind's number in recordings' placeholders (the same in every profile)."""
    kinds = sorted(MEETING_KINDS)
    return kinds.index(kind) + 1 if kind in kinds else 90 + sum(map(ord, kind)) % 9


def endpoints(tenant: Mapping[str, Any]) -> dict[str, str]:
    """A live profile's [tenant] endpoints, Microsoft's public cloud where it names none."""
    return {
        "authority_host": str(tenant.get("authority_host", f"https://{contract.ENTRA_HOST}")).rstrip("/"),
        "graph_base_url": str(tenant.get("graph_base_url", f"https://{contract.GRAPH_HOST}/v1.0")).rstrip("/"),
        "acs_endpoint": str(tenant.get("acs_endpoint", "")).rstrip("/"),
    }


def canonical_origins(authority_host: str, graph_base_url: str, acs_endpoint: str) -> dict[str, str]:
    """A profile's endpoint origins -> the canonical Microsoft origins recordings show (a sovereign
    cloud or a test tenant served elsewhere is recorded as the public cloud's hosts)."""
    import urllib.parse

    wanted = {
        transport.origin(authority_host): f"https://{contract.ENTRA_HOST}",
        transport.origin(graph_base_url): f"https://{contract.GRAPH_HOST}",
        transport.origin(acs_endpoint): f"https://{scrubbing.ACS_HOST}",
    }
    return {
        real: canonical
        for real, canonical in wanted.items()
        if urllib.parse.urlsplit(real).port is not None
        or not real.endswith((contract.ENTRA_HOST, contract.GRAPH_HOST, contract.ACS_HOST_SUFFIX))
    }


def oid_placeholder(index: int) -> str:
    """The placeholder of the object id of the profile's index-th user (aliases in sorted order)."""
    return f"00000000-0000-0000-0000-0000000b{0x100 + index:04x}"


def shown_meeting(kind: str, number: int, organizer_id: str | None = None) -> MeetingLocators:
    """A meeting as recordings show it."""
    return MeetingLocators(
        join_url=f"https://teams.microsoft.com/l/meetup-join/19%3Ameeting_{kind}%40thread.v2/0",
        meeting_id=f"99999999990{number:02d}",
        passcode=f"Pass{number:02d}",
        thread_id=f"19:meeting_{kind}@thread.v2",
        organizer_id=organizer_id,
        tenant_id=scrubbing.TENANT_ID,
    )


def _access_key(connection_string: str, profile: Profile) -> str:
    parts = dict(part.split("=", 1) for part in connection_string.strip().rstrip(";").split(";") if "=" in part)
    parts = {k.lower(): v for k, v in parts.items()}
    if "accesskey" not in parts or "endpoint" not in parts:
        raise ProfileError(
            f"{profile._where()}: the ACS connection string has no endpoint=...;accesskey=... parts; copy it "
            "from the Azure portal (Communication Services resource > Keys > Connection string)"
        )
    return parts["accesskey"]


# -- loading and validating -------------------------------------------------------------------------

LIVE_REQUIRED = {
    "tenant": {
        "tenant_id": "your Entra tenant id (a GUID)",
        "client_id": "the application (client) id of your app registration (a GUID)",
        "acs_endpoint": "https://<resource>.communication.azure.com",
    },
    "secrets": {"acs_connection_string_env": "the name of the environment variable holding the ACS connection string"},
}


def find_profile(name_or_path: str) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or os.sep in name_or_path:
        if candidate.is_file():
            return candidate
        raise ProfileError(f"profile file {name_or_path} does not exist; pass a path to a .toml file or a profile name")
    directories = [Path(d) for d in os.environ.get("CTE_PROFILE_PATH", "").split(os.pathsep) if d]
    searched = [*directories, Path.cwd() / "profiles", PROFILE_DIR]
    for directory in searched:
        path = directory / f"{name_or_path}.toml"
        if path.is_file():
            return path
    available = sorted({p.stem for d in searched if d.is_dir() for p in d.glob("*.toml")})
    raise ProfileError(
        f"no profile named {name_or_path!r}; available: {', '.join(available) or 'none'} "
        "(or pass a path to a .toml file, or add a directory to CTE_PROFILE_PATH)"
    )


def load_profile(name_or_path: str = "sandbox") -> Profile:
    path = find_profile(name_or_path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path}: not valid TOML ({exc}); fix the syntax at that position") from None
    except UnicodeDecodeError:
        raise ProfileError(f"{path}: not UTF-8 text; save the profile as UTF-8") from None
    return validate(data, path)


def _sandbox_defaults() -> dict[str, Any]:
    """What every sandbox profile shares with harness/profiles/sandbox.toml unless it says otherwise: the
    sandbox tenant's roles, policies, misconfigured tenants and external user."""
    path = PROFILE_DIR / "sandbox.toml"
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    return {k: data[k] for k in ("roles", "policies", "misconfigured", "external_user") if k in data}


def _https_url(where: str, field_name: str, value: Any, example: str, *, path_allowed: bool) -> None:
    import urllib.parse

    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    ok = parts is not None and parts.scheme == "https" and bool(parts.hostname)
    if ok and not path_allowed and parts is not None and parts.path not in ("", "/"):
        ok = False
    if not ok:
        raise ProfileError(f"{where}: {field_name} = {value!r} is not an https:// URL; set it to {example}")


def _check_declarations(data: Mapping[str, Any], where: str, users: Mapping[str, Any] | None) -> None:
    """[roles], [misconfigured], [external_user], [notifications]: names and shapes, one line each."""
    roles = data.get("roles", {})
    if not isinstance(roles, dict):
        raise ProfileError(
            f'{where}: [roles] must be a table of role = "alias"; see harness/profiles/live.example.toml'
        )
    for role, alias in roles.items():
        if role not in ROLES:
            raise ProfileError(f"{where}: [roles] has unknown role {role!r}; use one of {', '.join(ROLES)}")
        if users is not None and alias not in users:
            raise ProfileError(
                f"{where}: [roles] {role} = {alias!r} names no user of this profile; add [users.{alias}] or name "
                f"one of {', '.join(sorted(users))}"
            )
    misconfigured = data.get("misconfigured", {})
    if not isinstance(misconfigured, dict):
        raise ProfileError(f'{where}: [misconfigured] must be a table of name = "profile"')
    for name in misconfigured:
        if name not in MISCONFIGURATIONS:
            raise ProfileError(
                f"{where}: [misconfigured] has unknown name {name!r}; use one of {', '.join(MISCONFIGURATIONS)}"
            )
    external = data.get("external_user")
    if external is not None:
        keys = {"sandbox_tenant", "alias"} if data.get("kind") == "sandbox" else {"upn", "oid"}
        if not isinstance(external, dict) or not keys <= set(external):
            raise ProfileError(f"{where}: [external_user] needs {' and '.join(sorted(keys))}")
    for table in ("calling", "notifications", "meetings", "phone_numbers", "roles", "misconfigured"):
        if table in data and not isinstance(data[table], dict):
            raise ProfileError(f"{where}: [{table}] must be a table")
    policies = data.get("policies", [])
    if not isinstance(policies, list):
        raise ProfileError(f"{where}: policies must be [[policies]] tables")
    for number, entry in enumerate(policies, start=1):
        missing = [k for k in ("policy", "setting", "value") if not isinstance(entry, dict) or not entry.get(k)]
        if missing:
            raise ProfileError(
                f"{where}: [[policies]] entry {number} has no {missing[0]}; give policy, setting and value"
            )
        if users is not None and entry.get("user") is not None and entry["user"] not in users:
            raise ProfileError(
                f"{where}: [[policies]] entry {number} names user {entry['user']!r}, who is not one of this "
                "profile's [users.*]"
            )
    notifications = data.get("notifications", {})
    if "public_url" in notifications and not notifications.get("listen_port"):
        raise ProfileError(
            f"{where}: [notifications] has a public_url but no listen_port; set listen_port to the loopback port "
            "your tunnel forwards to"
        )
    if "public_url" in notifications:
        _https_url(
            where,
            "[notifications].public_url",
            notifications["public_url"],
            "your tunnel's https URL",
            path_allowed=True,
        )
    tokens_table = data.get("tokens", {})
    if not isinstance(tokens_table, dict) or set(tokens_table) - {"max_expiry_wait_s"}:
        raise ProfileError(f"{where}: [tokens] takes one key, max_expiry_wait_s (seconds a scenario may wait)")
    token_wait = tokens_table.get("max_expiry_wait_s", 0)
    if not isinstance(token_wait, int | float) or isinstance(token_wait, bool) or not 0 <= token_wait <= 86400:
        raise ProfileError(f"{where}: [tokens].max_expiry_wait_s = {token_wait!r} is not a number of seconds (0-86400)")
    wait = notifications.get("lifecycle_wait_s", 0)
    if not isinstance(wait, int | float) or isinstance(wait, bool) or not 0 <= wait <= 3600:
        raise ProfileError(f"{where}: [notifications].lifecycle_wait_s = {wait!r} is not a number of seconds (0-3600)")
    port = notifications.get("listen_port", 0)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port < 65536:
        raise ProfileError(f"{where}: [notifications].listen_port = {port!r} is not a port number (1-65535)")


APP_KEYS = {
    "client_secret_env": '"NAME_OF_ENV_VAR" holding the app\'s client secret (for the scenarios about what Graph '
    "refuses an app-only token)",
    "redirect_uri": '"http://localhost:3000/" or the URI your SPA signs in with (checked by cte doctor, used by the '
    "browser sign-in)",
    "platform": f"the platform your app is: {', '.join(REDIRECT_PLATFORMS)} (spa: a browser redeems the code)",
}


def _check_app(data: Mapping[str, Any], where: str) -> None:
    """[app]: the app's own client secret, and the redirect URI (and platform) of its browser sign-in."""
    app = data.get("app")
    if app is None:
        return
    if not isinstance(app, dict) or not app or set(app) - set(APP_KEYS):
        unknown = sorted(set(app) - set(APP_KEYS)) if isinstance(app, dict) else []
        named = f" (not {unknown[0]!r})" if unknown else ""
        raise ProfileError(
            f"{where}: [app] takes {', '.join(APP_KEYS)}{named}; e.g. redirect_uri = {APP_KEYS['redirect_uri']}"
        )
    for key, meaning in APP_KEYS.items():
        if key in app and (not isinstance(app[key], str) or not app[key].strip()):
            raise ProfileError(f"{where}: [app].{key} = {app[key]!r} is not valid; set it to {meaning}")
    if "redirect_uri" in app:
        import urllib.parse

        parts = urllib.parse.urlsplit(app["redirect_uri"])
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ProfileError(
                f"{where}: [app].redirect_uri = {app['redirect_uri']!r} is not an http(s) URL; set it to "
                f"{APP_KEYS['redirect_uri']}"
            )
    if "platform" in app and "redirect_uri" not in app:
        raise ProfileError(
            f"{where}: [app].platform needs [app].redirect_uri; add redirect_uri = {APP_KEYS['redirect_uri']}"
        )
    if "platform" in app and app["platform"] not in REDIRECT_PLATFORMS:
        raise ProfileError(
            f"{where}: [app].platform = {app['platform']!r} is not valid; use one of {', '.join(REDIRECT_PLATFORMS)}"
        )


def _check_acs(data: Mapping[str, Any], where: str, kind: str) -> None:
    """[acs]: an Entra ID credential for ACS instead of the connection string; one line per problem."""
    table = data.get("acs")
    if table is None:
        return
    if not isinstance(table, dict):
        raise ProfileError(f'{where}: [acs] must be a table, e.g. [acs] credential = "client-secret"')
    instead = {
        "client_secret": "client_secret_env",
        "certificate": "certificate_path_env",
        "certificate_password": "certificate_password_env",
    }
    held = sorted(k for k in table if k in instead)
    if held:
        raise ProfileError(
            f"{where}: [acs].{held[0]} holds a secret in the file; remove it and set {instead[held[0]]} to the "
            "name of an environment variable instead"
        )
    unknown = sorted(set(table) - ACS_KEYS)
    if unknown:
        raise ProfileError(f"{where}: [acs] has unknown key {unknown[0]!r}; use {', '.join(sorted(ACS_KEYS))}")
    credential = table.get("credential")
    if credential not in ACS_CREDENTIALS:
        raise ProfileError(
            f"{where}: [acs].credential = {credential!r} is not valid; use one of {', '.join(ACS_CREDENTIALS)}"
        )
    if kind == "sandbox":
        if credential != "client-secret" or set(table) != {"credential"}:
            raise ProfileError(
                f'{where}: a sandbox profile\'s [acs] takes only credential = "client-secret" (the sandbox '
                "tenant's own app and its generated secret); remove the other keys"
            )
        return
    needed = {
        "client-secret": ("client_id", "client_secret_env"),
        "certificate": ("client_id", "certificate_path_env"),
        "managed-identity": (),
    }[credential]
    for key in needed:
        if not isinstance(table.get(key), str) or not table[key].strip():
            example = {
                "client_id": "the application (client) id of the confidential app holding the credential",
                "client_secret_env": '"NAME_OF_ENV_VAR" holding its client secret',
                "certificate_path_env": '"NAME_OF_ENV_VAR" holding the path of its certificate (PEM or PFX)',
            }[key]
            raise ProfileError(f"{where}: [acs].{key} is missing for credential = {credential!r}; set it to {example}")
    if "client_id" in table and not GUID.match(str(table["client_id"])):
        raise ProfileError(
            f"{where}: [acs].client_id = {table['client_id']!r} is not a GUID; set it to the application (client) id "
            "of the app (or, for a user-assigned managed identity, its client id)"
        )


def _shared_origin(tenant: Mapping[str, Any]) -> str | None:
    """Which of the endpoints share an origin (scheme, host, port), if any."""
    seen: dict[str, str] = {}
    for name, url in endpoints(tenant).items():
        if transport.origin(url) in seen:
            return f"{seen[transport.origin(url)]} and {name}"
        seen[transport.origin(url)] = name
    return None


def validate(data: Mapping[str, Any], path: Path | None) -> Profile:
    where = str(path) if path else "profile"
    name = data.get("name", path.stem if path else "profile")
    if path is not None and "name" in data and name != path.stem:
        raise ProfileError(
            f'{where}: name = {name!r} differs from the file\'s name {path.stem!r}; set name = "{path.stem}" '
            "or remove the name line (a profile is known by its file name)"
        )
    kind = data.get("kind")
    if kind not in ("sandbox", "live"):
        raise ProfileError(f'{where}: kind = {kind!r} is not valid; set kind = "sandbox" or kind = "live"')
    if kind == "sandbox":
        tenant = data.get("sandbox_tenant", HOME_TENANT)
        if tenant not in SANDBOX_TENANTS:
            raise ProfileError(
                f"{where}: sandbox_tenant = {tenant!r} is not a sandbox tenant; use one of {', '.join(SANDBOX_TENANTS)}"
            )
        if path is None or path.resolve() != (PROFILE_DIR / "sandbox.toml").resolve():
            data = {**_sandbox_defaults(), **data}
        _check_declarations(data, where, None)
        _check_acs(data, where, "sandbox")
        return Profile(name=name, path=path, kind=kind, sandbox_tenant=tenant, data=data)
    _check_acs(data, where, "live")
    _check_app(data, where)
    for table, fields in LIVE_REQUIRED.items():
        if table == "secrets" and isinstance(data.get("acs"), dict):
            continue  # [acs] names the credential for ACS instead of the connection string
        section = data.get(table)
        if not isinstance(section, dict):
            raise ProfileError(f"{where}: the [{table}] table is missing; add it with {', '.join(fields)}")
        for key, meaning in fields.items():
            value = section.get(key)
            if not isinstance(value, str) or not value.strip():
                raise ProfileError(f"{where}: [{table}].{key} is missing; set it to {meaning}")
    for key in ("tenant_id", "client_id"):
        if not GUID.match(data["tenant"][key]):
            raise ProfileError(
                f"{where}: [tenant].{key} = {data['tenant'][key]!r} is not a GUID; "
                f"set it to {LIVE_REQUIRED['tenant'][key]}"
            )
    tenant_table = data["tenant"]
    _https_url(
        where,
        "[tenant].acs_endpoint",
        tenant_table["acs_endpoint"],
        "https://<resource>.communication.azure.com",
        path_allowed=False,
    )
    if "authority_host" in tenant_table:
        _https_url(
            where,
            "[tenant].authority_host",
            tenant_table["authority_host"],
            "your cloud's Entra ID host, e.g. https://login.microsoftonline.us",
            path_allowed=False,
        )
    if "graph_base_url" in tenant_table:
        _https_url(
            where,
            "[tenant].graph_base_url",
            tenant_table["graph_base_url"],
            "your cloud's Graph, e.g. https://graph.microsoft.us/v1.0",
            path_allowed=True,
        )
    shared = _shared_origin(tenant_table)
    if shared:
        raise ProfileError(
            f"{where}: [tenant] {shared} share one host and port; give each endpoint its own (recordings name each "
            "by its Microsoft host)"
        )
    users = data.get("users")
    if not isinstance(users, dict) or not users:
        raise ProfileError(f"{where}: no [users.<alias>] table; add one per test user with upn and password_env")
    for alias, table in users.items():
        if isinstance(table, dict) and "password" in table:
            raise ProfileError(
                f"{where}: [users.{alias}].password holds a secret in the file; remove it and set "
                "password_env to the name of an environment variable instead"
            )
        for key in ("upn", "password_env"):
            if not isinstance(table, dict) or not isinstance(table.get(key), str) or not table[key]:
                raise ProfileError(
                    f'{where}: [users.{alias}].{key} is missing; set upn = "user@domain" and '
                    'password_env = "NAME_OF_ENV_VAR"'
                )
    _check_declarations(data, where, users)
    profile = Profile(name=name, path=path, kind="live", data=data)
    profile._calling_table()
    profile._meetings()
    profile._ca_bundle()
    return profile


def resolve_mode(value: str | None) -> str:
    mode = (value or os.environ.get("CTE_MODE") or "sandbox").strip().lower()
    if mode not in MODES:
        raise ProfileError(f"mode {mode!r} is not valid; use one of {', '.join(MODES)} (--mode or CTE_MODE)")
    return mode
