"""What a running sandbox tells its clients about one of its tenants (`Sandbox.tenant_info`): the
tenant, its app, users and meetings, and where each workload answers. Produced by the sandbox, read
by attribute by the harness; `cte sandbox serve` prints it as one JSON object (`to_dict`/`from_dict`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The sandbox's tenants by name: the home tenant, the tenants that each differ from it by one
# misconfiguration (or one setting a scenario needs), and an external organisation.
HOME_TENANT = "contoso"
EXTERNAL_TENANT = "fabrikam"
VARIANT_TENANTS = (
    "consent-missing",
    "calls-scope-missing",
    "public-client-disabled",
    "no-teams-license",
    "acs-sp-missing",
    "app-not-registered",
    "acs-role-missing",
    "client-secret-expired",
    "graph-scope-missing",
    "no-enterprise-voice",
    "live-events-joinable",
    "personal-use-joinable",
    "webinar-roles-honoured",
    "lobby-not-enforced",
    "gcc-high",
    "redirect-uri-wrong-platform",
    "redirect-uri-unregistered",
)
SANDBOX_TENANTS = (HOME_TENANT, *VARIANT_TENANTS, EXTERNAL_TENANT)
# The redirect URI of the sandbox app registration's single-page app (its "Single-page application"
# platform): where a browser sign-in (authorization code + PKCE) returns. A page on http://localhost, as
# a partner's SPA in development is; docs/contracts/identity.md §11.
SANDBOX_SPA_REDIRECT_URI = "http://localhost:3000/spa"
# The platforms an app registration declares redirect URIs under (Microsoft Graph's application
# resource: spa, publicClient = "Mobile and desktop applications", web).
REDIRECT_PLATFORMS = ("spa", "publicClient", "web")


@dataclass(frozen=True)
class TenantUser:
    alias: str
    upn: str
    password: str
    oid: str
    teams_license: bool
    mfa_required: bool


@dataclass(frozen=True)
class TenantMeeting:
    """The ways the Calling SDK can name one of the tenant's Teams meetings."""

    join_url: str
    meeting_id: str | None
    passcode: str | None
    thread_id: str | None
    organizer_id: str | None
    tenant_id: str | None
    message_id: str = "0"


@dataclass(frozen=True)
class PhoneNumbers:
    outbound: str
    inbound_caller: str


@dataclass(frozen=True)
class TenantInfo:
    tenant: str  # the sandbox's name for it
    authority: str  # Entra ID's authority for the tenant: <entra origin>/<tenant id>
    tenant_id: str
    client_id: str  # the tenant's app registration
    client_secret: str | None
    acs_endpoint: str
    acs_connection_string: str
    acs_access_key: str
    graph_base_url: str
    calling_base_url: str
    meetings: dict[str, TenantMeeting]  # by kind
    phone_numbers: PhoneNumbers
    ca_bundle: str  # the CA that issued the sandbox's certificate
    users: tuple[TenantUser, ...]
    expired_teams_token: str
    misconfiguration: str | None
    tenants: tuple[str, ...] = field(default=())  # every tenant the sandbox hosts
    # More public-client apps of the tenant by purpose (other_client_id, chats_only_client_id): the home
    # tenant's, for checking a partner's token service; empty for the others.
    extra_apps: dict[str, str] = field(default_factory=dict)

    def user(self, alias: str) -> TenantUser:
        return next(u for u in self.users if u.alias == alias)

    def oids(self) -> dict[str, str]:
        """alias -> object id, for every user."""
        return {u.alias: u.oid for u in self.users}

    def to_dict(self) -> dict[str, Any]:
        """As JSON holds it (the keys in field order, users and tenants as lists)."""
        data = asdict(self)
        data["users"] = list(data["users"])
        data["tenants"] = list(data["tenants"])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TenantInfo:
        """The description `to_dict` wrote (other keys, such as `cte sandbox serve`'s, ignored)."""
        names = cls.__dataclass_fields__
        values = {k: v for k, v in data.items() if k in names}
        values["meetings"] = {k: TenantMeeting(**m) for k, m in data.get("meetings", {}).items()}
        values["phone_numbers"] = PhoneNumbers(**data["phone_numbers"])
        values["users"] = tuple(TenantUser(**u) for u in data["users"])
        values["tenants"] = tuple(data.get("tenants", ()))
        return cls(**values)
